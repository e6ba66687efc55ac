//! `/config`: provider configs (which template, which OAuth app), as Nango 0.9 served them.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{empty_ok, json_object_body, json_response, path_id};
use crate::configs::{config_fields, normalise_scopes};
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::store::{ProviderConfig, StoreError};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_configs, create_config, edit_config))
        .routes(routes!(get_config, delete_config))
}

/// A provider config as `GET /config` returns it, client secret included (that is the 0.9
/// contract; the route is behind the secret key).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigBody {
    pub id: i64,
    /// ISO 8601 with milliseconds.
    pub created_at: String,
    pub updated_at: String,
    /// The provider config key.
    pub unique_key: String,
    /// The provider template's name in the catalog.
    pub provider: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
    /// Comma-separated.
    pub oauth_scopes: String,
    pub account_id: i64,
    /// The operator's values for the template's placeholders (`{"hostname": "ghe.example.com"}`);
    /// host placeholders are filled from here only. Empty when none are set.
    #[schema(value_type = Object)]
    pub connection_config: serde_json::Map<String, serde_json::Value>,
}

impl From<&ProviderConfig> for ConfigBody {
    fn from(c: &ProviderConfig) -> Self {
        ConfigBody {
            id: c.id,
            created_at: iso_millis(c.created_at),
            updated_at: iso_millis(c.updated_at),
            unique_key: c.unique_key.clone(),
            provider: c.provider.clone(),
            oauth_client_id: c.oauth_client_id.clone(),
            oauth_client_secret: c.oauth_client_secret.expose().to_string(),
            oauth_scopes: c.oauth_scopes.clone(),
            account_id: c.account_id,
            connection_config: c.connection_config.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigList {
    pub configs: Vec<ConfigBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEnvelope {
    pub config: ConfigBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigCreated {
    pub config_id: i64,
}

/// The body of `POST /config` and `PUT /config` (read field by field, in this order, so the
/// first missing one is the one reported).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema: the handlers read the JSON object themselves
pub struct ConfigRequest {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
        example = "github"
    )]
    provider_config_key: String,
    /// A provider template of the catalog (`GET /providers` lists them).
    provider: String,
    #[schema(max_length = 1024)]
    oauth_client_id: String,
    #[schema(max_length = 8192)]
    oauth_client_secret: String,
    /// Comma- or space-separated scopes; stored comma-separated.
    #[schema(max_length = 8192)]
    oauth_scopes: String,
    /// The operator's values for the template's placeholders, by placeholder name
    /// (`{"hostname": "ghe.example.com"}`): strings matching the template's patterns. A host
    /// placeholder (one that chooses the whole host, the registrable domain or the port) takes
    /// its value only from here, never from the browser; for a built-in template it must be a
    /// public host name. Omitted on `PUT`: the stored values are kept.
    #[schema(value_type = Option<Object>, example = json!({"hostname": "ghe.example.com"}))]
    connection_config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A config key in the path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema: the handlers read the path themselves to answer bad ids in JSON
pub struct ConfigKeyPath {
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
        example = "github"
    )]
    provider_config_key: String,
}

/// Every provider config.
#[utoipa::path(
    get, path = "/config", tag = "configs",
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConfigList),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn list_configs(State(state): State<AppState>) -> Result<Response, ApiError> {
    let configs = state.store.list_configs().await?;
    let configs = configs.iter().map(ConfigBody::from).collect();
    Ok(json_response(StatusCode::OK, &ConfigList { configs }))
}

/// One provider config.
#[utoipa::path(
    get, path = "/config/{provider_config_key}", tag = "configs",
    params(ConfigKeyPath),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConfigEnvelope),
        (status = 400, description = "No such config, or a bad key.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
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
        &ConfigEnvelope {
            config: ConfigBody::from(&config),
        },
    ))
}

/// Creates a provider config.
#[utoipa::path(
    post, path = "/config", tag = "configs",
    request_body(content = ConfigRequest, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConfigCreated),
        (status = 400, description = "A missing or invalid field, an unknown template, or the key is taken.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
    )
)]
async fn create_config(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let mut fields = config_fields(&body, &state).await?;
    fields.oauth_scopes = normalise_scopes(&fields.oauth_scopes);
    match state.store.insert_config(&fields).await {
        Ok(config_id) => Ok(json_response(StatusCode::OK, &ConfigCreated { config_id })),
        Err(StoreError::Conflict(_)) => Err(ApiError::DuplicateProviderConfig),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a provider config's template, OAuth app and scopes. 0.9 neither checked the template
/// nor normalised scopes here; we do check the template, since a config pointing at no template
/// can never run a flow.
#[utoipa::path(
    put, path = "/config", tag = "configs",
    request_body(content = ConfigRequest, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Updated (empty body)."),
        (status = 400, description = "A missing or invalid field, an unknown template, or no such config.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
    )
)]
async fn edit_config(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let fields = config_fields(&body, &state).await?;
    if state.store.update_config(&fields).await? {
        Ok(empty_ok())
    } else {
        Err(ApiError::UnknownProviderConfig)
    }
}

/// Deletes a provider config (200 also when there was none, as in 0.9). Its connections are kept,
/// as in 0.9: reading one answers the unknown-config error until a config with that key exists again.
#[utoipa::path(
    delete, path = "/config/{provider_config_key}", tag = "configs",
    params(ConfigKeyPath),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Deleted (empty body)."),
        (status = 400, description = "A bad key.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn delete_config(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = path_id(path, "provider_config_key")?;
    state.store.delete_config(&key).await?;
    Ok(empty_ok())
}
