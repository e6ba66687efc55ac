-- Every update or deletion of a connection or a provider config is announced on the channel
-- `nango_changes`, whoever makes it, so that each replica evicts it from its read cache
-- (src/store/cache.rs). Inserts need no announcement: absent rows are never cached.
CREATE FUNCTION nango_announce_change() RETURNS trigger AS $$
DECLARE
    changed RECORD;
    payload TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    IF TG_TABLE_NAME = 'connections' THEN
        payload := json_build_object(
            'connection', json_build_array(changed.provider_config_key, changed.connection_id)
        )::text;
    ELSE
        payload := json_build_object('config', changed.unique_key)::text;
    END IF;
    -- A payload must stay under 8000 bytes; a longer name is announced as "everything".
    IF octet_length(payload) > 7900 THEN
        payload := 'all';
    END IF;
    PERFORM pg_notify('nango_changes', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER connections_announce_change
    AFTER UPDATE OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION nango_announce_change();

CREATE TRIGGER provider_configs_announce_change
    AFTER UPDATE OR DELETE ON provider_configs
    FOR EACH ROW EXECUTE FUNCTION nango_announce_change();
