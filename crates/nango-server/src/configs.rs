//! Provider configs as every front door takes them (REST `/config`, the dashboard, the proxy, the
//! flows): the fields of a new or edited config read and checked in Nango's order, scopes
//! normalised, and a config looked up with its template.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::check_id;
use crate::providers::{check_resolved_host, AuthMode, ProviderTemplate, PARAMS_PREFIX};
use crate::secret::Secret;
use crate::store::{ConfigRename, ProviderConfig, ProviderConfigFields, StoreError};
use crate::AppState;

/// The config and its template, or the documented errors. The config may come from the read
/// cache, which every write of it evicts (on every replica, on PostgreSQL).
pub async fn config_and_template<'a>(
    state: &'a AppState,
    key: &str,
) -> Result<(ProviderConfig, &'a ProviderTemplate), ApiError> {
    let config = state
        .store
        .get_config_cached(key)
        .await?
        .ok_or(ApiError::UnknownProviderConfig)?;
    let template = state
        .catalog
        .get(&config.provider)
        .ok_or(ApiError::UnknownProviderTemplate)?;
    Ok((config, template))
}

/// Reads the five fields in Nango's validation order, so the first missing one is reported, then
/// the optional `connection_config` (the operator's values for the template's placeholders).
pub async fn config_fields(
    body: &Map<String, Value>,
    state: &AppState,
) -> Result<ProviderConfigFields, ApiError> {
    let unique_key = string_field(body, "provider_config_key", ApiError::MissingProviderConfig)?;
    if unique_key.is_empty() {
        return Err(ApiError::MissingProviderConfig);
    }
    check_id("provider_config_key", &unique_key)?;
    let provider = string_field(body, "provider", ApiError::MissingProviderTemplate)?;
    if !state.catalog.contains(&provider) {
        return Err(ApiError::UnknownProviderTemplate);
    }
    let oauth_client_id = string_field(body, "oauth_client_id", ApiError::MissingClientId)?;
    let oauth_client_secret =
        string_field(body, "oauth_client_secret", ApiError::MissingClientSecret)?;
    let oauth_scopes = string_field(body, "oauth_scopes", ApiError::MissingScopes)?;
    for (name, value, max) in [
        ("oauth_client_id", &oauth_client_id, 1024),
        ("oauth_client_secret", &oauth_client_secret, 8192),
        ("oauth_scopes", &oauth_scopes, 8192),
    ] {
        if value.len() > max {
            return Err(ApiError::InvalidRequest(format!(
                "Param '{name}' is too long (at most {max} bytes)."
            )));
        }
    }
    let connection_config = match body.get("connection_config") {
        None | Some(Value::Null) => None,
        Some(value) => {
            // Checked by `contains` above.
            let template = state
                .catalog
                .get(&provider)
                .ok_or(ApiError::UnknownProviderTemplate)?;
            Some(operator_connection_config(template, value).await?)
        }
    };
    Ok(ProviderConfigFields {
        unique_key,
        provider,
        oauth_client_id,
        oauth_client_secret: Secret::new(oauth_client_secret),
        oauth_scopes,
        connection_config,
        display_name: None,
    })
}

/// An OAuth app's credentials as an integration carries them (current Nango's
/// `credentials: {type, client_id, client_secret, scopes}`).
#[derive(Debug)]
pub struct AppCredentials {
    /// The auth mode they are for: must be the template's.
    pub mode: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    /// Comma- or space-separated; stored comma-separated.
    pub scopes: String,
}

/// A new integration (current Nango's `POST /integrations`), read but not yet checked.
#[derive(Debug)]
pub struct NewIntegration {
    pub unique_key: String,
    pub provider: String,
    pub display_name: Option<String>,
    pub credentials: Option<AppCredentials>,
    /// The operator's values for the template's placeholders, as `/config` takes them.
    pub connection_config: Option<Value>,
}

/// Changes to an integration (current Nango's `PATCH /integrations/{key}`); `None` keeps.
#[derive(Debug, Default)]
pub struct IntegrationEdit {
    /// A new key: only while no connection uses the integration.
    pub unique_key: Option<String>,
    pub display_name: Option<String>,
    pub credentials: Option<AppCredentials>,
    pub connection_config: Option<Value>,
}

/// Creates a provider config from an integration; the stored config.
pub async fn create_integration(
    state: &AppState,
    new: NewIntegration,
) -> Result<ProviderConfig, ApiError> {
    check_key(&new.unique_key)?;
    let template = state
        .catalog
        .get(&new.provider)
        .ok_or(ApiError::UnknownProviderTemplate)?;
    let app = app_fields(template, new.credentials, &new.provider)?;
    if app.is_none() && needs_app(template) {
        return Err(ApiError::InvalidRequest(format!(
            "Missing credentials: provider '{}' ({}) needs its OAuth app's client_id and client_secret.",
            new.provider,
            template.auth_mode.as_str()
        )));
    }
    let connection_config = match &new.connection_config {
        None | Some(Value::Null) => None,
        Some(value) => Some(operator_connection_config(template, value).await?),
    };
    let (oauth_client_id, oauth_client_secret, oauth_scopes) = app.unwrap_or_default();
    let fields = ProviderConfigFields {
        unique_key: new.unique_key,
        provider: new.provider,
        oauth_client_id,
        oauth_client_secret,
        oauth_scopes,
        connection_config,
        display_name: new.display_name,
    };
    match state.store.insert_config(&fields).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return Err(ApiError::DuplicateProviderConfig),
        Err(e) => return Err(e.into()),
    }
    stored_config(state, &fields.unique_key).await
}

/// Applies an integration's changes; the stored config. A new key is given last, once the other
/// changes are stored, and only while no connection uses the config (connections find their
/// config by key).
pub async fn edit_integration(
    state: &AppState,
    key: &str,
    edit: IntegrationEdit,
) -> Result<ProviderConfig, ApiError> {
    let (config, template) = config_and_template(state, key).await?;
    if let Some(new_key) = &edit.unique_key {
        check_key(new_key)?;
    }
    let app = app_fields(template, edit.credentials, &config.provider)?;
    let connection_config = match &edit.connection_config {
        None | Some(Value::Null) => None,
        Some(value) => Some(operator_connection_config(template, value).await?),
    };
    if app.is_some() || connection_config.is_some() || edit.display_name.is_some() {
        let (oauth_client_id, oauth_client_secret, oauth_scopes) = app.unwrap_or_else(|| {
            (
                config.oauth_client_id.clone(),
                config.oauth_client_secret.clone(),
                config.oauth_scopes.clone(),
            )
        });
        let fields = ProviderConfigFields {
            unique_key: config.unique_key.clone(),
            provider: config.provider.clone(),
            oauth_client_id,
            oauth_client_secret,
            oauth_scopes,
            connection_config,
            display_name: edit.display_name,
        };
        if !state.store.update_config(&fields).await? {
            return Err(ApiError::UnknownProviderConfig);
        }
    }
    let key = match edit.unique_key {
        Some(new_key) if new_key != key => {
            match state.store.rename_config(key, &new_key).await {
                Ok(ConfigRename::Renamed) => {}
                Ok(ConfigRename::NotFound) => return Err(ApiError::UnknownProviderConfig),
                Ok(ConfigRename::HasConnections) => {
                    return Err(ApiError::InvalidRequest(format!(
                        "The key of integration '{key}' cannot change while connections use it."
                    )))
                }
                Err(StoreError::Conflict(_)) => {
                    return Err(ApiError::InvalidRequest(format!(
                        "Key '{new_key}' is already used by another integration."
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            new_key
        }
        _ => key.to_string(),
    };
    stored_config(state, &key).await
}

/// An integration's key: what `/config` accepts, and not empty.
fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::InvalidRequest(
            "Param 'unique_key' must not be empty.".into(),
        ));
    }
    check_id("unique_key", key)
}

async fn stored_config(state: &AppState, key: &str) -> Result<ProviderConfig, ApiError> {
    state
        .store
        .get_config(key)
        .await?
        .ok_or(ApiError::UnknownProviderConfig)
}

/// The name an integration is shown under: its own, else its template's display name, else the
/// template's name.
pub fn display_name(config: &ProviderConfig, template: Option<&ProviderTemplate>) -> String {
    config
        .display_name
        .clone()
        .or_else(|| template.and_then(|t| t.display_name.clone()))
        .unwrap_or_else(|| config.provider.clone())
}

/// Whether the template's connections need the config's OAuth app (every mode but API keys and
/// Basic credentials, which the end user brings).
pub fn needs_app(template: &ProviderTemplate) -> bool {
    !matches!(template.auth_mode, AuthMode::ApiKey | AuthMode::Basic)
}

/// The config's client id, secret and normalised scopes from an integration's credentials,
/// checked against the template's auth mode and the `/config` length limits.
fn app_fields(
    template: &ProviderTemplate,
    credentials: Option<AppCredentials>,
    provider: &str,
) -> Result<Option<(String, Secret<String>, String)>, ApiError> {
    let Some(app) = credentials else {
        return Ok(None);
    };
    let mode = template.auth_mode.as_str();
    if !needs_app(template) || app.mode != mode {
        return Err(ApiError::InvalidRequest(format!(
            "Credentials of type '{}' do not fit provider '{provider}', whose auth mode is {mode}{}.",
            app.mode,
            if needs_app(template) {
                ""
            } else {
                " (its end users bring their own credentials: no credentials are set on the integration)"
            }
        )));
    }
    for (name, value, max) in [
        ("credentials.client_id", app.client_id.as_str(), 1024),
        (
            "credentials.client_secret",
            app.client_secret.expose(),
            8192,
        ),
        ("credentials.scopes", app.scopes.as_str(), 8192),
    ] {
        if value.len() > max {
            return Err(ApiError::InvalidRequest(format!(
                "Param '{name}' is too long (at most {max} bytes)."
            )));
        }
    }
    if app.client_id.is_empty() || app.client_secret.expose().is_empty() {
        return Err(ApiError::InvalidRequest(
            "Params 'credentials.client_id' and 'credentials.client_secret' must not be empty."
                .into(),
        ));
    }
    Ok(Some((
        app.client_id,
        app.client_secret,
        normalise_scopes(&app.scopes),
    )))
}

/// The operator's `connection_config`: an object of strings, keyed by the template's placeholder
/// names (`hostname`), each matching the template's pattern and fit to go in a URL. For a
/// built-in template a host value must be a public host name: not an IP address, not a local
/// name, not resolving to a loopback, private, link-local or otherwise non-public address. A
/// template from the operator's providers file may use any host (local test providers).
async fn operator_connection_config(
    template: &ProviderTemplate,
    value: &Value,
) -> Result<Map<String, Value>, ApiError> {
    let invalid = |message: String| ApiError::InvalidRequest(message);
    let Value::Object(values) = value else {
        return Err(invalid(
            "Param 'connection_config' must be an object of strings.".into(),
        ));
    };
    let known: BTreeSet<&str> = template
        .connection_config
        .keys()
        .map(String::as_str)
        .chain(template.hosts.host_params())
        .chain(
            template
                .hosts
                .label
                .iter()
                .filter_map(|n| n.strip_prefix(PARAMS_PREFIX)),
        )
        .collect();
    for (name, value) in values {
        if !known.contains(name.as_str()) {
            let expected = if known.is_empty() {
                "this provider takes none".to_string()
            } else {
                format!(
                    "this provider takes {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )
            };
            return Err(invalid(format!(
                "Unknown connection_config param '{name}': {expected}."
            )));
        }
        let Some(text) = value.as_str() else {
            return Err(invalid(format!(
                "connection_config param '{name}' must be a string."
            )));
        };
        if !interpolation_safe(text) {
            return Err(invalid(format!(
                "connection_config param '{name}' is not a host name or label: only letters, digits, '.', '-' and '_' are allowed."
            )));
        }
        if let Some(field) = template.connection_config.get(name) {
            if let Some(pattern) = &field.pattern {
                // Validated when the catalog loaded; anchored so the whole value must match.
                let matches = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map(|re| re.is_match(text))
                    .unwrap_or(false);
                if !matches {
                    return Err(invalid(format!(
                        "connection_config param '{name}' is not valid: it must match {pattern}."
                    )));
                }
            }
        }
        let is_host = template.hosts.host_params().any(|h| h == name);
        if is_host && !template.operator_file {
            check_resolved_host(text).await.map_err(|e| {
                invalid(format!(
                    "connection_config param '{name}' is refused: {e}. A template from the operator's providers file (NANGO_PROVIDERS_FILE) may point at such a host."
                ))
            })?;
        }
    }
    Ok(values.clone())
}

/// What the URL interpolation accepts (checked again there): a host name or label.
fn interpolation_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            let bytes = label.as_bytes();
            (1..=63).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        })
}

/// Absent or `null` is "missing" (Nango's rule; an empty string passes); other non-strings are
/// refused instead of being stored as something else.
fn string_field(
    body: &Map<String, Value>,
    name: &str,
    missing: ApiError,
) -> Result<String, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(missing),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::InvalidRequest(format!(
            "Param '{name}' must be a string."
        ))),
    }
}

/// Spaces become commas, empty items go: `"user public_repo"` and `"user,,public_repo"` both
/// become `"user,public_repo"`.
pub fn normalise_scopes(scopes: &str) -> String {
    scopes
        .replace(' ', ",")
        .split(',')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::normalise_scopes;

    #[test]
    fn scopes_are_normalised_to_a_comma_list() {
        assert_eq!(normalise_scopes("user public_repo"), "user,public_repo");
        assert_eq!(normalise_scopes("user,,public_repo"), "user,public_repo");
        assert_eq!(normalise_scopes(" a , b "), "a,b");
        assert_eq!(normalise_scopes(""), "");
    }
}
