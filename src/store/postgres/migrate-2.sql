-- autheona's PostgreSQL schema, version 2 (SQLite's version 4): a rotation with a grace period
-- schedules the old token's end. The token itself stays as it was made (its expiration is not
-- edited): the end is a field of its own, set once, with the id of the token that replaced
-- it, and never moved or cleared.

ALTER TABLE autheona.tokens
    ADD COLUMN stops_at bigint,                  -- NULL: no scheduled end
    ADD COLUMN replaced_by text COLLATE "C",     -- the replacement's token id
    ADD CONSTRAINT tokens_stop_is_whole CHECK ((replaced_by IS NULL) = (stops_at IS NULL));

-- The next write removes the tokens whose end has come: found without reading every token.
CREATE INDEX tokens_by_stop ON autheona.tokens (stops_at) WHERE stops_at IS NOT NULL;

CREATE FUNCTION autheona.refuse_stop_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a token''s scheduled end is set once: it cannot be moved or cleared'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER token_stop_is_set_once
BEFORE UPDATE OF stops_at, replaced_by ON autheona.tokens
FOR EACH ROW
WHEN (OLD.stops_at IS NOT NULL OR OLD.replaced_by IS NOT NULL
      OR NEW.stops_at IS NULL OR NEW.replaced_by IS NULL)
EXECUTE FUNCTION autheona.refuse_stop_change();
