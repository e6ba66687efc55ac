//! The read cache of the hot path: decrypted connections and provider configs as last read from
//! the database, so that `GET /connection` on an unexpired token costs no query.
//!
//! Coherence: every write through the store evicts the rows it touched; on PostgreSQL, triggers
//! publish every change (from any replica, or a tool writing to the database) and each replica's
//! listener evicts it too, so a replica serves another's deletion or refresh within the
//! notification's latency. While that channel is down the cache is off (reads go to the
//! database), and it starts empty again once the channel is back, because changes may have been
//! missed meanwhile. Entries also expire after `TTL`, a backstop for what nobody announces (a
//! second process writing the same SQLite file).
//!
//! Only the hot path reads through the cache. A refresh re-reads the database under its lease:
//! deciding to present a refresh token on a stale copy could present one that another replica
//! has just rotated.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Connection, ProviderConfig};

/// Longest an entry is served without being read again.
const TTL: Duration = Duration::from_secs(30);

type ConnectionKey = (String, String);

#[derive(Clone)]
struct Entry<T> {
    value: Arc<T>,
    loaded: Instant,
}

pub struct ReadCache {
    connections: Option<quick_cache::sync::Cache<ConnectionKey, Entry<Connection>>>,
    configs: Option<quick_cache::sync::Cache<String, Entry<ProviderConfig>>>,
    /// Bumped by every eviction: a read that started before an eviction does not store what it
    /// read (it may be the value just evicted).
    epoch: AtomicU64,
    /// False while evictions could be missed (PostgreSQL's notification channel is down).
    enabled: AtomicBool,
}

/// What a read must hand back to `ReadCache::store_*` once it has the row.
#[derive(Clone, Copy)]
pub struct ReadTicket(Option<u64>);

impl ReadCache {
    /// A cache of at most `capacity` connections (0: no cache); `enabled` says whether it may
    /// be used from the start (false until an invalidation channel is listening).
    pub fn new(capacity: usize, enabled: bool) -> ReadCache {
        let (connections, configs) = if capacity == 0 {
            (None, None)
        } else {
            // Configs are few; a bound still keeps a runaway number of them from growing memory.
            (
                Some(quick_cache::sync::Cache::new(capacity)),
                Some(quick_cache::sync::Cache::new(capacity.clamp(16, 4096))),
            )
        };
        ReadCache {
            connections,
            configs,
            epoch: AtomicU64::new(0),
            enabled: AtomicBool::new(enabled),
        }
    }

    fn usable(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    pub fn connection(&self, provider_config_key: &str, connection_id: &str) -> Option<Connection> {
        let cache = self.connections.as_ref().filter(|_| self.usable())?;
        let entry = cache.get(&(provider_config_key.to_string(), connection_id.to_string()))?;
        (entry.loaded.elapsed() < TTL).then(|| Connection::clone(&entry.value))
    }

    pub fn config(&self, unique_key: &str) -> Option<ProviderConfig> {
        let cache = self.configs.as_ref().filter(|_| self.usable())?;
        let entry = cache.get(unique_key)?;
        (entry.loaded.elapsed() < TTL).then(|| ProviderConfig::clone(&entry.value))
    }

    /// Taken before reading the database for a miss.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.usable().then(|| self.epoch.load(Ordering::SeqCst)))
    }

    pub fn store_connection(&self, ticket: ReadTicket, connection: &Connection) {
        if let Some(cache) = &self.connections {
            let key = (
                connection.provider_config_key.clone(),
                connection.connection_id.clone(),
            );
            self.store(cache, ticket, key, connection);
        }
    }

    pub fn store_config(&self, ticket: ReadTicket, config: &ProviderConfig) {
        if let Some(cache) = &self.configs {
            self.store(cache, ticket, config.unique_key.clone(), config);
        }
    }

    /// Stores what a read got, unless an eviction happened since its ticket was taken. The
    /// check comes after the insert: an eviction racing with it either bumped the epoch before
    /// the check (and the insert is undone here) or removes the key after it (evictions bump
    /// first, then remove).
    fn store<K, T>(
        &self,
        cache: &quick_cache::sync::Cache<K, Entry<T>>,
        ticket: ReadTicket,
        key: K,
        value: &T,
    ) where
        K: Clone + Eq + std::hash::Hash,
        T: Clone,
    {
        let Some(epoch) = ticket.0 else { return };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        let entry = Entry {
            value: Arc::new(value.clone()),
            loaded: Instant::now(),
        };
        cache.insert(key.clone(), entry);
        if self.epoch.load(Ordering::SeqCst) != epoch || !self.usable() {
            cache.remove(&key);
        }
    }

    pub fn evict_connection(&self, provider_config_key: &str, connection_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.connections {
            cache.remove(&(provider_config_key.to_string(), connection_id.to_string()));
        }
    }

    pub fn evict_config(&self, unique_key: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.configs {
            cache.remove(unique_key);
        }
    }

    pub fn evict_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.connections {
            cache.clear();
        }
        if let Some(cache) = &self.configs {
            cache.clear();
        }
    }

    /// Turns the cache off (and empties it) while evictions may be missed, or back on (empty).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
        self.evict_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use chrono::Utc;

    fn connection(id: &str, token: &str) -> Connection {
        let credentials: Credentials = serde_json::from_value(serde_json::json!({
            "type": "OAUTH2", "access_token": token, "raw": {"access_token": token}
        }))
        .expect("credentials");
        Connection {
            id: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            provider_config_key: "github".into(),
            connection_id: id.into(),
            credentials,
            connection_config: Default::default(),
            metadata: Default::default(),
            owner: Default::default(),
            account_id: 0,
            health: Default::default(),
        }
    }

    fn token(connection: &Connection) -> String {
        match &connection.credentials {
            Credentials::OAuth2(c) => c.access_token.clone(),
            other => panic!("unexpected credentials {other:?}"),
        }
    }

    #[test]
    fn serves_what_was_stored_until_evicted() {
        let cache = ReadCache::new(10, true);
        assert!(cache.connection("github", "u1").is_none());
        cache.store_connection(cache.ticket(), &connection("u1", "t1"));
        assert_eq!(token(&cache.connection("github", "u1").expect("hit")), "t1");
        cache.evict_connection("github", "u1");
        assert!(cache.connection("github", "u1").is_none());
    }

    #[test]
    fn a_read_that_raced_with_an_eviction_is_not_stored() {
        let cache = ReadCache::new(10, true);
        let ticket = cache.ticket();
        // A write lands (and evicts) while the read is in flight with the old row.
        cache.evict_connection("github", "u1");
        cache.store_connection(ticket, &connection("u1", "old"));
        assert!(cache.connection("github", "u1").is_none());
        // The next read stores.
        cache.store_connection(cache.ticket(), &connection("u1", "new"));
        assert_eq!(
            token(&cache.connection("github", "u1").expect("hit")),
            "new"
        );
    }

    #[test]
    fn a_disabled_cache_serves_and_stores_nothing() {
        let cache = ReadCache::new(10, true);
        cache.store_connection(cache.ticket(), &connection("u1", "t1"));
        cache.set_enabled(false);
        assert!(cache.connection("github", "u1").is_none());
        cache.store_connection(cache.ticket(), &connection("u1", "t1"));
        cache.set_enabled(true);
        assert!(
            cache.connection("github", "u1").is_none(),
            "a cache turned back on starts empty"
        );
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = ReadCache::new(0, true);
        cache.store_connection(cache.ticket(), &connection("u1", "t1"));
        assert!(cache.connection("github", "u1").is_none());
    }
}
