//! `/connection`: stored authorizations; `GET /connection/:id` hands out fresh credentials.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{check_id, empty_ok, json_response, parse_query, path_id, query_value};
use crate::credentials::{iso_millis, Freshness};
use crate::error::ApiError;
use crate::store::Connection;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connection", get(list_connections))
        .route(
            "/connection/{connection_id}",
            get(get_connection).delete(delete_connection),
        )
}

/// The full connection row, key order as Nango 0.9 produced it.
pub fn connection_json(c: &Connection) -> Value {
    json!({
        "id": c.id,
        "created_at": iso_millis(c.created_at),
        "updated_at": iso_millis(c.updated_at),
        "provider_config_key": c.provider_config_key,
        "connection_id": c.connection_id,
        "credentials": c.credentials,
        "connection_config": c.connection_config,
        "account_id": c.account_id,
        "metadata": c.metadata,
    })
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
    Ok(json_response(StatusCode::OK, &connection_json(&connection)))
}

async fn list_connections(State(state): State<AppState>) -> Result<Response, ApiError> {
    let connections: Vec<Value> = state
        .store
        .list_connections()
        .await?
        .into_iter()
        .map(|c| {
            // `provider` carries the config key: that is what Nango 0.9 listed.
            json!({
                "connection_id": c.connection_id,
                "provider": c.provider_config_key,
                "created": iso_millis(c.created_at),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "connections": connections }),
    ))
}

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
