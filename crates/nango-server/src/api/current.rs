//! Current Nango's REST contract, on the paths Nango 0.9 never had (`/connections`), for
//! `@nangohq/node` 0.71 and code written against today's Nango: the same operations as the 0.9
//! routes, in today's shapes and error envelope `{error: {code, message}}`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::connections::{
    bool_param, connection_params, freshness_param, ConnectionKeyQuery, ConnectionPath,
};
use super::{json_response, parse_query, query_value};
use crate::connections::delete_connection_and_notify;
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::providers::PARAMS_PREFIX;
use crate::store::{Connection, ConnectionHealth};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
        .routes(routes!(get_connection, delete_connection))
}

/// An error in current Nango's envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentErrorBody {
    pub error: CurrentError,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentError {
    /// For a program: `not_found`, `unknown_connection`, `unknown_provider_config`,
    /// `invalid_query_params`, `invalid_credentials`, ...
    #[schema(example = "not_found")]
    pub code: String,
    /// For a person.
    pub message: String,
}

/// The error envelope of a route that answers in both: this server's first one, or current
/// Nango's for calls in current Nango's form.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema
pub enum EitherErrorBody {
    First(super::openapi::ErrorBody),
    Current(CurrentErrorBody),
}

/// A domain error answered in current Nango's envelope and statuses.
pub(super) struct Current {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Current {
    pub(super) fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Current {
            status,
            code,
            message,
        }
    }
}

impl From<ApiError> for Current {
    fn from(e: ApiError) -> Self {
        let (status, code) = match &e {
            ApiError::UnknownConnection => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MissingProviderConfig | ApiError::InvalidRequest(_) => {
                (StatusCode::BAD_REQUEST, "invalid_query_params")
            }
            // The provider refused the refresh: the user must authorize again.
            ApiError::RefreshRejected { .. } => (StatusCode::BAD_REQUEST, "invalid_credentials"),
            other => (other.status(), other.kind()),
        };
        if let ApiError::Internal(cause) = &e {
            tracing::error!(cause = %cause, "request failed");
        }
        Current {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for Current {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        json_response(self.status, &body)
    }
}

/// A body problem, as current Nango words it (`invalid_body`).
pub(super) fn invalid_body(message: String) -> Current {
    Current::new(StatusCode::BAD_REQUEST, "invalid_body", message)
}

/// A JSON object body read into `T` (whose unknown fields are refused): problems are
/// `invalid_body`, a body over the limit 413.
pub(super) fn typed_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, Current> {
    let object = super::json_object_body(body).map_err(|e| match e {
        ApiError::MissingBody | ApiError::InvalidRequest(_) => invalid_body(e.to_string()),
        other => other.into(),
    })?;
    serde_json::from_value(Value::Object(object))
        .map_err(|e| invalid_body(format!("Invalid body: {e}.")))
}

/// `webhook_url_override` (of sessions, imports and connections) is not offered: webhooks go to
/// the server's configured URLs.
pub(super) fn refuse_webhook_override(value: Option<&String>) -> Result<(), Current> {
    match value {
        None => Ok(()),
        Some(_) => Err(invalid_body(
            "Param 'webhook_url_override' is not offered by this server: webhooks go to its configured URLs (NANGO_WEBHOOK_URLS).".into(),
        )),
    }
}

/// Whether a path belongs to current Nango's contract (paths Nango 0.9 never had), whose
/// refusals by the secret-key gate are in current Nango's envelope too.
pub fn speaks_current(path: &str) -> bool {
    ["/connections", "/integrations"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether a path belongs to current Nango's product beyond this server (functions, syncs,
/// actions, records, scripts, environment variables, MCP, its `/v1` API) or to the frontend's
/// auth modes the catalog does not have: such calls get a JSON 404 in current Nango's envelope.
pub fn not_offered(path: &str) -> bool {
    const ROOTS: [&str; 11] = [
        "/records",
        "/sync",
        "/action",
        "/scripts",
        "/environment-variables",
        "/mcp",
        "/v1",
        "/auth",
        "/oauth2",
        "/app-auth",
        "/connect/telemetry",
    ];
    ROOTS.iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The secret-key gate's refusal (a missing or wrong key) in current Nango's envelope and codes.
pub fn auth_refusal(e: ApiError) -> Response {
    let code = match e {
        ApiError::MissingAuthorization => "missing_auth_header",
        _ => "unknown_account",
    };
    Current::new(StatusCode::UNAUTHORIZED, code, e.to_string()).into_response()
}

/// A connection as current Nango answers it (`ApiPublicConnectionFull`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionFull {
    pub id: i64,
    pub connection_id: String,
    pub provider_config_key: String,
    /// The provider template's name.
    pub provider: String,
    /// `[{type: "auth", log_id}]` after a failed refresh, else empty.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Value>,
    /// `{id, display_name, email, tags, organization}`, or null when the connection was made
    /// without an end user (a 0.9 flow, a session without one).
    #[schema(value_type = Option<Object>)]
    pub end_user: Option<Value>,
    #[schema(value_type = Object)]
    pub tags: Map<String, Value>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The template's values by their own names (`{"subdomain": "acme"}`).
    #[schema(value_type = Object)]
    pub connection_config: Map<String, Value>,
    pub webhook_url_override: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_fetched_at: String,
    /// As `GET /connection/{connection_id}` gives them, without the refresh token unless
    /// `refresh_token=true`.
    #[schema(value_type = Object)]
    pub credentials: Value,
}

/// What `GET /connections/{connection_id}` takes besides the key.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: the handler parses the query itself
pub struct GetConnectionQuery {
    /// `true`: refresh now, whatever the expiry.
    force_refresh: Option<bool>,
    /// `true`: include the refresh token in `credentials` (left out otherwise).
    refresh_token: Option<bool>,
    /// Sent by current clients for GitHub App connections; accepted and ignored.
    refresh_github_app_jwt_token: Option<bool>,
}

/// The connection with fresh credentials (the refresh path of `GET /connection/{connection_id}`),
/// in current Nango's shape.
#[utoipa::path(
    get, path = "/connections/{connection_id}", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery, GetConnectionQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionFull),
        (status = 400, description = "A bad parameter, an unknown provider config, a refresh the provider refused (`invalid_credentials`) or `force_refresh` on credentials that cannot be renewed.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such connection (`not_found`).", body = CurrentErrorBody),
        (status = 502, description = "The provider failed while refreshing and the stored token has expired.", body = CurrentErrorBody),
    )
)]
async fn get_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Current> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    let params = parse_query(query.as_deref())?;
    let freshness = freshness_param(&params)?;
    let with_refresh_token = bool_param(&params, "refresh_token")?;
    bool_param(&params, "refresh_github_app_jwt_token")?;
    let connection = state
        .refresher
        .fresh_connection(&state, &key, &connection_id, freshness)
        .await
        .map_err(ApiError::from)?;
    let config = state
        .store
        .get_config_cached(&key)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::UnknownProviderConfig)?;
    let body = connection_full(&connection, config.provider, with_refresh_token)?;
    Ok(json_response(StatusCode::OK, &body))
}

pub(super) fn connection_full(
    connection: &Connection,
    provider: String,
    with_refresh_token: bool,
) -> Result<ConnectionFull, ApiError> {
    let mut credentials = serde_json::to_value(&connection.credentials)
        .map_err(|e| ApiError::Internal(format!("credentials: {e}")))?;
    if !with_refresh_token {
        // Left out of the raw token response as well, where providers repeat it.
        if let Some(object) = credentials.as_object_mut() {
            object.remove("refresh_token");
            if let Some(raw) = object.get_mut("raw").and_then(Value::as_object_mut) {
                raw.remove("refresh_token");
            }
        }
    }
    Ok(ConnectionFull {
        id: connection.id,
        connection_id: connection.connection_id.clone(),
        provider_config_key: connection.provider_config_key.clone(),
        provider,
        errors: errors_of(&connection.health),
        end_user: end_user_json(connection.owner.end_user.as_ref()),
        tags: connection.owner.tags.clone(),
        metadata: connection.metadata.clone(),
        connection_config: own_names(&connection.connection_config),
        webhook_url_override: None,
        created_at: iso_millis(connection.created_at),
        updated_at: iso_millis(connection.updated_at),
        last_fetched_at: iso_millis(chrono::Utc::now()),
        credentials,
    })
}

/// The stored end user in current Nango's shape: every field present, null when not given.
fn end_user_json(stored: Option<&Map<String, Value>>) -> Option<Value> {
    let stored = stored?;
    let field = |name: &str| stored.get(name).cloned().unwrap_or(Value::Null);
    Some(json!({
        "id": field("id"),
        "display_name": field("display_name"),
        "email": field("email"),
        "tags": stored.get("tags").cloned().unwrap_or_else(|| json!({})),
        "organization": field("organization"),
    }))
}

/// A connection's `errors`: one `auth` error while its refreshes fail (there is no log id here).
fn errors_of(health: &ConnectionHealth) -> Vec<Value> {
    super::connections::RefreshProblem::of(health)
        .map(|_| vec![json!({ "type": "auth", "log_id": "" })])
        .unwrap_or_default()
}

/// The stored connection config (`{"connectionConfig.params.subdomain": "acme"}`) by the names
/// current Nango uses (`{"subdomain": "acme"}`).
fn own_names(stored: &Map<String, Value>) -> Map<String, Value> {
    stored
        .iter()
        .map(|(name, value)| {
            let name = name.strip_prefix(PARAMS_PREFIX).unwrap_or(name);
            (name.to_string(), value.clone())
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

/// Deletes a connection (its credentials are gone; the provider's grant is not revoked).
#[utoipa::path(
    delete, path = "/connections/{connection_id}", tag = "connections (current Nango)",
    params(ConnectionPath, ConnectionKeyQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = Success),
        (status = 400, description = "No such connection (`unknown_connection`), or a bad parameter.", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
    )
)]
async fn delete_connection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Current> {
    let (key, connection_id) = connection_params(path, query.as_deref())?;
    match delete_connection_and_notify(&state, &key, &connection_id).await {
        Ok(()) => Ok(json_response(StatusCode::OK, &Success { success: true })),
        // Current Nango answers a deletion of nothing with 400 `unknown_connection`.
        Err(ApiError::UnknownConnection) => Err(Current {
            status: StatusCode::BAD_REQUEST,
            code: "unknown_connection",
            message: ApiError::UnknownConnection.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// One line of `GET /connections` (`ApiPublicConnection`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionLine {
    pub id: i64,
    pub connection_id: String,
    pub provider_config_key: String,
    pub provider: String,
    /// ISO 8601 with milliseconds.
    pub created: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    pub end_user: Option<Value>,
    #[schema(value_type = Object)]
    pub tags: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionLines {
    pub connections: Vec<ConnectionLine>,
}

/// Filters of `GET /connections`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: the handler parses the query itself
#[into_params(rename_all = "camelCase")]
pub struct ListConnectionsQuery {
    /// Only this connection id.
    connection_id: Option<String>,
    /// Only connections of these provider config keys (comma separated).
    integration_id: Option<String>,
    /// Connection ids containing this text (any case).
    search: Option<String>,
    /// Only connections of this end user (its `id`).
    end_user_id: Option<String>,
    /// Only connections of end users of this organization (its `id`).
    end_user_organization_id: Option<String>,
    /// At most this many (1 to 2000). Default: 100.
    #[param(minimum = 1, maximum = 2000)]
    limit: Option<u32>,
    /// Which page of `limit` connections, from 0. Default: 0.
    #[param(minimum = 0, maximum = 1000000)]
    page: Option<u32>,
}

/// Connections, oldest first, filtered as current Nango's `listConnections` asks.
#[utoipa::path(
    get, path = "/connections", tag = "connections (current Nango)",
    params(ListConnectionsQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectionLines),
        (status = 400, description = "A bad parameter (`invalid_query_params`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
    )
)]
async fn list_connections(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Current> {
    let params = parse_query(query.as_deref())?;
    let number = |name: &str, min: u32, max: u32, default: u32| -> Result<u32, ApiError> {
        match query_value(&params, name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "Param '{name}' must be a whole number from {min} to {max}."
                    ))
                }),
        }
    };
    let limit = number("limit", 1, 2000, 100)? as usize;
    let page = number("page", 0, 1_000_000, 0)? as usize;
    let connection_id = query_value(&params, "connectionId").filter(|v| !v.is_empty());
    let integrations: Option<Vec<&str>> = query_value(&params, "integrationId")
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(str::trim).collect());
    let search = query_value(&params, "search")
        .filter(|v| !v.is_empty())
        .map(str::to_lowercase);
    let end_user_id = query_value(&params, "endUserId").filter(|v| !v.is_empty());
    let organization_id = query_value(&params, "endUserOrganizationId").filter(|v| !v.is_empty());
    // `tags[name]=value`, every one must match.
    let tags: Vec<(String, &str)> = params
        .iter()
        .filter_map(|(name, value)| {
            let tag = name.strip_prefix("tags[")?.strip_suffix(']')?;
            Some((tag.to_lowercase(), value.as_str()))
        })
        .collect();
    let owned_as_asked = |owner: &crate::store::Owner| {
        let user_field = |path: &[&str]| {
            let mut at = owner.end_user.as_ref()?.get(path[0])?;
            for step in &path[1..] {
                at = at.get(step)?;
            }
            at.as_str()
        };
        end_user_id.is_none_or(|id| user_field(&["id"]) == Some(id))
            && organization_id.is_none_or(|id| user_field(&["organization", "id"]) == Some(id))
            && tags
                .iter()
                .all(|(name, value)| owner.tags.get(name).and_then(Value::as_str) == Some(*value))
    };
    let providers: std::collections::HashMap<String, String> = state
        .store
        .list_configs()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|c| (c.unique_key, c.provider))
        .collect();
    let connections = state
        .store
        .list_connections()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|c| owned_as_asked(&c.owner))
        .filter(|c| connection_id.is_none_or(|id| c.connection_id == id))
        .filter(|c| {
            integrations
                .as_ref()
                .is_none_or(|keys| keys.contains(&c.provider_config_key.as_str()))
        })
        .filter(|c| {
            search
                .as_ref()
                .is_none_or(|text| c.connection_id.to_lowercase().contains(text))
        })
        .skip(page.saturating_mul(limit))
        .take(limit)
        .map(|c| ConnectionLine {
            errors: errors_of(&c.health),
            provider: providers
                .get(&c.provider_config_key)
                .cloned()
                .unwrap_or_default(),
            id: c.id,
            created: iso_millis(c.created_at),
            metadata: c.metadata,
            connection_id: c.connection_id,
            provider_config_key: c.provider_config_key,
            end_user: end_user_json(c.owner.end_user.as_ref()),
            tags: c.owner.tags,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ConnectionLines { connections },
    ))
}
