//! Health checks: `GET /` (Nango 0.7.6–0.9.1) and `GET /health` (0.9.2+).

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::json_response;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(health))
        .route("/health", get(health))
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"result": "ok"}))
}
