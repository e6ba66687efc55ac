//! `/connection`: stored authorizations; `GET /connection/:id` hands out fresh credentials.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{check_id, empty_ok, json_response, parse_query, path_id, query_value};
use crate::credentials::{iso_millis, Credentials, Freshness};
use crate::error::ApiError;
use crate::store::Connection;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
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
}

impl<'a> From<&'a Connection> for ConnectionBody<'a> {
    fn from(c: &'a Connection) -> Self {
        ConnectionBody {
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
    /// `true`: refresh now, whatever the expiry (400 `not_refreshable` without a refresh token).
    /// Otherwise the token is refreshed only when it expires within the refresh margin.
    force_refresh: Option<bool>,
}

/// Path id and `provider_config_key` query of the single-connection routes, validated in Nango's
/// order (missing key first).
fn connection_params(
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

/// The connection with fresh credentials: an OAuth 2 token that expires within the refresh margin
/// (15 minutes by default) is refreshed first, once, however many requests ask at the same time.
#[utoipa::path(
    get, path = "/connection/{connection_id}", tag = "connections",
    params(ConnectionPath, ConnectionKeyQuery, ForceRefreshQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionBody),
        (status = 400, description = "No such connection or config, a bad parameter, a refresh the provider refused (`refresh_rejected`, the stored credentials are kept) or `force_refresh` on credentials without a refresh token.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 502, description = "The provider failed or timed out while refreshing (`refresh_unavailable`); the stored credentials are kept.", body = ErrorBody),
    )
)]
async fn get_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    let freshness = match query_value(&parse_query(query.as_deref())?, "force_refresh") {
        None | Some("false") => Freshness::IfNeeded,
        Some("true") => Freshness::forced_now(),
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "Param 'force_refresh' must be 'true' or 'false', not {other:?}."
            )))
        }
    };
    let connection = state
        .refresher
        .fresh_connection(&state, &key, &connection_id, freshness)
        .await?;
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
    if state.store.delete_connection(&key, &connection_id).await? {
        Ok(empty_ok())
    } else {
        Err(ApiError::UnknownConnection)
    }
}
