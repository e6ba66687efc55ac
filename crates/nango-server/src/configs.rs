//! Provider configs as every front door takes them (REST `/config`, the dashboard, the proxy, the
//! flows): the fields of a new or edited config read and checked in Nango's order, scopes
//! normalised, and a config looked up with its template.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::check_id;
use crate::providers::ProviderTemplate;
use crate::secret::Secret;
use crate::store::{ProviderConfig, ProviderConfigFields};
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

/// Reads the five fields in Nango's validation order, so the first missing one is reported.
pub fn config_fields(
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
    Ok(ProviderConfigFields {
        unique_key,
        provider,
        oauth_client_id,
        oauth_client_secret: Secret::new(oauth_client_secret),
        oauth_scopes,
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
