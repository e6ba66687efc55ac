-- Values the operator sets for a template's placeholders (`{"hostname": "ghe.example.com"}`, keyed
-- by the placeholder's params name, JSON text): the only source of host placeholders, laid over
-- the browser's params[...] in every flow, refresh and proxied call (docs/security.md).
ALTER TABLE provider_configs ADD COLUMN connection_config TEXT NOT NULL DEFAULT '{}';
