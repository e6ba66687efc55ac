//! Health checks: `GET /` (Nango 0.7.6–0.9.1) and `GET /health` (0.9.2+).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json_response;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(health))
}

/// `{"result": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub result: &'static str,
}

/// The server is up (the 0.9.0 health check; a WebSocket upgrade on this path opens the frontend
/// SDK's notification channel instead).
#[utoipa::path(get, path = "/", tag = "server", responses((status = 200, body = HealthBody)))]
async fn root() -> Response {
    health().await
}

/// The server is up.
#[utoipa::path(get, path = "/health", tag = "server", responses((status = 200, body = HealthBody)))]
async fn health() -> Response {
    json_response(StatusCode::OK, &HealthBody { result: "ok" })
}
