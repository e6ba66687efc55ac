-- Connect sessions: short-lived, single-use tokens the app's backend mints (POST /connect/sessions)
-- for one end user's flow, bound to a config key and connection id. Only a hash of the token is
-- kept, so the table is no help to whoever reads it.
CREATE TABLE connect_sessions (
    token_hash TEXT PRIMARY KEY,
    provider_config_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX connect_sessions_expires_at ON connect_sessions (expires_at);
