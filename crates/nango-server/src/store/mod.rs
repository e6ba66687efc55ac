//! Persistence: the `Store` trait and its SQLite and PostgreSQL implementations; the only place
//! with SQL. The two backends run the same statements (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`, timestamps as UNIX milliseconds), so one macro implements both.

mod cache;
pub mod cipher;
pub mod nango_db;
mod sql;
mod sqlite_files;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::credentials::Credentials;

pub use cipher::Cipher;
pub use sql::{PostgresStore, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Stored data could not be read back (corrupt JSON, ...).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Cipher(#[from] cipher::CipherError),
    /// The SQLite file or its directory could not be created or made owner-only.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// A provider config (an "integration"): which template, with which OAuth app credentials.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub unique_key: String,
    pub provider: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: crate::secret::Secret<String>,
    pub oauth_scopes: String,
    pub account_id: i64,
    /// The operator's values for the template's placeholders, by params name
    /// (`{"hostname": "ghe.example.com"}`); the only source of host placeholders.
    pub connection_config: Map<String, Value>,
    /// The name it is shown under; `None`: the template's display name.
    pub display_name: Option<String>,
}

/// What `Store::rename_config` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRename {
    Renamed,
    NotFound,
    HasConnections,
}

/// Fields written by create and edit.
#[derive(Debug, Clone)]
pub struct ProviderConfigFields {
    pub unique_key: String,
    pub provider: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: crate::secret::Secret<String>,
    pub oauth_scopes: String,
    /// `None` keeps the stored values on edit (0.9 clients do not send them).
    pub connection_config: Option<Map<String, Value>>,
    /// `None` keeps the stored name on edit (and stores none on create).
    pub display_name: Option<String>,
}

/// A user's stored authorization for one provider config.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provider_config_key: String,
    pub connection_id: String,
    pub credentials: Credentials,
    pub connection_config: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub account_id: i64,
    pub health: ConnectionHealth,
    pub owner: Owner,
}

/// Whom a connection belongs to in the app (current Nango's end user and tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owner {
    /// `{id, email, display_name, tags, organization: {id, display_name}}`, as the app gave it.
    pub end_user: Option<Map<String, Value>>,
    /// Strings by name.
    pub tags: Map<String, Value>,
}

/// How a connection's refreshes go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionHealth {
    /// When credentials were last obtained (flow, refresh or import).
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The stored credentials came from a refresh (not from a flow or an import).
    pub obtained_by_refresh: bool,
    /// Refresh failures since the last success.
    pub refresh_failures: i64,
    /// The provider's error of the last failure.
    pub refresh_error: Option<String>,
    /// The provider refused the refresh for good: the user must authorize again.
    pub needs_reauth: bool,
    /// No refresh by the background pass before this (backoff after a temporary failure).
    pub retry_after: Option<DateTime<Utc>>,
    /// When the last failed refresh attempt ended.
    pub failed_at: Option<DateTime<Utc>>,
}

impl ConnectionHealth {
    /// Which credentials the connection holds.
    pub fn generation(&self) -> Generation {
        Generation(self.refreshed_at)
    }
}

/// Which credentials a connection holds: the time they were obtained, which every write of
/// credentials (flow, refresh, import) changes and nothing else does. A request that waited for
/// another one's refresh tells by it that the credentials were replaced meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(pub Option<DateTime<Utc>>);

/// A connect session: permission for one flow of one end user, minted by the app's backend.
#[derive(Debug, Clone)]
pub struct ConnectSession {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub provider_config_key: String,
    pub connection_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// What a session of current Nango's kind allows and gives (`crate::connect_sessions`);
    /// `None` for a session bound to `provider_config_key` and `connection_id`.
    pub spec: Option<Value>,
}

/// A webhook event for one receiver, to deliver.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    pub body: String,
}

/// An outbox row: a delivery, pending or done.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Given up after the last allowed attempt.
    pub failed_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// How one delivery attempt went.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered {
        status: i64,
    },
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// A failed refresh, as recorded.
#[derive(Debug, Clone)]
pub struct RefreshFailure {
    pub error: String,
    /// Permanent (`invalid_grant`, ...): the connection needs re-authorization.
    pub permanent: bool,
    /// Temporary: when the background pass tries again at the earliest.
    pub retry_after: Option<DateTime<Utc>>,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
}

/// Fields written when a flow completes (or credentials are imported).
#[derive(Debug, Clone)]
pub struct ConnectionFields {
    pub provider_config_key: String,
    pub connection_id: String,
    pub credentials: Credentials,
    pub connection_config: Map<String, Value>,
    pub metadata: Map<String, Value>,
    /// When the credentials were obtained: now for a flow; for imported credentials, when their
    /// source last wrote them (the refresh rule reads their lifetime from it).
    pub obtained_at: DateTime<Utc>,
    /// `None` keeps a replaced connection's end user and tags (a flow without a session).
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone)]
pub struct ConnectionSummary {
    pub id: i64,
    pub connection_id: String,
    pub provider_config_key: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub health: ConnectionHealth,
    pub metadata: Map<String, Value>,
    pub owner: Owner,
}

/// What an import from Nango (`crate::nango_import`) wrote of one item, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub kind: ImportKind,
    pub provider_config_key: String,
    /// Empty for a provider config.
    pub connection_id: String,
    /// Where it came from, without credentials (a database URL without its password, an API's
    /// URL).
    pub source: String,
    /// SHA-256 (hex) of the item as the source had it.
    pub fingerprint: String,
    /// The generation written: a connection's `refreshed_at`, a config's `updated_at`. This
    /// server changed the item since when it no longer holds this one.
    pub generation: Option<DateTime<Utc>>,
    pub imported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportKind {
    Config,
    Connection,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Config => "config",
            ImportKind::Connection => "connection",
        }
    }
}

/// An OAuth flow between `/oauth/connect` and `/oauth/callback`, keyed by its `state`.
#[derive(Debug, Clone)]
pub struct OAuthSession {
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub provider_config_key: String,
    pub provider: String,
    pub connection_id: String,
    pub callback_url: String,
    pub code_verifier: Option<crate::secret::Secret<String>>,
    pub connection_config: Map<String, Value>,
    pub ws_client_id: Option<String>,
    pub request_token_secret: Option<crate::secret::Secret<String>>,
    /// Redirect mode: the allow-listed app URL the browser returns to.
    pub return_to: Option<String>,
    /// SHA-256 (hex) of the flow cookie's value: only the browser that started the flow has it
    /// (`oauth::flow_cookie`). `None` for a row stored before the column existed.
    pub browser_hash: Option<String>,
    /// The hash of the connect session of current Nango's kind the flow runs under: used up
    /// when the callback stores the connection.
    pub connect_session_hash: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn list_configs(&self) -> Result<Vec<ProviderConfig>, StoreError>;
    async fn get_config(&self, key: &str) -> Result<Option<ProviderConfig>, StoreError>;
    /// `get_config` through the read cache of the hot path (see `cache`).
    async fn get_config_cached(&self, key: &str) -> Result<Option<ProviderConfig>, StoreError>;
    /// Returns the new id; `Conflict` when the key exists.
    async fn insert_config(&self, fields: &ProviderConfigFields) -> Result<i64, StoreError>;
    /// Returns false when no config has that key.
    async fn update_config(&self, fields: &ProviderConfigFields) -> Result<bool, StoreError>;
    /// Returns false when no config had that key.
    async fn delete_config(&self, key: &str) -> Result<bool, StoreError>;
    /// Gives a config another key, only while no connection uses it (connections are found by
    /// their config's key); `Conflict` when the new key is taken.
    async fn rename_config(&self, from: &str, to: &str) -> Result<ConfigRename, StoreError>;

    async fn get_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Option<Connection>, StoreError>;
    /// `get_connection` through the read cache of the hot path: possibly a copy as it was a
    /// moment ago (see `cache`), so never the basis of a refresh decision.
    async fn get_connection_cached(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Option<Connection>, StoreError>;
    async fn list_connections(&self) -> Result<Vec<ConnectionSummary>, StoreError>;
    /// Inserts or replaces the connection (keeping its id and creation time); returns it.
    async fn upsert_connection(&self, fields: &ConnectionFields) -> Result<Connection, StoreError>;
    /// Stores refreshed credentials obtained at `obtained_at` (and marks the connection
    /// healthy), only if the stored ones are still those obtained at `refreshed_at` (the
    /// `health.refreshed_at` read before the refresh): nobody has replaced them since. False when
    /// they were replaced (or the connection is gone); nothing is written.
    async fn update_credentials_if_unchanged(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        credentials: &Credentials,
        refreshed_at: Option<DateTime<Utc>>,
        obtained_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records a failed refresh of the credentials obtained at `refreshed_at` (as read before the
    /// refresh); the stored credentials stay as they are. False, and nothing recorded, when the
    /// credentials were replaced meanwhile: the refusal was about a refresh token that is no
    /// longer the connection's.
    async fn record_refresh_failure(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        failure: &RefreshFailure,
        refreshed_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Connections the proactive refresher should look at: tokens expiring before `expiring_before`
    /// and connections whose credentials were last obtained before `idle_before` (or never
    /// recorded), leaving out those needing re-authorization or backing off until after `now`.
    /// Soonest-expiring first, at most `limit`.
    async fn connections_due_for_refresh(
        &self,
        now: DateTime<Utc>,
        expiring_before: DateTime<Utc>,
        idle_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Sets a connection's metadata to `metadata`, or lays `metadata`'s top-level keys over the
    /// stored ones when `merge`; the metadata now stored, or `None` when there is no such
    /// connection. The credentials are sealed anew, being bound to the metadata.
    async fn update_metadata(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        metadata: &Map<String, Value>,
        merge: bool,
    ) -> Result<Option<Map<String, Value>>, StoreError>;

    /// Sets a connection's end user and tags; false when there is no such connection.
    async fn update_owner(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        owner: &Owner,
    ) -> Result<bool, StoreError>;

    async fn delete_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<bool, StoreError>;

    /// Every record of earlier imports.
    async fn import_records(&self) -> Result<Vec<ImportRecord>, StoreError>;
    /// Records an import of an item without writing the item (found here as the source has it).
    async fn record_import(&self, record: &ImportRecord) -> Result<(), StoreError>;
    /// Writes an imported connection and its record in one transaction, if the connection is
    /// still as the import found it: absent when `replaces` is `None`, holding the credentials of
    /// that generation otherwise. False, and nothing written, when it changed meanwhile (a
    /// refresh or a flow on a running server). `record.generation` is set to what was written.
    async fn write_imported_connection(
        &self,
        fields: &ConnectionFields,
        replaces: Option<Generation>,
        record: &ImportRecord,
    ) -> Result<bool, StoreError>;

    async fn insert_oauth_session(&self, session: &OAuthSession) -> Result<(), StoreError>;
    /// Removes the session and returns it if it existed and has not expired: a state works once.
    async fn take_oauth_session(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthSession>, StoreError>;
    /// Stores a connect session (by the hash of its token).
    async fn insert_connect_session(&self, session: &ConnectSession) -> Result<(), StoreError>;

    /// Removes and returns the connect session of this token hash, if it exists and has not
    /// expired at `now`: a token works once.
    async fn take_connect_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectSession>, StoreError>;

    /// The connect session of this token hash, if it exists and has not expired at `now`; it
    /// stays (reading a session does not use it up).
    async fn get_connect_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectSession>, StoreError>;

    /// Removes a connect session; false when there was none.
    async fn delete_connect_session(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Adds deliveries to the outbox, due now.
    async fn enqueue_webhooks(&self, deliveries: &[NewWebhook]) -> Result<(), StoreError>;

    /// Claims up to `limit` due deliveries until `claim_until` (another replica skips them
    /// meanwhile) and returns them, oldest first.
    async fn claim_due_webhooks(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;

    /// Records an attempt's outcome and releases the claim.
    async fn record_webhook_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError>;

    /// The delivery log, newest first; `status` filters on `pending`, `delivered` or `failed`.
    async fn list_webhook_deliveries(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;

    async fn delete_expired_oauth_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Deletes deliveries delivered or given up before `finished_before` (pending ones stay
    /// whatever their age); returns how many.
    async fn prune_webhooks(&self, finished_before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Takes the refresh lease of a connection for `holder` until `until`, if nobody holds an
    /// unexpired one. True when taken.
    async fn try_lock_refresh(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Extends `holder`'s lease until `until`. False when `holder` no longer has it (another
    /// holder took it after it expired): a lease is only ever renewed by its owner.
    async fn renew_refresh_lock(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives the lease back (only if `holder` still has it).
    async fn unlock_refresh(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        holder: &str,
    ) -> Result<(), StoreError>;

    /// Takes the refresh lease as `try_lock_refresh` does and, when taken, reads the connection
    /// as every earlier holder left it (a read that started before the previous holder's last
    /// write would hand out the refresh token it already used).
    async fn lock_refresh_and_read(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LeaseTake, StoreError> {
        if !self
            .try_lock_refresh(provider_config_key, connection_id, holder, now, until)
            .await?
        {
            return Ok(LeaseTake::Busy);
        }
        Ok(LeaseTake::Taken(
            self.get_connection(provider_config_key, connection_id)
                .await?,
        ))
    }

    /// `update_credentials_if_unchanged`, then gives `holder`'s lease back (whether or not the
    /// credentials were written). An error means the credentials were not written; a failed
    /// release alone is no error, the lease then runs out on its own.
    async fn update_credentials_and_unlock(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        credentials: &Credentials,
        refreshed_at: Option<DateTime<Utc>>,
        obtained_at: DateTime<Utc>,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let written = self
            .update_credentials_if_unchanged(
                provider_config_key,
                connection_id,
                credentials,
                refreshed_at,
                obtained_at,
            )
            .await?;
        if let Err(e) = self
            .unlock_refresh(provider_config_key, connection_id, holder)
            .await
        {
            tracing::warn!(error = %e, "could not release a refresh lease");
        }
        Ok(written)
    }

    /// Hands a WebSocket frame to whichever replica holds the socket `client_id`. False when the
    /// backend cannot reach other processes (SQLite is single-process).
    /// Checks at start that every key that sealed data here is configured (and that there is no
    /// sealed data when none is), and registers the primary key.
    async fn verify_encryption_keys(&self) -> Result<(), StoreError>;

    /// Re-seals every secret column with the primary key (sealing plaintext ones too), row by
    /// row with compare-and-set so a concurrent write is never overwritten, then retires the keys
    /// nothing is sealed with any more.
    async fn rotate_encryption(&self) -> Result<RotationReport, StoreError>;

    /// Makes the storage forget values that were overwritten (SQLite keeps old pages in its
    /// file and WAL; PostgreSQL's dumps and reads never show dead rows).
    async fn purge_freed_pages(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes the storage drop the old copies of rows just deleted: SQLite zeroes deleted content
    /// in the database file (`secure_delete`), but the write-ahead log still holds the pages as
    /// they were until a checkpoint copies the new ones back and truncates it. Best effort (a
    /// long reader can hold the log; the next checkpoint then does it).
    async fn forget_deleted(&self) {}

    async fn publish_ws_frame(&self, _client_id: &str, _frame: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Frames published by any replica, as `(client_id, frame)`; `None` when the backend has no
    /// cross-process channel.
    async fn subscribe_ws_frames(&self) -> Result<Option<WsFrames>, StoreError> {
        Ok(None)
    }
}

/// What `Store::lock_refresh_and_read` found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a return value, moved once; boxing it would only add an allocation
pub enum LeaseTake {
    /// Another holder has an unexpired lease.
    Busy,
    /// Taken; the connection as the previous holders left it (`None`: it was deleted).
    Taken(Option<Connection>),
}

/// What `Store::rotate_encryption` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Rows whose value was re-sealed with the primary key.
    pub resealed: u64,
    /// Rows already sealed with it.
    pub current: u64,
    /// Key ids no data is sealed with any more.
    pub retired: Vec<String>,
}

/// Stream of `(client_id, frame)` published by `Store::publish_ws_frame`.
pub type WsFrames = tokio::sync::mpsc::UnboundedReceiver<(String, String)>;

/// Opens the database named by `url` (`sqlite:` or `postgres:`), creating a SQLite file if
/// needed, and runs the migrations. `cache_capacity`: how many connections the hot path keeps
/// decrypted in memory (0 for tools that only write).
pub async fn connect(
    url: &str,
    cipher: Arc<Cipher>,
    cache_capacity: usize,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(url, cipher, cache_capacity).await?,
        ))
    } else {
        Ok(Arc::new(
            PostgresStore::connect(url, cipher, cache_capacity).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn migration_names(backend: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Both backends must go through the same versions, or one of them silently lags behind.
    #[test]
    fn sqlite_and_postgres_migrations_stay_in_step() {
        let sqlite = migration_names("sqlite");
        assert!(!sqlite.is_empty(), "no migrations found");
        assert_eq!(sqlite, migration_names("postgres"));
    }
}
