//! `GET /webhooks/deliveries`: the webhook delivery log (the outbox), newest first.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{json_response, parse_query, query_value};
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::store::WebhookDelivery;
use crate::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_deliveries))
}

/// One delivery of one event to one URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    pub id: i64,
    pub event_id: String,
    #[schema(example = "connection.created")]
    pub event_type: String,
    pub url: String,
    /// `pending` (not delivered yet, retried), `delivered` or `failed` (given up).
    pub status: &'static str,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    /// The receiver's HTTP status on the last attempt.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// The event as sent.
    #[schema(value_type = Object)]
    pub event: Value,
}

impl From<WebhookDelivery> for DeliveryBody {
    fn from(d: WebhookDelivery) -> Self {
        let status = if d.delivered_at.is_some() {
            "delivered"
        } else if d.failed_at.is_some() {
            "failed"
        } else {
            "pending"
        };
        DeliveryBody {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            url: d.url,
            status,
            attempts: d.attempts,
            created_at: iso_millis(d.created_at),
            next_attempt_at: (status == "pending").then(|| iso_millis(d.next_attempt_at)),
            delivered_at: d.delivered_at.map(iso_millis),
            failed_at: d.failed_at.map(iso_millis),
            last_status: d.last_status,
            last_error: d.last_error,
            event: serde_json::from_str(&d.body).unwrap_or(Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryBody>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: parsed by the handler
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`; all when absent.
    status: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The webhook delivery log, newest first.
#[utoipa::path(
    get, path = "/webhooks/deliveries", tag = "connections",
    params(DeliveryFilter),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = DeliveryList),
        (status = 400, description = "A bad status or limit.", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret key.", body = ErrorBody),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(query.as_deref())?;
    let status = match query_value(&query, "status") {
        None => None,
        Some(s @ ("pending" | "delivered" | "failed")) => Some(s),
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "Param 'status' must be pending, delivered or failed, not {other:?}."
            )))
        }
    };
    let limit = match query_value(&query, "limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "Param 'limit' must be a number from 1 to {MAX_LIMIT}."
                ))
            })?,
    };
    let deliveries = state
        .store
        .list_webhook_deliveries(status, limit)
        .await?
        .into_iter()
        .map(DeliveryBody::from)
        .collect();
    Ok(json_response(StatusCode::OK, &DeliveryList { deliveries }))
}
