//! The REST API: one module per resource, plus what they share (JSON responses, query and body
//! parsing that answers bad input with the documented JSON errors, the secret-key gate).

pub mod api_auth;
pub mod configs;
pub mod connect_sessions;
pub mod connections;
pub mod guard;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod providers;
pub mod sdk;
pub mod webhook_deliveries;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

/// Request bodies above this are refused with 413 (Express's `express.json()` default).
pub const BODY_LIMIT_BYTES: usize = 100 * 1024;
/// Config keys and connection ids were `varchar(255)` in Nango; longer ones are refused.
pub const MAX_ID_LEN: usize = 255;

/// A JSON response with the content type Express sent.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `200` with an empty body: what Nango answers to edits and deletes.
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// Decoded query parameters, in order. Invalid percent-encoding or non-UTF-8 values are refused
/// rather than silently mangled into a different id.
pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

fn decode_component(s: &str) -> Result<String, ApiError> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::InvalidRequest("Query parameters must be valid UTF-8.".into()))
}

/// The first value of a query parameter.
pub fn query_value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A path segment (config key or connection id), checked; percent-encoding that is not UTF-8 is a
/// JSON 400 like every other bad input, not axum's plain-text rejection.
pub fn path_id(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    what: &str,
) -> Result<String, ApiError> {
    let axum::extract::Path(value) = path.map_err(|_| {
        ApiError::InvalidRequest(format!("Param '{what}' in the path must be valid UTF-8."))
    })?;
    check_id(what, &value)?;
    Ok(value)
}

/// Checks a config key or connection id taken from a path or query.
pub fn check_id(what: &str, value: &str) -> Result<(), ApiError> {
    match id_problem(what, value) {
        Some(problem) => Err(ApiError::InvalidRequest(problem)),
        None => Ok(()),
    }
}

/// What is wrong with a config key or connection id, if anything: too long, control characters,
/// or `.`/`..` (URL parsers resolve those path segments, even percent-encoded, so a row named so
/// could be created but never read or deleted again).
pub fn id_problem(what: &str, value: &str) -> Option<String> {
    if value.chars().count() > MAX_ID_LEN {
        return Some(format!(
            "Param '{what}' is too long (at most {MAX_ID_LEN} characters)."
        ));
    }
    if value.chars().any(char::is_control) {
        return Some(format!(
            "Param '{what}' must not contain control characters."
        ));
    }
    if value == "." || value == ".." {
        return Some(format!("Param '{what}' cannot be '.' or '..'."));
    }
    None
}

/// Parses a JSON object body. An empty body is `missing_body`; anything that is not a JSON object
/// is a clear 400 instead of the era's 500.
pub fn json_object_body(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit_kb: BODY_LIMIT_BYTES / 1024,
            }
        } else {
            ApiError::InvalidRequest("The request body could not be read.".into())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidRequest(
            "The request body must be a JSON object.".into(),
        )),
        Err(e) => Err(ApiError::InvalidRequest(format!(
            "The request body is not valid JSON: {e}."
        ))),
    }
}

/// Guards `/config` and `/connection` when a secret key is configured. Accepts what 0.9 clients
/// send (HTTP Basic with the key as username; only the part after the last `Basic ` counts) and
/// `Bearer <key>`. Keys are compared as SHA-256 digests in constant time so neither the content
/// nor the length of the key leaks through timing.
pub async fn require_secret_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(secret) = state.settings.secret_key.as_ref() else {
        return next.run(request).await;
    };
    let Some(header) = request.headers().get(header::AUTHORIZATION) else {
        return ApiError::MissingAuthorization.into_response();
    };
    let presented = header
        .to_str()
        .ok()
        .and_then(presented_key)
        .unwrap_or_default();
    if secret_key_matches(secret.expose(), &presented) {
        next.run(request).await
    } else {
        ApiError::InvalidSecretKey.into_response()
    }
}

/// Whether `presented` is the secret key: compared as SHA-256 digests in constant time, so
/// neither the content nor the length of the key leaks through timing (also the dashboard's login).
pub(crate) fn secret_key_matches(secret: &str, presented: &str) -> bool {
    let expected = Sha256::digest(secret.as_bytes());
    let given = Sha256::digest(presented.as_bytes());
    bool::from(expected.ct_eq(&given))
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

/// The 404 for unknown routes, in the JSON envelope.
pub async fn route_not_found(request: Request) -> ApiError {
    ApiError::RouteNotFound {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
    }
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
