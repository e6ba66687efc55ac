-- Every encryption key that has sealed data here, by id (derived from the key itself), with a
-- value sealed by it. At start the server refuses to run when data is sealed with a key it was
-- not given (a wrong or missing NANGO_ENCRYPTION_KEY), instead of failing on the first read.
-- `nango db:rotate-key` marks a key retired once nothing is sealed with it any more.
CREATE TABLE encryption_keys (
    key_id TEXT PRIMARY KEY,
    canary TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
