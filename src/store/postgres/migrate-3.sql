-- autheona's PostgreSQL schema, version 3 (SQLite's version 5): the audit log. One row per
-- change to a project or a token, written in the transaction of the change; never a token, a
-- secret or a hash. Append-only: the triggers refuse any UPDATE, DELETE or TRUNCATE of it,
-- even by the schema's owner, and events name their project and token by name and id (no
-- foreign key), so deleting a project keeps its events.

CREATE TABLE autheona.events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order of the log
    at          bigint NOT NULL,                 -- unix seconds, UTC
    action      text COLLATE "C" NOT NULL,       -- project.create, token.revoke, ...
    project     text COLLATE "C",
    token_id    text COLLATE "C",
    description text,                            -- the token's, at the time
    detail      text NOT NULL,                   -- a JSON object
    actor_user  text,                            -- operating-system user name
    actor_uid   bigint,
    actor_host  text,
    actor_role  text                             -- session_user
);

CREATE INDEX events_by_project ON autheona.events (project, seq);
CREATE INDEX events_by_token ON autheona.events (token_id, seq);

CREATE FUNCTION autheona.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: events cannot be changed or deleted'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_are_append_only
BEFORE UPDATE OR DELETE ON autheona.events
FOR EACH ROW EXECUTE FUNCTION autheona.refuse_event_change();

CREATE TRIGGER events_are_not_truncated
BEFORE TRUNCATE ON autheona.events
FOR EACH STATEMENT EXECUTE FUNCTION autheona.refuse_event_change();
