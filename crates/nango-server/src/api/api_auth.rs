//! Connections without an OAuth dance: the end user's API key or username and password (entered
//! in the app's form and posted by the frontend SDK to `/api-auth/...`, or imported by the backend
//! with `POST /connection`), and client credentials tokens the server fetches itself.
//!
//! The `/api-auth` routes are open like `/oauth/connect`: a browser posts to them. Like the OAuth
//! flow they can attach credentials to any connection id; connect sessions
//! (`NANGO_REQUIRE_CONNECT_SESSION`) gate both.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::current::{Current, EitherErrorBody};
use super::{check_id, json_object_body, json_response, parse_query, path_id, query_value};
use crate::connections::{enter_credentials, optional_string, EnteredCredentials};
use crate::error::ApiError;
use crate::http::{connection_config_from_params, require_json_content_type};
use crate::providers::AuthMode;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_api_key))
        .routes(routes!(enter_basic))
}

/// What the frontend SDK resolves with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnteredResult {
    pub provider_config_key: String,
    pub connection_id: String,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON object itself
pub struct ApiKeyBody {
    #[schema(rename = "apiKey", min_length = 1, max_length = 4096)]
    api_key: String,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON object itself
pub struct BasicBody {
    #[schema(min_length = 1, max_length = 4096)]
    username: String,
    /// May be empty for providers whose template says no password is needed.
    #[schema(max_length = 4096)]
    password: Option<String>,
}

/// The config key in the path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema
pub struct ApiAuthPath {
    #[param(min_length = 1, max_length = 255, example = "openai")]
    provider_config_key: String,
}

/// The connection id in the query.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema
pub struct ApiAuthQuery {
    /// Required, except under a connect session made with an end user (which names the
    /// connection itself: the answer reports the id).
    #[param(min_length = 1, max_length = 255, example = "user-42")]
    connection_id: Option<String>,
    /// A connect session token: one minted for this config and connection id (required when the
    /// server runs with NANGO_REQUIRE_CONNECT_SESSION=true; it works once), or one of current
    /// Nango's kind (no `connection_id`; errors then come in `{error: {code, message}}`).
    connect_session_token: Option<String>,
}

async fn enter(
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    mode: AuthMode,
) -> Response {
    // Without a connection id but with a connect session, the caller is current Nango's
    // frontend (the session names the connection), which reads errors in current Nango's
    // envelope; everything else keeps this route's first one.
    let current = query.as_deref().is_some_and(|q| {
        parse_query(Some(q)).ok().is_some_and(|pairs| {
            query_value(&pairs, "connection_id").is_none_or(str::is_empty)
                && query_value(&pairs, "connect_session_token").is_some_and(|t| !t.is_empty())
        })
    });
    match enter_and_store(state, path, query, headers, body, mode).await {
        Ok(result) => json_response(StatusCode::OK, &result),
        Err(e) if current => Current::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn enter_and_store(
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    mode: AuthMode,
) -> Result<EnteredResult, ApiError> {
    // First: a cross-site page must not learn anything (config keys, formats) either.
    require_json_content_type(headers)?;
    let key = path_id(path, "provider_config_key")?;
    let query = parse_query(query.as_deref())?;
    let connection_id = query_value(&query, "connection_id").filter(|id| !id.is_empty());
    if let Some(id) = connection_id {
        check_id("connection_id", id)?;
    }
    let body = json_object_body(body)?;
    let entered = match mode {
        AuthMode::ApiKey => EnteredCredentials {
            api_key: optional_string(&body, "apiKey")?,
            ..Default::default()
        },
        _ => EnteredCredentials {
            username: optional_string(&body, "username")?,
            password: optional_string(&body, "password")?,
            ..Default::default()
        },
    };
    let given = connection_config_from_params(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let token = query_value(&query, "connect_session_token");
    let connection =
        enter_credentials(&state, &key, connection_id, mode, entered, given, token).await?;
    Ok(EnteredResult {
        provider_config_key: key,
        connection_id: connection.connection_id,
    })
}

/// Stores the end user's API key for an API_KEY provider config (what the frontend SDK's
/// `auth(key, id, {credentials: {apiKey}})` posts).
#[utoipa::path(
    post, path = "/api-auth/api-key/{provider_config_key}", tag = "connections",
    params(ApiAuthPath, ApiAuthQuery),
    request_body(content = ApiKeyBody, content_type = "application/json"),
    responses(
        (status = 200, body = EnteredResult),
        (status = 400, description = "Unknown config, not an API_KEY provider, a key that is missing, not in the provider's format or refused by the provider's verification call, or a `params[...]` value the template refuses.", body = EitherErrorBody),
        (status = 401, description = "A connect session token is required, or the one given is unknown, used, expired or for another connection.", body = EitherErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = EitherErrorBody),
        (status = 502, description = "The provider's verification call failed (unreachable, rate limited or a server error): nothing is stored.", body = EitherErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json` (a cross-site form or `text/plain` post is refused).", body = EitherErrorBody),
    )
)]
async fn enter_api_key(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    enter(state, path, query, &headers, body, AuthMode::ApiKey).await
}

/// Stores the end user's username and password for a BASIC provider config (what the frontend
/// SDK's `auth(key, id, {credentials: {username, password}})` posts).
#[utoipa::path(
    post, path = "/api-auth/basic/{provider_config_key}", tag = "connections",
    params(ApiAuthPath, ApiAuthQuery),
    request_body(content = BasicBody, content_type = "application/json"),
    responses(
        (status = 200, body = EnteredResult),
        (status = 400, description = "Unknown config, not a BASIC provider, credentials that are missing, malformed or refused by the provider's verification call, or a `params[...]` value the template refuses.", body = EitherErrorBody),
        (status = 401, description = "A connect session token is required, or the one given is unknown, used, expired or for another connection.", body = EitherErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = EitherErrorBody),
        (status = 502, description = "The provider's verification call failed (unreachable, rate limited or a server error): nothing is stored.", body = EitherErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json` (a cross-site form or `text/plain` post is refused).", body = EitherErrorBody),
    )
)]
async fn enter_basic(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    enter(state, path, query, &headers, body, AuthMode::Basic).await
}
