-- autheona schema, version 1.

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL            -- unix seconds, UTC
) STRICT;

CREATE TABLE tokens (
    id           TEXT NOT NULL UNIQUE,     -- the public 12-character token id
    project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,            -- argon2id PHC string of the secret, never the secret
    description  TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,                  -- NULL: never expires
    last_used_at INTEGER                   -- NULL: never used
) STRICT;

CREATE INDEX tokens_by_project ON tokens (project_id);

-- A token is immutable once created; only its last-used time moves.
CREATE TRIGGER tokens_are_immutable
BEFORE UPDATE OF id, project_id, secret_hash, description, created_at, expires_at ON tokens
BEGIN
    SELECT RAISE(ABORT, 'tokens are immutable: create a new token and revoke the old one');
END;
