//! HTTP helpers every front door shares (REST, OAuth flow, proxy, dashboard): JSON responses in
//! the content type Express sent, query and path parsing that answers bad input with the
//! documented JSON errors, id checks, the secret-key comparison. No handler lives here.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

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

/// The frontend SDK's `params[name]=value` query parameters as a connection config
/// (`{"connectionConfig.params.name": "value"}`); other parameters are left out.
pub fn connection_config_from_params<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut config = serde_json::Map::new();
    for (name, value) in pairs {
        if let Some(param) = name
            .strip_prefix("params[")
            .and_then(|p| p.strip_suffix(']'))
            .filter(|p| !p.is_empty() && !p.contains(['[', ']']))
        {
            config.insert(
                format!("connectionConfig.params.{param}"),
                serde_json::Value::String(value.to_string()),
            );
        }
    }
    config
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

/// Refuses a body not declared `application/json` (parameters such as `; charset=utf-8` are
/// fine). Routes a browser may call cross-site use it: a `text/plain` or form body needs no CORS
/// preflight, so without this check any web page could post one with the user's browser.
pub fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Whether `presented` is the secret key: compared as SHA-256 digests in constant time, so
/// neither the content nor the length of the key leaks through timing (also the dashboard's login).
pub fn secret_key_matches(secret: &str, presented: &str) -> bool {
    let expected = Sha256::digest(secret.as_bytes());
    let given = Sha256::digest(presented.as_bytes());
    bool::from(expected.ct_eq(&given))
}

/// The client address of a request (the TCP peer's), or `0.0.0.0` when the server was not
/// given one (a router served without connect info).
pub fn client_address(request: &axum::extract::Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(addr)| addr.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}
