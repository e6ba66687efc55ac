//! Fresh credentials for `GET /connection/:id`: the hot path is one read; a token about to expire
//! is refreshed by exactly one task per connection while the others wait and re-read the result.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{parse_oauth2_response, policy, ClientCredentials, Credentials, OAuth2Credentials};
use crate::metrics::RefreshOutcome;
use crate::oauth::oauth2::{ExchangeCall, TokenCall, TokenEndpointError};
use crate::providers::{
    fill_params, settle_connection_config, settled_url, FlowValues, ProviderTemplate, ValueSource,
};
use crate::store::{Connection, ConnectionHealth, Generation, LeaseTake, ProviderConfig};
use crate::webhooks::{self, EventKind};
use crate::AppState;

#[derive(Debug, thiserror::Error)]
pub enum FreshError {
    #[error("unknown connection")]
    UnknownConnection,
    #[error("unknown provider config")]
    UnknownConfig,
    /// The provider refused the refresh (e.g. `invalid_grant`).
    #[error("refresh rejected: {0}")]
    Rejected(String),
    /// The provider was unreachable or failed.
    #[error("refresh unavailable: {0}")]
    Unavailable(String),
    /// A forced refresh of credentials that cannot be refreshed (no refresh token, OAuth 1).
    #[error("not refreshable")]
    NotRefreshable,
    #[error("{0}")]
    Internal(String),
}

/// The error that the connection's last failed refresh stands for, answered without calling the
/// provider again: a refusal until the user authorizes again, an outage until `until`.
fn recorded_failure(health: &ConnectionHealth, until: Option<DateTime<Utc>>) -> FreshError {
    let error = health.refresh_error.clone().unwrap_or_default();
    match until {
        _ if health.needs_reauth => FreshError::Rejected(error),
        Some(until) => FreshError::Unavailable(format!(
            "{error}; not retried before {}",
            crate::credentials::iso_millis(until)
        )),
        None => FreshError::Unavailable(error),
    }
}

/// What to record of a failed refresh: a refusal marks the connection as needing
/// re-authorization (no automatic retry), an outage backs the background pass off exponentially
/// (requests retry sooner, see `policy::request_retry_at`).
fn failure_record(
    error: &FreshError,
    connection: &Connection,
    settings: &crate::config::Settings,
) -> Option<crate::store::RefreshFailure> {
    let at = whole_millis(Utc::now());
    let (message, permanent) = match error {
        FreshError::Rejected(m) => (m.clone(), true),
        FreshError::Unavailable(m) => (m.clone(), false),
        _ => return None,
    };
    let failures = u32::try_from(connection.health.refresh_failures.max(0)).unwrap_or(u32::MAX);
    let delay = settings
        .refresh_retry_base
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(settings.refresh_retry_max);
    Some(crate::store::RefreshFailure {
        error: message,
        permanent,
        retry_after: (!permanent)
            .then(|| at + chrono::Duration::from_std(delay).unwrap_or_default()),
        at,
    })
}

impl From<TokenEndpointError> for FreshError {
    fn from(e: TokenEndpointError) -> Self {
        match e {
            TokenEndpointError::Rejected(reason) => FreshError::Rejected(reason),
            TokenEndpointError::Unavailable(reason)
            | TokenEndpointError::InvalidResponse(reason) => FreshError::Unavailable(reason),
        }
    }
}

type ConnectionKey = (String, String);

/// `at` to the millisecond, as the store keeps it: the copy handed out must carry the same
/// `Generation` as the stored one.
fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// When `GET /connection` refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// When the token is due (`policy::due`): the hot path is one read otherwise.
    IfNeeded,
    /// `force_refresh=true`: refresh unless credentials were obtained after `requested_at` or,
    /// when `held` names the credentials the caller used (the proxy after a 401), unless those
    /// were replaced since. Concurrent forced requests share one refresh, and its failure.
    Forced {
        requested_at: DateTime<Utc>,
        held: Option<Generation>,
    },
    /// The background pass: tokens due within `lookahead`, and refreshable credentials obtained
    /// before `idle_before`.
    Proactive {
        lookahead: Duration,
        idle_before: DateTime<Utc>,
    },
}

impl Freshness {
    pub fn forced_now() -> Freshness {
        Freshness::Forced {
            requested_at: Utc::now(),
            held: None,
        }
    }
}

/// A caller's question, fixed when it first read the connection: whatever it waits for after
/// that (another request's refresh, another replica's lease), it is answered against the same
/// question, so credentials replaced meanwhile are used rather than refreshed again.
#[derive(Debug, Clone, Copy)]
struct Ask {
    freshness: Freshness,
    /// The credentials the caller first read.
    seen: Generation,
    /// The provider's refresh margin, or the server's.
    margin: Duration,
    /// Whether the connection's credentials can be renewed at all (`renewable`).
    renewable: bool,
}

/// `Ask::settle`: the answer without a provider call, or the connection that still needs one.
#[allow(clippy::large_enum_variant)] // a return value, moved once
enum Settled {
    Answer(Result<Connection, FreshError>),
    Refresh(Connection),
}

/// What to do with a connection as read.
enum Verdict {
    /// Hand it out as it is (no provider call).
    Serve,
    Refresh,
    /// Answer this without calling the provider.
    Fail(FreshError),
}

impl Ask {
    fn judge(&self, connection: &Connection, now: DateTime<Utc>) -> Verdict {
        let health = &connection.health;
        let credentials = &connection.credentials;
        let replaced = health.generation() != self.seen;
        match self.freshness {
            Freshness::Forced { requested_at, held } => {
                let renewed = health.refreshed_at.is_some_and(|at| at > requested_at)
                    || held.is_some_and(|held| held != health.generation());
                if renewed {
                    Verdict::Serve
                } else if health.failed_at.is_some_and(|at| at > requested_at) {
                    // Another forced request tried after this one asked, and failed.
                    Verdict::Fail(recorded_failure(health, None))
                } else {
                    Verdict::Refresh
                }
            }
            Freshness::IfNeeded => {
                if health.needs_reauth {
                    return Verdict::Fail(recorded_failure(health, None));
                }
                // Replaced while this request waited: those are the credentials to hand out (an
                // expired replacement from a flow or an import is still refreshed once).
                if replaced && !policy::expired(credentials, now) {
                    return Verdict::Serve;
                }
                if !policy::due(credentials, self.renewable, health, self.margin, now) {
                    return Verdict::Serve;
                }
                match policy::request_retry_at(health).filter(|at| *at > now) {
                    // Backing off after an outage: the stored token while it is good.
                    Some(_) if !policy::expired(credentials, now) => Verdict::Serve,
                    Some(until) => Verdict::Fail(recorded_failure(health, Some(until))),
                    None => Verdict::Refresh,
                }
            }
            Freshness::Proactive {
                lookahead,
                idle_before,
            } => {
                // No `replaced` rule here: the pass is no request waiting for an answer, and a
                // replacement it did not see is judged like any connection (one a refresh stored
                // moments ago is never due).
                let backing_off = health.retry_after.is_some_and(|at| at > now);
                if health.needs_reauth || backing_off {
                    return Verdict::Serve;
                }
                let idle = self.renewable
                    && !policy::recently_refreshed(health, now)
                    && health.refreshed_at.is_none_or(|at| at < idle_before);
                if idle
                    || policy::due(
                        credentials,
                        self.renewable,
                        health,
                        self.margin + lookahead,
                        now,
                    )
                {
                    Verdict::Refresh
                } else {
                    Verdict::Serve
                }
            }
        }
    }

    /// `judge` as an answer, for the places that wait and read again.
    fn settle(&self, connection: Connection) -> Settled {
        match self.judge(&connection, Utc::now()) {
            Verdict::Serve => Settled::Answer(Ok(connection)),
            Verdict::Fail(e) => Settled::Answer(Err(e)),
            Verdict::Refresh => Settled::Refresh(connection),
        }
    }

    /// The answer to this request when its refresh failed with `error` (the connection as it
    /// stands after the failure was recorded): a refusal is an error for everyone; after an
    /// outage, a request gets the stored token while it is good, and the error once it has
    /// expired (a forced refresh, asked for explicitly, gets the error).
    fn after_failure(
        &self,
        connection: Connection,
        error: FreshError,
    ) -> Result<Connection, FreshError> {
        let serve_stored = matches!(error, FreshError::Unavailable(_))
            && !matches!(self.freshness, Freshness::Forced { .. })
            && !policy::expired(&connection.credentials, Utc::now());
        if serve_stored {
            Ok(connection)
        } else {
            Err(error)
        }
    }
}

/// Per-connection refresh locks of this process, and its cap on refreshes per provider.
pub struct Refresher {
    locks: Mutex<HashMap<ConnectionKey, Arc<tokio::sync::Mutex<()>>>>,
    /// One semaphore per provider (template name) with `per_provider` permits: a storm of
    /// expiring tokens queues here rather than opening thousands of calls to one token endpoint.
    provider_slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    per_provider: usize,
    /// Connections whose provider issued a token too short-lived to refresh ahead of expiry,
    /// already logged (once per connection and process is enough to tell the operator).
    short_lived_logged: Mutex<HashSet<ConnectionKey>>,
}

impl Refresher {
    /// At most `per_provider` refreshes in flight per provider in this process.
    pub fn new(per_provider: usize) -> Refresher {
        Refresher {
            locks: Mutex::default(),
            provider_slots: Mutex::default(),
            per_provider: per_provider.max(1),
            short_lived_logged: Mutex::default(),
        }
    }

    fn provider_slots(&self, provider: &str) -> Result<Arc<tokio::sync::Semaphore>, FreshError> {
        let mut slots = self
            .provider_slots
            .lock()
            .map_err(|_| FreshError::Internal("refresh slot table poisoned".into()))?;
        Ok(slots
            .entry(provider.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_provider)))
            .clone())
    }

    /// Logs, once per connection, that a refresh brought a token that lives less than
    /// `policy::RECENTLY_REFRESHED`: it is handed out as it is, and refreshed again at most once
    /// per that interval.
    fn note_short_lived(&self, key: &ConnectionKey, credentials: &Credentials) {
        let Some(expires_at) = credentials.expires_at() else {
            return;
        };
        let lifetime = expires_at - Utc::now();
        let short = chrono::Duration::from_std(policy::RECENTLY_REFRESHED).unwrap_or_default();
        if lifetime >= short {
            return;
        }
        let first = self
            .short_lived_logged
            .lock()
            .is_ok_and(|mut logged| logged.insert(key.clone()));
        if first {
            tracing::warn!(
                provider_config_key = %key.0,
                connection_id = %key.1,
                lifetime_ms = lifetime.num_milliseconds(),
                "the provider issued a token that expires within seconds (expires_in of 0, a \
                 few seconds, negative, or an expiry already past); it is handed out as it is \
                 and refreshed at most once per {} s",
                policy::RECENTLY_REFRESHED.as_secs()
            );
        }
    }

    /// The connection with credentials that are good for at least the refresh window (or as
    /// good as they get: a token without a refresh token is returned as stored), or the error
    /// the connection's state stands for (`policy` and `Ask::judge` say which).
    pub async fn fresh_connection(
        &self,
        state: &AppState,
        provider_config_key: &str,
        connection_id: &str,
        freshness: Freshness,
    ) -> Result<Connection, FreshError> {
        let store = &state.store;
        let internal = |e: crate::store::StoreError| FreshError::Internal(e.to_string());
        // The hot path: a cached copy is good enough to hand out a token that is not due;
        // anything that leads to a refresh is decided again on the database's copy below.
        let connection = store
            .get_connection_cached(provider_config_key, connection_id)
            .await
            .map_err(internal)?
            .ok_or(FreshError::UnknownConnection)?;
        // A config updated a moment ago on another replica may still be cached here for the
        // notification's latency: no worse than the same update landing during the provider call.
        let config = store
            .get_config_cached(provider_config_key)
            .await
            .map_err(internal)?
            .ok_or(FreshError::UnknownConfig)?;
        let template = state.catalog.get(&config.provider);
        let renewable = renewable(&connection.credentials, template);
        if matches!(freshness, Freshness::Forced { .. }) && !renewable {
            return Err(FreshError::NotRefreshable);
        }
        let ask = Ask {
            freshness,
            seen: connection.health.generation(),
            margin: template
                .and_then(|t| t.refresh_margin)
                .map_or(state.settings.refresh_margin, Duration::from_secs),
            renewable,
        };
        match ask.judge(&connection, Utc::now()) {
            Verdict::Serve => return Ok(connection),
            Verdict::Fail(e) => return Err(e),
            Verdict::Refresh => {}
        }

        let slots = self.provider_slots(&config.provider)?;
        let key: ConnectionKey = (provider_config_key.to_string(), connection_id.to_string());
        let lock = match self.locks.lock() {
            Ok(mut locks) => locks.entry(key.clone()).or_default().clone(),
            Err(_) => return Err(FreshError::Internal("refresh lock table poisoned".into())),
        };
        // The refresh runs in its own task: if the request is cancelled (client gone, request
        // timeout), the provider may already have rotated the refresh token, and the new one must
        // still be stored. The caller only stops waiting.
        let task = {
            let lock = lock.clone();
            let state = state.clone();
            let (key, id) = key.clone();
            tokio::spawn(async move {
                // One task per process goes to the database; the others wait here, then re-read
                // and usually answer what the one before them stored.
                let _guard = match lock.try_lock() {
                    Ok(guard) => guard,
                    Err(_) => {
                        let guard = lock.lock().await;
                        if let Some(answer) = reread(&state, &key, &id, &ask).await? {
                            return answer;
                        }
                        guard
                    }
                };
                // Then it waits for one of the provider's slots (a closed semaphore never
                // happens: it is never closed).
                let _slot = slots.acquire_owned().await.ok();
                refresh_exclusively(&state, &config, &key, &id, &ask).await
            })
        };
        let result = task
            .await
            .unwrap_or_else(|e| Err(FreshError::Internal(format!("refresh task failed: {e}"))));
        drop(lock);
        if let Ok(mut locks) = self.locks.lock() {
            locks.remove_if_unused(&key);
        }
        result
    }
}

/// Whether `credentials` can be renewed: they hold a refresh token, are client credentials, or
/// are an OAuth 2 token that the template says the provider extends in place
/// (`access_token_refresh`).
fn renewable(credentials: &Credentials, template: Option<&ProviderTemplate>) -> bool {
    credentials.refreshable()
        || matches!(credentials, Credentials::OAuth2(_))
            && template.is_some_and(|t| t.access_token_refresh.is_some())
}

/// How long a refresh lease lasts unless its holder renews it: what reads of a connection wait
/// when the replica refreshing it dies (`kill -9`, a lost machine) before another one takes over.
const LEASE: Duration = Duration::from_secs(10);
/// How often a holder renews its lease while its refresh is in flight: three chances to renew
/// (a slow database, a busy runtime) before the lease runs out.
const LEASE_RENEWAL: Duration = Duration::from_secs(3);

/// Takes the connection's refresh lease in the database (so replicas exclude each other), then
/// refreshes if the token still needs it. Whoever held the lease before us may have refreshed
/// already, or been refused, so the connection is re-read after every wait (and under the
/// lease, in `refresh_leased`).
async fn refresh_exclusively(
    state: &AppState,
    config: &ProviderConfig,
    provider_config_key: &str,
    connection_id: &str,
    ask: &Ask,
) -> Result<Connection, FreshError> {
    let store = &state.store;
    let internal = |e: crate::store::StoreError| FreshError::Internal(e.to_string());
    let holder = uuid::Uuid::new_v4().to_string();
    // A live holder keeps its lease for as long as its provider call may last; a dead one's
    // lease runs out at most `LEASE` later. Waiting longer than both means something is stuck.
    let give_up = tokio::time::Instant::now()
        + state.settings.provider_timeout
        + LEASE
        + Duration::from_secs(5);
    let read = loop {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        if let LeaseTake::Taken(read) = store
            .lock_refresh_and_read(provider_config_key, connection_id, &holder, now, until)
            .await
            .map_err(internal)?
        {
            break read;
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(FreshError::Unavailable(
                "another server is still refreshing this connection".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        // The holder we waited for may have refreshed, or been refused: answer its result rather
        // than presenting the same refresh token again.
        if let Some(answer) = reread(state, provider_config_key, connection_id, ask).await? {
            return answer;
        }
    };

    let mut lease = Lease {
        provider_config_key,
        connection_id,
        holder: &holder,
        heartbeat: None,
        released: false,
    };
    lease.keep_alive(state);
    let result = refresh_leased(state, config, &mut lease, read, ask).await;
    lease.stop_renewing();
    if !lease.released {
        if let Err(e) = store
            .unlock_refresh(provider_config_key, connection_id, &holder)
            .await
        {
            // The lease expires on its own; others wait at most that long.
            tracing::warn!(error = %e, "could not release a refresh lease");
        }
    }
    result
}

/// The connection as the database has it now, judged against the caller's question: the answer
/// when no provider call is needed (`None`: refresh).
async fn reread(
    state: &AppState,
    provider_config_key: &str,
    connection_id: &str,
    ask: &Ask,
) -> Result<Option<Result<Connection, FreshError>>, FreshError> {
    let current = state
        .store
        .get_connection(provider_config_key, connection_id)
        .await
        .map_err(|e| FreshError::Internal(e.to_string()))?
        .ok_or(FreshError::UnknownConnection)?;
    Ok(match ask.settle(current) {
        Settled::Answer(answer) => Some(answer),
        Settled::Refresh(_) => None,
    })
}

/// A refresh lease this task holds.
struct Lease<'a> {
    provider_config_key: &'a str,
    connection_id: &'a str,
    holder: &'a str,
    /// Renews the lease while the refresh runs (`keep_alive`).
    heartbeat: Option<AbortOnDrop>,
    /// Given back already, with the write of the refreshed credentials.
    released: bool,
}

impl Lease<'_> {
    /// Renews the lease every `LEASE_RENEWAL` until `stop_renewing`, so that the lease can be
    /// short (a dead holder blocks others briefly) however long the provider takes.
    fn keep_alive(&mut self, state: &AppState) {
        self.heartbeat = Some(self.heartbeat(state));
    }

    /// Before the lease is given back: a renewal after the release would find the lease gone
    /// and report it as taken over.
    fn stop_renewing(&mut self) {
        self.heartbeat = None;
    }

    fn heartbeat(&self, state: &AppState) -> AbortOnDrop {
        let store = state.store.clone();
        let (key, id, holder) = (
            self.provider_config_key.to_string(),
            self.connection_id.to_string(),
            self.holder.to_string(),
        );
        AbortOnDrop(tokio::spawn(async move {
            let start = tokio::time::Instant::now() + LEASE_RENEWAL;
            let mut tick = tokio::time::interval_at(start, LEASE_RENEWAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store
                    .renew_refresh_lock(&key, &id, &holder, lease_end())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        // Renewals came too late (a stalled database or process) and another
                        // holder took over; the write at the end is conditional (see
                        // `store_refreshed`).
                        tracing::warn!(
                            provider_config_key = %key,
                            connection_id = %id,
                            "a refresh lease expired and was taken over while its refresh was in flight"
                        );
                        return;
                    }
                    // The lease may still be ours: try again at the next tick.
                    Err(e) => tracing::warn!(error = %e, "could not renew a refresh lease"),
                }
            }
        }))
    }
}

fn lease_end() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default()
}

/// Aborts a background task when dropped (the lease heartbeat ends with its refresh, however the
/// refresh ends).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The refresh itself, under the lease: decide on the connection as read when the lease was
/// taken, call the provider, store the outcome.
async fn refresh_leased(
    state: &AppState,
    config: &ProviderConfig,
    lease: &mut Lease<'_>,
    read: Option<Connection>,
    ask: &Ask,
) -> Result<Connection, FreshError> {
    let store = &state.store;
    let internal = |e: crate::store::StoreError| FreshError::Internal(e.to_string());
    let (provider_config_key, connection_id) = (lease.provider_config_key, lease.connection_id);
    // Decided again on what the lease holders before us left: credentials they replaced are
    // used, and a refused refresh is tried once per connection, not once per waiting read.
    let mut current = match ask.settle(read.ok_or(FreshError::UnknownConnection)?) {
        Settled::Answer(answer) => return answer,
        Settled::Refresh(current) => current,
    };
    let asked_at = std::time::Instant::now();
    let outcome = match &current.credentials {
        Credentials::OAuth2(stale) => refresh_oauth2(state, config, &current, stale)
            .await
            .map(Credentials::OAuth2),
        Credentials::OAuth2ClientCredentials(_) => {
            fetch_client_credentials(state, config, &current.connection_config)
                .await
                .map(Credentials::OAuth2ClientCredentials)
        }
        _ => return Ok(current),
    };
    state.metrics.observe_refresh(
        &config.provider,
        match &outcome {
            Ok(_) => RefreshOutcome::Success,
            Err(FreshError::Rejected(_)) => RefreshOutcome::Rejected,
            Err(_) => RefreshOutcome::Unavailable,
        },
        asked_at.elapsed(),
    );
    let refreshed = match outcome {
        Ok(refreshed) => refreshed,
        Err(e) => return record_failure(state, lease, current, ask, e).await,
    };
    let obtained_at = whole_millis(Utc::now());
    if !store_refreshed(state, lease, &current, &refreshed, obtained_at).await? {
        // Someone stored newer credentials while we asked the provider: those are the ones.
        return store
            .get_connection(provider_config_key, connection_id)
            .await
            .map_err(internal)?
            .ok_or(FreshError::UnknownConnection);
    }
    state.refresher.note_short_lived(
        &(provider_config_key.to_string(), connection_id.to_string()),
        &refreshed,
    );
    if current.health.refresh_failures > 0 {
        webhooks::emit(
            state,
            EventKind::ConnectionRefreshed,
            provider_config_key,
            connection_id,
            serde_json::json!({ "after_failures": current.health.refresh_failures }),
        )
        .await;
    }
    current.credentials = refreshed;
    current.updated_at = obtained_at;
    current.health = ConnectionHealth {
        refreshed_at: Some(obtained_at),
        obtained_by_refresh: true,
        ..Default::default()
    };
    Ok(current)
}

/// Persists what the provider issued, before anyone uses it: a rotated refresh token that only
/// lived in memory would be lost with this process. False when it was not written because newer
/// credentials had been stored meanwhile.
///
/// The write is conditional on the stored credentials being those we refreshed (the same
/// `refreshed_at`). While we hold the lease nobody else refreshes, so a change can only be a new
/// authorization (flows take no lease), whose tokens are newer than ours. If the lease was lost
/// (our renewals came too late and another task took it), the provider has already rotated the
/// refresh token we presented, so the tokens in hand may be the only valid ones: dropping them
/// would lose the connection with a provider that rotates strictly (the new holder presents the
/// old token and is refused). So they are still written, unless the stored credentials changed:
/// then the new holder's refresh of the same token succeeded, which the provider only accepts
/// when it tolerates reuse, and then the later pair is the one it keeps (a reuse interval
/// revokes the pair of the first use). Either way the stored ones are newer than ours.
///
/// The lease is given back with the write (one statement on PostgreSQL).
async fn store_refreshed(
    state: &AppState,
    lease: &mut Lease<'_>,
    read: &Connection,
    refreshed: &Credentials,
    obtained_at: DateTime<Utc>,
) -> Result<bool, FreshError> {
    let (provider_config_key, connection_id) = (lease.provider_config_key, lease.connection_id);
    lease.stop_renewing();
    let written = state
        .store
        .update_credentials_and_unlock(
            provider_config_key,
            connection_id,
            refreshed,
            read.health.refreshed_at,
            obtained_at,
            lease.holder,
        )
        .await
        .map_err(|e| FreshError::Internal(e.to_string()))?;
    lease.released = true;
    if !written {
        tracing::warn!(
            provider_config_key,
            connection_id,
            "dropped refreshed credentials: newer credentials were stored while the provider answered"
        );
    }
    Ok(written)
}

/// Records a failed refresh for backoff and for operators (GET /connection shows it); the
/// stored credentials stay. A failure is only recorded against the credentials it concerns: if
/// they were replaced meanwhile (a holder that had lost its lease stored the rotated ones), the
/// refusal was of a stale refresh token and the connection is fine. Then answers as
/// `Ask::after_failure` says.
async fn record_failure(
    state: &AppState,
    lease: &Lease<'_>,
    mut read: Connection,
    ask: &Ask,
    error: FreshError,
) -> Result<Connection, FreshError> {
    let store = &state.store;
    let (provider_config_key, connection_id) = (lease.provider_config_key, lease.connection_id);
    let Some(failure) = failure_record(&error, &read, &state.settings) else {
        return Err(error);
    };
    match store
        .record_refresh_failure(
            provider_config_key,
            connection_id,
            &failure,
            read.health.refreshed_at,
        )
        .await
    {
        Ok(true) => {
            webhooks::emit(
                state,
                EventKind::RefreshFailed,
                provider_config_key,
                connection_id,
                serde_json::json!({
                    "error": failure.error,
                    "needs_reauthorization": failure.permanent,
                    "failures": read.health.refresh_failures + 1,
                }),
            )
            .await;
            let health = &mut read.health;
            health.refresh_failures += 1;
            health.refresh_error = Some(failure.error);
            health.needs_reauth = failure.permanent;
            health.retry_after = failure.retry_after;
            health.failed_at = Some(failure.at);
        }
        Ok(false) => {
            tracing::warn!(
                provider_config_key,
                connection_id,
                error = %error,
                "a refresh failed after the credentials were replaced; not recorded"
            );
            let replaced = store
                .get_connection(provider_config_key, connection_id)
                .await
                .ok()
                .flatten();
            let Some(replaced) = replaced else {
                return Err(error);
            };
            return match ask.settle(replaced) {
                Settled::Answer(answer) => answer,
                Settled::Refresh(replaced) => ask.after_failure(replaced, error),
            };
        }
        Err(store_error) => {
            tracing::warn!(error = %store_error, "could not record a refresh failure");
        }
    }
    ask.after_failure(read, error)
}

trait RemoveIfUnused {
    fn remove_if_unused(&mut self, key: &ConnectionKey);
}

impl RemoveIfUnused for HashMap<ConnectionKey, Arc<tokio::sync::Mutex<()>>> {
    /// Drops the lock entry when no other task holds or waits on it, so the table only holds
    /// connections being refreshed right now.
    fn remove_if_unused(&mut self, key: &ConnectionKey) {
        if self.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            self.remove(key);
        }
    }
}

/// One refresh call: `grant_type=refresh_token` (always, even when the template's token params
/// say otherwise), the template's token params, the refresh token. A response without a refresh
/// token keeps the old one.
async fn refresh_oauth2(
    state: &AppState,
    config: &ProviderConfig,
    connection: &Connection,
    stale: &OAuth2Credentials,
) -> Result<OAuth2Credentials, FreshError> {
    let template = state.catalog.get(&config.provider).ok_or_else(|| {
        FreshError::Internal(format!("no provider template named {:?}", config.provider))
    })?;
    let Some(refresh_token) = stale.refresh_token.clone() else {
        return extend_oauth2(state, config, template, connection, stale).await;
    };
    let token_url = template
        .refresh_url
        .as_deref()
        .unwrap_or(&template.token_url);
    // A host from the operator's provider config only; a clear outage until it is set.
    let (values, token_url, public_only) =
        settled_token_url(template, config, &connection.connection_config, token_url)?;
    let mut params = vec![("grant_type".to_string(), "refresh_token".to_string())];
    let extra = if template.refresh_params.is_empty() {
        &template.token_params
    } else {
        &template.refresh_params
    };
    let extra = fill_params(
        extra,
        &values,
        FlowValues {
            client_id: &config.oauth_client_id,
            nonce: None,
            redirect_uri: Some(&state.settings.callback_url),
        },
    )
    .map_err(|e| FreshError::Unavailable(format!("refresh parameters: {e}")))?;
    params.extend(
        extra
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "grant_type" | "refresh_token")),
    );
    params.push(("refresh_token".into(), refresh_token.clone()));

    let raw = TokenCall {
        template,
        token_url: &token_url,
        client_id: &config.oauth_client_id,
        client_secret: config.oauth_client_secret.expose(),
        params,
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(public_only))
    .await
    .map_err(renewal_failed(connection, "token refresh failed"))?;
    let mut fresh = parse_oauth2_response(raw, Utc::now(), &template.token_response)
        .map_err(|e| FreshError::Unavailable(e.to_string()))?;
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = Some(refresh_token);
    }
    tracing::info!(
        provider_config_key = %connection.provider_config_key,
        connection_id = %connection.connection_id,
        "refreshed OAuth 2 credentials"
    );
    Ok(fresh)
}

/// A renewal without a refresh token, for providers that extend the access token itself
/// (`access_token_refresh`, e.g. Instagram's `ig_refresh_token`): the token in hand is sent and
/// the answer replaces it.
async fn extend_oauth2(
    state: &AppState,
    config: &ProviderConfig,
    template: &ProviderTemplate,
    connection: &Connection,
    stale: &OAuth2Credentials,
) -> Result<OAuth2Credentials, FreshError> {
    let exchange = template
        .access_token_refresh
        .as_ref()
        .ok_or(FreshError::NotRefreshable)?;
    let (_, url, public_only) = settled_token_url(
        template,
        config,
        &connection.connection_config,
        &exchange.url,
    )?;
    let extended = ExchangeCall {
        template,
        exchange,
        url: &url,
        token: stale,
        client_id: &config.oauth_client_id,
        client_secret: config.oauth_client_secret.expose(),
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(public_only))
    .await
    .map_err(renewal_failed(connection, "access token renewal failed"))?;
    tracing::info!(
        provider_config_key = %connection.provider_config_key,
        connection_id = %connection.connection_id,
        "renewed an OAuth 2 access token with itself"
    );
    Ok(extended)
}

/// Logs that renewing `connection`'s credentials failed (`what`), and makes the provider's
/// answer the refresh's error.
fn renewal_failed<'a>(
    connection: &'a Connection,
    what: &'static str,
) -> impl FnOnce(TokenEndpointError) -> FreshError + 'a {
    move |e| {
        tracing::warn!(
            provider_config_key = %connection.provider_config_key,
            connection_id = %connection.connection_id,
            error = %e,
            "{what}"
        );
        FreshError::from(e)
    }
}

/// The connection's values settled with the provider config's, and `url` filled from them (with
/// whether it must reach public addresses only): the token parameters are filled from the same
/// values.
fn settled_token_url(
    template: &ProviderTemplate,
    config: &ProviderConfig,
    stored: &serde_json::Map<String, serde_json::Value>,
    url: &str,
) -> Result<(serde_json::Map<String, serde_json::Value>, String, bool), FreshError> {
    let unavailable = |e: String| FreshError::Unavailable(format!("token URL: {e}"));
    let values = settle_connection_config(
        template,
        &config.connection_config,
        stored,
        ValueSource::Stored,
    )
    .map_err(|e| unavailable(e.to_string()))?;
    let (url, public_only) = settled_url(template, &values, url).map_err(unavailable)?;
    Ok((values, url, public_only))
}

/// A token from the client credentials grant (RFC 6749 §4.4): the config's client id and secret,
/// its scopes (or the template's defaults), the template's token parameters. Used to create an
/// OAUTH2_CC connection and to renew it: there is no refresh token, the grant is simply repeated.
pub async fn fetch_client_credentials(
    state: &AppState,
    config: &ProviderConfig,
    connection_config: &serde_json::Map<String, serde_json::Value>,
) -> Result<ClientCredentials, FreshError> {
    let template = state.catalog.get(&config.provider).ok_or_else(|| {
        FreshError::Internal(format!("no provider template named {:?}", config.provider))
    })?;
    let (values, token_url, public_only) =
        settled_token_url(template, config, connection_config, &template.token_url)?;
    let scope = template.scope_param(&config.oauth_scopes);
    let mut params = vec![("grant_type".to_string(), "client_credentials".to_string())];
    if !scope.is_empty() {
        params.push(("scope".into(), scope));
    }
    let extra = fill_params(
        &template.token_params,
        &values,
        FlowValues {
            client_id: &config.oauth_client_id,
            nonce: None,
            redirect_uri: None,
        },
    )
    .map_err(|e| FreshError::Unavailable(format!("token parameters: {e}")))?;
    params.extend(
        extra
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "grant_type" | "scope")),
    );
    let raw = TokenCall {
        template,
        token_url: &token_url,
        client_id: &config.oauth_client_id,
        client_secret: config.oauth_client_secret.expose(),
        params,
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(public_only))
    .await
    .map_err(|e| {
        tracing::warn!(provider_config_key = %config.unique_key, error = %e, "client credentials grant failed");
        FreshError::from(e)
    })?;
    let parsed = parse_oauth2_response(raw, Utc::now(), &template.token_response)
        .map_err(|e| FreshError::Unavailable(e.to_string()))?;
    Ok(ClientCredentials {
        token: parsed.access_token,
        expires_at: parsed.expires_at,
        raw: parsed.raw,
    })
}
