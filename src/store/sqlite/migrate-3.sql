-- autheona schema, version 3: lists stream in creation order straight from an index, so that
-- listing a million tokens holds none of them in memory (no sort).

CREATE INDEX tokens_by_creation ON tokens (created_at);
CREATE INDEX tokens_by_project_and_creation ON tokens (project_id, created_at);
-- The new index serves what this one did (a project's tokens, deleting a project's tokens).
DROP INDEX tokens_by_project;
