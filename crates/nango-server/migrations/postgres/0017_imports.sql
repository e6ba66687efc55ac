-- What `nango import:nango` took from a Nango source, one row per provider config
-- (connection_id '') or connection: a digest of the item as the source had it (to tell a
-- change at the source from none) and the generation written here (a connection's
-- refreshed_at, a config's updated_at; UNIX milliseconds), to tell whether this server has
-- changed the item since (a refresh, a re-authorization, an edit), which an import never
-- undoes. The source is named without its credentials.
CREATE TABLE imports (
    kind TEXT NOT NULL,
    provider_config_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    generation BIGINT,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (kind, provider_config_key, connection_id)
);
