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
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{check_id, json_object_body, json_response, parse_query, path_id, query_value};
pub use crate::configs::config_and_template;
use crate::connect_sessions::redeem;
use crate::credentials::{
    fetch_client_credentials, verify_credentials, ApiKeyCredentials, BasicCredentials, Credentials,
    FreshError, VerifyError,
};
use crate::error::ApiError;
use crate::http::{connection_config_from_params, require_json_content_type};
use crate::providers::{settle_connection_config, AuthMode, ProviderTemplate, ValueSource};
use crate::store::{Connection, ConnectionFields, ProviderConfig};
use crate::AppState;

/// Keys, usernames and passwords longer than this are refused (no provider issues such keys).
const MAX_SECRET_LEN: usize = 4096;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_api_key))
        .routes(routes!(enter_basic))
}

/// What the end user (or the backend) entered.
#[derive(Debug, Default)]
pub struct EnteredCredentials {
    pub api_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A string field of a JSON body (absent or null: not given).
pub fn optional_string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::InvalidRequest(format!(
            "Param '{name}' must be a string."
        ))),
    }
}

/// Checks entered credentials against the template (present, within limits, matching its
/// documented format) and turns them into what is stored.
pub fn validated_credentials(
    template: &ProviderTemplate,
    entered: EnteredCredentials,
) -> Result<Credentials, ApiError> {
    let invalid = |message: String| ApiError::InvalidCredentials(message);
    let check = |name: &str, value: &str, pattern: Option<&String>| -> Result<(), ApiError> {
        if value.len() > MAX_SECRET_LEN {
            return Err(invalid(format!(
                "'{name}' is too long (at most {MAX_SECRET_LEN} bytes)."
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "'{name}' must not contain control characters."
            )));
        }
        if let Some(pattern) = pattern {
            // Validated when the catalog loaded; anchored so the whole value must match.
            let matches = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(|re| re.is_match(value))
                .unwrap_or(false);
            if !matches {
                return Err(invalid(format!(
                    "'{name}' does not have the provider's format."
                )));
            }
        }
        Ok(())
    };
    match template.auth_mode {
        AuthMode::ApiKey => {
            let api_key = entered
                .api_key
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| invalid("An API key is required.".into()))?;
            let scheme = template.api_key.clone().unwrap_or_default();
            check("apiKey", &api_key, scheme.pattern.as_ref())?;
            Ok(Credentials::ApiKey(ApiKeyCredentials { api_key }))
        }
        AuthMode::Basic => {
            let scheme = template.basic.clone().unwrap_or_default();
            let username = entered
                .username
                .filter(|u| !u.is_empty())
                .ok_or_else(|| invalid("A username is required.".into()))?;
            check("username", &username, scheme.username_pattern.as_ref())?;
            let password = entered.password.unwrap_or_default();
            if scheme.password_required && password.is_empty() {
                return Err(invalid("A password is required.".into()));
            }
            check("password", &password, None)?;
            Ok(Credentials::Basic(BasicCredentials { username, password }))
        }
        other => Err(ApiError::WrongAuthMode {
            mode: other.as_str(),
        }),
    }
}

/// The connection config a direct connection keeps: `given` settled with the provider config's
/// values (a host only from those, or from a template's own choices) and checked against the
/// template's patterns.
fn checked_connection_config(
    template: &ProviderTemplate,
    config: &ProviderConfig,
    given: &Map<String, Value>,
    source: ValueSource,
) -> Result<Map<String, Value>, ApiError> {
    let settled = settle_connection_config(template, &config.connection_config, given, source)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    template
        .check_connection_values(&settled)
        .map_err(ApiError::InvalidRequest)?;
    Ok(settled)
}

/// Creates or replaces a connection whose credentials need no browser: entered ones for API_KEY
/// and BASIC, a token fetched now for OAUTH2_CC.
pub async fn store_direct_connection(
    state: &AppState,
    key: &str,
    connection_id: &str,
    entered: EnteredCredentials,
    given_config: Map<String, Value>,
) -> Result<Connection, ApiError> {
    let (config, template) = config_and_template(state, key).await?;
    // The backend is trusted with a connection's values, not with a host: that stays the
    // operator's (the provider config's), as for stored values.
    let connection_config =
        checked_connection_config(template, &config, &given_config, ValueSource::Stored)?;
    let credentials = match template.auth_mode {
        AuthMode::OAuth2ClientCredentials => Credentials::OAuth2ClientCredentials(
            fetch_client_credentials(state, &config, &connection_config)
                .await
                .map_err(|e| match e {
                    FreshError::Rejected(error) => ApiError::ClientCredentialsRejected { error },
                    FreshError::Unavailable(reason) => ApiError::ProviderUnavailable { reason },
                    other => ApiError::from(other),
                })?,
        ),
        _ => validated_credentials(template, entered)?,
    };
    store_connection(
        state,
        key,
        connection_id,
        template,
        credentials,
        connection_config,
    )
    .await
}

/// Creates or replaces the connection with these credentials.
async fn store_connection(
    state: &AppState,
    key: &str,
    connection_id: &str,
    template: &ProviderTemplate,
    credentials: Credentials,
    connection_config: Map<String, Value>,
) -> Result<Connection, ApiError> {
    let connection = state
        .store
        .upsert_connection(&ConnectionFields {
            provider_config_key: key.to_string(),
            connection_id: connection_id.to_string(),
            credentials,
            connection_config,
            metadata: Map::new(),
            obtained_at: chrono::Utc::now(),
        })
        .await?;
    tracing::info!(
        provider_config_key = %key,
        connection_id = %connection_id,
        auth_mode = template.auth_mode.as_str(),
        "connection stored"
    );
    crate::webhooks::connection_stored(state, &connection).await;
    Ok(connection)
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
    #[param(min_length = 1, max_length = 255, example = "user-42")]
    connection_id: String,
    /// A connect session token for this config and connection id (required when the server
    /// runs with NANGO_REQUIRE_CONNECT_SESSION=true); it works once.
    connect_session_token: Option<String>,
}

async fn enter(
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    mode: AuthMode,
) -> Result<Response, ApiError> {
    // First: a cross-site page must not learn anything (config keys, formats) either.
    require_json_content_type(headers)?;
    let key = path_id(path, "provider_config_key")?;
    let query = parse_query(query.as_deref())?;
    let connection_id = query_value(&query, "connection_id")
        .filter(|id| !id.is_empty())
        .ok_or(ApiError::MissingConnection)?
        .to_string();
    check_id("connection_id", &connection_id)?;
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
    let (config, template) = config_and_template(&state, &key).await?;
    if template.auth_mode != mode {
        return Err(ApiError::WrongAuthMode {
            mode: template.auth_mode.as_str(),
        });
    }
    // Checked before the connect session is used up, so a typo does not cost the user theirs.
    let credentials = validated_credentials(template, entered)?;
    let given = connection_config_from_params(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let connection_config =
        checked_connection_config(template, &config, &given, ValueSource::Browser)?;
    verify_credentials(&state, &config, template, &credentials, &connection_config)
        .await
        .map_err(|e| match e {
            VerifyError::Refused { status } => ApiError::InvalidCredentials(format!(
                "The provider refused these credentials (HTTP {status} from its verification call): check them and try again."
            )),
            VerifyError::Unavailable(reason) => ApiError::VerificationUnavailable { reason },
            VerifyError::Unusable(reason) => ApiError::InvalidRequest(format!(
                "The credentials could not be verified: {reason}"
            )),
        })?;
    let token = query_value(&query, "connect_session_token");
    redeem(&state, token, &key, &connection_id).await?;
    store_connection(
        &state,
        &key,
        &connection_id,
        template,
        credentials,
        connection_config,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &EnteredResult {
            provider_config_key: key,
            connection_id,
        },
    ))
}

/// Stores the end user's API key for an API_KEY provider config (what the frontend SDK's
/// `auth(key, id, {credentials: {apiKey}})` posts).
#[utoipa::path(
    post, path = "/api-auth/api-key/{provider_config_key}", tag = "connections",
    params(ApiAuthPath, ApiAuthQuery),
    request_body(content = ApiKeyBody, content_type = "application/json"),
    responses(
        (status = 200, body = EnteredResult),
        (status = 400, description = "Unknown config, not an API_KEY provider, a key that is missing, not in the provider's format or refused by the provider's verification call, or a `params[...]` value the template refuses.", body = ErrorBody),
        (status = 401, description = "A connect session token is required, or the one given is unknown, used, expired or for another connection.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
        (status = 502, description = "The provider's verification call failed (unreachable, rate limited or a server error): nothing is stored.", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json` (a cross-site form or `text/plain` post is refused).", body = ErrorBody),
    )
)]
async fn enter_api_key(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
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
        (status = 400, description = "Unknown config, not a BASIC provider, credentials that are missing, malformed or refused by the provider's verification call, or a `params[...]` value the template refuses.", body = ErrorBody),
        (status = 401, description = "A connect session token is required, or the one given is unknown, used, expired or for another connection.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
        (status = 502, description = "The provider's verification call failed (unreachable, rate limited or a server error): nothing is stored.", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json` (a cross-site form or `text/plain` post is refused).", body = ErrorBody),
    )
)]
async fn enter_basic(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    enter(state, path, query, &headers, body, AuthMode::Basic).await
}
