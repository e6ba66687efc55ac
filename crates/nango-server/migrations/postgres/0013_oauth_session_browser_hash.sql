-- The flow is bound to the browser that started it: SHA-256 (hex) of the random value of the
-- flow's cookie. A row without one (started before this column existed) is never finished.
ALTER TABLE oauth_sessions ADD COLUMN browser_hash TEXT;
