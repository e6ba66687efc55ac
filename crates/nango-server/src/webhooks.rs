//! Webhooks: connection events POSTed as JSON to the configured URLs, signed with HMAC-SHA256
//! keyed by `NANGO_WEBHOOK_SECRET` over `<timestamp>.<body>` (`X-Nango-Timestamp: <unix
//! seconds>`, `X-Nango-Signature: sha256=<hex>`), so a captured delivery cannot be replayed
//! later than the receiver's tolerance; or, with `NANGO_WEBHOOK_FORMAT=nango`, current Nango's
//! auth webhooks signed as its clients check them (`X-Nango-Hmac-Sha256`). Delivered at least once from a durable outbox in the
//! database by a worker on every replica, with exponential backoff. Finished deliveries are
//! pruned after `NANGO_WEBHOOK_RETENTION`.
//!
//! An event is written to the outbox right after the change it reports is stored; the worker
//! claims due rows (so replicas do not send the same row at once), sends, and records the
//! outcome. A receiver that is down gets the event once it is back (within the attempt limit).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::credentials::iso_millis;
use crate::store::{DeliveryOutcome, NewWebhook, WebhookDelivery};
use crate::AppState;

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A flow, an import or a client credentials token created (or re-authorized) it.
    ConnectionCreated,
    /// A refresh succeeded after one or more failures.
    ConnectionRefreshed,
    /// A refresh failed (the stored credentials were kept).
    RefreshFailed,
    ConnectionDeleted,
    /// An authorization failed at the provider or in the callback (nothing was stored). Sent only
    /// in current Nango's format (`creation` with `success: false`); this server's events have
    /// no such event.
    AuthorizationFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConnectionCreated => "connection.created",
            EventKind::ConnectionRefreshed => "connection.refreshed",
            EventKind::RefreshFailed => "connection.refresh_failed",
            EventKind::ConnectionDeleted => "connection.deleted",
            EventKind::AuthorizationFailed => "connection.authorization_failed",
        }
    }
}

/// How deliveries are shaped and signed (`NANGO_WEBHOOK_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookFormat {
    /// This server's connection events (`connection.created`, ...), signed over a timestamp.
    #[default]
    Events,
    /// Current Nango's auth webhooks (`{from: 'nango', type: 'auth', operation, ...}`), signed
    /// the way `@nangohq/node`'s `verifyIncomingWebhookRequest` checks them.
    Nango,
}

/// The event type of Nango-format deliveries, kept on their outbox rows: what tells `send` to
/// sign a row Nango's way, whatever the format is when it is sent.
const NANGO_AUTH: &str = "auth";

/// Wakes the delivery worker when an event was written, so it need not wait for its next poll.
#[derive(Debug, Default, Clone)]
pub struct Wakeup(Arc<Notify>);

/// Writes the event to the outbox, one delivery per configured URL. Never fails the caller: the
/// change it reports has already happened.
pub async fn emit(
    state: &AppState,
    kind: EventKind,
    provider_config_key: &str,
    connection_id: &str,
    data: Value,
) {
    let urls = &state.settings.webhook_urls;
    if urls.is_empty() {
        return;
    }
    let event_id = uuid::Uuid::new_v4().to_string();
    let (event_type, body) = match state.settings.webhook_format {
        WebhookFormat::Events if kind == EventKind::AuthorizationFailed => return,
        WebhookFormat::Events => (
            kind.as_str(),
            json!({
                "id": event_id,
                "type": kind.as_str(),
                "created_at": iso_millis(Utc::now()),
                "provider_config_key": provider_config_key,
                "connection_id": connection_id,
                "data": data,
            }),
        ),
        WebhookFormat::Nango => {
            let Some(body) =
                nango_auth_body(state, kind, provider_config_key, connection_id, &data).await
            else {
                return;
            };
            (NANGO_AUTH, body)
        }
    };
    let body = body.to_string();
    let deliveries: Vec<NewWebhook> = urls
        .iter()
        .map(|url| NewWebhook {
            event_id: event_id.clone(),
            event_type: event_type.to_string(),
            url: url.clone(),
            body: body.clone(),
        })
        .collect();
    match state.store.enqueue_webhooks(&deliveries).await {
        Ok(()) => state.webhook_wakeup.0.notify_one(),
        Err(e) => {
            tracing::error!(error = %e, event = kind.as_str(), "could not write a webhook event")
        }
    }
}

/// Current Nango's auth webhook for an event, or `None` for what its model sends nothing for (a
/// deletion, a refresh that succeeded): `creation` for a new connection, `override` for a
/// re-authorized one, `refresh` (with `success: false`) for a failed refresh.
async fn nango_auth_body(
    state: &AppState,
    kind: EventKind,
    provider_config_key: &str,
    connection_id: &str,
    data: &Value,
) -> Option<Value> {
    let (operation, success) = match kind {
        EventKind::ConnectionCreated if data["reauthorized"] == true => ("override", true),
        EventKind::ConnectionCreated => ("creation", true),
        EventKind::AuthorizationFailed => ("creation", false),
        EventKind::RefreshFailed => ("refresh", false),
        EventKind::ConnectionRefreshed | EventKind::ConnectionDeleted => return None,
    };
    let provider = match state.store.get_config_cached(provider_config_key).await {
        Ok(config) => config.map(|c| c.provider),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the provider config of a webhook");
            None
        }
    };
    let auth_mode = match data.get("auth_mode") {
        Some(mode) => mode.clone(),
        None => provider
            .as_deref()
            .and_then(|p| state.catalog.get(p))
            .and_then(|t| serde_json::to_value(t.auth_mode).ok())
            .unwrap_or(Value::Null),
    };
    let mut body = json!({
        "from": "nango",
        "type": "auth",
        "operation": operation,
        "success": success,
        "connectionId": connection_id,
        "providerConfigKey": provider_config_key,
        "authMode": auth_mode,
        "provider": provider,
        "environment": "prod",
    });
    if !success {
        let error_type = match kind {
            EventKind::AuthorizationFailed => data["error_type"].clone(),
            _ => json!("refresh_token_external_error"),
        };
        body["error"] = json!({
            "type": error_type,
            "description": data["error"],
        });
    }
    // The end user and tags of the connection (a failed authorization has none stored: the
    // flow's session gives them).
    let owner = match kind {
        EventKind::AuthorizationFailed => data.get("owner").cloned(),
        _ => match state
            .store
            .get_connection_cached(provider_config_key, connection_id)
            .await
        {
            Ok(connection) => connection.map(|c| owner_json(&c.owner)),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the connection of a webhook");
                None
            }
        },
    };
    if let Some(owner) = owner {
        if let Some(tags) = owner
            .get("tags")
            .filter(|t| t.as_object().is_some_and(|o| !o.is_empty()))
        {
            body["tags"] = tags.clone();
        }
        if let Some(end_user) = owner.get("endUser").filter(|u| !u.is_null()) {
            body["endUser"] = end_user.clone();
        }
    }
    Some(body)
}

/// A connection's end user and tags as current Nango's webhooks carry them:
/// `{endUser: {endUserId, organizationId?, endUserEmail?, tags}, tags}`.
pub fn owner_json(owner: &crate::store::Owner) -> Value {
    let end_user = owner.end_user.as_ref().map(|user| {
        let mut shown = json!({
            "endUserId": user.get("id").cloned().unwrap_or(Value::Null),
            "tags": user.get("tags").cloned().unwrap_or_else(|| json!({})),
        });
        if let Some(org) = user.get("organization").and_then(|o| o.get("id")) {
            shown["organizationId"] = org.clone();
        }
        if let Some(email) = user.get("email") {
            shown["endUserEmail"] = email.clone();
        }
        shown
    });
    json!({"endUser": end_user, "tags": owner.tags})
}

/// `connection.created` for a connection just stored by a flow, an import or a client
/// credentials grant (`reauthorized` when it replaced an existing one).
pub async fn connection_stored(state: &AppState, connection: &crate::store::Connection) {
    let mode = match &connection.credentials {
        crate::credentials::Credentials::OAuth2(_) => "OAUTH2",
        crate::credentials::Credentials::OAuth1(_) => "OAUTH1",
        crate::credentials::Credentials::OAuth2ClientCredentials(_) => "OAUTH2_CC",
        crate::credentials::Credentials::ApiKey(_) => "API_KEY",
        crate::credentials::Credentials::Basic(_) => "BASIC",
    };
    emit(
        state,
        EventKind::ConnectionCreated,
        &connection.provider_config_key,
        &connection.connection_id,
        json!({
            "auth_mode": mode,
            "reauthorized": connection.created_at != connection.updated_at,
        }),
    )
    .await;
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the value of `X-Nango-Signature`;
/// `timestamp` is the value of `X-Nango-Timestamp` (unix seconds when the attempt was sent).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; an empty value would only make
    // receivers reject the delivery.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `X-Nango-Hmac-Sha256` of a Nango-format delivery: hex HMAC-SHA256 of the body (no timestamp:
/// Nango's receivers check the body alone).
pub fn nango_hmac(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `X-Nango-Signature` of a Nango-format delivery, the older check current Nango still sends:
/// hex SHA-256 of the key followed by the body.
pub fn nango_legacy_signature(secret: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Deliveries sent at once per replica.
const CONCURRENCY: usize = 8;
/// Rows claimed per pass, and for how long (longer than a send can take).
const BATCH: i64 = 32;

/// The delivery worker: runs until dropped; idles when no URL is configured.
pub async fn run_worker(state: AppState) {
    if state.settings.webhook_urls.is_empty() {
        return;
    }
    loop {
        let sent = deliver_due(&state).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "webhook delivery pass failed");
            0
        });
        if sent < BATCH as usize {
            // Wait for a new event, or poll for retries coming due.
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                state.webhook_wakeup.0.notified(),
            )
            .await;
        }
    }
}

/// One pass: sends every delivery due now (up to a batch); returns how many were attempted.
pub async fn deliver_due(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let now = Utc::now();
    let claim = chrono::Duration::from_std(state.settings.webhook_timeout * 3).unwrap_or_default();
    let due = state
        .store
        .claim_due_webhooks(now, now + claim, BATCH)
        .await?;
    let count = due.len();
    futures::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |delivery| async move {
            let outcome = send(state, &delivery).await;
            state.metrics.observe_webhook_delivery(
                &delivery.event_type,
                match &outcome {
                    DeliveryOutcome::Delivered { .. } => crate::metrics::DeliveryOutcome::Delivered,
                    DeliveryOutcome::Failed {
                        retry_at: Some(_), ..
                    } => crate::metrics::DeliveryOutcome::Retrying,
                    DeliveryOutcome::Failed { retry_at: None, .. } => {
                        crate::metrics::DeliveryOutcome::GaveUp
                    }
                },
            );
            if let DeliveryOutcome::Failed {
                error, retry_at, ..
            } = &outcome
            {
                tracing::info!(
                    delivery = delivery.id,
                    event = %delivery.event_type,
                    attempt = delivery.attempts + 1,
                    error = %error,
                    gave_up = retry_at.is_none(),
                    "webhook delivery failed"
                );
            }
            if let Err(e) = state
                .store
                .record_webhook_attempt(delivery.id, Utc::now(), &outcome)
                .await
            {
                tracing::warn!(error = %e, "could not record a webhook attempt");
            }
        })
        .await;
    Ok(count)
}

async fn send(state: &AppState, delivery: &WebhookDelivery) -> DeliveryOutcome {
    let settings = &state.settings;
    let secret = settings
        .webhook_secret
        .as_ref()
        .map(|s| s.expose().as_str())
        .unwrap_or_default();
    let mut request = state
        .http
        .post(&delivery.url)
        .timeout(settings.webhook_timeout)
        .header("content-type", "application/json")
        .header("user-agent", "nango-rs-webhooks")
        .header("x-nango-event", &delivery.event_type)
        .header("x-nango-delivery", delivery.id.to_string());
    let body = delivery.body.as_bytes();
    request = if delivery.event_type == NANGO_AUTH {
        request
            .header("x-nango-hmac-sha256", nango_hmac(secret, body))
            .header("x-nango-signature", nango_legacy_signature(secret, body))
    } else {
        // Each attempt is signed afresh: a retry hours later carries its own time.
        let timestamp = Utc::now().timestamp();
        request
            .header("x-nango-timestamp", timestamp.to_string())
            .header("x-nango-signature", signature(secret, timestamp, body))
    };
    let result = request.body(delivery.body.clone()).send().await;
    let (status, error) = match result {
        Ok(response) if response.status().is_success() => {
            return DeliveryOutcome::Delivered {
                status: i64::from(response.status().as_u16()),
            }
        }
        Ok(response) => (
            Some(i64::from(response.status().as_u16())),
            format!("HTTP {}", response.status().as_u16()),
        ),
        Err(e) if e.is_timeout() => (None, "timed out".to_string()),
        Err(_) => (None, "could not connect".to_string()),
    };
    DeliveryOutcome::Failed {
        status,
        error,
        retry_at: next_attempt(delivery.attempts + 1, settings, Utc::now()),
    }
}

/// When to try again after `attempts` failed attempts, or `None` once the limit is reached:
/// the base doubled each time, at most an hour apart.
fn next_attempt(
    attempts: i64,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if attempts >= i64::from(settings.webhook_max_attempts) {
        return None;
    }
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let delay = settings
        .webhook_retry_base
        .saturating_mul(2u32.saturating_pow(exponent.saturating_sub(1)))
        .min(Duration::from_secs(3600));
    Some(now + chrono::Duration::from_std(delay).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() {
        // Computed independently: python3 -c "import hmac, hashlib; print(hmac.new(b'whsec',
        // b'1700000000.{\"type\":\"connection.created\"}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature("whsec", 1_700_000_000, br#"{"type":"connection.created"}"#),
            "sha256=e798d4d5c7c7e13364075cc8e17e14a162a7bbd94c51af381f972e826ca92eb1"
        );
        // Another time, another signature: a replayed body does not verify with a new timestamp.
        assert_ne!(
            signature("whsec", 1_700_000_001, br#"{"type":"connection.created"}"#),
            signature("whsec", 1_700_000_000, br#"{"type":"connection.created"}"#)
        );
    }

    #[test]
    fn retries_back_off_and_stop_at_the_limit() {
        let mut settings = crate::config::Settings::for_address(
            std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            "sqlite::memory:",
        );
        settings.webhook_retry_base = Duration::from_secs(1);
        settings.webhook_max_attempts = 4;
        let now = Utc::now();
        let delays: Vec<Option<i64>> = (1..=4)
            .map(|n| next_attempt(n, &settings, now).map(|at| (at - now).num_seconds()))
            .collect();
        assert_eq!(delays, [Some(1), Some(2), Some(4), None]);
    }
}
