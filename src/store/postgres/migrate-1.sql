-- autheona's PostgreSQL schema, version 1: the tables of SQLite's version 3, in a schema of
-- their own. Times are unix seconds (bigint), as on SQLite, so that both stores hold and
-- compare the same numbers.

CREATE SCHEMA autheona;

CREATE TABLE autheona.schema_version (
    version integer NOT NULL
);
INSERT INTO autheona.schema_version (version) VALUES (0);

CREATE TABLE autheona.projects (
    -- An identity never hands a deleted project's id to another project.
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- "C": names sort and compare by their bytes, as on SQLite.
    name       text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL
);

CREATE TABLE autheona.tokens (
    -- Insertion order, as SQLite's rowid: ties of created_at list in the order created.
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text COLLATE "C" NOT NULL UNIQUE,   -- the public 12-character token id
    project_id   bigint NOT NULL REFERENCES autheona.projects (id) ON DELETE CASCADE,
    secret_hash  text NOT NULL,   -- argon2id PHC string of the secret, never the secret
    description  text,
    created_at   bigint NOT NULL,
    expires_at   bigint,          -- NULL: never expires
    last_used_at bigint           -- NULL: never used
);

-- Lists stream in creation order straight from an index.
CREATE INDEX tokens_by_creation ON autheona.tokens (created_at, seq);
CREATE INDEX tokens_by_project_and_creation ON autheona.tokens (project_id, created_at, seq);

-- A token is immutable once created; only its last-used time moves.
CREATE FUNCTION autheona.refuse_token_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tokens are immutable: create a new token and revoke the old one'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER tokens_are_immutable
BEFORE UPDATE OF id, project_id, secret_hash, description, created_at, expires_at
ON autheona.tokens
FOR EACH ROW EXECUTE FUNCTION autheona.refuse_token_change();
