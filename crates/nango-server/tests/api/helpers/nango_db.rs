//! Real Nango databases in PostgreSQL, for the tests of `nango import:nango --from <database>`:
//! a fresh database per test with Nango's tables (0.9 or current, as
//! `shared/reference/nango-db-formats.md` lists them), and builders for its rows, sealed the way
//! Nango seals them when given a key.
//!
//! The server is `NANGO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! these tests fail, never skip, when it cannot be reached.

use super::PostgresDatabase;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Environment ids of a fresh current database (account 0).
pub const PROD: i64 = 1;
pub const DEV: i64 = 2;

/// Which Nango's tables to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Layout09,
    Current,
}

/// A fresh database `nango_src_<uuid>` shaped like a Nango server's, dropped with the value.
pub struct NangoDb {
    pub layout: Layout,
    url: String,
    pool: PgPool,
    // Dropped last (`WITH (FORCE)` also ends the pool's connections).
    _database: PostgresDatabase,
}

fn admin_url() -> String {
    std::env::var("NANGO_TEST_POSTGRES_URL")
        .ok()
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string())
}

impl NangoDb {
    /// A database with Nango's tables of `layout` and their initial rows (account 0; current:
    /// environments `prod` = 1 and `dev` = 2).
    pub async fn create(layout: Layout) -> NangoDb {
        let db = NangoDb::create_bare(layout).await;
        let ddl = match layout {
            Layout::Layout09 => DDL_09,
            Layout::Current => DDL_CURRENT,
        };
        sqlx::raw_sql(ddl)
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("create Nango's {layout:?} tables: {e}"));
        db
    }

    /// A database without any Nango table (only a `nango` schema with an unrelated table).
    pub async fn create_empty() -> NangoDb {
        let db = NangoDb::create_bare(Layout::Current).await;
        sqlx::raw_sql("CREATE SCHEMA nango; CREATE TABLE nango.other (id serial PRIMARY KEY);")
            .execute(&db.pool)
            .await
            .unwrap();
        db
    }

    async fn create_bare(layout: Layout) -> NangoDb {
        let (database, url) = PostgresDatabase::create(&admin_url()).await;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect to the Nango source database");
        NangoDb {
            layout,
            url,
            pool,
            _database: database,
        }
    }

    /// The URL an import reads.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs SQL on the source (to damage a row, ...).
    pub async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql)
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Every row of every table of schema `nango`, as JSON text: equal before and after an
    /// import means the import wrote nothing.
    pub async fn dump(&self) -> String {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = 'nango' \
             ORDER BY tablename",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let mut dump = String::new();
        for table in tables {
            let rows: Option<String> = sqlx::query_scalar(&format!(
                "SELECT jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text)::text FROM nango.\"{table}\" t"
            ))
            .fetch_one(&self.pool)
            .await
            .unwrap();
            dump += &format!("{table}: {}\n", rows.unwrap_or_default());
        }
        dump
    }

    pub async fn insert_config(&self, config: NangoConfig) -> i64 {
        match self.layout {
            Layout::Layout09 => sqlx::query_scalar(
                "INSERT INTO nango._nango_configs \
                 (unique_key, provider, oauth_client_id, oauth_client_secret, oauth_scopes) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id::int8",
            )
            .bind(&config.unique_key)
            .bind(&config.provider)
            .bind(config.client_id.clone().unwrap_or_default())
            .bind(config.client_secret.clone().unwrap_or_default())
            .bind(&config.scopes)
            .fetch_one(&self.pool)
            .await
            .unwrap(),
            Layout::Current => {
                let (secret, iv, tag) = match (&config.client_secret, &config.key) {
                    (Some(secret), Some(key)) => {
                        let (ciphertext, iv, tag) = nango_encrypt(key, secret);
                        (Some(ciphertext), Some(iv), Some(tag))
                    }
                    (secret, _) => (secret.clone(), None, None),
                };
                sqlx::query_scalar(
                    "INSERT INTO nango._nango_configs (unique_key, provider, oauth_client_id, \
                     oauth_client_secret, oauth_scopes, oauth_client_secret_iv, \
                     oauth_client_secret_tag, environment_id, display_name, \
                     shared_credentials_id, deleted, deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                     CASE WHEN $11 THEN now() END) RETURNING id::int8",
                )
                .bind(&config.unique_key)
                .bind(&config.provider)
                .bind(&config.client_id)
                .bind(secret)
                .bind(&config.scopes)
                .bind(iv)
                .bind(tag)
                .bind(config.environment_id)
                .bind(&config.display_name)
                .bind(config.shared_credentials_id)
                .bind(config.deleted)
                .fetch_one(&self.pool)
                .await
                .unwrap()
            }
        }
    }

    pub async fn insert_connection(&self, connection: NangoConnection) -> i64 {
        let json_text = |value: &Option<Value>| value.as_ref().map(Value::to_string);
        match self.layout {
            Layout::Layout09 => sqlx::query_scalar(
                "INSERT INTO nango._nango_connections (provider_config_key, connection_id, \
                 credentials, connection_config, metadata, created_at, updated_at) \
                 VALUES ($1, $2, $3::text::json, $4::text::jsonb, $5::text::jsonb, \
                 COALESCE($6, now()), COALESCE($7, now())) RETURNING id::int8",
            )
            .bind(&connection.provider_config_key)
            .bind(&connection.connection_id)
            .bind(connection.credentials.to_string())
            .bind(json_text(&connection.connection_config))
            .bind(json_text(&connection.metadata))
            .bind(connection.created_at)
            .bind(connection.updated_at)
            .fetch_one(&self.pool)
            .await
            .unwrap(),
            Layout::Current => {
                let (credentials, iv, tag) = match &connection.key {
                    Some(key) => {
                        let (ciphertext, iv, tag) =
                            nango_encrypt(key, &connection.credentials.to_string());
                        (
                            json!({ "encrypted_credentials": ciphertext }),
                            Some(iv),
                            Some(tag),
                        )
                    }
                    None => (connection.credentials.clone(), None, None),
                };
                let expires_at = connection.credentials["expires_at"]
                    .as_str()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.with_timezone(&Utc));
                sqlx::query_scalar(
                    "INSERT INTO nango._nango_connections (provider_config_key, connection_id, \
                     credentials, connection_config, metadata, credentials_iv, credentials_tag, \
                     environment_id, deleted, deleted_at, config_id, end_user_id, \
                     credentials_expires_at, last_refresh_success, tags, created_at, updated_at) \
                     VALUES ($1, $2, $3::text::json, $4::text::jsonb, $5::text::jsonb, $6, $7, \
                     $8, $9, CASE WHEN $9 THEN now() END, \
                     (SELECT id FROM nango._nango_configs c WHERE c.unique_key = $1 \
                      AND c.environment_id = $8 AND NOT c.deleted LIMIT 1), \
                     $10, $11, $12, $13::text::jsonb, COALESCE($14, now()), COALESCE($15, now())) \
                     RETURNING id::int8",
                )
                .bind(&connection.provider_config_key)
                .bind(&connection.connection_id)
                .bind(credentials.to_string())
                .bind(json_text(&connection.connection_config))
                .bind(json_text(&connection.metadata))
                .bind(iv)
                .bind(tag)
                .bind(connection.environment_id)
                .bind(connection.deleted)
                .bind(connection.end_user_id)
                .bind(expires_at)
                .bind(connection.last_refresh_success)
                .bind(connection.tags.to_string())
                .bind(connection.created_at)
                .bind(connection.updated_at)
                .fetch_one(&self.pool)
                .await
                .unwrap()
            }
        }
    }

    /// An `end_users` row (current databases); its `id` is what connections refer to.
    pub async fn insert_end_user(&self, user: NangoEndUser) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO nango.end_users (end_user_id, account_id, environment_id, email, \
             display_name, organization_id, organization_display_name, tags) \
             VALUES ($1, (SELECT account_id FROM nango._nango_environments WHERE id = $2), $2, \
             $3, $4, $5, $6, $7::text::jsonb) RETURNING id::int8",
        )
        .bind(&user.end_user_id)
        .bind(user.environment_id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.organization_id)
        .bind(&user.organization_display_name)
        .bind(user.tags.as_ref().map(Value::to_string))
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// A `providers_shared_credentials` row (Nango's preprovisioned OAuth app), its secret
    /// sealed with `key` when given.
    pub async fn insert_shared_credentials(
        &self,
        name: &str,
        client_id: &str,
        client_secret: &str,
        scopes: &str,
        key: Option<&str>,
    ) -> i64 {
        let mut credentials = json!({"oauth_client_id": client_id, "oauth_scopes": scopes});
        match key {
            Some(key) => {
                let (ciphertext, iv, tag) = nango_encrypt(key, client_secret);
                credentials["oauth_client_secret"] = ciphertext.into();
                credentials["oauth_client_secret_iv"] = iv.into();
                credentials["oauth_client_secret_tag"] = tag.into();
            }
            None => credentials["oauth_client_secret"] = client_secret.into(),
        }
        sqlx::query_scalar(
            "INSERT INTO nango.providers_shared_credentials (name, credentials) \
             VALUES ($1, $2::text::json) RETURNING id::int8",
        )
        .bind(name)
        .bind(credentials.to_string())
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// Records `key` as the database's encryption key, as Nango does at its first start with one.
    pub async fn set_key_hash(&self, key: &str) {
        sqlx::query(
            "INSERT INTO nango._nango_db_config (encryption_key_hash, encryption_complete) \
             VALUES ($1, true)",
        )
        .bind(nango_key_hash(key))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Deletes a connection the way Nango does (the row stays, marked).
    pub async fn soft_delete_connection(&self, provider_config_key: &str, connection_id: &str) {
        let done = sqlx::query(
            "UPDATE nango._nango_connections SET deleted = true, deleted_at = now() \
             WHERE provider_config_key = $1 AND connection_id = $2 AND NOT deleted",
        )
        .bind(provider_config_key)
        .bind(connection_id)
        .execute(&self.pool)
        .await
        .unwrap();
        assert_eq!(
            done.rows_affected(),
            1,
            "no live connection {connection_id}"
        );
    }

    /// An environment of account 0; its id.
    pub async fn add_environment(&self, name: &str) -> i64 {
        self.add_environment_in(0, name).await
    }

    /// An environment of `account` (created when missing); its id.
    pub async fn add_environment_in(&self, account: i64, name: &str) -> i64 {
        sqlx::query(
            "INSERT INTO nango._nango_accounts (id, name) VALUES ($1, 'Account ' || $1::text) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(account)
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query_scalar(
            "INSERT INTO nango._nango_environments (name, account_id) VALUES ($1, $2) \
             RETURNING id::int8",
        )
        .bind(name)
        .bind(account)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// Deletes an environment the way current Nango does (soft).
    pub async fn delete_environment(&self, id: i64) {
        sqlx::query(
            "UPDATE nango._nango_environments SET deleted = true, deleted_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

/// A fresh `NANGO_ENCRYPTION_KEY`.
pub fn random_key() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random bytes");
    STANDARD.encode(key)
}

/// Nango's `_nango_db_config.encryption_key_hash` of `key`.
pub fn nango_key_hash(key: &str) -> String {
    let mut hash = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        key.as_bytes(),
        b"X89FHEGqR3yNK0+v7rPWxQ==",
        310_000,
        &mut hash,
    );
    STANDARD.encode(hash)
}

/// Seals `plaintext` as Nango does: (ciphertext, iv, tag), each standard base64.
pub fn nango_encrypt(key: &str, plaintext: &str) -> (String, String, String) {
    let key = STANDARD.decode(key).expect("a base64 key");
    let aead = Aes256Gcm::new_from_slice(&key).expect("a 32-byte key");
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).expect("random bytes");
    let mut sealed = aead
        .encrypt(Nonce::from_slice(&iv), plaintext.as_bytes())
        .expect("encrypt");
    let tag = sealed.split_off(sealed.len() - 16);
    (
        STANDARD.encode(sealed),
        STANDARD.encode(iv),
        STANDARD.encode(tag),
    )
}

/// Nango's way of writing a `Date` into credentials: ISO-8601 UTC with milliseconds.
pub fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A `_nango_configs` row; defaults: an OAuth app with id, secret and scopes, in `prod`.
#[derive(Debug, Clone)]
pub struct NangoConfig {
    unique_key: String,
    provider: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<String>,
    environment_id: i64,
    display_name: Option<String>,
    shared_credentials_id: Option<i64>,
    key: Option<String>,
    deleted: bool,
}

impl NangoConfig {
    pub fn new(unique_key: &str, provider: &str) -> NangoConfig {
        NangoConfig {
            unique_key: unique_key.into(),
            provider: provider.into(),
            client_id: Some(format!("{unique_key}-client-id")),
            client_secret: Some(format!("{unique_key}-client-secret")),
            scopes: Some("read,write".into()),
            environment_id: PROD,
            display_name: None,
            shared_credentials_id: None,
            key: None,
            deleted: false,
        }
    }

    pub fn client_id(mut self, id: &str) -> Self {
        self.client_id = Some(id.into());
        self
    }

    pub fn client_secret(mut self, secret: &str) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    pub fn scopes(mut self, scopes: &str) -> Self {
        self.scopes = Some(scopes.into());
        self
    }

    /// No client id, secret nor scopes (NULL; 0.9: scopes only, the others are NOT NULL).
    pub fn without_app(mut self) -> Self {
        self.client_id = None;
        self.client_secret = None;
        self.scopes = None;
        self
    }

    pub fn no_scopes(mut self) -> Self {
        self.scopes = None;
        self
    }

    pub fn environment(mut self, id: i64) -> Self {
        self.environment_id = id;
        self
    }

    pub fn display_name(mut self, name: &str) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Takes its app from a `providers_shared_credentials` row (id, secret and scopes NULL here).
    pub fn shared_credentials(mut self, id: i64) -> Self {
        self.shared_credentials_id = Some(id);
        self.without_app()
    }

    /// Seals the client secret with `key`.
    pub fn encrypted(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn deleted(mut self) -> Self {
        self.deleted = true;
        self
    }
}

/// A `_nango_connections` row; defaults: OAuth 2 credentials with an access token only,
/// `{}` connection config and metadata, in `prod`, plaintext.
#[derive(Debug, Clone)]
pub struct NangoConnection {
    provider_config_key: String,
    connection_id: String,
    credentials: Value,
    connection_config: Option<Value>,
    metadata: Option<Value>,
    environment_id: i64,
    end_user_id: Option<i64>,
    tags: Value,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    last_refresh_success: Option<DateTime<Utc>>,
    key: Option<String>,
    deleted: bool,
}

impl NangoConnection {
    pub fn oauth2(provider_config_key: &str, connection_id: &str) -> NangoConnection {
        NangoConnection::with_credentials(
            provider_config_key,
            connection_id,
            json!({"type": "OAUTH2", "access_token": "access-token",
                   "raw": {"access_token": "access-token", "token_type": "bearer"}}),
        )
    }

    pub fn oauth1(provider_config_key: &str, connection_id: &str) -> NangoConnection {
        NangoConnection::with_credentials(
            provider_config_key,
            connection_id,
            json!({"type": "OAUTH1", "oauth_token": "token", "oauth_token_secret": "token-secret",
                   "raw": {"oauth_token": "token", "oauth_token_secret": "token-secret"}}),
        )
    }

    /// Any credentials object (or not an object, to test what is refused).
    pub fn with_credentials(
        provider_config_key: &str,
        connection_id: &str,
        credentials: Value,
    ) -> NangoConnection {
        NangoConnection {
            provider_config_key: provider_config_key.into(),
            connection_id: connection_id.into(),
            credentials,
            connection_config: Some(json!({})),
            metadata: Some(json!({})),
            environment_id: PROD,
            end_user_id: None,
            tags: json!({}),
            created_at: None,
            updated_at: None,
            last_refresh_success: None,
            key: None,
            deleted: false,
        }
    }

    pub fn access_token(mut self, token: &str) -> Self {
        self.credentials["access_token"] = token.into();
        self.credentials["raw"]["access_token"] = token.into();
        self
    }

    pub fn refresh_token(mut self, token: &str) -> Self {
        self.credentials["refresh_token"] = token.into();
        self.credentials["raw"]["refresh_token"] = token.into();
        self
    }

    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.credentials["expires_at"] = iso(at).into();
        self
    }

    /// The stored credentials so far (what an import should give back).
    pub fn credentials(&self) -> &Value {
        &self.credentials
    }

    pub fn connection_config(mut self, config: Value) -> Self {
        self.connection_config = Some(config);
        self
    }

    /// NULL, as in 0.9 rows older than the column.
    pub fn no_connection_config(mut self) -> Self {
        self.connection_config = None;
        self
    }

    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// NULL, as in 0.9 rows older than the column.
    pub fn no_metadata(mut self) -> Self {
        self.metadata = None;
        self
    }

    pub fn environment(mut self, id: i64) -> Self {
        self.environment_id = id;
        self
    }

    /// Belongs to the `end_users` row `id` (as [`NangoDb::insert_end_user`] returns it).
    pub fn end_user(mut self, id: i64) -> Self {
        self.end_user_id = Some(id);
        self
    }

    pub fn tags(mut self, tags: Value) -> Self {
        self.tags = tags;
        self
    }

    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    pub fn updated_at(mut self, at: DateTime<Utc>) -> Self {
        self.updated_at = Some(at);
        self
    }

    pub fn last_refresh_success(mut self, at: DateTime<Utc>) -> Self {
        self.last_refresh_success = Some(at);
        self
    }

    /// Seals the credentials with `key` (current databases).
    pub fn encrypted(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn deleted(mut self) -> Self {
        self.deleted = true;
        self
    }
}

/// An `end_users` row, in `prod` unless told.
#[derive(Debug, Clone)]
pub struct NangoEndUser {
    end_user_id: String,
    environment_id: i64,
    email: Option<String>,
    display_name: Option<String>,
    organization_id: Option<String>,
    organization_display_name: Option<String>,
    tags: Option<Value>,
}

impl NangoEndUser {
    pub fn new(end_user_id: &str) -> NangoEndUser {
        NangoEndUser {
            end_user_id: end_user_id.into(),
            environment_id: PROD,
            email: None,
            display_name: None,
            organization_id: None,
            organization_display_name: None,
            tags: None,
        }
    }

    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn display_name(mut self, name: &str) -> Self {
        self.display_name = Some(name.into());
        self
    }

    pub fn organization(mut self, id: &str, display_name: Option<&str>) -> Self {
        self.organization_id = Some(id.into());
        self.organization_display_name = display_name.map(Into::into);
        self
    }

    pub fn tags(mut self, tags: Value) -> Self {
        self.tags = Some(tags);
        self
    }

    pub fn environment(mut self, id: i64) -> Self {
        self.environment_id = id;
        self
    }
}

// Nango 0.9.0's tables after its 9 migrations (schema `nango`, self-hosted account 0).
const DDL_09: &str = r#"
CREATE SCHEMA nango;
CREATE TABLE nango._nango_accounts (
    id serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    secret_key uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    public_key uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    email varchar(255) NOT NULL UNIQUE,
    callback_url text
);
INSERT INTO nango._nango_accounts (id, email) VALUES (0, 'self-hosted');
CREATE TABLE nango._nango_configs (
    id serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    unique_key varchar(255) NOT NULL,
    provider varchar(255) NOT NULL,
    oauth_client_id varchar(255) NOT NULL,
    oauth_client_secret varchar(255) NOT NULL,
    oauth_scopes text,
    account_id integer NOT NULL DEFAULT 0 REFERENCES nango._nango_accounts (id),
    UNIQUE (unique_key, account_id)
);
CREATE TABLE nango._nango_connections (
    id serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    provider_config_key varchar(255) NOT NULL,
    connection_id varchar(255) NOT NULL,
    credentials json NOT NULL,
    connection_config jsonb,
    account_id integer NOT NULL DEFAULT 0 REFERENCES nango._nango_accounts (id),
    metadata jsonb,
    CONSTRAINT _nango_connections_provider_config_key_connection_id_account_id
        UNIQUE (provider_config_key, connection_id, account_id)
);
"#;

// Current Nango's tables, the columns an import meets, in Nango's order. Nango's unique
// constraints are NULLS NOT DISTINCT (PostgreSQL 15+); plain UNIQUE keeps older servers usable
// and differs only for soft-deleted rows.
const DDL_CURRENT: &str = r#"
CREATE SCHEMA nango;
CREATE TABLE nango._nango_accounts (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO nango._nango_accounts (id, name) VALUES (0, 'My Organization');
CREATE TABLE nango._nango_environments (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    account_id integer NOT NULL REFERENCES nango._nango_accounts (id),
    secret_key varchar(255) NOT NULL DEFAULT gen_random_uuid()::text,
    public_key uuid DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted boolean DEFAULT false,
    deleted_at timestamptz,
    is_production boolean NOT NULL DEFAULT false
);
INSERT INTO nango._nango_environments (id, name, account_id, is_production)
    VALUES (1, 'prod', 0, true), (2, 'dev', 0, false);
SELECT setval('nango._nango_environments_id_seq', 2);
CREATE TABLE nango.providers_shared_credentials (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL UNIQUE,
    credentials json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE nango._nango_configs (
    id serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    unique_key varchar(255) NOT NULL,
    provider varchar(255) NOT NULL,
    oauth_client_id varchar(512),
    oauth_client_secret text,
    oauth_scopes text,
    oauth_client_secret_iv varchar(255),
    oauth_client_secret_tag varchar(255),
    environment_id integer REFERENCES nango._nango_environments (id),
    deleted boolean DEFAULT false,
    deleted_at timestamptz,
    app_link varchar(255),
    custom json,
    missing_fields text[] NOT NULL DEFAULT '{}',
    display_name varchar(255),
    forward_webhooks boolean DEFAULT true,
    shared_credentials_id integer REFERENCES nango.providers_shared_credentials (id),
    UNIQUE (unique_key, environment_id, deleted_at)
);
CREATE TABLE nango.end_users (
    id serial PRIMARY KEY,
    end_user_id varchar(255) NOT NULL,
    account_id integer NOT NULL REFERENCES nango._nango_accounts (id),
    environment_id integer NOT NULL REFERENCES nango._nango_environments (id),
    email varchar(255),
    display_name varchar(255),
    organization_id varchar(255),
    organization_display_name varchar(255),
    tags jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE nango._nango_connections (
    id serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    provider_config_key varchar(255) NOT NULL,
    connection_id varchar(255) NOT NULL,
    credentials json NOT NULL,
    connection_config jsonb,
    metadata jsonb,
    credentials_iv varchar(255),
    credentials_tag varchar(255),
    environment_id integer REFERENCES nango._nango_environments (id),
    deleted boolean DEFAULT false,
    deleted_at timestamptz,
    last_fetched_at timestamptz,
    config_id integer REFERENCES nango._nango_configs (id),
    end_user_id integer REFERENCES nango.end_users (id),
    credentials_expires_at timestamptz,
    last_refresh_success timestamptz,
    last_refresh_failure timestamptz,
    refresh_attempts smallint,
    refresh_exhausted boolean DEFAULT false,
    last_execution_at timestamptz,
    tags jsonb NOT NULL DEFAULT '{}',
    webhook_url_override text,
    CONSTRAINT _nango_connections_provider_config_key_connection_id_environmen
        UNIQUE (provider_config_key, connection_id, environment_id, deleted_at)
);
CREATE TABLE nango._nango_db_config (
    encryption_key_hash varchar(255) PRIMARY KEY,
    encryption_complete boolean DEFAULT false
);
"#;
