//! `nango import:nango`: moves provider configs and connections from a Nango server (its
//! database, 0.9 or current, or its API) into this server's store, without calling any provider
//! and without re-authorizing anyone.
//!
//! Three steps: read the whole source (`database`, `api`: any problem with the source or its
//! encryption key stops the import before anything is written), plan what each item needs
//! against the store and the records of earlier imports, then write (unless it is a dry run).
//! An import never undoes this server's own changes: a connection refreshed or re-authorized
//! here since it was imported, or a config edited here, is kept; a connection made here and
//! never imported is not replaced. An item that changed at the source since the last import is
//! taken only when asked (`update`).

pub mod api;
mod convert;
pub mod database;
pub mod source;

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::providers::{Catalog, ProviderTemplate, PARAMS_PREFIX};
use crate::store::{ImportKind, ImportRecord, ProviderConfig, Store, StoreError};
use source::{SourceConfig, SourceConnection, SourceError, SourceSnapshot};

/// Where to import from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Nango database on PostgreSQL.
    Database {
        url: String,
        /// Nango's `NANGO_DB_SCHEMA` (default `nango`).
        schema: String,
        /// Current Nango's environment, by name or id (default `prod`).
        environment: String,
        /// The source's `NANGO_ENCRYPTION_KEY`, for its encrypted rows.
        encryption_key: Option<String>,
    },
    /// A running Nango server, read through its API with the environment's secret key.
    Api {
        url: url::Url,
        secret_key: String,
        version: api::ApiVersion,
    },
}

/// Why an import did not run; nothing was written then.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source (or its key) could not be used: nothing was written.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// This server's settings or database could not be used: nothing was written.
    #[error(transparent)]
    Startup(#[from] crate::StartupError),
    /// The database failed while items were written: those before stay written (a later run
    /// takes up the rest).
    #[error("database: {0}")]
    Interrupted(StoreError),
}

impl ImportError {
    /// Whether anything may have been written before it failed.
    pub fn wrote_something(&self) -> bool {
        matches!(self, ImportError::Interrupted(_))
    }
}

impl Source {
    /// `--from`: a `postgres://` (or `postgresql://`) URL is a database, an `http(s)://` URL a
    /// server's API.
    pub fn parse(
        from: &str,
        schema: String,
        environment: String,
        encryption_key: Option<String>,
        secret_key: Option<String>,
        version: api::ApiVersion,
    ) -> Result<Source, SourceError> {
        let url = url::Url::parse(from).map_err(|e| {
            SourceError::Invalid(format!(
                "--from must be a postgres:// URL of a Nango database or the http(s):// URL of a Nango server ({e})"
            ))
        })?;
        match url.scheme() {
            "postgres" | "postgresql" => Ok(Source::Database {
                url: from.to_string(),
                schema,
                environment,
                encryption_key,
            }),
            "http" | "https" => Ok(Source::Api {
                url,
                secret_key: secret_key.filter(|k| !k.is_empty()).ok_or_else(|| {
                    SourceError::Invalid(
                        "reading a Nango server through its API needs its secret key: --nango-secret-key (or NANGO_SOURCE_SECRET_KEY)".into(),
                    )
                })?,
                version,
            }),
            other => Err(SourceError::Invalid(format!(
                "--from must be a postgres:// URL of a Nango database or the http(s):// URL of a Nango server, not a {other}: URL"
            ))),
        }
    }

    /// The source as reports and the import records name it: without a password or query.
    pub fn name(&self) -> String {
        let text = match self {
            Source::Database { url, .. } => url.as_str(),
            Source::Api { url, .. } => url.as_str(),
        };
        match url::Url::parse(text) {
            Ok(mut url) => {
                let _ = url.set_password(None);
                url.set_query(None);
                url.set_fragment(None);
                url.to_string()
            }
            Err(_) => "(unparsable URL)".into(),
        }
    }

    /// Reads everything the import takes; fails before anything is written when the source, or
    /// its key, is wrong.
    pub async fn read(&self, progress: Progress<'_>) -> Result<SourceSnapshot, SourceError> {
        match self {
            Source::Database {
                url,
                schema,
                environment,
                encryption_key,
            } => {
                database::read_nango_database(url, schema, environment, encryption_key.as_deref())
                    .await
            }
            Source::Api {
                url,
                secret_key,
                version,
            } => {
                api::read_nango_api(url, secret_key, *version, &|done, total| {
                    progress(Phase::Reading, done, total)
                })
                .await
            }
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Plan and report, write nothing.
    pub dry_run: bool,
    /// Take items that changed at the source since the last import.
    pub update: bool,
    /// Connections planned and written at once (0 counts as 1): a few for PostgreSQL, one for
    /// SQLite, whose single writer concurrent transactions would only make wait.
    pub in_flight: usize,
}

/// What was done (or, in a dry run, would be done) with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    New,
    Updated,
    Unchanged,
    /// Changed at the source since the last import; taken only with `update`.
    ChangedAtSource,
    Skipped,
}

/// One item's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ItemOutcome {
    pub kind: &'static str,
    pub provider_config_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    pub action: Action,
    /// Why it was skipped or kept as it is here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts of one kind of item, by action.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub changed_at_source: usize,
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, action: Action) {
        match action {
            Action::New => self.new += 1,
            Action::Updated => self.updated += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::ChangedAtSource => self.changed_at_source += 1,
            Action::Skipped => self.skipped += 1,
        }
    }
}

/// The whole import's outcome. Holds names and reasons, never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The source, without credentials.
    pub source: String,
    pub layout: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub dry_run: bool,
    pub update: bool,
    pub configs: Counts,
    pub connections: Counts,
    /// Every item: first those the source could not give, then the configs, then the
    /// connections, each in the source's order.
    pub items: Vec<ItemOutcome>,
}

impl ImportReport {
    /// Items that were not imported, with their reasons.
    pub fn skipped(&self) -> impl Iterator<Item = &ItemOutcome> {
        self.items.iter().filter(|i| i.action == Action::Skipped)
    }

    pub fn anything_skipped(&self) -> bool {
        self.configs.skipped + self.connections.skipped > 0
    }
}

/// Which step a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connections fetched from a server's API.
    Reading,
    /// Connections planned (and written).
    Importing,
}

/// Progress: (step, done, total) connections.
pub type Progress<'a> = &'a (dyn Fn(Phase, usize, usize) + Sync);

/// Plans and (unless `options.dry_run`) writes the snapshot into the store.
pub async fn import_snapshot(
    store: &dyn Store,
    catalog: &Catalog,
    snapshot: SourceSnapshot,
    source_name: &str,
    options: ImportOptions,
    progress: Progress<'_>,
) -> Result<ImportReport, StoreError> {
    let records: HashMap<(ImportKind, String, String), ImportRecord> = store
        .import_records()
        .await?
        .into_iter()
        .map(|r| {
            (
                (
                    r.kind,
                    r.provider_config_key.clone(),
                    r.connection_id.clone(),
                ),
                r,
            )
        })
        .collect();
    let mut run = Run {
        store,
        catalog,
        records,
        options,
        source_name,
        report: ImportReport {
            source: source_name.to_string(),
            layout: snapshot.layout.as_str(),
            environment: snapshot.environment.clone(),
            dry_run: options.dry_run,
            update: options.update,
            configs: Counts::default(),
            connections: Counts::default(),
            items: Vec::new(),
        },
        usable_configs: HashMap::new(),
    };
    for unreadable in &snapshot.unreadable {
        run.outcome(
            unreadable.kind,
            &unreadable.provider_config_key,
            &unreadable.connection_id,
            Action::Skipped,
            Some(unreadable.reason.clone()),
        );
    }
    for config in &snapshot.configs {
        run.import_config(config, &snapshot.connections).await?;
    }
    // Connections are independent: planned and written `in_flight` at a time (a database
    // round trip or two each), their outcomes reported in the source's order.
    let total = snapshot.connections.len();
    let planned: Vec<_> = {
        let run = &run;
        futures::stream::iter(&snapshot.connections)
            .map(|connection| async move { (connection, run.plan_connection(connection).await) })
            .buffered(options.in_flight.max(1))
            .enumerate()
            .map(|(done, planned)| {
                progress(Phase::Importing, done + 1, total);
                planned
            })
            .collect()
            .await
    };
    for (connection, outcome) in planned {
        let (action, reason) = outcome?;
        run.outcome(
            ImportKind::Connection,
            &connection.provider_config_key,
            &connection.connection_id,
            action,
            reason,
        );
    }
    Ok(run.report)
}

struct Run<'a> {
    store: &'a dyn Store,
    catalog: &'a Catalog,
    records: HashMap<(ImportKind, String, String), ImportRecord>,
    options: ImportOptions,
    source_name: &'a str,
    report: ImportReport,
    /// Configs whose connections can be imported, as they are (or, in a dry run, would be)
    /// stored here, by key.
    usable_configs: HashMap<String, ProviderConfig>,
}

impl Run<'_> {
    fn outcome(
        &mut self,
        kind: ImportKind,
        key: &str,
        connection_id: &str,
        action: Action,
        reason: Option<String>,
    ) {
        match kind {
            ImportKind::Config => self.report.configs.add(action),
            ImportKind::Connection => self.report.connections.add(action),
        }
        self.report.items.push(ItemOutcome {
            kind: kind.as_str(),
            provider_config_key: key.to_string(),
            connection_id: (kind == ImportKind::Connection).then(|| connection_id.to_string()),
            action,
            reason,
        });
    }

    fn record(
        &self,
        kind: ImportKind,
        key: &str,
        id: &str,
        fingerprint: String,
        generation: Option<chrono::DateTime<Utc>>,
    ) -> ImportRecord {
        ImportRecord {
            kind,
            provider_config_key: key.to_string(),
            connection_id: id.to_string(),
            source: self.source_name.to_string(),
            fingerprint,
            generation,
            imported_at: Utc::now(),
        }
    }

    async fn import_config(
        &mut self,
        source: &SourceConfig,
        connections: &[SourceConnection],
    ) -> Result<(), StoreError> {
        let key = source.unique_key.as_str();
        let skip = |reason: String| (Action::Skipped, Some(reason));
        let Some(template) = self.catalog.get(&source.provider) else {
            let (action, reason) = skip(format!(
                "unknown provider template '{}': this server's catalog has no such provider (add it with NANGO_PROVIDERS_FILE)",
                source.provider
            ));
            self.outcome(ImportKind::Config, key, "", action, reason);
            return Ok(());
        };
        if crate::configs::needs_app(template) && source.client_id.is_empty() {
            let (action, reason) = skip(
                "it has no OAuth client id (an integration on Nango's own shared app cannot move)"
                    .into(),
            );
            self.outcome(ImportKind::Config, key, "", action, reason);
            return Ok(());
        }
        let mut fields = convert::config_fields(source);
        let fingerprint = convert::config_fingerprint(source);
        let stored = self.store.get_config(key).await?;
        let record = self
            .records
            .get(&(ImportKind::Config, key.to_string(), String::new()))
            .cloned();
        let (action, reason) = match (&stored, &record) {
            (None, Some(_)) => (
                Action::Unchanged,
                Some("deleted here after an earlier import: not restored".into()),
            ),
            (None, None) => {
                // The host a template needs but only an operator may set (this server's rule):
                // Nango kept it per connection; when all of them agree, it is the operator's.
                fields.connection_config = Some(agreed_hosts(template, key, connections));
                self.write_config(&fields, true, fingerprint).await?;
                (Action::New, None)
            }
            (Some(stored), _) if convert::config_matches(stored, &fields) => {
                if !self.options.dry_run
                    && record.as_ref().map(|r| &r.fingerprint) != Some(&fingerprint)
                {
                    self.record_config(key, fingerprint, Some(stored.updated_at))
                        .await?;
                }
                (Action::Unchanged, None)
            }
            (Some(stored), None) => skip(format!(
                "an integration '{key}' (provider '{}') that was not imported exists here with other settings: kept",
                stored.provider
            )),
            (Some(stored), Some(record)) if record.generation != Some(stored.updated_at) => (
                Action::Unchanged,
                Some("edited here since the last import: kept".into()),
            ),
            (Some(_), Some(record)) if record.fingerprint == fingerprint => {
                (Action::Unchanged, None)
            }
            (Some(stored), Some(_)) if stored.provider != fields.provider => skip(format!(
                "its provider changed at the source ('{}' here, '{}' there): delete it here to import it again",
                stored.provider, fields.provider
            )),
            (Some(_), Some(_)) if !self.options.update => (
                Action::ChangedAtSource,
                Some("changed at the source since the last import: run with --update to take it".into()),
            ),
            (Some(_), Some(_)) => {
                self.write_config(&fields, false, fingerprint).await?;
                (Action::Updated, None)
            }
        };
        if action != Action::Skipped {
            // The connections are checked against the config as it is (or would be) here.
            let usable = match (&stored, action) {
                (Some(stored), Action::Unchanged | Action::ChangedAtSource) => Some(stored.clone()),
                (_, Action::New | Action::Updated) => Some(planned_config(&stored, &fields)),
                _ => None,
            };
            if let Some(usable) = usable {
                self.usable_configs.insert(key.to_string(), usable);
            }
        }
        self.outcome(ImportKind::Config, key, "", action, reason);
        Ok(())
    }

    /// Creates (`new`) or updates a config and records it, unless this is a dry run.
    async fn write_config(
        &self,
        fields: &crate::store::ProviderConfigFields,
        new: bool,
        fingerprint: String,
    ) -> Result<(), StoreError> {
        if self.options.dry_run {
            return Ok(());
        }
        if new {
            self.store.insert_config(fields).await?;
        } else {
            self.store.update_config(fields).await?;
        }
        let written = self.store.get_config(&fields.unique_key).await?;
        self.record_config(
            &fields.unique_key,
            fingerprint,
            written.map(|c| c.updated_at),
        )
        .await
    }

    async fn record_config(
        &self,
        key: &str,
        fingerprint: String,
        generation: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.store
            .record_import(&self.record(ImportKind::Config, key, "", fingerprint, generation))
            .await
    }

    async fn plan_connection(
        &self,
        source: &SourceConnection,
    ) -> Result<(Action, Option<String>), StoreError> {
        let (key, id) = (
            source.provider_config_key.as_str(),
            source.connection_id.as_str(),
        );
        let skip = |reason: String| Ok((Action::Skipped, Some(reason)));
        // A config the source has but that was skipped, or one only this server has (its key
        // made here, or imported by an earlier run and still here).
        let config = match self.usable_configs.get(key) {
            Some(config) => config.clone(),
            None => match self.store.get_config(key).await? {
                Some(config) if !self.report_has_config(key) => config,
                Some(_) => return skip(format!("its integration '{key}' was not imported")),
                None if self.report_has_config(key) => {
                    return skip(format!("its integration '{key}' was not imported"))
                }
                None => {
                    return skip(format!(
                        "there is no integration '{key}' at the source or here"
                    ))
                }
            },
        };
        let Some(template) = self.catalog.get(&config.provider) else {
            return skip(format!(
                "unknown provider template '{}' (integration '{key}')",
                config.provider
            ));
        };
        let fields = match convert::connection_fields(source, &config, template, Utc::now()) {
            Ok(fields) => fields,
            Err(reason) => return skip(reason),
        };
        let fingerprint = convert::connection_fingerprint(source);
        let stored = self.store.get_connection(key, id).await?;
        let record = self
            .records
            .get(&(ImportKind::Connection, key.to_string(), id.to_string()))
            .cloned();
        let record_for =
            |fingerprint: String| self.record(ImportKind::Connection, key, id, fingerprint, None);
        let planned = match (&stored, &record) {
            (None, Some(_)) => {
                return Ok((
                    Action::Unchanged,
                    Some("deleted here after an earlier import: not restored".into()),
                ))
            }
            (None, None) => (Action::New, None),
            (Some(stored), _)
                if stored.credentials == fields.credentials
                    && stored.connection_config == fields.connection_config
                    && stored.metadata == fields.metadata =>
            {
                if !self.options.dry_run
                    && record.as_ref().map(|r| &r.fingerprint) != Some(&fingerprint)
                {
                    let mut record = record_for(fingerprint);
                    record.generation = stored.health.refreshed_at;
                    self.store.record_import(&record).await?;
                }
                return Ok((Action::Unchanged, None));
            }
            (Some(_), None) => {
                return skip(
                    "a connection with this id that was not imported exists here: kept".into(),
                )
            }
            (Some(stored), Some(record)) if stored.health.refreshed_at != record.generation => {
                return Ok((
                    Action::Unchanged,
                    Some(
                        "refreshed or re-authorized here since the last import: kept (an import never puts back older tokens)"
                            .into(),
                    ),
                ))
            }
            (Some(_), Some(record)) if record.fingerprint == fingerprint => {
                return Ok((Action::Unchanged, None))
            }
            (Some(_), Some(_)) if !self.options.update => {
                return Ok((
                    Action::ChangedAtSource,
                    Some(
                        "changed at the source since the last import: run with --update to take it"
                            .into(),
                    ),
                ))
            }
            (Some(stored), Some(_)) => (
                Action::Updated,
                Some(stored.health.generation()),
            ),
        };
        let (action, replaces) = planned;
        if self.options.dry_run {
            return Ok((action, None));
        }
        let written = self
            .store
            .write_imported_connection(&fields, replaces, &record_for(fingerprint))
            .await?;
        Ok(match (written, action) {
            (true, action) => (action, None),
            (false, Action::New) => (
                Action::Skipped,
                Some("made here while the import ran: kept".into()),
            ),
            (false, _) => (
                Action::Unchanged,
                Some("refreshed here while the import ran: kept".into()),
            ),
        })
    }

    fn report_has_config(&self, key: &str) -> bool {
        self.report
            .items
            .iter()
            .any(|i| i.kind == ImportKind::Config.as_str() && i.provider_config_key == key)
    }
}

/// The config a new or updated import leaves here (for checking its connections in the same
/// run, dry or not).
fn planned_config(
    stored: &Option<ProviderConfig>,
    fields: &crate::store::ProviderConfigFields,
) -> ProviderConfig {
    let now = Utc::now();
    ProviderConfig {
        id: stored.as_ref().map_or(0, |s| s.id),
        created_at: stored.as_ref().map_or(now, |s| s.created_at),
        updated_at: now,
        unique_key: fields.unique_key.clone(),
        provider: fields.provider.clone(),
        oauth_client_id: fields.oauth_client_id.clone(),
        oauth_client_secret: fields.oauth_client_secret.clone(),
        oauth_scopes: fields.oauth_scopes.clone(),
        account_id: 0,
        connection_config: fields
            .connection_config
            .clone()
            .or_else(|| stored.as_ref().map(|s| s.connection_config.clone()))
            .unwrap_or_default(),
        display_name: fields.display_name.clone(),
    }
}

/// The values of the template's host placeholders on which every connection of the config
/// that has one agrees, by name.
fn agreed_hosts(
    template: &ProviderTemplate,
    key: &str,
    connections: &[SourceConnection],
) -> Map<String, Value> {
    let mut agreed = Map::new();
    for full in &template.hosts.host {
        let name = full.strip_prefix(PARAMS_PREFIX).unwrap_or(full);
        let values: BTreeMap<String, Value> = connections
            .iter()
            .filter(|c| c.provider_config_key == key)
            .filter_map(|c| {
                c.connection_config
                    .get(name)
                    .or_else(|| c.connection_config.get(full.as_str()))
            })
            .map(|v| (v.to_string(), v.clone()))
            .collect();
        if values.len() == 1 {
            if let Some((_, value)) = values.into_iter().next() {
                agreed.insert(name.to_string(), value);
            }
        }
    }
    agreed
}
