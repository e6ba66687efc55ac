-- Provider configs, connections and in-flight OAuth flows.
-- Timestamps are UNIX milliseconds so that the same SQL runs on SQLite and PostgreSQL.
CREATE TABLE provider_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    unique_key TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    oauth_client_id TEXT NOT NULL,
    oauth_client_secret TEXT NOT NULL,
    oauth_scopes TEXT NOT NULL,
    account_id BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    provider_config_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    credentials TEXT NOT NULL,
    connection_config TEXT NOT NULL,
    metadata TEXT NOT NULL,
    account_id BIGINT NOT NULL DEFAULT 0,
    UNIQUE (provider_config_key, connection_id)
);

CREATE TABLE oauth_sessions (
    state TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    provider_config_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    code_verifier TEXT,
    connection_config TEXT NOT NULL,
    ws_client_id TEXT,
    request_token_secret TEXT
);

CREATE INDEX oauth_sessions_expires_at ON oauth_sessions (expires_at);
