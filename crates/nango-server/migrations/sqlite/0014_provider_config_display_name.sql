-- The name an integration is shown under (current Nango's `display_name`); NULL shows the
-- provider template's own display name.
ALTER TABLE provider_configs ADD COLUMN display_name TEXT;
