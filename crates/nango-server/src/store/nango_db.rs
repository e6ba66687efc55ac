//! SQL of a Nango database, read only (for `nango import:nango`): which layout it has (0.9 or
//! current), which environment to read, and its rows as Nango wrote them. Opening secrets and
//! converting rows is `crate::nango_import::database`'s work.
//!
//! Rows are read as `to_jsonb(row)`, so a column that one Nango version has and another lacks
//! (`deleted`, `tags`, `config_id`, `end_user_id`, `shared_credentials_id`, ...) is simply a
//! missing key, never a failing query.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// A row as `to_jsonb` gives it: column name to value, timestamps as ISO-8601 strings.
pub type NangoRow = Map<String, Value>;

/// Nango's schema when `NANGO_DB_SCHEMA` is not set (and the only one 0.9 knew).
pub const DEFAULT_SCHEMA: &str = "nango";

/// How long an unreachable host may keep the import waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which Nango wrote the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NangoDbLayout {
    /// Nango 0.9: `_nango_configs` and `_nango_connections`, no environments, plaintext.
    V09,
    /// Current Nango: `_nango_environments`, soft deletes, encryption at rest.
    Current,
}

/// The environment read from a current database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NangoEnvironment {
    pub id: i64,
    pub name: String,
}

/// Everything the import needs from a Nango database, as stored (soft-deleted rows included,
/// secrets still encrypted).
#[derive(Clone)]
pub struct NangoDatabaseRows {
    pub layout: NangoDbLayout,
    /// `None` for 0.9.
    pub environment: Option<NangoEnvironment>,
    /// `_nango_db_config.encryption_key_hash`, when the database has one.
    pub key_hash: Option<String>,
    /// `_nango_configs` rows (of the environment).
    pub configs: Vec<NangoRow>,
    /// `_nango_connections` rows (of the environment).
    pub connections: Vec<NangoRow>,
    /// `end_users` rows of the environment (current databases that have the table).
    pub end_users: Vec<NangoRow>,
    /// The `providers_shared_credentials` rows the configs refer to.
    pub shared_credentials: Vec<NangoRow>,
}

// The rows hold client secrets and tokens (plaintext in 0.9): only their counts are printable.
impl fmt::Debug for NangoDatabaseRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NangoDatabaseRows")
            .field("layout", &self.layout)
            .field("environment", &self.environment)
            .field("key_hash", &self.key_hash.is_some())
            .field("configs", &self.configs.len())
            .field("connections", &self.connections.len())
            .field("end_users", &self.end_users.len())
            .field("shared_credentials", &self.shared_credentials.len())
            .finish()
    }
}

/// Why a Nango database could not be read. Messages name the database by its URL without the
/// password.
#[derive(Debug, thiserror::Error)]
pub enum NangoDbError {
    #[error("schema {0:?} is not a plain identifier (a letter or _, then letters, digits or _)")]
    BadSchema(String),
    #[error("cannot connect to the Nango database {url}: {message}")]
    Connect { url: String, message: String },
    #[error("schema \"{schema}\" of {url} has neither _nango_environments nor _nango_connections: it is not a Nango database (Nango's schema is NANGO_DB_SCHEMA, \"nango\" by default)")]
    NotNango { url: String, schema: String },
    #[error("the Nango database has no environment {wanted:?}; it has: {}", list_or_none(.existing))]
    NoEnvironment {
        wanted: String,
        existing: Vec<String>,
    },
    #[error("several accounts of the Nango database have an environment {wanted:?} (ids {}): give the id of the one to import instead of its name", .ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
    AmbiguousEnvironment { wanted: String, ids: Vec<i64> },
    #[error("reading the Nango database {url}: {message}")]
    Query { url: String, message: String },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// `url` with its password replaced by `***` (in the userinfo and in a `password` query
/// parameter), for messages and import records. An unparseable URL is not echoed at all: it
/// could be mostly password.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(an unparseable database URL)".to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// The URL's password in every form a driver message could quote it, to scrub them out.
fn passwords_of(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(password) = parsed.password() {
        found.push(password.to_string());
        if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
            found.push(decoded.into_owned());
        }
    }
    for (k, v) in parsed.query_pairs() {
        if k == "password" {
            found.push(v.into_owned());
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

fn scrub(message: String, url: &str) -> String {
    passwords_of(url)
        .iter()
        .fold(message, |m, password| m.replace(password.as_str(), "***"))
}

fn query_error(url: &str) -> impl Fn(sqlx::Error) -> NangoDbError + '_ {
    move |e| NangoDbError::Query {
        url: redact_url(url),
        message: scrub(e.to_string(), url),
    }
}

/// Opens one connection to `url` in which every transaction is read only, so that nothing the
/// import runs can change the source.
pub async fn connect_read_only(url: &str) -> Result<PgConnection, NangoDbError> {
    let failed = |message: String| NangoDbError::Connect {
        url: redact_url(url),
        message: scrub(message, url),
    };
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| failed(e.to_string()))?
        .options([
            ("default_transaction_read_only", "on"),
            // Timestamps then come out of to_jsonb with a +00:00 offset.
            ("TimeZone", "UTC"),
        ])
        .application_name("nango-import");
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Reads the Nango database at `url` (schema `schema`) in one read-only snapshot. For a current
/// database, `environment` is an environment's name (several accounts may share it) or its
/// numeric id; a 0.9 database has none and is read whole.
pub async fn read(
    url: &str,
    schema: &str,
    environment: &str,
) -> Result<NangoDatabaseRows, NangoDbError> {
    let schema = Schema::new(schema)?;
    let mut conn = connect_read_only(url).await?;
    let err = query_error(url);
    let mut tx = conn.begin().await.map_err(&err)?;
    // One snapshot for every query: rows written by the live Nango meanwhile are all or none.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(&err)?;

    let layout = if schema
        .has_table(&mut tx, "_nango_environments")
        .await
        .map_err(&err)?
    {
        NangoDbLayout::Current
    } else if schema
        .has_table(&mut tx, "_nango_connections")
        .await
        .map_err(&err)?
    {
        NangoDbLayout::V09
    } else {
        return Err(NangoDbError::NotNango {
            url: redact_url(url),
            schema: schema.0,
        });
    };

    let rows = match layout {
        NangoDbLayout::V09 => NangoDatabaseRows {
            layout,
            environment: None,
            key_hash: None,
            configs: schema
                .all_rows(&mut tx, "_nango_configs")
                .await
                .map_err(&err)?,
            connections: schema
                .all_rows(&mut tx, "_nango_connections")
                .await
                .map_err(&err)?,
            end_users: Vec::new(),
            shared_credentials: Vec::new(),
        },
        NangoDbLayout::Current => read_current(&mut tx, &schema, environment, &err).await?,
    };
    // Read only: nothing to commit.
    tx.rollback().await.map_err(&err)?;
    let _ = conn.close().await;
    Ok(rows)
}

async fn read_current(
    conn: &mut PgConnection,
    schema: &Schema,
    wanted: &str,
    err: &impl Fn(sqlx::Error) -> NangoDbError,
) -> Result<NangoDatabaseRows, NangoDbError> {
    let environments = schema
        .all_rows(conn, "_nango_environments")
        .await
        .map_err(err)?;
    let environment = pick_environment(&environments, wanted)?;

    let configs = schema
        .environment_rows(conn, "_nango_configs", environment.id)
        .await
        .map_err(err)?;
    let connections = schema
        .environment_rows(conn, "_nango_connections", environment.id)
        .await
        .map_err(err)?;
    let end_users = if schema.has_table(conn, "end_users").await.map_err(err)? {
        schema
            .environment_rows(conn, "end_users", environment.id)
            .await
            .map_err(err)?
    } else {
        Vec::new()
    };

    let mut shared_ids: Vec<i64> = configs
        .iter()
        .filter_map(|c| c.get("shared_credentials_id").and_then(Value::as_i64))
        .collect();
    shared_ids.sort_unstable();
    shared_ids.dedup();
    let shared_credentials = if !shared_ids.is_empty()
        && schema
            .has_table(conn, "providers_shared_credentials")
            .await
            .map_err(err)?
    {
        let sql = format!(
            "SELECT to_jsonb(t)::text FROM {}.providers_shared_credentials t \
             WHERE t.id = ANY($1::int8[]) ORDER BY t.id",
            schema.quoted()
        );
        let texts: Vec<String> = sqlx::query_scalar(&sql)
            .bind(&shared_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        parse_rows(texts).map_err(err)?
    } else {
        Vec::new()
    };

    let key_hash = if schema
        .has_table(conn, "_nango_db_config")
        .await
        .map_err(err)?
    {
        schema
            .all_rows(conn, "_nango_db_config")
            .await
            .map_err(err)?
            .iter()
            .find_map(|row| row.get("encryption_key_hash")?.as_str().map(str::to_string))
    } else {
        None
    };

    Ok(NangoDatabaseRows {
        layout: NangoDbLayout::Current,
        environment: Some(environment),
        key_hash,
        configs,
        connections,
        end_users,
        shared_credentials,
    })
}

/// The live environment called `wanted`, or whose id it is. Names are unique per account only,
/// so a name shared by several accounts must be given as an id.
fn pick_environment(rows: &[NangoRow], wanted: &str) -> Result<NangoEnvironment, NangoDbError> {
    let live: Vec<NangoEnvironment> = rows
        .iter()
        // `deleted` came in 2025; older databases have no deleted environments.
        .filter(|row| row.get("deleted").and_then(Value::as_bool) != Some(true))
        .filter_map(|row| {
            Some(NangoEnvironment {
                id: row.get("id")?.as_i64()?,
                name: row.get("name")?.as_str()?.to_string(),
            })
        })
        .collect();
    if let Ok(id) = wanted.trim().parse::<i64>() {
        if let Some(found) = live.iter().find(|e| e.id == id) {
            return Ok(found.clone());
        }
    }
    let named: Vec<&NangoEnvironment> = live.iter().filter(|e| e.name == wanted).collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let mut existing: Vec<String> = live.iter().map(|e| e.name.clone()).collect();
            existing.sort();
            existing.dedup();
            Err(NangoDbError::NoEnvironment {
                wanted: wanted.to_string(),
                existing,
            })
        }
        several => Err(NangoDbError::AmbiguousEnvironment {
            wanted: wanted.to_string(),
            ids: several.iter().map(|e| e.id).collect(),
        }),
    }
}

/// A schema name checked to be a plain identifier, so it can be spliced (quoted) into SQL.
struct Schema(String);

impl Schema {
    fn new(name: &str) -> Result<Schema, NangoDbError> {
        let mut chars = name.chars();
        let plain = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            Ok(Schema(name.to_string()))
        } else {
            Err(NangoDbError::BadSchema(name.to_string()))
        }
    }

    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    async fn has_table(&self, conn: &mut PgConnection, table: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
             WHERE schemaname = $1 AND tablename = $2)",
        )
        .bind(&self.0)
        .bind(table)
        .fetch_one(&mut *conn)
        .await
    }

    async fn all_rows(
        &self,
        conn: &mut PgConnection,
        table: &str,
    ) -> Result<Vec<NangoRow>, sqlx::Error> {
        // `table` is always one of this file's literals. Not every table has an `id` column.
        let sql = format!(
            "SELECT to_jsonb(t)::text FROM {}.{table} t ORDER BY to_jsonb(t)->'id'",
            self.quoted()
        );
        let texts: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut *conn).await?;
        parse_rows(texts)
    }

    async fn environment_rows(
        &self,
        conn: &mut PgConnection,
        table: &str,
        environment_id: i64,
    ) -> Result<Vec<NangoRow>, sqlx::Error> {
        let sql = format!(
            "SELECT to_jsonb(t)::text FROM {}.{table} t WHERE t.environment_id = $1::int8 \
             ORDER BY t.id",
            self.quoted()
        );
        let texts: Vec<String> = sqlx::query_scalar(&sql)
            .bind(environment_id)
            .fetch_all(&mut *conn)
            .await?;
        parse_rows(texts)
    }
}

// Text rather than sqlx's JSON decoding: the workspace builds sqlx without its `json` feature.
fn parse_rows(texts: Vec<String>) -> Result<Vec<NangoRow>, sqlx::Error> {
    texts
        .into_iter()
        .map(|text| serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["nango", "_x", "Nango_2"] {
            assert!(Schema::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2nango", "nango\"; drop", "na-ngo", "nängo", "a.b"] {
            assert!(Schema::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://nango:s3cr%40t@db:5432/nango"),
            "postgres://nango:***@db:5432/nango"
        );
        assert_eq!(
            redact_url("postgres://db/nango?user=u&password=pw&sslmode=require"),
            "postgres://db/nango?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://db/nango"), "postgres://db/nango");
        assert!(!redact_url("not a url: pw").contains("pw"));
        assert_eq!(
            scrub(
                "bad password s3cr@t or s3cr%40t".into(),
                "postgres://u:s3cr%40t@h/d"
            ),
            "bad password *** or ***"
        );
    }

    fn environment(id: i64, name: &str, deleted: Option<bool>) -> NangoRow {
        let mut row = Map::new();
        row.insert("id".into(), id.into());
        row.insert("name".into(), name.into());
        if let Some(deleted) = deleted {
            row.insert("deleted".into(), deleted.into());
        }
        row
    }

    #[test]
    fn environments_are_picked_by_name_or_id() {
        let rows = vec![
            environment(1, "prod", None),
            environment(2, "dev", Some(false)),
            environment(3, "prod", Some(true)),
            environment(4, "staging", Some(true)),
            environment(5, "dev", Some(false)),
        ];
        assert!(matches!(
            pick_environment(&rows, "prod"),
            Ok(NangoEnvironment { id: 1, .. })
        ));
        assert!(matches!(
            pick_environment(&rows, "5"),
            Ok(NangoEnvironment { id: 5, .. })
        ));
        match pick_environment(&rows, "dev") {
            Err(NangoDbError::AmbiguousEnvironment { ids, .. }) => assert_eq!(ids, vec![2, 5]),
            other => panic!("{other:?}"),
        }
        match pick_environment(&rows, "staging") {
            Err(e @ NangoDbError::NoEnvironment { .. }) => {
                assert!(e.to_string().contains("it has: dev, prod"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(pick_environment(&rows, "4").is_err());
    }
}
