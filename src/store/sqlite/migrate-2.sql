-- autheona schema, version 2: a deleted project's id is never given to another project
-- (AUTOINCREMENT), so nothing that carried a project id across a gap can land in a project
-- created since.
--
-- SQLite cannot add AUTOINCREMENT to a table, so both tables are built anew and the rows
-- copied. tokens goes first: dropping projects while tokens still referred to it would
-- cascade-delete every token.

CREATE TABLE projects_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL            -- unix seconds, UTC
) STRICT;

INSERT INTO projects_v2 (id, name, created_at) SELECT id, name, created_at FROM projects;

CREATE TABLE tokens_v2 (
    id           TEXT NOT NULL UNIQUE,     -- the public 12-character token id
    project_id   INTEGER NOT NULL REFERENCES projects_v2 (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,            -- argon2id PHC string of the secret, never the secret
    description  TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,                  -- NULL: never expires
    last_used_at INTEGER                   -- NULL: never used
) STRICT;

INSERT INTO tokens_v2 (rowid, id, project_id, secret_hash, description, created_at, expires_at, last_used_at)
SELECT rowid, id, project_id, secret_hash, description, created_at, expires_at, last_used_at
FROM tokens;

DROP TABLE tokens;
DROP TABLE projects;
-- Renaming rewrites tokens_v2's reference to projects_v2 as well.
ALTER TABLE projects_v2 RENAME TO projects;
ALTER TABLE tokens_v2 RENAME TO tokens;

CREATE INDEX tokens_by_project ON tokens (project_id);

-- A token is immutable once created; only its last-used time moves.
CREATE TRIGGER tokens_are_immutable
BEFORE UPDATE OF id, project_id, secret_hash, description, created_at, expires_at ON tokens
BEGIN
    SELECT RAISE(ABORT, 'tokens are immutable: create a new token and revoke the old one');
END;
