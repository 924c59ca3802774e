-- autheona's PostgreSQL schema, version 4 (SQLite's stays at 5: every server reads a file
-- itself): the servers running on the store, so that a change that refuses a token (revoke,
-- rotate, prune, a project deleted) can wait until each of them knows. `autheona serve`
-- answers a token from a row it read earlier only while it holds a lease here, renewed every
-- half second; every such change is announced on the channel `autheona_changes` in its own
-- transaction (the triggers below), and the command that made it then announces a number from
-- `changes` and waits until every server whose lease is live has acknowledged it (`acked`), or
-- marks the one that did not `evicted` and waits out its lease. Nothing here is a token, a
-- secret or a hash.

CREATE TABLE autheona.servers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lease_until timestamptz NOT NULL,            -- on the database server's clock
    acked       bigint NOT NULL,                 -- the last number of `changes` it knows of
    evicted     boolean NOT NULL DEFAULT false   -- its lease is not renewed any more
);

CREATE SEQUENCE autheona.changes AS bigint;

CREATE FUNCTION autheona.announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('autheona_changes', '');
    RETURN NULL;
END
$$;

-- Not a use (last_used_at), nor a new token: what a server read of a token may be wrong after
-- any other change.
CREATE TRIGGER tokens_change_announced
AFTER DELETE OR UPDATE OF id, project_id, secret_hash, expires_at, stops_at, replaced_by
ON autheona.tokens
FOR EACH STATEMENT EXECUTE FUNCTION autheona.announce_change();

CREATE TRIGGER tokens_truncate_announced
AFTER TRUNCATE ON autheona.tokens
FOR EACH STATEMENT EXECUTE FUNCTION autheona.announce_change();

CREATE TRIGGER projects_change_announced
AFTER DELETE OR UPDATE OR TRUNCATE ON autheona.projects
FOR EACH STATEMENT EXECUTE FUNCTION autheona.announce_change();
