//! `/connection`: stored authorizations; `GET /connection/:id` hands out fresh credentials.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{
    check_id, empty_ok, json_object_body, json_response, parse_query, path_id, query_value,
};
use crate::connections::delete_connection_and_notify;
use crate::connections::{
    optional_string, placeholder_values, store_direct_connection, EnteredCredentials,
};
use crate::credentials::{iso_millis, Credentials, Freshness};
use crate::error::ApiError;
use crate::store::{Connection, ConnectionHealth};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(get_connection, delete_connection))
}

/// The full connection, key order as Nango 0.9 produced it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionBody<'a> {
    pub id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub provider_config_key: &'a str,
    pub connection_id: &'a str,
    pub credentials: &'a Credentials,
    /// Values captured for the template (e.g. `params.subdomain`).
    #[schema(value_type = Object)]
    pub connection_config: &'a Map<String, Value>,
    pub account_id: i64,
    #[schema(value_type = Object)]
    pub metadata: &'a Map<String, Value>,
    /// Only after a failed refresh (absent while refreshes succeed, as in Nango 0.9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshProblem>,
}

/// What went wrong with a connection's refreshes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshProblem {
    /// `needs_reauthorization` (the provider refused the refresh token: requests answer
    /// `refresh_rejected` until the user connects again or a `force_refresh` succeeds) or
    /// `retrying` (the provider failed: the stored token is handed out while it has not expired,
    /// and requests try the provider again from `retry_after`).
    #[schema(example = "needs_reauthorization")]
    pub status: &'static str,
    /// The provider's error.
    pub error: Option<String>,
    /// Failures since the last success.
    pub failures: i64,
    pub retry_after: Option<String>,
}

impl RefreshProblem {
    pub fn of(health: &ConnectionHealth) -> Option<RefreshProblem> {
        if health.refresh_failures == 0 && !health.needs_reauth {
            return None;
        }
        Some(RefreshProblem {
            status: if health.needs_reauth {
                "needs_reauthorization"
            } else {
                "retrying"
            },
            error: health.refresh_error.clone(),
            failures: health.refresh_failures,
            retry_after: crate::credentials::policy::request_retry_at(health)
                .filter(|_| !health.needs_reauth)
                .map(iso_millis),
        })
    }
}

impl<'a> From<&'a Connection> for ConnectionBody<'a> {
    fn from(c: &'a Connection) -> Self {
        ConnectionBody {
            refresh: RefreshProblem::of(&c.health),
            id: c.id,
            created_at: iso_millis(c.created_at),
            updated_at: iso_millis(c.updated_at),
            provider_config_key: &c.provider_config_key,
            connection_id: &c.connection_id,
            credentials: &c.credentials,
            connection_config: &c.connection_config,
            account_id: c.account_id,
            metadata: &c.metadata,
        }
    }
}

/// One line of `GET /connection`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionSummary {
    pub connection_id: String,
    /// The provider config key (what Nango 0.9 listed under this name).
    pub provider: String,
    /// ISO 8601 with milliseconds.
    pub created: String,
    /// Only after a failed refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshProblem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionSummary>,
}

/// The connection id in the path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema: the handlers read the path themselves to answer bad ids in JSON
pub struct ConnectionPath {
    /// The connection id the app chose (its user's id, typically).
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
        example = "user-42"
    )]
    connection_id: String,
}

/// Which connection.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: parsed by `connection_params`
pub struct ConnectionKeyQuery {
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
        example = "github"
    )]
    provider_config_key: String,
}

/// Refresh policy of `GET /connection/{connection_id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: parsed by `get_connection`
pub struct ForceRefreshQuery {
    /// `true`: refresh now, whatever the expiry (400 `not_refreshable` for credentials that cannot be
    /// renewed: no refresh token, and no renewal with the token itself).
    /// Otherwise the token is refreshed only when it is due (less than `min(refresh margin, half
    /// its lifetime)` left; docs/refresh.md).
    force_refresh: Option<bool>,
}

/// Path id and `provider_config_key` query of the single-connection routes, validated in Nango's
/// order (missing key first).
pub(super) fn connection_params(
    path: Result<Path<String>, PathRejection>,
    query: Option<&str>,
) -> Result<(String, String), ApiError> {
    let connection_id = path_id(path, "connection_id")?;
    let params = parse_query(query)?;
    let key = query_value(&params, "provider_config_key")
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingProviderConfig)?
        .to_string();
    check_id("provider_config_key", &key)?;
    Ok((key, connection_id))
}

/// A `true`/`false` query parameter (absent: false).
pub(super) fn bool_param(params: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match query_value(params, name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::InvalidRequest(format!(
            "Param '{name}' must be 'true' or 'false', not {other:?}."
        ))),
    }
}

/// What `force_refresh` asks for: a refresh now, or only when the token is due.
pub(super) fn freshness_param(params: &[(String, String)]) -> Result<Freshness, ApiError> {
    Ok(if bool_param(params, "force_refresh")? {
        Freshness::forced_now()
    } else {
        Freshness::IfNeeded
    })
}

/// The connection with fresh credentials: an OAuth 2 token whose remaining life is below
/// `min(refresh margin, half its lifetime)` (the margin is 15 minutes by default) is refreshed
/// first, once, however many requests ask at the same time.
#[utoipa::path(
    get, path = "/connection/{connection_id}", tag = "connections",
    params(ConnectionPath, ConnectionKeyQuery, ForceRefreshQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionBody),
        (status = 400, description = "No such connection or config, a bad parameter, a refresh the provider refused (`refresh_rejected`: answered until the user authorizes again or a `force_refresh` succeeds; the stored credentials are kept) or `force_refresh` on credentials that cannot be renewed (no refresh token, and no renewal with the token itself).", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 502, description = "The provider failed or timed out while refreshing and the stored token has expired, or the refresh was forced (`refresh_unavailable`); the stored credentials are kept. While the stored token has not expired, such a failure answers 200 with it and the connection's `refresh` status.", body = ErrorBody),
    )
)]
async fn get_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    let freshness = freshness_param(&parse_query(query.as_deref())?)?;
    let connection = state
        .refresher
        .fresh_connection(&state, &key, &connection_id, freshness)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &ConnectionBody::from(&connection),
    ))
}

/// The body of `POST /connection`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON object itself
pub struct NewConnection {
    #[schema(min_length = 1, max_length = 255, example = "openai")]
    provider_config_key: String,
    #[schema(min_length = 1, max_length = 255, example = "user-42")]
    connection_id: String,
    /// API_KEY providers: the end user's key.
    #[schema(max_length = 4096)]
    api_key: Option<String>,
    /// BASIC providers.
    #[schema(max_length = 4096)]
    username: Option<String>,
    #[schema(max_length = 4096)]
    password: Option<String>,
    /// Values of the template's placeholders (`{"subdomain": "acme"}`), checked against its
    /// patterns and kept with the connection (the proxy fills its URLs and headers with them).
    /// A placeholder that forms a whole host is the provider config's, not the connection's.
    #[schema(value_type = Option<Object>)]
    connection_config: Option<serde_json::Map<String, Value>>,
}

/// Creates (or replaces) a connection that needs no browser: an API_KEY or BASIC provider's
/// credentials given here, or, for an OAUTH2_CC provider, a token the server fetches now with the
/// config's client credentials (and fetches again before it expires). OAUTH2 and OAUTH1
/// connections are made through the browser flow.
#[utoipa::path(
    post, path = "/connection", tag = "connections",
    request_body(content = NewConnection, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionBody),
        (status = 400, description = "A missing or invalid field, an unknown config, an auth mode with a browser flow, or credentials the provider refused.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
        (status = 502, description = "The provider failed or timed out while issuing a client credentials token.", body = ErrorBody),
    )
)]
async fn create_connection(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let key = optional_string(&body, "provider_config_key")?
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingProviderConfig)?;
    check_id("provider_config_key", &key)?;
    let connection_id = optional_string(&body, "connection_id")?
        .filter(|id| !id.is_empty())
        .ok_or(ApiError::MissingConnection)?;
    check_id("connection_id", &connection_id)?;
    let entered = EnteredCredentials {
        api_key: optional_string(&body, "api_key")?,
        username: optional_string(&body, "username")?,
        password: optional_string(&body, "password")?,
    };
    let connection_config = match body.get("connection_config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(values)) => placeholder_values(values)?,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "Param 'connection_config' must be an object.".into(),
            ))
        }
    };
    let connection =
        store_direct_connection(&state, &key, &connection_id, entered, connection_config).await?;
    Ok(json_response(
        StatusCode::OK,
        &ConnectionBody::from(&connection),
    ))
}

/// Every connection, oldest first.
#[utoipa::path(
    get, path = "/connection", tag = "connections",
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionList),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn list_connections(State(state): State<AppState>) -> Result<Response, ApiError> {
    let connections = state
        .store
        .list_connections()
        .await?
        .into_iter()
        .map(|c| ConnectionSummary {
            refresh: RefreshProblem::of(&c.health),
            connection_id: c.connection_id,
            provider: c.provider_config_key,
            created: iso_millis(c.created_at),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ConnectionList { connections },
    ))
}

/// Deletes a connection (its credentials are gone; the provider's grant is not revoked).
#[utoipa::path(
    delete, path = "/connection/{connection_id}", tag = "connections",
    params(ConnectionPath, ConnectionKeyQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "Deleted (empty body)."),
        (status = 400, description = "No such connection, or a bad parameter.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn delete_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    delete_connection_and_notify(&state, &key, &connection_id).await?;
    Ok(empty_ok())
}
