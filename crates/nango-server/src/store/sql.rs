//! The SQL of the store, once, instantiated for SQLite and PostgreSQL by `sql_store!`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::cache::ReadCache;
use super::cipher::{is_sealed, Cipher, CipherError};
use super::{
    ConfigRename, ConnectSession, Connection, ConnectionFields, ConnectionHealth,
    ConnectionSummary, DeliveryOutcome, Generation, ImportKind, ImportRecord, NewWebhook,
    OAuthSession, Owner, ProviderConfig, ProviderConfigFields, RefreshFailure, RotationReport,
    Store, StoreError, WebhookDelivery, WsFrames,
};
use crate::credentials::Credentials;
use crate::secret::Secret;

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Columns bound to a row's sealed secret, as (column, stored text). Their digest is part of the
/// secret's associated data, so a change to any of them made without the key (in the database)
/// makes the secret refuse to open, and the row is refused with it: nobody without the key can
/// send the tokens elsewhere by editing where they go.
type Bound = Vec<(&'static str, String)>;

/// The provider config columns its client secret authenticates: they decide where the secret
/// and its connections' tokens are sent (the template, hence the token URL, and the operator's
/// host values). A new such column is one more line here and in `ConfigRow::bound`.
fn config_bound(provider: &str, connection_config: &str) -> Bound {
    vec![
        ("provider", provider.to_string()),
        ("connection_config", connection_config.to_string()),
    ]
}

/// The connection columns its credentials authenticate: both can carry the host the proxy and
/// refreshes send the tokens to (`${connectionConfig...}`, `${metadata...}` in URLs).
fn connection_bound(connection_config: &str, metadata: &str) -> Bound {
    vec![
        ("connection_config", connection_config.to_string()),
        ("metadata", metadata.to_string()),
    ]
}

/// What a connection write stores besides its keys and times: the credentials sealed for the
/// connection config and metadata they are bound to, and those, the end user and the tags as
/// JSON text.
struct ConnectionColumns {
    sealed: String,
    connection_config: String,
    metadata: String,
    end_user: Option<String>,
    tags: String,
}

impl ConnectionColumns {
    fn of(cipher: &Cipher, f: &ConnectionFields) -> Result<ConnectionColumns, StoreError> {
        let connection_config = to_json(&f.connection_config)?;
        let metadata = to_json(&f.metadata)?;
        let owner = f.owner.clone().unwrap_or_default();
        Ok(ConnectionColumns {
            sealed: seal_credentials(
                cipher,
                &f.credentials,
                &f.provider_config_key,
                &f.connection_id,
                &connection_bound(&connection_config, &metadata),
            )?,
            end_user: owner.end_user.as_ref().map(to_json).transpose()?,
            tags: to_json(&owner.tags)?,
            connection_config,
            metadata,
        })
    }
}

/// SHA-256 of the bound columns, length-prefixed so no two lists hash alike, in hex.
fn bound_digest(bound: &Bound) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (column, value) in bound {
        for part in [column.as_bytes(), value.as_bytes()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
    }
    hex::encode(hash.finalize())
}

/// Where a sealed value belongs (its associated data): table, column, row and the digest of the
/// columns bound to it.
fn config_secret_context(unique_key: &str, bound: &Bound) -> String {
    format!(
        "{}\u{0}bound:{}",
        legacy_config_secret_context(unique_key),
        bound_digest(bound)
    )
}

fn credentials_context(provider_config_key: &str, connection_id: &str, bound: &Bound) -> String {
    format!(
        "{}\u{0}bound:{}",
        legacy_credentials_context(provider_config_key, connection_id),
        bound_digest(bound)
    )
}

/// The associated data of values sealed before columns were bound (see `authenticate_rows`).
fn legacy_config_secret_context(unique_key: &str) -> String {
    format!("provider_configs.oauth_client_secret:{unique_key}")
}

fn legacy_credentials_context(provider_config_key: &str, connection_id: &str) -> String {
    format!("connections.credentials:{provider_config_key}\u{0}{connection_id}")
}

/// What `authenticate_rows` writes for one stored value, if anything: a value stored as given,
/// sealed when `seal_plain`; a value sealed with the legacy associated data, re-sealed with the
/// bound one when `legacy`. Values that open neither way stay (and are refused when read).
fn rebind(
    cipher: &Cipher,
    stored: &str,
    context: &str,
    legacy_context: &str,
    legacy: bool,
    seal_plain: bool,
) -> Result<Option<String>, StoreError> {
    if !is_sealed(stored) {
        return Ok(if seal_plain {
            Some(cipher.seal(stored, context)?)
        } else {
            None
        });
    }
    if !legacy || cipher.open(stored, context).is_ok() {
        return Ok(None);
    }
    match cipher.open(stored, legacy_context) {
        Ok(plain) => Ok(Some(cipher.seal(&plain, context)?)),
        Err(_) => Ok(None),
    }
}

fn session_context(column: &str, state: &str) -> String {
    format!("oauth_sessions.{column}:{state}")
}

fn seal_credentials(
    cipher: &Cipher,
    credentials: &Credentials,
    provider_config_key: &str,
    connection_id: &str,
    bound: &Bound,
) -> Result<String, StoreError> {
    Ok(cipher.seal(
        &to_json(credentials)?,
        &credentials_context(provider_config_key, connection_id, bound),
    )?)
}

const WEBHOOK_COLUMNS: &str = "id, event_id, event_type, url, body, created_at, attempts, \
     next_attempt_at, delivered_at, failed_at, last_status, last_error";

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    event_id: String,
    event_type: String,
    url: String,
    body: String,
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    delivered_at: Option<i64>,
    failed_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
}

impl From<WebhookRow> for WebhookDelivery {
    fn from(r: WebhookRow) -> Self {
        WebhookDelivery {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            url: r.url,
            body: r.body,
            created_at: from_millis(r.created_at),
            attempts: r.attempts,
            next_attempt_at: from_millis(r.next_attempt_at),
            delivered_at: r.delivered_at.map(from_millis),
            failed_at: r.failed_at.map(from_millis),
            last_status: r.last_status,
            last_error: r.last_error,
        }
    }
}

/// What the key registry seals with each key, to prove at start that the key is the right one
/// (earlier versions wrote "nango encryption key check"). Written once the rows of the
/// database are bound (`authenticate_rows` done): from then on, values sealed with the legacy
/// associated data are never re-bound again.
const CANARY_BOUND: &str = "nango encryption key check; rows bound";
const CANARY_CONTEXT: &str = "encryption_keys.canary";

/// The value re-sealed with the primary key, or `None` when it is sealed with it already.
fn reseal(cipher: &Cipher, stored: &str, context: &str) -> Result<Option<String>, StoreError> {
    if cipher.is_current(stored) {
        return Ok(None);
    }
    let plaintext = cipher.open(stored, context)?;
    Ok(Some(cipher.seal(&plaintext, context)?))
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

#[derive(sqlx::FromRow)]
struct ConfigRow {
    id: i64,
    created_at: i64,
    updated_at: i64,
    unique_key: String,
    provider: String,
    oauth_client_id: String,
    oauth_client_secret: String,
    oauth_scopes: String,
    account_id: i64,
    connection_config: String,
    display_name: Option<String>,
}

impl ConfigRow {
    /// The columns bound to the secret, as stored (see `config_bound`).
    fn bound(&self) -> Bound {
        config_bound(&self.provider, &self.connection_config)
    }

    fn context(&self) -> String {
        config_secret_context(&self.unique_key, &self.bound())
    }

    fn open(self, cipher: &Cipher) -> Result<ProviderConfig, StoreError> {
        let secret = cipher.open_authenticated(&self.oauth_client_secret, &self.context())?;
        Ok(ProviderConfig {
            id: self.id,
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
            unique_key: self.unique_key,
            provider: self.provider,
            oauth_client_id: self.oauth_client_id,
            oauth_client_secret: Secret::new(secret),
            oauth_scopes: self.oauth_scopes,
            account_id: self.account_id,
            connection_config: from_json(
                "provider_configs.connection_config",
                &self.connection_config,
            )?,
            display_name: self.display_name,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: i64,
    created_at: i64,
    updated_at: i64,
    provider_config_key: String,
    connection_id: String,
    credentials: String,
    connection_config: String,
    metadata: String,
    account_id: i64,
    refreshed_at: Option<i64>,
    refresh_failures: i64,
    refresh_error: Option<String>,
    needs_reauth: i64,
    retry_after: Option<i64>,
    obtained_by_refresh: i64,
    refresh_failed_at: Option<i64>,
    end_user: Option<String>,
    tags: String,
}

/// The stored end user and tags.
fn owner_of(end_user: Option<&str>, tags: &str) -> Result<Owner, StoreError> {
    Ok(Owner {
        end_user: end_user
            .map(|text| from_json::<Map<String, Value>>("end_user", text))
            .transpose()?,
        tags: from_json::<Map<String, Value>>("tags", tags)?,
    })
}

impl ConnectionRow {
    fn health(&self) -> ConnectionHealth {
        ConnectionHealth {
            refreshed_at: self.refreshed_at.map(from_millis),
            obtained_by_refresh: self.obtained_by_refresh != 0,
            refresh_failures: self.refresh_failures,
            refresh_error: self.refresh_error.clone(),
            needs_reauth: self.needs_reauth != 0,
            retry_after: self.retry_after.map(from_millis),
            failed_at: self.refresh_failed_at.map(from_millis),
        }
    }
}

impl ConnectionRow {
    fn context(&self) -> String {
        credentials_context(
            &self.provider_config_key,
            &self.connection_id,
            &connection_bound(&self.connection_config, &self.metadata),
        )
    }

    fn open(self, cipher: &Cipher) -> Result<Connection, StoreError> {
        let r = self;
        let credentials = cipher.open_authenticated(&r.credentials, &r.context())?;
        Ok(Connection {
            id: r.id,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
            credentials: from_json::<Credentials>("credentials", &credentials)?,
            connection_config: from_json::<Map<String, Value>>(
                "connection_config",
                &r.connection_config,
            )?,
            metadata: from_json::<Map<String, Value>>("metadata", &r.metadata)?,
            health: r.health(),
            owner: owner_of(r.end_user.as_deref(), &r.tags)?,
            provider_config_key: r.provider_config_key,
            connection_id: r.connection_id,
            account_id: r.account_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    connection_id: String,
    provider_config_key: String,
    created_at: i64,
    expires_at: Option<i64>,
    refreshed_at: Option<i64>,
    refresh_failures: i64,
    refresh_error: Option<String>,
    needs_reauth: i64,
    retry_after: Option<i64>,
    obtained_by_refresh: i64,
    refresh_failed_at: Option<i64>,
    metadata: String,
    end_user: Option<String>,
    tags: String,
}

/// token_hash, provider_config_key, connection_id, created_at, expires_at, spec.
type ConnectSessionRow = (String, String, String, i64, i64, Option<String>);

fn open_connect_session(r: ConnectSessionRow) -> Result<ConnectSession, StoreError> {
    Ok(ConnectSession {
        token_hash: r.0,
        provider_config_key: r.1,
        connection_id: r.2,
        created_at: from_millis(r.3),
        expires_at: from_millis(r.4),
        spec: r
            .5
            .map(|text| from_json("connect_sessions.spec", &text))
            .transpose()?,
    })
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    state: String,
    created_at: i64,
    expires_at: i64,
    provider_config_key: String,
    provider: String,
    connection_id: String,
    callback_url: String,
    code_verifier: Option<String>,
    connection_config: String,
    ws_client_id: Option<String>,
    request_token_secret: Option<String>,
    return_to: Option<String>,
    browser_hash: Option<String>,
    connect_session_hash: Option<String>,
}

impl SessionRow {
    fn open(self, cipher: &Cipher) -> Result<OAuthSession, StoreError> {
        let r = self;
        let open = |column: &str, value: Option<String>| -> Result<Option<String>, StoreError> {
            value
                .map(|v| cipher.open(&v, &session_context(column, &r.state)))
                .transpose()
                .map_err(StoreError::from)
        };
        let code_verifier = open("code_verifier", r.code_verifier.clone())?;
        let request_token_secret = open("request_token_secret", r.request_token_secret.clone())?;
        Ok(OAuthSession {
            state: r.state,
            created_at: from_millis(r.created_at),
            expires_at: from_millis(r.expires_at),
            provider_config_key: r.provider_config_key,
            provider: r.provider,
            connection_id: r.connection_id,
            callback_url: r.callback_url,
            code_verifier: code_verifier.map(Secret::new),
            connection_config: from_json("connection_config", &r.connection_config)?,
            ws_client_id: r.ws_client_id,
            request_token_secret: request_token_secret.map(Secret::new),
            return_to: r.return_to,
            browser_hash: r.browser_hash,
            connect_session_hash: r.connect_session_hash,
        })
    }
}

const CONFIG_COLUMNS: &str = "id, created_at, updated_at, unique_key, provider, oauth_client_id, \
     oauth_client_secret, oauth_scopes, account_id, connection_config, display_name";
const CONNECTION_COLUMNS: &str = "id, created_at, updated_at, provider_config_key, connection_id, \
     credentials, connection_config, metadata, account_id, refreshed_at, refresh_failures, \
     refresh_error, needs_reauth, retry_after, obtained_by_refresh, refresh_failed_at, end_user, tags";
/// What a successful flow or refresh writes besides the credentials: the health starts over.
const HEALTHY: &str = "refresh_failures = 0, refresh_error = NULL, needs_reauth = 0, \
     retry_after = NULL, refresh_failed_at = NULL";
const UPSERT_IMPORT: &str = "INSERT INTO imports (kind, provider_config_key, connection_id, \
     source, fingerprint, generation, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (kind, provider_config_key, connection_id) DO UPDATE SET \
     source = excluded.source, fingerprint = excluded.fingerprint, \
     generation = excluded.generation, imported_at = excluded.imported_at";
const SESSION_COLUMNS: &str = "state, created_at, expires_at, provider_config_key, provider, \
     connection_id, callback_url, code_verifier, connection_config, ws_client_id, \
     request_token_secret, return_to, browser_hash, connect_session_hash";

/// Taking a refresh lease whose row exists: only when it has run out or was released ($3 the
/// holder, $4 until, $5 now).
const TAKE_FREE_LEASE: &str = "ON CONFLICT (provider_config_key, connection_id) DO UPDATE SET \
     holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE refresh_locks.expires_at <= $5";
/// A released lease row: nobody holds it and it has run out.
const RELEASED_LEASE: &str = "holder = '', expires_at = 0";

/// The conditional write of refreshed credentials: $1 sealed credentials, $2 when they were
/// obtained, $3/$4 the
/// connection, $5 expires_at, $6 the `refreshed_at` they were refreshed from. `refreshed_at`
/// changes with every credentials write (flow or refresh) and with nothing else, so it versions
/// the credentials; -1 stands for "never recorded". $7/$8: the connection config and metadata
/// the new credentials are bound to, as read just before (a change since then writes nothing).
fn update_credentials_sql() -> String {
    format!(
        "UPDATE connections SET credentials = $1, updated_at = $2, refreshed_at = $2, \
         obtained_by_refresh = 1, expires_at = $5, {HEALTHY} \
         WHERE provider_config_key = $3 AND connection_id = $4 \
         AND COALESCE(refreshed_at, -1) = $6 AND connection_config = $7 AND metadata = $8"
    )
}

/// Binds $1 to $8 of `update_credentials_sql` (on a query or a scalar query, of either backend);
/// `$bound` is the (connection config, metadata) pair read by `bound_columns`.
macro_rules! bind_credentials_update {
    ($query:expr, $cipher:expr, $key:expr, $id:expr, $credentials:expr, $refreshed_at:expr, $obtained_at:expr, $bound:expr) => {
        $query
            .bind(seal_credentials(
                $cipher,
                $credentials,
                $key,
                $id,
                &connection_bound(&$bound.0, &$bound.1),
            )?)
            .bind(millis($obtained_at))
            .bind($key)
            .bind($id)
            .bind($credentials.expires_at().map(millis))
            .bind($refreshed_at.map_or(-1, millis))
            .bind(&$bound.0)
            .bind(&$bound.1)
    };
}

/// Implements `Store` for a pool type; the body is the same SQL for every backend.
macro_rules! sql_store {
    ($store:ident, $db:ty, { $($backend_specific:tt)* }) => {
        pub struct $store {
            pool: sqlx::Pool<$db>,
            cipher: std::sync::Arc<Cipher>,
            cache: std::sync::Arc<ReadCache>,
            /// Dropped with the store: ends the task that feeds the cache's evictions.
            _stop_listening: Option<tokio::sync::oneshot::Sender<()>>,
        }

        impl $store {
            /// The connection config and metadata of a connection as stored now, if its
            /// credentials are still those obtained at `refreshed_at`: what refreshed
            /// credentials are bound to.
            async fn bound_columns(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                refreshed_at: Option<DateTime<Utc>>,
            ) -> Result<Option<(String, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT connection_config, metadata FROM connections \
                     WHERE provider_config_key = $1 AND connection_id = $2 \
                     AND COALESCE(refreshed_at, -1) = $3",
                )
                .bind(provider_config_key)
                .bind(connection_id)
                .bind(refreshed_at.map_or(-1, millis))
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Binds rows written before columns were bound to their secrets: values sealed
            /// with the legacy associated data are re-sealed with the bound one when `legacy`
            /// (once: no key's check value says it was done); values stored as given are sealed
            /// when no key was ever registered (`first_key`) and nothing is sealed yet: encryption
            /// being turned on. After that, a value stored as given, or sealed without its bound
            /// columns, is refused when read: only someone without the key writes one. Row by
            /// row, with compare-and-set.
            async fn authenticate_rows(&self, legacy: bool, first_key: bool) -> Result<(), StoreError> {
                let cipher = &self.cipher;
                let mut any_sealed = !first_key;
                for sql in [
                    "SELECT 1 FROM provider_configs WHERE oauth_client_secret LIKE 'enc:%' LIMIT 1",
                    "SELECT 1 FROM connections WHERE credentials LIKE 'enc:%' LIMIT 1",
                ] {
                    if any_sealed {
                        break;
                    }
                    let found: Option<i32> =
                        sqlx::query_scalar(sql).fetch_optional(&self.pool).await?;
                    any_sealed |= found.is_some();
                }
                let seal_plain = !any_sealed;
                if !legacy && !seal_plain {
                    return Ok(());
                }
                let sql = format!("SELECT {CONFIG_COLUMNS} FROM provider_configs ORDER BY id");
                let configs: Vec<ConfigRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                for row in configs {
                    let stored = &row.oauth_client_secret;
                    let legacy_context = legacy_config_secret_context(&row.unique_key);
                    let Some(sealed) =
                        rebind(cipher, stored, &row.context(), &legacy_context, legacy, seal_plain)?
                    else {
                        continue;
                    };
                    sqlx::query(
                        "UPDATE provider_configs SET oauth_client_secret = $1 \
                         WHERE unique_key = $2 AND oauth_client_secret = $3",
                    )
                    .bind(sealed)
                    .bind(&row.unique_key)
                    .bind(stored)
                    .execute(&self.pool)
                    .await?;
                    self.cache.evict_config(&row.unique_key);
                }
                let mut after = 0i64;
                loop {
                    let sql = format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id > $1 ORDER BY id LIMIT 500"
                    );
                    let batch: Vec<ConnectionRow> =
                        sqlx::query_as(&sql).bind(after).fetch_all(&self.pool).await?;
                    let Some(last) = batch.last() else { break };
                    after = last.id;
                    for row in batch {
                        let legacy_context =
                            legacy_credentials_context(&row.provider_config_key, &row.connection_id);
                        let Some(sealed) = rebind(
                            cipher,
                            &row.credentials,
                            &row.context(),
                            &legacy_context,
                            legacy,
                            seal_plain,
                        )?
                        else {
                            continue;
                        };
                        sqlx::query(
                            "UPDATE connections SET credentials = $1 WHERE id = $2 \
                             AND credentials = $3 AND connection_config = $4 AND metadata = $5",
                        )
                        .bind(sealed)
                        .bind(row.id)
                        .bind(&row.credentials)
                        .bind(&row.connection_config)
                        .bind(&row.metadata)
                        .execute(&self.pool)
                        .await?;
                        self.cache
                            .evict_connection(&row.provider_config_key, &row.connection_id);
                    }
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn list_configs(&self) -> Result<Vec<ProviderConfig>, StoreError> {
                let sql = format!("SELECT {CONFIG_COLUMNS} FROM provider_configs ORDER BY id");
                let rows: Vec<ConfigRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(|r| r.open(&self.cipher)).collect()
            }

            async fn get_config(&self, key: &str) -> Result<Option<ProviderConfig>, StoreError> {
                let sql =
                    format!("SELECT {CONFIG_COLUMNS} FROM provider_configs WHERE unique_key = $1");
                let row: Option<ConfigRow> = sqlx::query_as(&sql)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| r.open(&self.cipher)).transpose()
            }

            async fn get_config_cached(
                &self,
                key: &str,
            ) -> Result<Option<ProviderConfig>, StoreError> {
                if let Some(hit) = self.cache.config(key) {
                    return Ok(Some(hit));
                }
                let ticket = self.cache.ticket();
                let config = self.get_config(key).await?;
                if let Some(config) = &config {
                    self.cache.store_config(ticket, config);
                }
                Ok(config)
            }

            async fn insert_config(&self, f: &ProviderConfigFields) -> Result<i64, StoreError> {
                let now = millis(Utc::now());
                let connection_config =
                    Value::Object(f.connection_config.clone().unwrap_or_default()).to_string();
                let id: Result<i64, sqlx::Error> = sqlx::query_scalar(
                    "INSERT INTO provider_configs (created_at, updated_at, unique_key, provider, \
                     oauth_client_id, oauth_client_secret, oauth_scopes, connection_config, \
                     display_name) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(now)
                .bind(&f.unique_key)
                .bind(&f.provider)
                .bind(&f.oauth_client_id)
                .bind(self.cipher.seal(
                    f.oauth_client_secret.expose(),
                    &config_secret_context(
                        &f.unique_key,
                        &config_bound(&f.provider, &connection_config),
                    ),
                )?)
                .bind(&f.oauth_scopes)
                .bind(&connection_config)
                .bind(&f.display_name)
                .fetch_one(&self.pool)
                .await;
                match id {
                    Err(e) if is_unique_violation(&e) => {
                        Err(StoreError::Conflict("provider config key exists"))
                    }
                    other => Ok(other?),
                }
            }

            async fn update_config(&self, f: &ProviderConfigFields) -> Result<bool, StoreError> {
                // Absent in the request (a 0.9 client's PUT): the operator's values are kept. The
                // secret is sealed with the text the row will hold, so it is read first; the
                // update applies only if that text is still the stored one.
                let (connection_config, unchanged) = match &f.connection_config {
                    Some(values) => (Value::Object(values.clone()).to_string(), None),
                    None => {
                        let stored: Option<String> = sqlx::query_scalar(
                            "SELECT connection_config FROM provider_configs WHERE unique_key = $1",
                        )
                        .bind(&f.unique_key)
                        .fetch_optional(&self.pool)
                        .await?;
                        let Some(stored) = stored else {
                            return Ok(false);
                        };
                        (stored.clone(), Some(stored))
                    }
                };
                let done = sqlx::query(
                    "UPDATE provider_configs SET updated_at = $1, provider = $2, \
                     oauth_client_id = $3, oauth_client_secret = $4, oauth_scopes = $5, \
                     connection_config = $7, display_name = COALESCE($9, display_name) \
                     WHERE unique_key = $6 AND ($8 IS NULL OR connection_config = $8)",
                )
                .bind(millis(Utc::now()))
                .bind(&f.provider)
                .bind(&f.oauth_client_id)
                .bind(self.cipher.seal(
                    f.oauth_client_secret.expose(),
                    &config_secret_context(
                        &f.unique_key,
                        &config_bound(&f.provider, &connection_config),
                    ),
                )?)
                .bind(&f.oauth_scopes)
                .bind(&f.unique_key)
                .bind(&connection_config)
                .bind(unchanged)
                .bind(&f.display_name)
                .execute(&self.pool)
                .await?;
                self.cache.evict_config(&f.unique_key);
                Ok(done.rows_affected() > 0)
            }

            async fn delete_config(&self, key: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM provider_configs WHERE unique_key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                self.cache.evict_config(key);
                self.forget_deleted().await;
                Ok(done.rows_affected() > 0)
            }

            async fn rename_config(&self, from: &str, to: &str) -> Result<ConfigRename, StoreError> {
                // Deleted and inserted again (same id and creation time) rather than updated:
                // the deletion announces the old key to the other replicas' caches, and the
                // secret is sealed anew for the key it is bound to.
                let mut tx = self.pool.begin().await?;
                let sql =
                    format!("SELECT {CONFIG_COLUMNS} FROM provider_configs WHERE unique_key = $1");
                let row: Option<ConfigRow> = sqlx::query_as(&sql)
                    .bind(from)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(ConfigRename::NotFound);
                };
                let used: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM connections WHERE provider_config_key = $1",
                )
                .bind(from)
                .fetch_one(&mut *tx)
                .await?;
                if used > 0 {
                    return Ok(ConfigRename::HasConnections);
                }
                let secret = self
                    .cipher
                    .open_authenticated(&row.oauth_client_secret, &row.context())?;
                let sealed = self
                    .cipher
                    .seal(&secret, &config_secret_context(to, &row.bound()))?;
                sqlx::query("DELETE FROM provider_configs WHERE id = $1")
                    .bind(row.id)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO provider_configs (id, created_at, updated_at, unique_key, \
                     provider, oauth_client_id, oauth_client_secret, oauth_scopes, account_id, \
                     connection_config, display_name) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(row.id)
                .bind(row.created_at)
                .bind(millis(Utc::now()))
                .bind(to)
                .bind(&row.provider)
                .bind(&row.oauth_client_id)
                .bind(sealed)
                .bind(&row.oauth_scopes)
                .bind(row.account_id)
                .bind(&row.connection_config)
                .bind(&row.display_name)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict("provider config key exists"))
                    }
                    other => other?,
                };
                tx.commit().await?;
                self.cache.evict_config(from);
                self.cache.evict_config(to);
                Ok(ConfigRename::Renamed)
            }

            async fn get_connection(
                &self,
                provider_config_key: &str,
                connection_id: &str,
            ) -> Result<Option<Connection>, StoreError> {
                let sql = format!(
                    "SELECT {CONNECTION_COLUMNS} FROM connections \
                     WHERE provider_config_key = $1 AND connection_id = $2"
                );
                let row: Option<ConnectionRow> = sqlx::query_as(&sql)
                    .bind(provider_config_key)
                    .bind(connection_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| r.open(&self.cipher)).transpose()
            }

            async fn get_connection_cached(
                &self,
                provider_config_key: &str,
                connection_id: &str,
            ) -> Result<Option<Connection>, StoreError> {
                if let Some(hit) = self.cache.connection(provider_config_key, connection_id) {
                    return Ok(Some(hit));
                }
                let ticket = self.cache.ticket();
                let connection = self.get_connection(provider_config_key, connection_id).await?;
                if let Some(connection) = &connection {
                    self.cache.store_connection(ticket, connection);
                }
                Ok(connection)
            }

            async fn list_connections(&self) -> Result<Vec<ConnectionSummary>, StoreError> {
                let rows: Vec<SummaryRow> = sqlx::query_as(
                    "SELECT id, connection_id, provider_config_key, created_at, expires_at, \
                     refreshed_at, refresh_failures, refresh_error, needs_reauth, retry_after, \
                     obtained_by_refresh, refresh_failed_at, metadata, end_user, tags \
                     FROM connections ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| Ok(ConnectionSummary {
                        id: r.id,
                        metadata: from_json::<Map<String, Value>>("metadata", &r.metadata)?,
                        owner: owner_of(r.end_user.as_deref(), &r.tags)?,
                        health: ConnectionHealth {
                            refreshed_at: r.refreshed_at.map(from_millis),
                            obtained_by_refresh: r.obtained_by_refresh != 0,
                            refresh_failures: r.refresh_failures,
                            refresh_error: r.refresh_error,
                            needs_reauth: r.needs_reauth != 0,
                            retry_after: r.retry_after.map(from_millis),
                            failed_at: r.refresh_failed_at.map(from_millis),
                        },
                        expires_at: r.expires_at.map(from_millis),
                        connection_id: r.connection_id,
                        provider_config_key: r.provider_config_key,
                        created_at: from_millis(r.created_at),
                    }))
                    .collect()
            }

            async fn upsert_connection(
                &self,
                f: &ConnectionFields,
            ) -> Result<Connection, StoreError> {
                let sql = format!(
                    "INSERT INTO connections (created_at, updated_at, provider_config_key, \
                     connection_id, credentials, connection_config, metadata, expires_at, \
                     refreshed_at, end_user, tags) \
                     VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (provider_config_key, connection_id) DO UPDATE SET \
                     updated_at = excluded.updated_at, credentials = excluded.credentials, \
                     connection_config = excluded.connection_config, metadata = excluded.metadata, \
                     expires_at = excluded.expires_at, refreshed_at = excluded.refreshed_at, \
                     end_user = CASE WHEN $11 = 1 THEN excluded.end_user ELSE connections.end_user END, \
                     tags = CASE WHEN $11 = 1 THEN excluded.tags ELSE connections.tags END, \
                     obtained_by_refresh = 0, {HEALTHY} \
                     RETURNING {CONNECTION_COLUMNS}"
                );
                let c = ConnectionColumns::of(&self.cipher, f)?;
                let row: ConnectionRow = sqlx::query_as(&sql)
                    .bind(millis(Utc::now()))
                    .bind(&f.provider_config_key)
                    .bind(&f.connection_id)
                    .bind(&c.sealed)
                    .bind(&c.connection_config)
                    .bind(&c.metadata)
                    .bind(f.credentials.expires_at().map(millis))
                    .bind(millis(f.obtained_at))
                    .bind(&c.end_user)
                    .bind(&c.tags)
                    .bind(i64::from(f.owner.is_some()))
                    .fetch_one(&self.pool)
                    .await?;
                self.cache.evict_connection(&f.provider_config_key, &f.connection_id);
                row.open(&self.cipher)
            }

            async fn update_metadata(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                metadata: &Map<String, Value>,
                merge: bool,
            ) -> Result<Option<Map<String, Value>>, StoreError> {
                // Compare-and-set on the sealed credentials and the metadata as read: a refresh
                // or another metadata write in between makes it read and try again.
                for _ in 0..16 {
                    let sql = format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections \
                         WHERE provider_config_key = $1 AND connection_id = $2"
                    );
                    let row: Option<ConnectionRow> = sqlx::query_as(&sql)
                        .bind(provider_config_key)
                        .bind(connection_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let (sealed_before, metadata_before) =
                        (row.credentials.clone(), row.metadata.clone());
                    let connection_config = row.connection_config.clone();
                    let connection = row.open(&self.cipher)?;
                    let mut new_metadata = if merge {
                        connection.metadata
                    } else {
                        Map::new()
                    };
                    new_metadata.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let text = to_json(&new_metadata)?;
                    let sealed = seal_credentials(
                        &self.cipher,
                        &connection.credentials,
                        provider_config_key,
                        connection_id,
                        &connection_bound(&connection_config, &text),
                    )?;
                    let done = sqlx::query(
                        "UPDATE connections SET metadata = $1, credentials = $2, updated_at = $3 \
                         WHERE provider_config_key = $4 AND connection_id = $5 \
                         AND credentials = $6 AND metadata = $7",
                    )
                    .bind(&text)
                    .bind(sealed)
                    .bind(millis(Utc::now()))
                    .bind(provider_config_key)
                    .bind(connection_id)
                    .bind(&sealed_before)
                    .bind(&metadata_before)
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() > 0 {
                        self.cache.evict_connection(provider_config_key, connection_id);
                        return Ok(Some(new_metadata));
                    }
                }
                Err(StoreError::Corrupt(format!(
                    "the metadata of {provider_config_key}/{connection_id} kept changing while it was written"
                )))
            }

            async fn update_owner(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                owner: &Owner,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE connections SET end_user = $1, tags = $2, updated_at = $3 \
                     WHERE provider_config_key = $4 AND connection_id = $5",
                )
                .bind(owner.end_user.as_ref().map(to_json).transpose()?)
                .bind(to_json(&owner.tags)?)
                .bind(millis(Utc::now()))
                .bind(provider_config_key)
                .bind(connection_id)
                .execute(&self.pool)
                .await?;
                self.cache.evict_connection(provider_config_key, connection_id);
                Ok(done.rows_affected() > 0)
            }

            async fn import_records(&self) -> Result<Vec<ImportRecord>, StoreError> {
                let rows: Vec<(String, String, String, String, String, Option<i64>, i64)> =
                    sqlx::query_as(
                        "SELECT kind, provider_config_key, connection_id, source, fingerprint, \
                         generation, imported_at FROM imports",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|(kind, key, id, source, fingerprint, generation, at)| {
                        Ok(ImportRecord {
                            kind: match kind.as_str() {
                                "config" => ImportKind::Config,
                                "connection" => ImportKind::Connection,
                                other => {
                                    return Err(StoreError::Corrupt(format!(
                                        "imports.kind: {other:?}"
                                    )))
                                }
                            },
                            provider_config_key: key,
                            connection_id: id,
                            source,
                            fingerprint,
                            generation: generation.map(from_millis),
                            imported_at: from_millis(at),
                        })
                    })
                    .collect()
            }

            async fn record_import(&self, record: &ImportRecord) -> Result<(), StoreError> {
                sqlx::query(UPSERT_IMPORT)
                    .bind(record.kind.as_str())
                    .bind(&record.provider_config_key)
                    .bind(&record.connection_id)
                    .bind(&record.source)
                    .bind(&record.fingerprint)
                    .bind(record.generation.map(millis))
                    .bind(millis(record.imported_at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn write_imported_connection(
                &self,
                f: &ConnectionFields,
                replaces: Option<Generation>,
                record: &ImportRecord,
            ) -> Result<bool, StoreError> {
                let ConnectionColumns {
                    sealed,
                    connection_config,
                    metadata,
                    end_user,
                    tags,
                } = ConnectionColumns::of(&self.cipher, f)?;
                let now = millis(Utc::now());
                let mut tx = self.pool.begin().await?;
                let written = match replaces {
                    // Absent: a row made meanwhile (by a flow) is left alone.
                    None => sqlx::query(
                        "INSERT INTO connections (created_at, updated_at, provider_config_key, \
                         connection_id, credentials, connection_config, metadata, expires_at, \
                         refreshed_at, end_user, tags) \
                         VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (provider_config_key, connection_id) DO NOTHING",
                    )
                    .bind(now)
                    .bind(&f.provider_config_key)
                    .bind(&f.connection_id)
                    .bind(&sealed)
                    .bind(&connection_config)
                    .bind(&metadata)
                    .bind(f.credentials.expires_at().map(millis))
                    .bind(millis(f.obtained_at))
                    .bind(&end_user)
                    .bind(&tags)
                    .execute(&mut *tx)
                    .await?,
                    // Still the credentials the import found: not refreshed or re-authorized.
                    Some(Generation(generation)) => sqlx::query(&format!(
                        "UPDATE connections SET updated_at = $1, credentials = $2, \
                         connection_config = $3, metadata = $4, expires_at = $5, \
                         refreshed_at = $6, end_user = $7, tags = $8, obtained_by_refresh = 0, \
                         {HEALTHY} \
                         WHERE provider_config_key = $9 AND connection_id = $10 \
                         AND refreshed_at IS NOT DISTINCT FROM $11"
                    ))
                    .bind(now)
                    .bind(&sealed)
                    .bind(&connection_config)
                    .bind(&metadata)
                    .bind(f.credentials.expires_at().map(millis))
                    .bind(millis(f.obtained_at))
                    .bind(&end_user)
                    .bind(&tags)
                    .bind(&f.provider_config_key)
                    .bind(&f.connection_id)
                    .bind(generation.map(millis))
                    .execute(&mut *tx)
                    .await?,
                };
                if written.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(UPSERT_IMPORT)
                    .bind(ImportKind::Connection.as_str())
                    .bind(&f.provider_config_key)
                    .bind(&f.connection_id)
                    .bind(&record.source)
                    .bind(&record.fingerprint)
                    .bind(millis(f.obtained_at))
                    .bind(millis(record.imported_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.cache.evict_connection(&f.provider_config_key, &f.connection_id);
                Ok(true)
            }

            async fn update_credentials_if_unchanged(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                credentials: &Credentials,
                refreshed_at: Option<DateTime<Utc>>,
                obtained_at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let Some(bound) = self
                    .bound_columns(provider_config_key, connection_id, refreshed_at)
                    .await?
                else {
                    return Ok(false);
                };
                let sql = update_credentials_sql();
                let done = bind_credentials_update!(
                    sqlx::query(&sql),
                    &self.cipher,
                    provider_config_key,
                    connection_id,
                    credentials,
                    refreshed_at,
                    obtained_at,
                    bound
                )
                .execute(&self.pool)
                    .await?;
                self.cache.evict_connection(provider_config_key, connection_id);
                Ok(done.rows_affected() > 0)
            }

            async fn record_refresh_failure(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                failure: &RefreshFailure,
                refreshed_at: Option<DateTime<Utc>>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE connections SET refresh_failures = refresh_failures + 1, \
                     refresh_error = $1, needs_reauth = $2, retry_after = $3, \
                     refresh_failed_at = $7 \
                     WHERE provider_config_key = $4 AND connection_id = $5 \
                     AND COALESCE(refreshed_at, -1) = $6",
                )
                .bind(&failure.error)
                .bind(i64::from(failure.permanent))
                .bind(failure.retry_after.map(millis))
                .bind(provider_config_key)
                .bind(connection_id)
                .bind(refreshed_at.map_or(-1, millis))
                .bind(millis(failure.at))
                .execute(&self.pool)
                .await?;
                self.cache.evict_connection(provider_config_key, connection_id);
                Ok(done.rows_affected() > 0)
            }

            async fn connections_due_for_refresh(
                &self,
                now: DateTime<Utc>,
                expiring_before: DateTime<Utc>,
                idle_before: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<(String, String)>, StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT provider_config_key, connection_id FROM connections \
                     WHERE needs_reauth = 0 AND (retry_after IS NULL OR retry_after <= $1) \
                     AND expires_at IS NOT NULL \
                     AND (expires_at < $2 OR refreshed_at IS NULL OR refreshed_at < $3) \
                     ORDER BY expires_at IS NULL, expires_at, refreshed_at LIMIT $4",
                )
                .bind(millis(now))
                .bind(millis(expiring_before))
                .bind(millis(idle_before))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn delete_connection(
                &self,
                provider_config_key: &str,
                connection_id: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM connections WHERE provider_config_key = $1 AND connection_id = $2",
                )
                .bind(provider_config_key)
                .bind(connection_id)
                .execute(&self.pool)
                .await?;
                self.cache.evict_connection(provider_config_key, connection_id);
                if done.rows_affected() > 0 {
                    self.forget_deleted().await;
                }
                Ok(done.rows_affected() > 0)
            }

            async fn insert_oauth_session(&self, s: &OAuthSession) -> Result<(), StoreError> {
                let sql = format!(
                    "INSERT INTO oauth_sessions ({SESSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                );
                sqlx::query(&sql)
                    .bind(&s.state)
                    .bind(millis(s.created_at))
                    .bind(millis(s.expires_at))
                    .bind(&s.provider_config_key)
                    .bind(&s.provider)
                    .bind(&s.connection_id)
                    .bind(&s.callback_url)
                    .bind(
                        s.code_verifier
                            .as_ref()
                            .map(|v| {
                                self.cipher
                                    .seal(v.expose(), &session_context("code_verifier", &s.state))
                            })
                            .transpose()?,
                    )
                    .bind(to_json(&s.connection_config)?)
                    .bind(s.ws_client_id.as_deref())
                    .bind(
                        s.request_token_secret
                            .as_ref()
                            .map(|v| {
                                self.cipher.seal(
                                    v.expose(),
                                    &session_context("request_token_secret", &s.state),
                                )
                            })
                            .transpose()?,
                    )
                    .bind(s.return_to.as_deref())
                    .bind(s.browser_hash.as_deref())
                    .bind(s.connect_session_hash.as_deref())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn take_oauth_session(
                &self,
                state: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<OAuthSession>, StoreError> {
                // DELETE ... RETURNING is atomic: of two concurrent callbacks with one state,
                // exactly one gets the row.
                let sql = format!(
                    "DELETE FROM oauth_sessions WHERE state = $1 RETURNING {SESSION_COLUMNS}"
                );
                let row: Option<SessionRow> = sqlx::query_as(&sql)
                    .bind(state)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) if row.expires_at > millis(now) => Ok(Some(row.open(&self.cipher)?)),
                    _ => Ok(None),
                }
            }

            async fn insert_connect_session(&self, c: &ConnectSession) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO connect_sessions (token_hash, provider_config_key, \
                     connection_id, created_at, expires_at, spec) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.token_hash)
                .bind(&c.provider_config_key)
                .bind(&c.connection_id)
                .bind(millis(c.created_at))
                .bind(millis(c.expires_at))
                .bind(c.spec.as_ref().map(to_json).transpose()?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_connect_session(
                &self,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<ConnectSession>, StoreError> {
                let row: Option<ConnectSessionRow> = sqlx::query_as(
                    "DELETE FROM connect_sessions WHERE token_hash = $1 \
                     RETURNING token_hash, provider_config_key, connection_id, created_at, \
                     expires_at, spec",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.filter(|r| r.4 > millis(now))
                    .map(open_connect_session)
                    .transpose()
            }

            async fn get_connect_session(
                &self,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<ConnectSession>, StoreError> {
                let row: Option<ConnectSessionRow> = sqlx::query_as(
                    "SELECT token_hash, provider_config_key, connection_id, created_at, \
                     expires_at, spec FROM connect_sessions \
                     WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(millis(now))
                .fetch_optional(&self.pool)
                .await?;
                row.map(open_connect_session).transpose()
            }

            async fn delete_connect_session(&self, token_hash: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM connect_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn enqueue_webhooks(&self, deliveries: &[NewWebhook]) -> Result<(), StoreError> {
                let now = millis(Utc::now());
                let mut tx = self.pool.begin().await?;
                for d in deliveries {
                    sqlx::query(
                        "INSERT INTO webhook_outbox (event_id, event_type, url, body, created_at, \
                         next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)",
                    )
                    .bind(&d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.url)
                    .bind(&d.body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_due_webhooks(
                &self,
                now: DateTime<Utc>,
                claim_until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<WebhookDelivery>, StoreError> {
                let candidates: Vec<(i64,)> = sqlx::query_as(
                    "SELECT id FROM webhook_outbox \
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
                     AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY id LIMIT $2",
                )
                .bind(millis(now))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut claimed = Vec::new();
                for (id,) in candidates {
                    // Compare-and-set: a replica that claimed the row first keeps it.
                    let sql = format!(
                        "UPDATE webhook_outbox SET claimed_until = $1 \
                         WHERE id = $2 AND (claimed_until IS NULL OR claimed_until <= $3) \
                         RETURNING {WEBHOOK_COLUMNS}"
                    );
                    let row: Option<WebhookRow> = sqlx::query_as(&sql)
                        .bind(millis(claim_until))
                        .bind(id)
                        .bind(millis(now))
                        .fetch_optional(&self.pool)
                        .await?;
                    claimed.extend(row.map(WebhookDelivery::from));
                }
                Ok(claimed)
            }

            async fn record_webhook_attempt(
                &self,
                id: i64,
                now: DateTime<Utc>,
                outcome: &DeliveryOutcome,
            ) -> Result<(), StoreError> {
                let query = match outcome {
                    DeliveryOutcome::Delivered { status } => sqlx::query(
                        "UPDATE webhook_outbox SET attempts = attempts + 1, delivered_at = $1, \
                         last_status = $2, last_error = NULL, claimed_until = NULL WHERE id = $3",
                    )
                    .bind(millis(now))
                    .bind(*status)
                    .bind(id),
                    DeliveryOutcome::Failed {
                        status,
                        error,
                        retry_at: Some(retry_at),
                    } => sqlx::query(
                        "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = $1, \
                         last_status = $2, last_error = $3, claimed_until = NULL WHERE id = $4",
                    )
                    .bind(millis(*retry_at))
                    .bind(*status)
                    .bind(error.as_str())
                    .bind(id),
                    DeliveryOutcome::Failed {
                        status,
                        error,
                        retry_at: None,
                    } => sqlx::query(
                        "UPDATE webhook_outbox SET attempts = attempts + 1, failed_at = $1, \
                         last_status = $2, last_error = $3, claimed_until = NULL WHERE id = $4",
                    )
                    .bind(millis(now))
                    .bind(*status)
                    .bind(error.as_str())
                    .bind(id),
                };
                query.execute(&self.pool).await?;
                Ok(())
            }

            async fn list_webhook_deliveries(
                &self,
                status: Option<&str>,
                limit: i64,
            ) -> Result<Vec<WebhookDelivery>, StoreError> {
                let filter = match status {
                    Some("pending") => "WHERE delivered_at IS NULL AND failed_at IS NULL",
                    Some("delivered") => "WHERE delivered_at IS NOT NULL",
                    Some("failed") => "WHERE failed_at IS NOT NULL",
                    _ => "",
                };
                let sql = format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhook_outbox {filter} ORDER BY id DESC LIMIT $1"
                );
                let rows: Vec<WebhookRow> = sqlx::query_as(&sql)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(WebhookDelivery::from).collect())
            }

            async fn delete_expired_oauth_sessions(
                &self,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM oauth_sessions WHERE expires_at <= $1")
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                let connect = sqlx::query("DELETE FROM connect_sessions WHERE expires_at <= $1")
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() + connect.rows_affected())
            }

            async fn prune_webhooks(
                &self,
                finished_before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM webhook_outbox WHERE delivered_at < $1 OR failed_at < $1",
                )
                .bind(millis(finished_before))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn try_lock_refresh(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                holder: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // The conditional upsert returns a row only when the lease was free or expired.
                let sql = format!(
                    "INSERT INTO refresh_locks (provider_config_key, connection_id, holder, expires_at) \
                     VALUES ($1, $2, $3, $4) {TAKE_FREE_LEASE} RETURNING holder"
                );
                let taken: Option<String> = sqlx::query_scalar(&sql)
                .bind(provider_config_key)
                .bind(connection_id)
                .bind(holder)
                .bind(millis(until))
                .bind(millis(now))
                .fetch_optional(&self.pool)
                .await?;
                Ok(taken.is_some())
            }

            async fn renew_refresh_lock(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                holder: &str,
                until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // Even an expired lease is renewed while nobody else has taken it: no one else
                // can have refreshed without taking it first.
                let done = sqlx::query(
                    "UPDATE refresh_locks SET expires_at = $1 \
                     WHERE provider_config_key = $2 AND connection_id = $3 AND holder = $4",
                )
                .bind(millis(until))
                .bind(provider_config_key)
                .bind(connection_id)
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn unlock_refresh(
                &self,
                provider_config_key: &str,
                connection_id: &str,
                holder: &str,
            ) -> Result<(), StoreError> {
                // The row stays: on PostgreSQL, a lease row that does not exist was never held
                // (see `lock_refresh_and_read` there). `settled` is unknown after this release.
                let sql = format!(
                    "UPDATE refresh_locks SET {RELEASED_LEASE}, settled = NULL \
                     WHERE provider_config_key = $1 AND connection_id = $2 AND holder = $3"
                );
                sqlx::query(&sql)
                .bind(provider_config_key)
                .bind(connection_id)
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn verify_encryption_keys(&self) -> Result<(), StoreError> {
                let registered: Vec<(String, String)> = sqlx::query_as(
                    "SELECT key_id, canary FROM encryption_keys WHERE retired_at IS NULL",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut bound = false;
                for (key_id, canary) in &registered {
                    if !self.cipher.has_key(key_id) {
                        return Err(CipherError::UnknownKey {
                            key_id: key_id.clone(),
                        }
                        .into());
                    }
                    bound |= self.cipher.open(canary, CANARY_CONTEXT)? == CANARY_BOUND;
                }
                if let Some(primary) = self.cipher.primary_key_id() {
                    // Before the check value says so: a start cut short does it again.
                    self.authenticate_rows(!bound, registered.is_empty()).await?;
                    sqlx::query(
                        "INSERT INTO encryption_keys (key_id, canary, created_at) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (key_id) DO UPDATE SET retired_at = NULL, canary = excluded.canary",
                    )
                    .bind(primary)
                    .bind(self.cipher.seal(CANARY_BOUND, CANARY_CONTEXT)?)
                    .bind(millis(Utc::now()))
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            }

            async fn rotate_encryption(&self) -> Result<RotationReport, StoreError> {
                let cipher = &self.cipher;
                let Some(primary) = cipher.primary_key_id() else {
                    return Err(CipherError::NoKey.into());
                };
                let mut report = RotationReport::default();
                let mut count = |done: bool| {
                    if done {
                        report.resealed += 1
                    } else {
                        report.current += 1
                    }
                };

                let sql = format!("SELECT {CONFIG_COLUMNS} FROM provider_configs ORDER BY id");
                let configs: Vec<ConfigRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                for row in configs {
                    let context = row.context();
                    let (key, stored) = (row.unique_key, row.oauth_client_secret);
                    if !is_sealed(&stored) {
                        // Refused when read (see `authenticate_rows`); sealing it now would
                        // vouch for whatever was written with it.
                        tracing::warn!(provider_config_key = %key, "a client secret is stored unencrypted: left as is, and refused");
                        continue;
                    }
                    let Some(sealed) = reseal(cipher, &stored, &context)? else {
                        count(false);
                        continue;
                    };
                    let done = sqlx::query(
                        "UPDATE provider_configs SET oauth_client_secret = $1                          WHERE unique_key = $2 AND oauth_client_secret = $3",
                    )
                    .bind(sealed)
                    .bind(&key)
                    .bind(&stored)
                    .execute(&self.pool)
                    .await?;
                    count(done.rows_affected() > 0);
                }

                // Connections in batches, so a million rows never sit in memory at once.
                let mut after = 0i64;
                loop {
                    let sql = format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id > $1 ORDER BY id LIMIT 500"
                    );
                    let batch: Vec<ConnectionRow> =
                        sqlx::query_as(&sql).bind(after).fetch_all(&self.pool).await?;
                    let Some(last) = batch.last() else { break };
                    after = last.id;
                    for row in batch {
                        let context = row.context();
                        let (id, stored) = (row.id, row.credentials);
                        if !is_sealed(&stored) {
                            tracing::warn!(provider_config_key = %row.provider_config_key, connection_id = %row.connection_id, "credentials are stored unencrypted: left as is, and refused");
                            continue;
                        }
                        let Some(sealed) = reseal(cipher, &stored, &context)? else {
                            count(false);
                            continue;
                        };
                        // Compare-and-set: a refresh that wrote in between wins (it sealed with
                        // the primary key already).
                        let done = sqlx::query(
                            "UPDATE connections SET credentials = $1                              WHERE id = $2 AND credentials = $3",
                        )
                        .bind(sealed)
                        .bind(id)
                        .bind(&stored)
                        .execute(&self.pool)
                        .await?;
                        count(done.rows_affected() > 0);
                    }
                }

                let sessions: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT state, code_verifier, request_token_secret FROM oauth_sessions",
                )
                .fetch_all(&self.pool)
                .await?;
                for (state, verifier, token_secret) in sessions {
                    for (column, stored) in [
                        ("code_verifier", verifier),
                        ("request_token_secret", token_secret),
                    ] {
                        let Some(stored) = stored else { continue };
                        let Some(sealed) =
                            reseal(cipher, &stored, &session_context(column, &state))?
                        else {
                            count(false);
                            continue;
                        };
                        let sql = format!(
                            "UPDATE oauth_sessions SET {column} = $1                              WHERE state = $2 AND {column} = $3"
                        );
                        let done = sqlx::query(&sql)
                            .bind(sealed)
                            .bind(&state)
                            .bind(&stored)
                            .execute(&self.pool)
                            .await?;
                        count(done.rows_affected() > 0);
                    }
                }

                let registered: Vec<(String,)> = sqlx::query_as(
                    "SELECT key_id FROM encryption_keys WHERE retired_at IS NULL AND key_id <> $1",
                )
                .bind(primary)
                .fetch_all(&self.pool)
                .await?;
                for (key_id,) in registered {
                    let pattern = format!("enc:v1:{key_id}:%");
                    let (in_use,): (i64,) = sqlx::query_as(
                        "SELECT (SELECT COUNT(*) FROM provider_configs WHERE oauth_client_secret LIKE $1)                          + (SELECT COUNT(*) FROM connections WHERE credentials LIKE $1)                          + (SELECT COUNT(*) FROM oauth_sessions                             WHERE code_verifier LIKE $1 OR request_token_secret LIKE $1)",
                    )
                    .bind(&pattern)
                    .fetch_one(&self.pool)
                    .await?;
                    if in_use == 0 {
                        sqlx::query("UPDATE encryption_keys SET retired_at = $1 WHERE key_id = $2")
                            .bind(millis(Utc::now()))
                            .bind(&key_id)
                            .execute(&self.pool)
                            .await?;
                        report.retired.push(key_id);
                    }
                }
                // Same plaintext, new ciphertext: nothing cached is wrong, but nothing cached
                // should outlive a rotation either.
                self.cache.evict_all();
                self.purge_freed_pages().await?;
                Ok(report)
            }

            $($backend_specific)*
        }
    };
}

sql_store!(SqliteStore, sqlx::Sqlite, {
    /// Copies the log back into the file (where `secure_delete` zeroed the deleted rows) and
    /// truncates the log, so the deleted values are in neither file.
    async fn forget_deleted(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "could not checkpoint the SQLite log after a deletion");
        }
    }

    /// Rebuilds the file and empties the WAL, so no page still holds a value as it was before.
    async fn purge_freed_pages(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
});
sql_store!(PostgresStore, sqlx::Postgres, {
    /// One statement instead of two. Its read is the statement's snapshot, taken when it started,
    /// which can predate the last write of a holder that released the lease while this statement
    /// waited for it (READ COMMITTED). So each holder leaves in the lease row, as it releases, the
    /// `xmin` of the connection version it wrote (`settled`, see `update_credentials_and_unlock`);
    /// the read is used only when it is that version. A lease row that did not exist has never
    /// been held (rows are kept on release; a crash empties the UNLOGGED table, which is an expiry),
    /// so the version this statement sees is settled then. Otherwise the connection is read again,
    /// now that the lease is ours.
    async fn lock_refresh_and_read(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<super::LeaseTake, StoreError> {
        use sqlx::{FromRow, Row};
        // Built once: the connection's columns, qualified for the join.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "WITH lease AS ( \
                   INSERT INTO refresh_locks (provider_config_key, connection_id, holder, \
                     expires_at, settled) \
                   VALUES ($1, $2, $3, $4, (SELECT xmin FROM connections \
                     WHERE provider_config_key = $1 AND connection_id = $2)) \
                   {TAKE_FREE_LEASE} RETURNING settled) \
                 SELECT COALESCE(lease.settled = c.xmin, FALSE) AS settled_read, c.id AS present, \
                   {columns} \
                 FROM lease LEFT JOIN connections c \
                   ON c.provider_config_key = $1 AND c.connection_id = $2",
                columns = CONNECTION_COLUMNS
                    .split(", ")
                    .map(|column| format!("c.{}", column.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        let Some(row) = sqlx::query(SQL.as_str())
            .bind(provider_config_key)
            .bind(connection_id)
            .bind(holder)
            .bind(millis(until))
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(super::LeaseTake::Busy);
        };
        let settled_read: bool = row.try_get("settled_read")?;
        let present: Option<i64> = row.try_get("present")?;
        let connection = if !settled_read {
            self.get_connection(provider_config_key, connection_id)
                .await?
        } else if present.is_some() {
            Some(ConnectionRow::from_row(&row)?.open(&self.cipher)?)
        } else {
            None
        };
        Ok(super::LeaseTake::Taken(connection))
    }

    /// The write and the release in one statement (one transaction); the release leaves the
    /// written version's `xmin` for the next holder (see `lock_refresh_and_read`), or NULL
    /// (unknown) when nothing was written.
    async fn update_credentials_and_unlock(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        credentials: &Credentials,
        refreshed_at: Option<DateTime<Utc>>,
        obtained_at: DateTime<Utc>,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let Some(bound) = self
            .bound_columns(provider_config_key, connection_id, refreshed_at)
            .await?
        else {
            // Replaced or gone: nothing to write, the lease goes back as it would below.
            if let Err(e) = self
                .unlock_refresh(provider_config_key, connection_id, holder)
                .await
            {
                tracing::warn!(error = %e, "could not release a refresh lease");
            }
            return Ok(false);
        };
        let sql = format!(
            "WITH written AS ({update} RETURNING xmin), \
             released AS (UPDATE refresh_locks SET {RELEASED_LEASE}, \
               settled = (SELECT xmin FROM written) \
               WHERE provider_config_key = $3 AND connection_id = $4 AND holder = $9) \
             SELECT COUNT(*) FROM written",
            update = update_credentials_sql()
        );
        let written: i64 = bind_credentials_update!(
            sqlx::query_scalar(&sql),
            &self.cipher,
            provider_config_key,
            connection_id,
            credentials,
            refreshed_at,
            obtained_at,
            bound
        )
        .bind(holder)
        .fetch_one(&self.pool)
        .await?;
        self.cache
            .evict_connection(provider_config_key, connection_id);
        Ok(written > 0)
    }

    async fn publish_ws_frame(&self, client_id: &str, frame: &str) -> Result<bool, StoreError> {
        let payload = serde_json::json!({ "id": client_id, "frame": frame }).to_string();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(WS_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn subscribe_ws_frames(&self) -> Result<Option<WsFrames>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(WS_CHANNEL).await?;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        let Ok(payload) = serde_json::from_str::<Value>(notification.payload())
                        else {
                            continue;
                        };
                        if let (Some(id), Some(frame)) =
                            (payload["id"].as_str(), payload["frame"].as_str())
                        {
                            if sender.send((id.to_string(), frame.to_string())).is_err() {
                                break;
                            }
                        }
                    }
                    // PgListener reconnects on the next recv; don't spin while the DB is down.
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the PostgreSQL notification channel");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(receiver))
    }
});

/// PostgreSQL NOTIFY channel carrying flow results to the replica that holds the WebSocket.
const WS_CHANNEL: &str = "nango_ws_frames";
/// PostgreSQL NOTIFY channel on which triggers announce every changed connection and config
/// (migration 0008), whoever changed it.
const CHANGES_CHANNEL: &str = "nango_changes";

/// What a change announcement names (the payload of `CHANGES_CHANNEL`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Changed {
    Connection(String, String),
    Config(String),
}

/// Evicts from `cache` what the triggers announce, for as long as the store lives. The cache is
/// on only while listening: notifications sent while the channel was down are lost, so each
/// (re)connection starts with an empty cache.
async fn feed_cache_evictions(
    pool: sqlx::PgPool,
    cache: std::sync::Arc<ReadCache>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(CHANGES_CHANNEL).await?;
            cache.set_enabled(true);
            loop {
                // `None`: the connection was lost (and notifications with it).
                let Some(notification) = listener.try_recv().await? else {
                    return Ok::<(), sqlx::Error>(());
                };
                match serde_json::from_str::<Changed>(notification.payload()) {
                    Ok(Changed::Connection(key, id)) => cache.evict_connection(&key, &id),
                    Ok(Changed::Config(key)) => cache.evict_config(&key),
                    // Too long to announce by name (or unknown): forget everything.
                    Err(_) => cache.evict_all(),
                }
            }
        };
        let outcome = tokio::select! {
            outcome = listening => outcome,
            _ = &mut stopped => return,
        };
        cache.set_enabled(false);
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "lost the PostgreSQL change channel; read cache off until it is back");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut stopped => return,
        }
    }
}

/// How long a pooled connection counts as alive after it was last returned to the pool: sqlx
/// checks every connection (a round trip) when it is returned, so one handed out again within
/// this window needs no second check before use. Checking on every checkout as well (sqlx's
/// default) cost a third round trip per statement under load, on the hot path's misses and on
/// every refresh; under load a connection comes back within milliseconds, so the window is kept
/// short: a connection cut inside it fails its next statement once and is then closed (the
/// check when it is returned fails).
const RECENTLY_CHECKED: Duration = Duration::from_millis(100);

/// The checkout check: a round trip only for connections idle longer than `RECENTLY_CHECKED`.
async fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    idle: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if idle.idle_for > RECENTLY_CHECKED {
        conn.ping().await?;
    }
    Ok(true)
}

impl SqliteStore {
    /// Opens (creating if missing) a SQLite file in WAL mode and migrates it.
    /// `cache_capacity`: connections kept decrypted in memory for the hot path (0: none).
    pub async fn connect(
        url: &str,
        cipher: std::sync::Arc<Cipher>,
        cache_capacity: usize,
    ) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Deleted and overwritten values (a deleted config's secret, a refreshed token) are
            // zeroed in their pages instead of lingering in free space.
            .pragma("secure_delete", "ON");
        if super::sqlite_files::names_a_writable_file(url, options.get_filename()) {
            super::sqlite_files::prepare(options.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .before_acquire(|conn, idle| Box::pin(ping_if_idle(conn, idle)))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // One process owns a SQLite file (see `cache`): its own writes are all the changes.
        let cache = std::sync::Arc::new(ReadCache::new(cache_capacity, true));
        Ok(SqliteStore {
            pool,
            cipher,
            cache,
            _stop_listening: None,
        })
    }
}

impl PostgresStore {
    /// `cache_capacity`: connections kept decrypted in memory for the hot path (0: none).
    pub async fn connect(
        url: &str,
        cipher: std::sync::Arc<Cipher>,
        cache_capacity: usize,
    ) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, idle| Box::pin(ping_if_idle(conn, idle)))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // Off until the listener hears other replicas' changes.
        let cache = std::sync::Arc::new(ReadCache::new(cache_capacity, false));
        let stop_listening = (cache_capacity > 0).then(|| {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            tokio::spawn(feed_cache_evictions(pool.clone(), cache.clone(), stopped));
            stop
        });
        Ok(PostgresStore {
            pool,
            cipher,
            cache,
            _stop_listening: stop_listening,
        })
    }
}
