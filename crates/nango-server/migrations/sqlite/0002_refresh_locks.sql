-- Refresh leases: at most one process refreshes a connection at a time, across replicas.
-- A lease expires on its own, so a replica that dies mid-refresh blocks others only briefly.
CREATE TABLE refresh_locks (
    provider_config_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (provider_config_key, connection_id)
);
