//! Seeding connections through the server library's own store (`store::connect` +
//! `upsert_connection`): the same SQL, sealing and indexes as a completed OAuth flow, without a
//! browser. Ids are `<prefix><n>`, n from 1, so the load generator can pick them at random.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use nango_server::credentials::{iso_millis, Credentials, OAuth2Credentials};
use nango_server::secret::Secret;
use nango_server::store::{self, Cipher, ConnectionFields, Store};
use serde_json::{json, Map};

/// Prefix of the connections the hot path reads (tokens valid for years).
pub const HOT: &str = "bench-";
/// Prefix of the connections of the refresh storm (tokens already expired).
pub const STORM: &str = "storm-";

/// Upserts between two WAL checkpoints on SQLite.
const CHECKPOINT_EVERY: u64 = 10_000;

pub struct Seeder {
    store: Arc<dyn Store>,
    /// Upserts in flight at once.
    concurrency: usize,
    /// SQLite: a connection of our own to checkpoint the WAL with (see `checkpoint`).
    sqlite: Option<tokio::sync::Mutex<sqlx::SqliteConnection>>,
    /// SQLite: the database file.
    sqlite_file: Option<std::path::PathBuf>,
}

impl Seeder {
    /// Opens the database as the server does (same migrations, same key check).
    pub async fn open(
        database_url: &str,
        encryption_key: &str,
        concurrency: usize,
    ) -> Result<Self> {
        let cipher = Cipher::from_base64_keys(&[Secret::new(encryption_key.to_string())])?;
        let store = store::connect(database_url, Arc::new(cipher), 0)
            .await
            .context("opening the database to seed it")?;
        store.verify_encryption_keys().await?;
        let sqlite = if database_url.starts_with("sqlite:") {
            use sqlx::Connection;
            let connection = sqlx::SqliteConnection::connect(database_url).await?;
            Some(tokio::sync::Mutex::new(connection))
        } else {
            None
        };
        let sqlite_file = database_url
            .strip_prefix("sqlite://")
            .map(|path| std::path::PathBuf::from(path.split('?').next().unwrap_or(path)));
        Ok(Seeder {
            store,
            concurrency,
            sqlite,
            sqlite_file,
        })
    }

    /// SQLite: the sizes of the database file and of its WAL, in bytes.
    pub fn sqlite_sizes(&self) -> Option<(u64, u64)> {
        let file = self.sqlite_file.as_ref()?;
        let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        Some((size(file), size(std::path::Path::new(&wal))))
    }

    /// Folds SQLite's WAL back into the database file, as its automatic checkpoint would.
    ///
    /// Why by hand: `upsert_connection` is an `INSERT ... RETURNING` read with `fetch_one`, and
    /// sqlx resets such a statement after its first row instead of stepping it to the end, so
    /// SQLite commits without running its WAL hook, the autocheckpoint never fires, and a
    /// seed made only of upserts leaves the whole database in an ever-growing WAL (24 GB for
    /// 1M connections, with every read searching it). In a running server other writes
    /// (`execute`) fire the hook; here nothing else writes.
    async fn checkpoint(&self) -> Result<()> {
        if let Some(connection) = &self.sqlite {
            let mut connection = connection.lock().await;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_all(&mut *connection)
                .await
                .context("checkpointing the SQLite WAL")?;
        }
        Ok(())
    }

    /// Upserts `<prefix><n>` for every n of `ids` under `config_key`, with OAuth 2 credentials
    /// expiring at `expires_at`. Returns how long it took.
    pub async fn seed(
        &self,
        config_key: &str,
        prefix: &str,
        ids: RangeInclusive<u64>,
        expires_at: DateTime<Utc>,
    ) -> Result<Duration> {
        let started = Instant::now();
        let total = ids.end().saturating_sub(*ids.start()) + 1;
        let report_every = (total / 10).max(100_000);
        let mut done = 0u64;
        let mut upserts = futures::stream::iter(ids)
            .map(|n| {
                let fields = fields(config_key, &format!("{prefix}{n}"), expires_at);
                let store = self.store.clone();
                async move { store.upsert_connection(&fields).await }
            })
            .buffer_unordered(self.concurrency);
        while upserts
            .try_next()
            .await
            .context("seeding a connection")?
            .is_some()
        {
            done += 1;
            if done % CHECKPOINT_EVERY == 0 {
                self.checkpoint().await?;
            }
            if done % report_every == 0 && done < total {
                let rate = done as f64 / started.elapsed().as_secs_f64();
                eprintln!("    {done}/{total} connections seeded ({rate:.0}/s)");
            }
        }
        self.checkpoint().await?;
        Ok(started.elapsed())
    }
}

/// A connection as an OAuth 2 flow leaves it: access and refresh token, expiry, raw response.
fn fields(config_key: &str, connection_id: &str, expires_at: DateTime<Utc>) -> ConnectionFields {
    let access_token = format!("access-{connection_id}");
    let refresh_token = format!("refresh-{connection_id}");
    let raw = json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "read",
        "expires_at": iso_millis(expires_at),
    });
    ConnectionFields {
        provider_config_key: config_key.to_string(),
        connection_id: connection_id.to_string(),
        credentials: Credentials::OAuth2(OAuth2Credentials {
            access_token,
            refresh_token: Some(refresh_token),
            expires_at: Some(expires_at),
            raw,
        }),
        connection_config: Map::new(),
        metadata: Map::new(),
        // Issued for the hour its raw response says (so a token expiring in a minute is due, as
        // it would be after 59 minutes of use), and never in the future.
        obtained_at: (expires_at - chrono::Duration::hours(1)).min(chrono::Utc::now()),
        owner: None,
    }
}
