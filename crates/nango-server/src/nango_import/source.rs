//! What an import reads from a Nango source, in one shape whatever the source (a 0.9 or a
//! current database, a 0.9 or a current API): secrets already decrypted, Nango's own JSON kept
//! as it was (its credentials, its connection config keys), so that the conversion to this
//! server's fields (`super::convert`) is written once.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::store::ImportKind;

/// Which kind of source was read (detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceLayout {
    /// A Nango 0.9-era database: schema `nango`, no environments, plain credentials.
    Database09,
    /// A current Nango database: environments, soft deletes, encrypted secrets.
    DatabaseCurrent,
    /// A Nango 0.9 server's API (`/config`, `/connection`).
    Api09,
    /// A current Nango server's API (`/integrations`, `/connections`).
    ApiCurrent,
}

impl SourceLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceLayout::Database09 => "database (Nango 0.9)",
            SourceLayout::DatabaseCurrent => "database (current Nango)",
            SourceLayout::Api09 => "API (Nango 0.9)",
            SourceLayout::ApiCurrent => "API (current Nango)",
        }
    }
}

/// A provider config ("integration") as the source has it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub unique_key: String,
    /// Nango's template name.
    pub provider: String,
    /// Empty when the source has none (an integration without an OAuth app).
    pub client_id: String,
    /// Decrypted; empty when the source has none.
    pub client_secret: String,
    /// As the source stores them (comma-separated in Nango's databases).
    pub scopes: String,
    pub display_name: Option<String>,
}

/// A connection as the source has it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConnection {
    pub provider_config_key: String,
    pub connection_id: String,
    /// Nango's credentials object, decrypted: `{"type": "OAUTH2", "access_token", ...}`.
    pub credentials: Value,
    /// Nango's connection config as stored: keys prefixed (`connectionConfig.params.subdomain`,
    /// 0.9) or bare (`subdomain`, current).
    pub connection_config: Map<String, Value>,
    pub metadata: Map<String, Value>,
    /// Current Nango's end user, in this server's shape (`crate::store::Owner::end_user`:
    /// `{id, email, display_name, tags, organization: {id, display_name}}`).
    pub end_user: Option<Map<String, Value>>,
    pub tags: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Current Nango's `last_refresh_success`.
    pub last_refreshed_at: Option<DateTime<Utc>>,
}

/// An item the source has but the import cannot take, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub kind: ImportKind,
    pub provider_config_key: String,
    /// Empty for a config.
    pub connection_id: String,
    pub reason: String,
}

/// Everything read from a source.
#[derive(Debug, Clone)]
pub struct SourceSnapshot {
    pub layout: SourceLayout,
    /// The environment read (current Nango), by name.
    pub environment: Option<String>,
    pub configs: Vec<SourceConfig>,
    pub connections: Vec<SourceConnection>,
    /// Rows read but not usable (an undecryptable row, a row that is not JSON).
    pub unreadable: Vec<Unreadable>,
}

/// Why a source could not be read at all; nothing is written then.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source is not reachable, or refused the credentials given for it.
    #[error("{0}")]
    Unreachable(String),
    /// It is not a Nango database or API this import knows.
    #[error("{0}")]
    NotNango(String),
    /// The encryption key given is not the source's, or none was given for encrypted rows.
    #[error("{0}")]
    WrongKey(String),
    /// The command line names something the source does not have (an environment).
    #[error("{0}")]
    Invalid(String),
}
