//! The proactive refresher: a background task on every replica that refreshes tokens shortly
//! before they expire (so requests rarely wait for a provider) and refreshes idle connections at
//! least once per `idle_refresh_age` (some providers let unused refresh tokens die).
//!
//! It follows the rule requests follow (`policy`): a token is due once its remaining life is
//! below `min(margin + lookahead, lifetime / 2)`, and credentials a request refreshed seconds ago
//! are left alone. Replicas need no coordination: each refresh goes through the same
//! single-flight path and database lease as a request's, and re-reads the connection after
//! taking the lease, so a connection picked by two replicas is refreshed once, and one whose
//! refresh another replica just had refused is left alone rather than refused again. Each pass takes a bounded
//! batch, most urgent first, so a large backlog is spread over several intervals.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;

use super::{FreshError, Freshness};
use crate::AppState;

/// Connections looked at per pass.
const BATCH: i64 = 500;
/// Refreshes in flight at once per replica.
const CONCURRENCY: usize = 8;

/// Runs until the task is dropped; does nothing when the interval is zero.
pub async fn run(state: AppState) {
    let interval = state.settings.proactive_refresh_interval;
    if interval.is_zero() {
        return;
    }
    // Replicas started together should not all scan at the same moment.
    let mut jitter = [0u8; 2];
    let _ = getrandom::fill(&mut jitter);
    let offset = interval.mul_f64(f64::from(u16::from_le_bytes(jitter)) / f64::from(u16::MAX));
    tokio::time::sleep(offset).await;
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match refresh_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(connections = n, "proactive refresh pass"),
            Err(e) => tracing::warn!(error = %e, "proactive refresh pass failed"),
        }
    }
}

/// One pass: refreshes what is due now; returns how many connections were looked at.
pub async fn refresh_due(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let settings = &state.settings;
    let now = Utc::now();
    // Twice the interval ahead, so a token is refreshed on the pass before it enters its
    // window. The query finds every token that may be due (the widest margin of any provider);
    // which are due is decided per connection, by the rule requests follow (`policy`).
    let lookahead = settings.proactive_refresh_interval * 2;
    let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
    let widest_margin = settings
        .refresh_margin
        .max(state.catalog.longest_refresh_margin());
    let expiring_before = now + to_chrono(widest_margin + lookahead);
    let idle_before = now - to_chrono(settings.idle_refresh_age);
    let due = state
        .store
        .connections_due_for_refresh(now, expiring_before, idle_before, BATCH)
        .await?;
    let count = due.len();
    let freshness = Freshness::Proactive {
        lookahead,
        idle_before,
    };
    futures::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |(key, connection_id)| async move {
            let result = state
                .refresher
                .fresh_connection(state, &key, &connection_id, freshness)
                .await;
            match result {
                Ok(_) | Err(FreshError::UnknownConnection) | Err(FreshError::NotRefreshable) => {}
                Err(e) => tracing::info!(
                    provider_config_key = %key,
                    connection_id = %connection_id,
                    error = %e,
                    "proactive refresh failed"
                ),
            }
        })
        .await;
    Ok(count)
}
