//! From Nango's shapes to this server's: credentials by their `type`, connection config keys in
//! the prefixed form the templates read (`connectionConfig.params.subdomain`), end users and
//! tags, the time the source last wrote the credentials, and the digests that tell a change at
//! the source from none.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::source::{SourceConfig, SourceConnection};
use crate::configs::normalise_scopes;
use crate::connections::{
    checked_connection_config, checked_tags, imported_credentials, EnteredCredentials,
    ImportedCredentials,
};
use crate::credentials::Credentials;
use crate::providers::{ProviderTemplate, ValueSource, PARAMS_PREFIX};
use crate::secret::Secret;
use crate::store::{ConnectionFields, Owner, ProviderConfig, ProviderConfigFields};

/// The fields of a provider config as this server stores them. The operator's host values
/// (`connection_config`) are not Nango's to give: `None` keeps ours, `Some` is set by the caller
/// for a new config.
pub fn config_fields(source: &SourceConfig) -> ProviderConfigFields {
    ProviderConfigFields {
        unique_key: source.unique_key.clone(),
        provider: source.provider.clone(),
        oauth_client_id: source.client_id.clone(),
        oauth_client_secret: Secret::new(source.client_secret.clone()),
        oauth_scopes: normalise_scopes(&source.scopes),
        connection_config: None,
        display_name: source.display_name.clone(),
    }
}

/// Whether a stored config already holds what the source has.
pub fn config_matches(stored: &ProviderConfig, source: &ProviderConfigFields) -> bool {
    stored.provider == source.provider
        && stored.oauth_client_id == source.oauth_client_id
        && stored.oauth_client_secret.expose() == source.oauth_client_secret.expose()
        && normalise_scopes(&stored.oauth_scopes) == source.oauth_scopes
}

/// The digest of a config as the source has it.
pub fn config_fingerprint(source: &SourceConfig) -> String {
    fingerprint(&serde_json::json!([
        source.provider,
        source.client_id,
        source.client_secret,
        normalise_scopes(&source.scopes),
        source.display_name,
    ]))
}

/// The digest of a connection as the source has it (credentials, config, metadata, owner).
pub fn connection_fingerprint(source: &SourceConnection) -> String {
    fingerprint(&serde_json::json!([
        source.credentials,
        source.connection_config,
        source.metadata,
        source.end_user,
        source.tags,
    ]))
}

/// SHA-256 over the value with every object's keys in order, so that two reads of the same item
/// digest alike whatever order the source gave its keys in.
fn fingerprint(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    hex::encode(Sha256::digest(sorted(value).to_string().as_bytes()))
}

/// Current Nango keeps connection config keys bare (`subdomain`); 0.9 and this server's
/// templates read them prefixed (`connectionConfig.params.subdomain`).
pub fn prefixed_connection_config(config: &Map<String, Value>) -> Map<String, Value> {
    config
        .iter()
        .map(|(key, value)| {
            let key = if key.starts_with(PARAMS_PREFIX) {
                key.clone()
            } else {
                format!("{PARAMS_PREFIX}{key}")
            };
            (key, value.clone())
        })
        .collect()
}

/// A connection as this server stores it, or why it cannot be: credentials of an auth mode
/// this server does not have or that do not fit the template, a connection config the template
/// refuses. Nothing is asked of the provider.
pub fn connection_fields(
    source: &SourceConnection,
    config: &ProviderConfig,
    template: &ProviderTemplate,
    now: DateTime<Utc>,
) -> Result<ConnectionFields, String> {
    // The operator's host wins over a connection's (this server's rule): a connection Nango
    // sent elsewhere would have its tokens sent to the integration's host instead.
    for full in &template.hosts.host {
        let name = full.strip_prefix(PARAMS_PREFIX).unwrap_or(full);
        let theirs = source
            .connection_config
            .get(name)
            .or_else(|| source.connection_config.get(full.as_str()));
        if let (Some(theirs), Some(ours)) = (theirs, config.connection_config.get(name)) {
            if theirs != ours {
                return Err(format!(
                    "its host '{name}' is {theirs} at the source but {ours} in integration '{}' here: import it into an integration with that host",
                    config.unique_key
                ));
            }
        }
    }
    // Current Nango lets a connection carry its own OAuth app; this server refreshes every
    // connection with its integration's.
    if let Some(app) = source
        .credentials
        .get("config_override")
        .and_then(Value::as_object)
    {
        let own = |name: &str| {
            app.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        if own("client_id").is_some_and(|id| id != config.oauth_client_id)
            || own("client_secret").is_some()
        {
            return Err(
                "it uses an OAuth app of its own (config_override); this server refreshes each connection with its integration's app: import it into an integration with that app"
                    .into(),
            );
        }
    }
    let imported = nango_credentials(&source.credentials)?;
    let credentials =
        imported_credentials(config, template, imported).map_err(|e| e.to_string())?;
    let connection_config = checked_connection_config(
        template,
        config,
        &prefixed_connection_config(&source.connection_config),
        ValueSource::Stored,
    )
    .map_err(|e| e.to_string())?;
    let tags = checked_tags("tags", source.tags.clone()).map_err(|e| e.to_string())?;
    Ok(ConnectionFields {
        provider_config_key: source.provider_config_key.clone(),
        connection_id: source.connection_id.clone(),
        obtained_at: last_written(source, &credentials, now),
        credentials,
        connection_config,
        metadata: source.metadata.clone(),
        owner: Some(Owner {
            end_user: source.end_user.clone(),
            tags,
        }),
    })
}

/// Nango's credentials object (any version) as credentials to import.
fn nango_credentials(credentials: &Value) -> Result<ImportedCredentials, String> {
    let object = credentials
        .as_object()
        .ok_or("its credentials are not a JSON object")?;
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_string);
    let raw = || object.get("raw").and_then(Value::as_object).cloned();
    let expires_at = || -> Result<Option<DateTime<Utc>>, String> {
        match object.get("expires_at") {
            None | Some(Value::Null) => Ok(None),
            Some(value) => nango_time(value)
                .map(Some)
                .ok_or_else(|| format!("its expires_at ({value}) is not a time")),
        }
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or("its credentials have no type")?;
    Ok(match kind {
        "OAUTH2" => ImportedCredentials::OAuth2 {
            access_token: text("access_token").unwrap_or_default(),
            refresh_token: text("refresh_token").filter(|t| !t.is_empty()),
            expires_at: expires_at()?,
            raw: raw(),
        },
        "OAUTH1" => ImportedCredentials::OAuth1 {
            oauth_token: text("oauth_token").unwrap_or_default(),
            oauth_token_secret: text("oauth_token_secret").unwrap_or_default(),
            raw: raw(),
        },
        "OAUTH2_CC" => ImportedCredentials::ClientCredentials {
            token: text("token").unwrap_or_default(),
            expires_at: expires_at()?,
            raw: raw(),
            client_id: text("client_id"),
        },
        "API_KEY" => ImportedCredentials::Entered(EnteredCredentials {
            api_key: text("apiKey"),
            ..Default::default()
        }),
        "BASIC" => ImportedCredentials::Entered(EnteredCredentials {
            username: text("username"),
            password: text("password"),
            ..Default::default()
        }),
        other => {
            return Err(format!(
                "auth mode {other} is not offered by this server (OAUTH2, OAUTH1, OAUTH2_CC, API_KEY and BASIC are)"
            ))
        }
    })
}

/// A time as Nango stores them: an ISO-8601 string, or UNIX seconds.
fn nango_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => DateTime::from_timestamp_millis((n.as_f64()? * 1000.0) as i64),
        _ => None,
    }
}

/// When the source last wrote these credentials: the refresher counts imported connections as
/// refreshed then, so that thousands of them are not refreshed at once. Current Nango records
/// its refreshes (`last_refresh_success`, `updated_at`); 0.9 never updates `updated_at` on a
/// refresh, so a token that says its lifetime (`expires_at` and `raw.expires_in`) tells when it
/// was issued. Never later than now.
fn last_written(
    source: &SourceConnection,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let issued = match credentials {
        Credentials::OAuth2(oauth) => oauth.expires_at.zip(
            oauth
                .raw
                .get("expires_in")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())),
        ),
        _ => None,
    }
    .and_then(|(expires_at, lifetime)| {
        expires_at.checked_sub_signed(chrono::Duration::milliseconds((lifetime * 1000.0) as i64))
    });
    [source.last_refreshed_at, source.updated_at, issued]
        .into_iter()
        .flatten()
        .max()
        .or(source.created_at)
        .unwrap_or(now)
        .min(now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(credentials: Value) -> SourceConnection {
        SourceConnection {
            provider_config_key: "github".into(),
            connection_id: "u1".into(),
            credentials,
            connection_config: Map::new(),
            metadata: Map::new(),
            end_user: None,
            tags: Map::new(),
            created_at: None,
            updated_at: None,
            last_refreshed_at: None,
        }
    }

    #[test]
    fn bare_keys_are_prefixed_and_prefixed_ones_kept() {
        let config = json!({"subdomain": "acme", "connectionConfig.params.region": "eu"});
        let prefixed = prefixed_connection_config(config.as_object().unwrap());
        assert_eq!(
            Value::Object(prefixed),
            json!({"connectionConfig.params.subdomain": "acme", "connectionConfig.params.region": "eu"})
        );
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = connection(json!({"type": "OAUTH2", "access_token": "a", "refresh_token": "r"}));
        let b = connection(json!({"refresh_token": "r", "access_token": "a", "type": "OAUTH2"}));
        let c = connection(json!({"type": "OAUTH2", "access_token": "b", "refresh_token": "r"}));
        assert_eq!(connection_fingerprint(&a), connection_fingerprint(&b));
        assert_ne!(connection_fingerprint(&a), connection_fingerprint(&c));
    }

    #[test]
    fn nango_credentials_by_type() {
        let oauth2 = nango_credentials(&json!({
            "type": "OAUTH2", "access_token": "a", "refresh_token": "r",
            "expires_at": "2024-01-01T00:00:00.000Z", "raw": {"scope": "x"}
        }))
        .unwrap();
        match oauth2 {
            ImportedCredentials::OAuth2 {
                access_token,
                refresh_token,
                expires_at,
                raw,
            } => {
                assert_eq!(access_token, "a");
                assert_eq!(refresh_token.as_deref(), Some("r"));
                assert_eq!(expires_at.map(|t| t.timestamp()), Some(1_704_067_200));
                assert_eq!(raw.unwrap()["scope"], "x");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            nango_credentials(&json!({"type": "OAUTH2", "access_token": "a", "expires_at": 1704067200})),
            Ok(ImportedCredentials::OAuth2 { expires_at: Some(at), .. }) if at.timestamp() == 1_704_067_200
        ));
        assert!(matches!(
            nango_credentials(&json!({"type": "API_KEY", "apiKey": "k"})),
            Ok(ImportedCredentials::Entered(EnteredCredentials { api_key: Some(k), .. })) if k == "k"
        ));
        let refused = nango_credentials(&json!({"type": "APP", "access_token": "a"})).unwrap_err();
        assert!(
            refused.contains("auth mode APP is not offered"),
            "{refused}"
        );
        assert!(nango_credentials(&json!({"type": "OAUTH2", "expires_at": "soon"})).is_err());
        assert!(nango_credentials(&json!("text")).is_err());
    }

    #[test]
    fn last_written_prefers_the_latest_known_write_and_never_the_future() {
        let now = Utc::now();
        let mut source = connection(json!({}));
        source.created_at = Some(now - chrono::Duration::days(400));
        source.updated_at = Some(now - chrono::Duration::days(400));
        let issued_an_hour_ago = Credentials::OAuth2(crate::credentials::OAuth2Credentials {
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            expires_at: Some(now + chrono::Duration::hours(1)),
            raw: json!({"expires_in": 7200}),
        });
        let at = last_written(&source, &issued_an_hour_ago, now);
        assert!(
            (at - (now - chrono::Duration::hours(1)))
                .num_seconds()
                .abs()
                <= 1
        );
        source.last_refreshed_at = Some(now + chrono::Duration::days(1));
        assert_eq!(last_written(&source, &issued_an_hour_ago, now), now);
    }
}
