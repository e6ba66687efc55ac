//! Connect sessions (see `crate::connect_sessions`): `POST /connect/sessions` mints one, in this
//! server's first form (bound to a config key and connection id) or in current Nango's (an end
//! user, allowed integrations, defaults; chosen by the body); `POST /connect/sessions/reconnect`
//! mints one for an existing connection; `GET` and `DELETE /connect/session` read and end the
//! session a token names (the token is the credential: what the Connect UI calls).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::current::{
    invalid_body, refuse_webhook_override, typed_body, Current, CurrentErrorBody,
};
use super::openapi::ErrorBody;
use super::{check_id, json_object_body, json_response};
use crate::connect_sessions::{
    end_session, mint_connect_session, mint_session, open_session, IntegrationDefaults,
    SessionRequest, SessionToken,
};
pub use crate::connect_sessions::{ConnectSessionError, ConnectSessionToken};
use crate::connections::{optional_string, EndUser, Organization};
use crate::error::ApiError;
use crate::AppState;

/// Minting: behind the secret key.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connect_session))
        .routes(routes!(create_reconnect_session))
}

/// Reading and ending a session: the session token is the credential.
pub fn session_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_session, delete_session))
}

/// This server's first form of the body.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON object itself
pub struct NewConnectSession {
    #[schema(min_length = 1, max_length = 255, example = "github")]
    provider_config_key: String,
    #[schema(min_length = 1, max_length = 255, example = "user-42")]
    connection_id: String,
}

/// Current Nango's body: a session for an end user, for any allowed integration; the server
/// names the connection it makes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    #[serde(default)]
    pub end_user: Option<EndUser>,
    #[serde(default)]
    pub organization: Option<Organization>,
    /// Strings by name, given to the connection.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    /// Config keys the end user may connect; all when absent.
    #[serde(default)]
    pub allowed_integrations: Option<Vec<String>>,
    /// Per config key.
    #[serde(default)]
    pub integrations_config_defaults: Option<BTreeMap<String, IntegrationDefaults>>,
    /// Accepted; Connect UI here shows no per-integration documentation overrides.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    /// Not offered here: must be absent or null.
    #[serde(default)]
    pub webhook_url_override: Option<String>,
}

/// Current Nango's reconnect body: a session re-authorizing one existing connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReconnectSession {
    #[schema(min_length = 1, max_length = 255)]
    pub connection_id: String,
    /// The connection's config key.
    #[schema(min_length = 1, max_length = 255)]
    pub integration_id: String,
    /// Replaces the connection's end user when given (else it keeps its own).
    #[serde(default)]
    pub end_user: Option<EndUser>,
    #[serde(default)]
    pub organization: Option<Organization>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    #[serde(default)]
    pub integrations_config_defaults: Option<BTreeMap<String, IntegrationDefaults>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    #[serde(default)]
    pub webhook_url_override: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEnvelope {
    pub data: SessionToken,
}

/// Either body of `POST /connect/sessions`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema
pub enum ConnectSessionBody {
    Bound(NewConnectSession),
    Current(Box<NewSession>),
}

pub use super::current::EitherErrorBody as ConnectSessionError400;

fn session_error(e: ApiError) -> Current {
    match e {
        ApiError::InvalidRequest(message) => invalid_body(message),
        ApiError::UnknownConnection => {
            Current::new(StatusCode::NOT_FOUND, "unknown_connection", e.to_string())
        }
        other => other.into(),
    }
}

/// Mints a connect session. With `provider_config_key` and `connection_id` (this server's first
/// form): a single-use token for that one flow (200). Otherwise (current Nango's form): a token
/// for the end user's flows of the allowed integrations, usable until it has made a connection
/// or expires, whose connection ids the server makes (201, `{data}`).
#[utoipa::path(
    post, path = "/connect/sessions", tag = "connections",
    request_body(content = ConnectSessionBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "A session bound to one config key and connection id.", body = ConnectSessionToken),
        (status = 201, description = "A session of current Nango's kind.", body = SessionEnvelope),
        (status = 400, description = "A missing or invalid field, an unknown config or integration.", body = ConnectSessionError400),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
    )
)]
async fn create_connect_session(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_object_body(body)?;
    let bound = body.contains_key("provider_config_key") || body.contains_key("connection_id");
    if !bound {
        return Ok(match current_session(&state, body).await {
            Ok(token) => json_response(StatusCode::CREATED, &SessionEnvelope { data: token }),
            Err(e) => e.into_response(),
        });
    }
    let key = optional_string(&body, "provider_config_key")?
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingProviderConfig)?;
    check_id("provider_config_key", &key)?;
    let connection_id = optional_string(&body, "connection_id")?
        .filter(|id| !id.is_empty())
        .ok_or(ApiError::MissingConnection)?;
    let minted = mint_connect_session(&state, &key, &connection_id).await?;
    Ok(json_response(StatusCode::OK, &minted))
}

async fn current_session(
    state: &AppState,
    body: Map<String, Value>,
) -> Result<SessionToken, Current> {
    let body: NewSession = serde_json::from_value(Value::Object(body))
        .map_err(|e| invalid_body(format!("Invalid body: {e}.")))?;
    refuse_webhook_override(body.webhook_url_override.as_ref())?;
    let request = SessionRequest {
        end_user: body.end_user,
        organization: body.organization,
        tags: body.tags,
        allowed_integrations: body.allowed_integrations,
        integrations_config_defaults: body.integrations_config_defaults,
    };
    mint_session(state, request, None)
        .await
        .map_err(session_error)
}

/// Mints a session that re-authorizes one existing connection (current Nango's
/// `createReconnectSession`): its flows replace that connection's credentials.
#[utoipa::path(
    post, path = "/connect/sessions/reconnect", tag = "connections",
    request_body(content = NewReconnectSession, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 201, body = SessionEnvelope),
        (status = 400, description = "A missing or invalid field (`invalid_body`).", body = CurrentErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 404, description = "No such connection (`unknown_connection`).", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn create_reconnect_session(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    let body: NewReconnectSession = typed_body(body)?;
    refuse_webhook_override(body.webhook_url_override.as_ref())?;
    let request = SessionRequest {
        end_user: body.end_user,
        organization: body.organization,
        tags: body.tags,
        allowed_integrations: None,
        integrations_config_defaults: body.integrations_config_defaults,
    };
    let token = mint_session(
        &state,
        request,
        Some((&body.integration_id, &body.connection_id)),
    )
    .await
    .map_err(session_error)?;
    Ok(json_response(
        StatusCode::CREATED,
        &SessionEnvelope { data: token },
    ))
}

/// The token of `Authorization: Bearer <token>`.
fn session_token(headers: &HeaderMap) -> Result<String, Current> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Current::new(
                StatusCode::UNAUTHORIZED,
                "missing_auth_header",
                "The connect session token goes in 'Authorization: Bearer <token>'.".into(),
            )
        })
}

fn refused(e: ConnectSessionError) -> Current {
    match e {
        ConnectSessionError::Unavailable => ApiError::Internal(e.to_string()).into(),
        e => Current::new(
            StatusCode::UNAUTHORIZED,
            "invalid_connect_session",
            e.to_string(),
        ),
    }
}

/// An integration a session may connect, for the Connect UI.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionIntegration {
    pub unique_key: String,
    pub provider: String,
    pub display_name: String,
    /// OAUTH2, OAUTH1, API_KEY or BASIC (OAUTH2_CC integrations need no end user: not listed).
    pub auth_mode: String,
}

/// What the session allows and gives (`GET /connect/session`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub struct SessionView {
    #[schema(value_type = Option<Object>)]
    #[serde(rename = "endUser")]
    pub end_user: Option<Map<String, Value>>,
    pub allowed_integrations: Option<Vec<String>>,
    #[schema(value_type = Object)]
    pub integrations_config_defaults: BTreeMap<String, IntegrationDefaults>,
    #[serde(rename = "isReconnecting")]
    pub is_reconnecting: bool,
    /// Current Nango's Connect UI settings (the defaults: no theme of the operator's).
    #[serde(rename = "connectUISettings")]
    #[schema(value_type = Object)]
    pub connect_ui_settings: Value,
    /// Where the frontend SDK opens its WebSocket.
    #[serde(rename = "websocketsPath")]
    pub websockets_path: String,
    /// The integrations the session may connect, in key order (this server's addition: what
    /// its Connect UI lists).
    pub integrations: Vec<SessionIntegration>,
    /// ISO 8601 with milliseconds.
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionViewEnvelope {
    pub data: SessionView,
}

/// The session a token names: what it allows (with the integrations' display names) and gives.
/// Reading it does not use it up.
#[utoipa::path(
    get, path = "/connect/session", tag = "connections",
    security(("connectSessionBearer" = [])),
    responses(
        (status = 200, body = SessionViewEnvelope),
        (status = 401, description = "No token, or an unknown, used or expired one, or one bound to a single connection id (`invalid_connect_session`).", body = CurrentErrorBody),
    )
)]
async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Current> {
    let token = session_token(&headers)?;
    let session = open_session(&state, &token)
        .await
        .map_err(refused)?
        .ok_or_else(|| refused(ConnectSessionError::Invalid))?;
    let configs = state.store.list_configs().await.map_err(ApiError::from)?;
    let mut integrations: Vec<SessionIntegration> = configs
        .iter()
        .filter(|c| session.spec.allows(&c.unique_key))
        .filter_map(|c| {
            let template = state.catalog.get(&c.provider)?;
            let mode = template.auth_mode;
            (mode.uses_browser_flow()
                || matches!(
                    mode,
                    crate::providers::AuthMode::ApiKey | crate::providers::AuthMode::Basic
                ))
            .then(|| SessionIntegration {
                unique_key: c.unique_key.clone(),
                provider: c.provider.clone(),
                display_name: super::integrations::Integration::new(c, Some(template)).display_name,
                auth_mode: mode.as_str().to_string(),
            })
        })
        .collect();
    integrations.sort_by(|a, b| a.unique_key.cmp(&b.unique_key));
    let view = SessionView {
        end_user: session.spec.end_user.clone(),
        allowed_integrations: session.spec.allowed_integrations.clone(),
        integrations_config_defaults: session.spec.integrations_config_defaults.clone(),
        is_reconnecting: session.reconnects.is_some(),
        connect_ui_settings: serde_json::json!({
            "theme": {"light": {"primary": "#2563eb"}, "dark": {"primary": "#60a5fa"}},
            "defaultTheme": "system",
            "showWatermark": false,
        }),
        websockets_path: "/".into(),
        integrations,
        expires_at: crate::credentials::iso_millis(session.expires_at),
    };
    Ok(json_response(
        StatusCode::OK,
        &SessionViewEnvelope { data: view },
    ))
}

/// Ends the session a token names: the token stops working.
#[utoipa::path(
    delete, path = "/connect/session", tag = "connections",
    security(("connectSessionBearer" = [])),
    responses(
        (status = 204, description = "Ended."),
        (status = 401, description = "No token, or an unknown, used or expired one (`invalid_connect_session`).", body = CurrentErrorBody),
    )
)]
async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Current> {
    let token = session_token(&headers)?;
    end_session(&state, &token).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
