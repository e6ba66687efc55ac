//! Which headers cross the proxy, each way.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and those it names, `Keep-Alive`, `TE`,
//! `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) belong to one connection and never
//! cross. From the caller, also dropped: what is about our server rather than the provider (`Host`,
//! its `Authorization` with our secret key, cookies, forwarding headers that would reveal the
//! caller's network, the proxy's own control headers) and `Content-Length` (the HTTP client sets
//! it for the body it sends). `Nango-Proxy-<Name>: value` is forwarded as `<Name>: value`
//! (Nango's SDK sends caller headers that way), under the same rules.

use axum::http::{HeaderMap, HeaderName};

use crate::error::ApiError;

/// Hop-by-hop headers, always dropped (and every `Proxy-*` header: they are meant for a proxy
/// on the way, such as `Proxy-Authorization` for the caller's own forward proxy, and never for
/// the provider).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Caller headers about our server, not the provider's.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "content-length",
    // Our server already answered it; the HTTP client sends the body without waiting.
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "connection-id",
    "provider-config-key",
    "retries",
    // Instructions to the proxy about retries and redirects, which current Nango's SDK sends
    // on every call that sets them; they mean nothing to the provider.
    "retry-on",
    "forward-headers-on-redirect",
    "base-url-override",
    "decompress",
];

const CALLER_PREFIX: &str = "nango-proxy-";

/// Header names that `Connection` lists: hop-by-hop for this message only.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn hop_by_hop(name: &str, listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name) || name.starts_with("proxy-") || listed.iter().any(|t| t == name)
}

/// The caller's headers that go to the provider.
pub(super) fn forwarded_request_headers(incoming: &HeaderMap) -> Result<HeaderMap, ApiError> {
    let listed = connection_tokens(incoming);
    let mut plain = HeaderMap::new();
    let mut prefixed = HeaderMap::new();
    for (header, value) in incoming {
        let name = header.as_str();
        if let Some(target) = name.strip_prefix(CALLER_PREFIX) {
            if target.is_empty() || hop_by_hop(target, &listed) || NOT_FORWARDED.contains(&target) {
                continue;
            }
            let target = HeaderName::from_bytes(target.as_bytes()).map_err(|_| {
                ApiError::InvalidRequest(format!("Header {name:?} does not name a header."))
            })?;
            prefixed.append(target, value.clone());
        } else if !(hop_by_hop(name, &listed)
            || NOT_FORWARDED.contains(&name)
            || name.starts_with("nango-"))
        {
            plain.append(header.clone(), value.clone());
        }
    }
    // A prefixed header is what the caller asked for explicitly: it replaces a plain one.
    for name in prefixed.keys() {
        plain.remove(name);
    }
    for (name, value) in prefixed.iter() {
        plain.append(name.clone(), value.clone());
    }
    Ok(plain)
}

/// The provider's response headers that go back to the caller.
pub(super) fn returned_response_headers(incoming: &HeaderMap) -> HeaderMap {
    let listed = connection_tokens(incoming);
    incoming
        .iter()
        .filter(|(name, _)| !hop_by_hop(name.as_str(), &listed))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn only_end_to_end_headers_about_the_provider_cross() {
        let incoming = map(&[
            ("authorization", "Bearer our-secret-key"),
            ("host", "nango.local"),
            ("cookie", "session=1"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("x-forwarded-for", "10.0.0.1"),
            ("connection-id", "u1"),
            ("provider-config-key", "github"),
            ("retries", "2"),
            ("retry-on", "409,404"),
            ("forward-headers-on-redirect", "true"),
            ("nango-proxy-retry-on", "409"),
            ("nango-is-sync", "false"),
            ("content-type", "application/json"),
            ("accept", "text/plain"),
            ("nango-proxy-accept", "application/vnd.github+json"),
            ("nango-proxy-x-api-version", "3"),
            ("nango-proxy-authorization", "Bearer smuggled"),
            ("nango-proxy-host", "evil.example"),
            ("x-custom", "kept"),
            ("proxy-authorization", "Basic cHJveHk6cHc="),
            ("proxy-foo", "1"),
            ("nango-proxy-proxy-bar", "2"),
        ]);
        let out = forwarded_request_headers(&incoming).unwrap();
        let mut names: Vec<_> = out.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            ["accept", "content-type", "x-api-version", "x-custom"]
        );
        assert_eq!(out["accept"], "application/vnd.github+json");
        assert_eq!(out.get_all("accept").iter().count(), 1);
    }

    #[test]
    fn hop_by_hop_response_headers_stay_behind() {
        let incoming = map(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("x-ratelimit-remaining", "10"),
        ]);
        let out = returned_response_headers(&incoming);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            ["content-encoding", "content-type", "x-ratelimit-remaining"]
        );
    }
}
