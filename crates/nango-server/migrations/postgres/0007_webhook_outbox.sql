-- Webhook outbox: one row per event and receiver URL, written when the event happens and
-- delivered by a background worker on any replica (claimed with claimed_until so two replicas do
-- not send the same row at once), retried with backoff until a 2xx or the attempt limit. The rows
-- are the delivery log (GET /webhooks/deliveries).
CREATE TABLE webhook_outbox (
    id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_status BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, failed_at, next_attempt_at);
