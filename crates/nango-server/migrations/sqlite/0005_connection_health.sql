-- How a connection's refreshes go, outside the sealed credentials so the proactive refresher can
-- find due connections with an index and operators can see broken ones.
--   expires_at        when the stored access token expires (UNIX ms; NULL: never or unknown)
--   refreshed_at      when credentials were last obtained (flow or refresh)
--   refresh_failures  refresh failures since the last success
--   refresh_error     the provider's error of the last failure
--   needs_reauth      1 when the provider refused the refresh for good (invalid_grant, ...)
--   retry_after       no automatic refresh before this (backoff after a temporary failure)
ALTER TABLE connections ADD COLUMN expires_at BIGINT;
ALTER TABLE connections ADD COLUMN refreshed_at BIGINT;
ALTER TABLE connections ADD COLUMN refresh_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN refresh_error TEXT;
ALTER TABLE connections ADD COLUMN needs_reauth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN retry_after BIGINT;
CREATE INDEX connections_expires_at ON connections (expires_at);
CREATE INDEX connections_refreshed_at ON connections (refreshed_at);
