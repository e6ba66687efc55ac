//! `/config`: provider configs (which template, which OAuth app), as Nango 0.9 served them.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::{check_id, empty_ok, json_object_body, json_response, path_id};
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::secret::Secret;
use crate::store::{ProviderConfig, ProviderConfigFields, StoreError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/config",
            get(list_configs).post(create_config).put(edit_config),
        )
        .route("/config/{key}", get(get_config).delete(delete_config))
}

/// The row as `GET /config` returned it, client secret included (that is the 0.9 contract; the
/// route is behind the secret key).
pub fn config_json(c: &ProviderConfig) -> Value {
    json!({
        "id": c.id,
        "created_at": iso_millis(c.created_at),
        "updated_at": iso_millis(c.updated_at),
        "unique_key": c.unique_key,
        "provider": c.provider,
        "oauth_client_id": c.oauth_client_id,
        "oauth_client_secret": c.oauth_client_secret.expose(),
        "oauth_scopes": c.oauth_scopes,
        "account_id": c.account_id,
    })
}

async fn list_configs(State(state): State<AppState>) -> Result<Response, ApiError> {
    let configs = state.store.list_configs().await?;
    let configs: Vec<Value> = configs.iter().map(config_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "configs": configs }),
    ))
}

async fn get_config(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = path_id(path, "provider_config_key")?;
    let config = state
        .store
        .get_config(&key)
        .await?
        .ok_or(ApiError::UnknownProviderConfig)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "config": config_json(&config) }),
    ))
}

async fn create_config(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let mut fields = config_fields(&body, &state)?;
    fields.oauth_scopes = normalise_scopes(&fields.oauth_scopes);
    match state.store.insert_config(&fields).await {
        Ok(id) => Ok(json_response(StatusCode::OK, &json!({ "config_id": id }))),
        Err(StoreError::Conflict(_)) => Err(ApiError::DuplicateProviderConfig),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /config`: 0.9 neither checked the template nor normalised scopes here. We do check the
/// template, since a config pointing at no template can never run a flow.
async fn edit_config(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let fields = config_fields(&body, &state)?;
    if state.store.update_config(&fields).await? {
        Ok(empty_ok())
    } else {
        Err(ApiError::UnknownProviderConfig)
    }
}

async fn delete_config(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = path_id(path, "provider_config_key")?;
    state.store.delete_config(&key).await?;
    Ok(empty_ok())
}

/// Reads the five fields in Nango's validation order, so the first missing one is reported.
fn config_fields(
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
