-- Refresh decisions that fit every token lifetime (docs/refresh.md):
--   obtained_by_refresh  1 when the stored credentials came from a refresh (or a renewed client
--                        credentials token), 0 from a flow or an import: credentials a refresh
--                        stored seconds ago are not refreshed again, whatever their lifetime
--   refresh_failed_at    when the last failed refresh attempt ended (UNIX ms): requests try
--                        again at most 30 s after it, however long the backoff of the
--                        background pass (retry_after) has grown
ALTER TABLE connections ADD COLUMN obtained_by_refresh BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN refresh_failed_at BIGINT;
