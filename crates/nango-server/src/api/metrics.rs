//! `GET /metrics`: the server's metrics for Prometheus (see `crate::metrics`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Metrics in the OpenMetrics text format (Prometheus scrapes it): requests by route and
/// status with latency histograms, refreshes by provider and outcome, OAuth flow outcomes and
/// webhook deliveries, all since this server started.
#[utoipa::path(
    get, path = "/metrics", tag = "server",
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text.", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
