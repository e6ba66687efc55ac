//! The REST API: one module per resource, plus what they share (JSON responses, query and body
//! parsing that answers bad input with the documented JSON errors, the secret-key gate).

pub mod api_auth;
pub mod configs;
pub mod connect_sessions;
pub mod connections;
pub mod current;
pub mod current_edits;
pub mod guard;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod openapi;
pub mod providers;
pub mod sdk;
pub mod webhook_deliveries;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::http::{
    check_id, empty_ok, id_problem, json_object_body, json_response, parse_query, path_id,
    query_value, secret_key_matches, BODY_LIMIT_BYTES, MAX_ID_LEN,
};

use crate::error::ApiError;
use crate::AppState;

/// Guards `/config` and `/connection` when a secret key is configured. Accepts what 0.9 clients
/// send (HTTP Basic with the key as username; only the part after the last `Basic ` counts) and
/// `Bearer <key>`. Keys are compared as SHA-256 digests in constant time so neither the content
/// nor the length of the key leaks through timing. Wrong keys are counted per client address
/// (`guard::AuthFailureLimit`): past the limit the address gets 429s for the rest of the minute.
pub async fn require_secret_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(secret) = state.settings.secret_key.as_ref() else {
        // Keyless, a page on another site cannot read the answers (no CORS) nor reach us by
        // another name (Host check), but it could still send a write to localhost blind.
        // Browsers name the page's origin on such requests; programs send none.
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            if !guard::origin_is_this_server(origin, &state.settings) {
                return crate::http::json_response(
                    axum::http::StatusCode::FORBIDDEN,
                    &serde_json::json!({
                        "error": "Requests from web pages of other sites are refused by a server without a secret key.",
                        "type": "cross_site_request",
                    }),
                );
            }
        }
        return next.run(request).await;
    };
    let current = current::speaks_current(request.uri().path());
    let refuse = |e: ApiError| {
        if current {
            current::auth_refusal(e)
        } else {
            e.into_response()
        }
    };
    let Some(header) = request.headers().get(header::AUTHORIZATION) else {
        return refuse(ApiError::MissingAuthorization);
    };
    let presented = header
        .to_str()
        .ok()
        .and_then(presented_key)
        .unwrap_or_default();
    let client = crate::http::client_address(&request);
    match state.auth_failures.refusal(
        client,
        || secret_key_matches(secret.expose(), &presented),
        || refuse(ApiError::InvalidSecretKey),
    ) {
        None => next.run(request).await,
        Some(refused) => refused,
    }
}

fn presented_key(header: &str) -> Option<String> {
    use base64::Engine;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = header
        .rsplit_once("Basic ")
        .map_or(header, |(_, b)| b)
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    Some(decoded.split(':').next().unwrap_or_default().to_string())
}

/// The 404 for unknown routes, in the JSON envelope: current Nango's for the paths of its
/// contract (functions, syncs, actions, records, the auth modes not offered here...), whose
/// clients read `error.code` and `error.message`; Nango 0.9's for the others.
pub async fn route_not_found(request: Request) -> Response {
    let path = request.uri().path().to_string();
    let error = ApiError::RouteNotFound {
        method: request.method().to_string(),
        path: path.clone(),
    };
    if current::speaks_current(&path) || current::not_offered(&path) {
        current::Current::from(error).into_response()
    } else {
        error.into_response()
    }
}

/// A known path of the REST API asked with a method it does not take: 405 in the JSON envelope of
/// its contract.
pub async fn method_not_allowed(request: Request) -> Response {
    let path = request.uri().path().to_string();
    let message = format!("{} is not offered on {path}.", request.method());
    let body = if current::speaks_current(&path) || current::not_offered(&path) {
        serde_json::json!({"error": {"code": "method_not_allowed", "message": message}})
    } else {
        serde_json::json!({"error": message, "type": "method_not_allowed"})
    };
    crate::http::json_response(axum::http::StatusCode::METHOD_NOT_ALLOWED, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_takes_the_username_and_bearer_the_token() {
        // base64("sk:") and base64("sk:password")
        assert_eq!(presented_key("Basic c2s6").as_deref(), Some("sk"));
        assert_eq!(
            presented_key("Basic c2s6cGFzc3dvcmQ=").as_deref(),
            Some("sk")
        );
        assert_eq!(presented_key("Bearer sk").as_deref(), Some("sk"));
        assert_eq!(presented_key("Basic !!!"), None);
    }

    #[test]
    fn query_decoding_refuses_invalid_utf8_and_decodes_plus() -> Result<(), ApiError> {
        let q = parse_query(Some("a=x+y&b=%C3%A9&c"))?;
        assert_eq!(query_value(&q, "a"), Some("x y"));
        assert_eq!(query_value(&q, "b"), Some("é"));
        assert_eq!(query_value(&q, "c"), Some(""));
        assert!(parse_query(Some("a=%FF")).is_err());
        Ok(())
    }
}
