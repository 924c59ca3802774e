-- autheona schema, version 4: a rotation with a grace period schedules the old token's end.
-- The token itself stays as it was made (its expiration is not edited): the end is a field of
-- its own, set once, with the id of the token that replaced it, and never moved or cleared.

-- stops_at: unix seconds, NULL for no scheduled end; replaced_by: the replacement's token id.
ALTER TABLE tokens ADD COLUMN stops_at INTEGER;
ALTER TABLE tokens ADD COLUMN replaced_by TEXT CHECK ((replaced_by IS NULL) = (stops_at IS NULL));

-- The next write removes the tokens whose end has come: found without reading every token.
CREATE INDEX tokens_by_stop ON tokens (stops_at) WHERE stops_at IS NOT NULL;

CREATE TRIGGER token_stop_is_set_once
BEFORE UPDATE OF stops_at, replaced_by ON tokens
WHEN OLD.stops_at IS NOT NULL OR OLD.replaced_by IS NOT NULL
     OR NEW.stops_at IS NULL OR NEW.replaced_by IS NULL
BEGIN
    SELECT RAISE(ABORT, 'a token''s scheduled end is set once: it cannot be moved or cleared');
END;
