//! Current Nango's writes to connections: `POST /connections` (import credentials a backend
//! already holds), `PATCH /connections/{id}` (end user and tags) and metadata
//! (`POST`/`PATCH /connections/metadata`, and the same per connection).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::connections::{connection_params, ConnectionKeyQuery, ConnectionPath};
use super::current::{
    connection_full, invalid_body, refuse_webhook_override, typed_body, ConnectionFull, Current,
    CurrentErrorBody, Success,
};
use super::{check_id, json_object_body, json_response};
use crate::connections::{
    change_owner, import_connection, owner_from, placeholder_values, write_metadata, EndUser,
    EnteredCredentials, ImportedConnection, ImportedCredentials, Organization,
};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(patch_connection))
        .routes(routes!(set_metadata, update_metadata))
        .routes(routes!(
            get_connection_metadata,
            set_connection_metadata,
            update_connection_metadata
        ))
}

/// A body's problem, in the envelope, as current Nango words it for bodies.
fn body_error(e: ApiError) -> Current {
    match e {
        ApiError::InvalidRequest(message) | ApiError::InvalidCredentials(message) => {
            invalid_body(message)
        }
        ApiError::MissingBody => invalid_body(e.to_string()),
        ApiError::UnknownProviderConfig => Current::new(
            StatusCode::BAD_REQUEST,
            "unknown_provider_config",
            e.to_string(),
        ),
        ApiError::UnknownConnection => {
            Current::new(StatusCode::NOT_FOUND, "unknown_connection", e.to_string())
        }
        other => other.into(),
    }
}

/// Credentials to import, by auth mode (the provider's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ImportCredentials {
    /// An OAuth 2 token, with its refresh token and expiry when it has them (refreshed here
    /// from then on).
    #[serde(rename = "OAUTH2")]
    OAuth2 {
        access_token: String,
        #[serde(default)]
        refresh_token: Option<String>,
        /// ISO 8601 (RFC 3339).
        #[serde(default)]
        #[schema(value_type = Option<String>, format = DateTime)]
        expires_at: Option<DateTime<Utc>>,
        /// The provider's token response, when kept.
        #[serde(default)]
        #[schema(value_type = Option<Object>)]
        raw: Option<Map<String, Value>>,
        /// Accepted for current Nango's clients; the integration's OAuth app is used.
        #[serde(default)]
        #[schema(value_type = Option<Object>)]
        config_override: Option<Value>,
    },
    /// A client credentials token (fetched again here with the integration's app).
    #[serde(rename = "OAUTH2_CC")]
    ClientCredentials {
        token: String,
        #[serde(default)]
        #[schema(value_type = Option<String>, format = DateTime)]
        expires_at: Option<DateTime<Utc>>,
        /// When given, must be the integration's client id (its app fetches the next tokens).
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        #[schema(value_type = Option<Object>)]
        raw: Option<Value>,
    },
    #[serde(rename = "OAUTH1")]
    OAuth1 {
        oauth_token: String,
        oauth_token_secret: String,
    },
    /// Verified with the provider (the template's verification call) before it is stored.
    #[serde(rename = "API_KEY")]
    ApiKey {
        #[serde(rename = "apiKey")]
        api_key: String,
    },
    /// Verified with the provider before it is stored.
    #[serde(rename = "BASIC")]
    Basic {
        username: String,
        #[serde(default)]
        password: String,
    },
}

/// The body of `POST /connections`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    #[schema(min_length = 1, max_length = 255, example = "github")]
    pub provider_config_key: String,
    /// Generated (a UUID) when absent. An existing connection of that id is replaced.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub connection_id: Option<String>,
    pub credentials: ImportCredentials,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// The template's placeholder values (`{"subdomain": "acme"}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub connection_config: Option<Map<String, Value>>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
    #[serde(default)]
    pub organization: Option<Organization>,
    /// Strings by name.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    /// Not offered here (webhooks go to the server's configured URLs): must be absent or null.
    #[serde(default)]
    pub webhook_url_override: Option<String>,
}

/// Imports a connection with credentials the backend already holds (from another token broker,
/// or its own store): no end user is asked to authorize again. An OAuth token is kept as given
/// and refreshed here from then on; an API key or username and password is verified with the
/// provider first.
#[utoipa::path(
    post, path = "/connections", tag = "connections (current Nango)",
    request_body(content = ImportBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 201, description = "The connection as stored, with its credentials (refresh token included).", body = ConnectionFull),
        (status = 400, description = "An invalid field, credentials that do not fit the provider's auth mode or that the provider refused (`invalid_body`), or an unknown integration (`unknown_provider_config`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
        (status = 502, description = "The provider's verification call failed: nothing is stored.", body = CurrentErrorBody),
    )
)]
async fn import(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    let body: ImportBody = typed_body(body)?;
    refuse_webhook_override(body.webhook_url_override.as_ref())?;
    check_id("provider_config_key", &body.provider_config_key).map_err(body_error)?;
    let connection_id = match body.connection_id {
        Some(id) => {
            check_id("connection_id", &id).map_err(body_error)?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let credentials = match body.credentials {
        ImportCredentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            raw,
            config_override: _,
        } => ImportedCredentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            raw,
        },
        ImportCredentials::ClientCredentials {
            token,
            expires_at,
            client_id,
            client_secret: _,
            raw: _,
        } => ImportedCredentials::ClientCredentials {
            token,
            expires_at,
            raw: None,
            client_id,
        },
        ImportCredentials::OAuth1 {
            oauth_token,
            oauth_token_secret,
        } => ImportedCredentials::OAuth1 {
            oauth_token,
            oauth_token_secret,
            raw: None,
        },
        ImportCredentials::ApiKey { api_key } => ImportedCredentials::Entered(EnteredCredentials {
            api_key: Some(api_key),
            ..Default::default()
        }),
        ImportCredentials::Basic { username, password } => {
            ImportedCredentials::Entered(EnteredCredentials {
                username: Some(username),
                password: Some(password),
                ..Default::default()
            })
        }
    };
    let owner = if body.end_user.is_some() || body.organization.is_some() || body.tags.is_some() {
        Some(owner_from(body.end_user, body.organization, body.tags).map_err(body_error)?)
    } else {
        None
    };
    let import = ImportedConnection {
        provider_config_key: body.provider_config_key,
        connection_id,
        credentials,
        connection_config: placeholder_values(&body.connection_config.unwrap_or_default())
            .map_err(body_error)?,
        metadata: body.metadata.unwrap_or_default(),
        owner,
    };
    let connection = import_connection(&state, import)
        .await
        .map_err(body_error)?;
    let provider = state
        .store
        .get_config_cached(&connection.provider_config_key)
        .await
        .map_err(ApiError::from)?
        .map(|c| c.provider)
        .unwrap_or_default();
    let full = connection_full(&connection, provider, true)?;
    Ok(json_response(StatusCode::CREATED, &full))
}

/// The body of `PATCH /connections/{connection_id}`: what is given replaces what is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    #[serde(default)]
    pub end_user: Option<EndUser>,
    /// Strings by name; replaces the connection's tags.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    /// Not offered here: must be absent or null.
    #[serde(default)]
    pub webhook_url_override: Option<String>,
}

/// Changes a connection's end user or tags.
#[utoipa::path(
    patch, path = "/connections/{connection_id}", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery),
    request_body(content = ConnectionPatch, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = Success),
        (status = 400, description = "An invalid field (`invalid_body`) or parameter.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such connection (`unknown_connection`).", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn patch_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    let body: ConnectionPatch = typed_body(body)?;
    refuse_webhook_override(body.webhook_url_override.as_ref())?;
    change_owner(&state, &key, &connection_id, body.end_user, body.tags)
        .await
        .map_err(body_error)?;
    Ok(json_response(StatusCode::OK, &Success { success: true }))
}

/// One connection id or several.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConnectionIds {
    One(String),
    Many(Vec<String>),
}

/// The body of `POST` and `PATCH /connections/metadata`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataBody {
    pub connection_id: ConnectionIds,
    #[schema(min_length = 1, max_length = 255)]
    pub provider_config_key: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Most connections one metadata request may name.
const MAX_METADATA_TARGETS: usize = 1000;

async fn metadata_write(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    merge: bool,
    status: StatusCode,
) -> Result<Response, Current> {
    let raw = json_object_body(body).map_err(body_error)?;
    let body: MetadataBody = serde_json::from_value(Value::Object(raw.clone()))
        .map_err(|e| invalid_body(format!("Invalid body: {e}.")))?;
    let ids = match body.connection_id {
        ConnectionIds::One(id) => vec![id],
        ConnectionIds::Many(ids) => ids,
    };
    if ids.is_empty() || ids.len() > MAX_METADATA_TARGETS {
        return Err(invalid_body(format!(
            "Param 'connection_id' must name 1 to {MAX_METADATA_TARGETS} connections."
        )));
    }
    check_id("provider_config_key", &body.provider_config_key).map_err(body_error)?;
    for id in &ids {
        check_id("connection_id", id).map_err(body_error)?;
    }
    write_metadata(
        state,
        &body.provider_config_key,
        &ids,
        &body.metadata,
        merge,
    )
    .await
    .map_err(body_error)?;
    // Current Nango answers with the request's body.
    Ok(json_response(status, &Value::Object(raw)))
}

/// Replaces the metadata of one or more connections (all or none).
#[utoipa::path(
    post, path = "/connections/metadata", tag = "connections (current Nango)",
    request_body(content = MetadataBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 201, description = "Written; the request's body.", body = Object),
        (status = 400, description = "An invalid field (`invalid_body`) or an unknown integration (`unknown_provider_config`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "A connection does not exist (`unknown_connection`): nothing is written.", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn set_metadata(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    metadata_write(&state, body, false, StatusCode::CREATED).await
}

/// Lays the given top-level keys over the metadata of one or more connections (all or none).
#[utoipa::path(
    patch, path = "/connections/metadata", tag = "connections (current Nango)",
    request_body(content = MetadataBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Written; the request's body.", body = Object),
        (status = 400, description = "An invalid field (`invalid_body`) or an unknown integration (`unknown_provider_config`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "A connection does not exist (`unknown_connection`): nothing is written.", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn update_metadata(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    metadata_write(&state, body, true, StatusCode::OK).await
}

/// One connection's metadata.
#[utoipa::path(
    get, path = "/connections/{connection_id}/metadata", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "The metadata.", body = Object),
        (status = 400, description = "A bad parameter.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such connection (`unknown_connection`).", body = CurrentErrorBody),
    )
)]
async fn get_connection_metadata(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Current> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    let connection = state
        .store
        .get_connection(&key, &connection_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| body_error(ApiError::UnknownConnection))?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Object(connection.metadata),
    ))
}

async fn one_connection_metadata(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
    merge: bool,
) -> Result<Response, Current> {
    let (key, connection_id) = connection_params(path, query)?;
    let metadata = json_object_body(body).map_err(body_error)?;
    write_metadata(state, &key, &[connection_id], &metadata, merge)
        .await
        .map_err(body_error)?;
    Ok(json_response(StatusCode::OK, &Value::Object(metadata)))
}

/// Replaces one connection's metadata with the body (a JSON object).
#[utoipa::path(
    post, path = "/connections/{connection_id}/metadata", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery),
    request_body(content = Object, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Written; the metadata sent.", body = Object),
        (status = 400, description = "A bad parameter or body.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such connection (`unknown_connection`).", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn set_connection_metadata(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    one_connection_metadata(&state, path, query.as_deref(), body, false).await
}

/// Lays the body's top-level keys over one connection's metadata.
#[utoipa::path(
    patch, path = "/connections/{connection_id}/metadata", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery),
    request_body(content = Object, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Written; the metadata sent.", body = Object),
        (status = 400, description = "A bad parameter or body.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such connection (`unknown_connection`).", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn update_connection_metadata(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    one_connection_metadata(&state, path, query.as_deref(), body, true).await
}
