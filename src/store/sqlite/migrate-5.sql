-- autheona schema, version 5: the audit log. One row per change to a project or a token,
-- written in the transaction of the change; never a token, a secret or a hash. Append-only:
-- the triggers refuse any UPDATE or DELETE of an event, and events name their project and
-- token by name and id (no foreign key), so deleting a project keeps its events.

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order of the log; never reused
    at          INTEGER NOT NULL,                   -- unix seconds, UTC
    action      TEXT NOT NULL,                      -- project.create, token.revoke, ...
    project     TEXT,
    token_id    TEXT,
    description TEXT,                               -- the token's, at the time
    detail      TEXT NOT NULL,                      -- a JSON object
    actor_user  TEXT,                               -- operating-system user name
    actor_uid   INTEGER,
    actor_host  TEXT,
    actor_role  TEXT                                -- database role (a server's; NULL here)
) STRICT;

CREATE INDEX events_by_project ON events (project, seq);
CREATE INDEX events_by_token ON events (token_id, seq);

CREATE TRIGGER events_are_not_updated
BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: events cannot be changed');
END;

CREATE TRIGGER events_are_not_deleted
BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: events cannot be deleted');
END;

-- REPLACE (INSERT OR REPLACE) deletes the row it replaces without firing delete triggers:
-- an insert may not name the place of an event already there.
CREATE TRIGGER events_are_not_replaced
BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: events cannot be replaced');
END;
