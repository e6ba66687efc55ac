//! `POST /connect/sessions`: mints a connect session token (see `crate::connect_sessions`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api_auth::optional_string;
use super::openapi::ErrorBody;
use super::{check_id, json_object_body, json_response};
use crate::connect_sessions::mint_connect_session;
pub use crate::connect_sessions::{ConnectSessionError, ConnectSessionToken};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_connect_session))
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON object itself
pub struct NewConnectSession {
    #[schema(min_length = 1, max_length = 255, example = "github")]
    provider_config_key: String,
    #[schema(min_length = 1, max_length = 255, example = "user-42")]
    connection_id: String,
}

/// Mints a connect session token for one end user's flow (OAuth popup, redirect, or entered
/// credentials) of one provider config.
#[utoipa::path(
    post, path = "/connect/sessions", tag = "connections",
    request_body(content = NewConnectSession, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = ConnectSessionToken),
        (status = 400, description = "A missing or invalid field, or an unknown config.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = ErrorBody),
    )
)]
async fn create_connect_session(
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
    let minted = mint_connect_session(&state, &key, &connection_id).await?;
    Ok(json_response(StatusCode::OK, &minted))
}
