//! `ANY /proxy/*endpoint`: calls a provider's API for one connection with its credentials put
//! in, so the caller never handles a token (Nango 0.15's proxy, Pizzly's before it).
//!
//! The caller names the connection with the `Connection-Id` and `Provider-Config-Key` headers;
//! the request goes to the template's `base_api_url` + endpoint + query with the caller's method,
//! body and end-to-end headers, and the provider's answer comes back as it is, streamed both
//! ways. What the proxy adds:
//!
//! - the credentials, per auth mode: a bearer token (or the template's header/query form), an
//!   OAuth 1.0a signature over method, URL and form body, an API key where the template puts it,
//!   HTTP Basic;
//! - on a 401, one forced refresh (shared with every other refresh of the connection) and one
//!   retry;
//! - on a 429 or 5xx, or a status the `Retry-On` header lists, retries after the wait the
//!   provider asks for (`Retry-After`, the template's rate-limit headers) or an exponential
//!   backoff, as many as the `Retries` header says (default: [`crate::Settings::proxy_retries`]
//!   for idempotent methods, none for POST/PATCH).
//!
//! Redirects are not followed (the outbound clients have no redirect policy): a 3xx comes back
//! to the caller as it is, so `Forward-Headers-On-Redirect` has nothing to change and is only
//! kept from the provider.
//!
//! Only a body small enough to keep ([`REPLAYABLE_BODY_BYTES`]) can be sent twice; a larger one
//! is streamed and its call is never retried. No URL is ever logged or put in an error: an API
//! key may be in its query.

mod headers;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::on;
use axum::Router;
use futures::StreamExt;
use url::Url;

use crate::configs::config_and_template;
use crate::credentials::{apply_credentials, Credentials, Freshness};
use crate::error::ApiError;
use crate::providers::{self, RetryHeaders};
use crate::AppState;

use headers::{forwarded_request_headers, returned_response_headers};

/// Request bodies up to this size are kept in memory so that the call can be retried (and
/// OAuth 1.0a form bodies signed); larger ones are streamed through, once.
pub const REPLAYABLE_BODY_BYTES: usize = 1024 * 1024;
/// Most retries a `Retries` header may ask for.
pub const MAX_RETRIES: u32 = 10;
/// Most statuses a `Retry-On` header may list: more than there are retryable statuses in
/// practice, few enough that the check per answer stays trivial.
pub const MAX_RETRY_ON: usize = 50;
/// First wait of the exponential backoff when the provider does not say how long to wait.
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// The proxy route (behind the secret key, like the rest of the API).
pub fn routes() -> Router<AppState> {
    use axum::routing::MethodFilter;
    // The methods APIs use (the document's); TRACE and CONNECT are answered 405.
    let methods = [
        MethodFilter::POST,
        MethodFilter::PUT,
        MethodFilter::PATCH,
        MethodFilter::DELETE,
        MethodFilter::HEAD,
        MethodFilter::OPTIONS,
    ]
    .into_iter()
    .fold(MethodFilter::GET, MethodFilter::or);
    Router::new().route("/proxy/{*endpoint}", on(methods, forward))
}

/// The proxy's entry in the OpenAPI document (the route itself takes every method, so it is
/// registered without utoipa's router).
#[derive(utoipa::OpenApi)]
#[openapi(paths(forward), tags((name = "proxy", description = "Calls to a provider's API with a connection's credentials put in.")))]
pub struct ProxyDoc;

#[utoipa::path(
    method(get, post, put, patch, delete, head, options),
    path = "/proxy/{endpoint}", tag = "proxy",
    description = "Calls the provider's API (the template's `base_api_url` + `/{endpoint}` + the query) for one connection, with its credentials put in per auth mode; refreshes and retries once on a 401, retries 429 and 5xx answers (and those `Retry-On` lists) as `Retries` allows. The answer is the provider's, streamed. See docs/proxy.md.",
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    params(
        ("endpoint" = String, Path, description = "The API path after the base URL."),
        ("Connection-Id" = String, Header, description = "The connection whose credentials are used."),
        ("Provider-Config-Key" = String, Header, description = "Its provider config."),
        ("Retries" = Option<u32>, Header, description = "Retries of a 429 or 5xx (0 to 10); default 2 for idempotent methods, 0 for POST and PATCH."),
        ("Retry-On" = Option<String>, Header, description = "More statuses to retry, comma separated (`409,404`; 100 to 599, at most 50), with the same budget as `Retries`: it adds statuses, not retries, so a POST or PATCH without `Retries` is still not retried. Never forwarded."),
        ("Forward-Headers-On-Redirect" = Option<String>, Header, description = "Accepted for Nango's SDK and never forwarded; any value. The proxy does not follow redirects: a 3xx comes back as it is."),
    ),
    responses(
        (status = 400, description = "A missing header, an unknown connection or config, a template without `base_api_url`, a bad `Retries`, `Retry-On` or endpoint.", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong secret key, or the provider's own 401 after one refresh and retry.", body = crate::error::ErrorBody),
        (status = 502, description = "The provider's API could not be reached (`provider_unreachable`), or the provider's own 502.", body = crate::error::ErrorBody),
        (status = "default", description = "The provider's answer, as it is."),
    )
)]
async fn forward(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let connection_id = required_header(&parts.headers, "connection-id", "Connection-Id")?;
    let config_key = required_header(&parts.headers, "provider-config-key", "Provider-Config-Key")?;
    let retries = retries(&parts.headers, &parts.method, state.settings.proxy_retries)?;
    let retry_on = retry_on(&parts.headers)?;
    if parts
        .headers
        .get("base-url-override")
        .is_some_and(|v| !v.is_empty())
    {
        return Err(ApiError::InvalidRequest(
            "Base-Url-Override is not supported: the proxy only calls the provider's base_api_url."
                .into(),
        ));
    }
    let endpoint = endpoint(parts.uri.path())?;

    let mut connection = state
        .refresher
        .fresh_connection(&state, &config_key, &connection_id, Freshness::IfNeeded)
        .await?;
    let (config, template) = config_and_template(&state, &config_key).await?;
    // A host from the operator's provider config only (docs/security.md).
    let connection_config = providers::settle_connection_config(
        template,
        &config.connection_config,
        &connection.connection_config,
        providers::ValueSource::Stored,
    )
    .map_err(|e| ApiError::ProxyTarget(e.to_string()))?;
    let target = providers::api_target(template, &connection_config, &connection.metadata)
        .map_err(|e| ApiError::ProxyTarget(e.to_string()))?;
    let url = target_url(&target.url, endpoint, parts.uri.query())?;
    let forwarded = forwarded_request_headers(&parts.headers)?;
    let mut body = OutgoingBody::read(body).await?;
    let form_params = match (&connection.credentials, is_form(&forwarded)) {
        (Credentials::OAuth1(_), true) => {
            let Some(bytes) = body.replayable() else {
                return Err(ApiError::PayloadTooLarge {
                    limit_kb: REPLAYABLE_BODY_BYTES / 1024,
                });
            };
            url::form_urlencoded::parse(bytes).into_owned().collect()
        }
        _ => Vec::new(),
    };

    let mut attempt = 0;
    let mut refreshed = false;
    loop {
        let mut headers = forwarded.clone();
        let url = apply_credentials(
            template,
            &config,
            &connection.credentials,
            &connection.connection_config,
            &parts.method,
            &url,
            &form_params,
            &mut headers,
        )
        .map_err(|e| ApiError::ProxyTarget(e.to_string()))?;
        let mut outgoing = state
            .http_for(target.public_only)
            .request(parts.method.clone(), url)
            .headers(headers);
        if let Some(body) = body.take() {
            outgoing = outgoing.body(body);
        }
        let can_retry = body.replayable().is_some();
        let response = match outgoing.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = describe(&e);
                if can_retry && attempt < retries && (e.is_connect() || e.is_timeout()) {
                    let wait = backoff(attempt);
                    tracing::info!(
                        attempt,
                        reason,
                        wait_ms = wait.as_millis() as u64,
                        "proxy: provider unreachable, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                tracing::warn!(reason, "proxy: provider unreachable");
                return Err(ApiError::ProxyUnreachable(reason));
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED
            && !refreshed
            && can_retry
            && connection.credentials.refreshable()
        {
            refreshed = true;
            // Forced, but shared: if the stored credentials changed since the ones this call
            // used (another call refreshed them), those are used instead of rotating again.
            match state
                .refresher
                .fresh_connection(
                    &state,
                    &config_key,
                    &connection_id,
                    Freshness::Forced {
                        requested_at: chrono::Utc::now(),
                        held: Some(connection.health.generation()),
                    },
                )
                .await
            {
                Ok(renewed) => {
                    tracing::info!(
                        "proxy: provider answered 401, retrying with refreshed credentials"
                    );
                    connection = renewed;
                    continue;
                }
                Err(e) => {
                    // The provider's own 401 is the truest answer; why the refresh failed is in
                    // the connection's health and the log.
                    tracing::warn!(error = %ApiError::from(e), "proxy: refresh after a 401 failed");
                    return Ok(stream_back(response));
                }
            }
        }
        if (status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || retry_on.contains(&status))
            && can_retry
            && attempt < retries
        {
            match retry_wait(
                response.headers(),
                &template.proxy.retry,
                attempt,
                state.settings.proxy_max_retry_wait,
            ) {
                Some(wait) => {
                    tracing::info!(
                        status = status.as_u16(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "proxy: retrying after the provider's answer"
                    );
                    drop(response);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                None => {
                    tracing::info!(
                        status = status.as_u16(),
                        "proxy: the provider asks for a longer wait than allowed, passing its answer back"
                    );
                }
            }
        }
        return Ok(stream_back(response));
    }
}

fn required_header(
    headers: &HeaderMap,
    name: &str,
    shown: &'static str,
) -> Result<String, ApiError> {
    let value = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::MissingHeader { name: shown });
    }
    if value.len() > crate::http::MAX_ID_LEN {
        return Err(ApiError::InvalidRequest(format!(
            "Header '{shown}' is longer than {} characters.",
            crate::http::MAX_ID_LEN
        )));
    }
    Ok(value.to_string())
}

/// How many times a 429 or 5xx may be retried: the `Retries` header, else the default for
/// idempotent methods (RFC 9110 §9.2.2) and none for the others.
fn retries(headers: &HeaderMap, method: &Method, default: u32) -> Result<u32, ApiError> {
    match headers.get("retries") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n <= MAX_RETRIES)
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "Header 'Retries' must be a whole number from 0 to {MAX_RETRIES}."
                ))
            }),
        None if method.is_idempotent() => Ok(default),
        None => Ok(0),
    }
}

/// The statuses the `Retry-On` header adds to 429 and 5xx (Nango's SDK sends `retryOn` this way:
/// `409,404`). They share the `Retries` budget: the header adds statuses, never retries, so a
/// POST or PATCH without `Retries` still gets none (retrying a non-idempotent call is the
/// caller's explicit choice, whatever the status). Empty means none, as `retryOn: []` sends it.
fn retry_on(headers: &HeaderMap) -> Result<Vec<StatusCode>, ApiError> {
    let Some(value) = headers.get("retry-on") else {
        return Ok(Vec::new());
    };
    let refused = || {
        ApiError::InvalidRequest(format!(
            "Header 'Retry-On' must be a comma-separated list of at most {MAX_RETRY_ON} HTTP \
             statuses (100 to 599)."
        ))
    };
    let text = value.to_str().map_err(|_| refused())?.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.split(',').nth(MAX_RETRY_ON).is_some() {
        return Err(refused());
    }
    text.split(',')
        .map(|entry| {
            let entry = entry.trim();
            // Digits only: `parse` would also take a sign (`+409`).
            if entry.is_empty() || !entry.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            entry
                .parse::<u16>()
                .ok()
                .filter(|code| (100..=599).contains(code))
                .and_then(|code| StatusCode::from_u16(code).ok())
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(refused)
}

/// The endpoint: the request's path after `/proxy`, still percent-encoded as the caller sent it.
/// Dot segments are refused (also encoded): they would climb out of the API's base path.
fn endpoint(path: &str) -> Result<&str, ApiError> {
    let endpoint = path.strip_prefix("/proxy").unwrap_or(path);
    let climbs = endpoint.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".." || decoded.contains('/') || decoded.contains('\\')
    });
    if climbs {
        return Err(ApiError::InvalidRequest(
            "The proxied endpoint may not hold '.' or '..' segments or encoded slashes.".into(),
        ));
    }
    Ok(endpoint)
}

/// `base` + endpoint + query, refused unless it stays under `base`.
fn target_url(base: &Url, endpoint: &str, query: Option<&str>) -> Result<Url, ApiError> {
    let mut text = base.as_str().trim_end_matches('/').to_string();
    text.push_str(endpoint);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        text.push('?');
        text.push_str(query);
    }
    let refused =
        || ApiError::InvalidRequest("The proxied endpoint does not make a valid URL.".into());
    let url = Url::parse(&text).map_err(|_| refused())?;
    if url.origin() != base.origin() || !url.path().starts_with(base.path().trim_end_matches('/')) {
        return Err(refused());
    }
    Ok(url)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The request body: kept (and so replayable) when small, else streamed once.
enum OutgoingBody {
    Kept(Bytes),
    /// Until it is sent (once).
    Streamed(Option<reqwest::Body>),
}

impl OutgoingBody {
    async fn read(body: Body) -> Result<OutgoingBody, ApiError> {
        let mut stream = body.into_data_stream();
        let mut kept: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::InvalidRequest("The request body could not be read.".into())
            })?;
            kept.extend_from_slice(&chunk);
            if kept.len() > REPLAYABLE_BODY_BYTES {
                let head =
                    futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(kept)) });
                let body = reqwest::Body::wrap_stream(head.chain(stream));
                return Ok(OutgoingBody::Streamed(Some(body)));
            }
        }
        Ok(OutgoingBody::Kept(Bytes::from(kept)))
    }

    /// The body when it can be sent again.
    fn replayable(&self) -> Option<&Bytes> {
        match self {
            OutgoingBody::Kept(bytes) => Some(bytes),
            OutgoingBody::Streamed(_) => None,
        }
    }

    /// What to send this time: the kept bytes (none when empty), or the stream the first time.
    fn take(&mut self) -> Option<reqwest::Body> {
        match self {
            OutgoingBody::Kept(bytes) if bytes.is_empty() => None,
            OutgoingBody::Kept(bytes) => Some(reqwest::Body::from(bytes.clone())),
            OutgoingBody::Streamed(stream) => stream.take(),
        }
    }
}

/// The provider's answer as it is: status, end-to-end headers, body streamed.
fn stream_back(response: reqwest::Response) -> Response {
    let status = response.status();
    let headers = returned_response_headers(response.headers());
    let mut answer = Response::new(Body::from_stream(response.bytes_stream()));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    answer
}

/// Why the provider could not be reached, without the URL (an API key may be in its query).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "the request failed".into()
    }
}

/// How long to wait before retrying a 429 or 5xx: what the provider asks for (`Retry-After` in
/// seconds or as a date, the template's seconds-to-wait or reset-time header), else an
/// exponential backoff. `None` when the wait would be longer than `max`.
fn retry_wait(
    headers: &HeaderMap,
    retry: &RetryHeaders,
    attempt: u32,
    max: Duration,
) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = chrono::Utc::now();
    let seconds_after = |value: &str| -> Option<Duration> {
        if let Ok(seconds) = value.parse::<f64>() {
            return (seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds));
        }
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        Some(
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or_default(),
        )
    };
    let asked = text("retry-after")
        .and_then(seconds_after)
        .or_else(|| {
            retry
                .after
                .as_deref()
                .and_then(text)
                .and_then(seconds_after)
        })
        .or_else(|| {
            let at: f64 = retry.at.as_deref().and_then(text)?.parse().ok()?;
            let wait = at - now.timestamp() as f64;
            Some(Duration::from_secs_f64(wait.clamp(0.0, 1e9)))
        });
    let wait = asked.unwrap_or_else(|| backoff(attempt));
    (wait <= max).then_some(wait)
}

/// 200 ms, 400 ms, 800 ms ... (at most about 26 s), each shortened by up to half at random so
/// that callers retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let full = BACKOFF_BASE * 2u32.pow(attempt.min(7));
    let jitter = crate::oauth::pkce::random_bytes::<1>().map_or(0, |b| b[0]);
    full - full.mul_f64(f64::from(jitter) / 255.0 / 2.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn endpoints_cannot_climb_out_of_the_base_path() {
        assert_eq!(endpoint("/proxy/user/repos").unwrap(), "/user/repos");
        for path in [
            "/proxy/../admin",
            "/proxy/a/%2e%2E/b",
            "/proxy/a/./b",
            "/proxy/a%2Fb",
            "/proxy/a%5c..",
        ] {
            assert!(endpoint(path).is_err(), "{path}");
        }
        let base = Url::parse("https://slack.com/api").unwrap();
        assert_eq!(
            target_url(&base, "/chat.postMessage", Some("a=1&b=%20"))
                .unwrap()
                .as_str(),
            "https://slack.com/api/chat.postMessage?a=1&b=%20"
        );
        let base = Url::parse("https://api.github.com/").unwrap();
        assert_eq!(
            target_url(&base, "//evil.example/x", None)
                .unwrap()
                .host_str(),
            Some("api.github.com")
        );
    }

    #[test]
    fn retries_default_to_none_for_methods_that_are_not_idempotent() {
        let none = HeaderMap::new();
        assert_eq!(retries(&none, &Method::GET, 2).unwrap(), 2);
        assert_eq!(retries(&none, &Method::DELETE, 2).unwrap(), 2);
        assert_eq!(retries(&none, &Method::POST, 2).unwrap(), 0);
        assert_eq!(retries(&none, &Method::PATCH, 2).unwrap(), 0);
        let mut asked = HeaderMap::new();
        asked.insert("retries", HeaderValue::from_static("5"));
        assert_eq!(retries(&asked, &Method::POST, 2).unwrap(), 5);
        asked.insert("retries", HeaderValue::from_static("11"));
        assert!(retries(&asked, &Method::GET, 2).is_err());
        asked.insert("retries", HeaderValue::from_static("-1"));
        assert!(retries(&asked, &Method::GET, 2).is_err());
    }

    #[test]
    fn retry_on_lists_whole_statuses_and_refuses_anything_else() {
        let parse = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("retry-on", HeaderValue::from_str(value).unwrap());
            retry_on(&headers)
        };
        assert!(retry_on(&HeaderMap::new()).unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  ").unwrap().is_empty());
        assert_eq!(
            parse("429,409").unwrap(),
            [StatusCode::TOO_MANY_REQUESTS, StatusCode::CONFLICT]
        );
        assert_eq!(
            parse(" 500, 404 ").unwrap(),
            [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::NOT_FOUND]
        );
        assert_eq!(parse("100,599").unwrap().len(), 2);
        let fifty = vec!["409"; MAX_RETRY_ON].join(",");
        assert_eq!(parse(&fifty).unwrap().len(), MAX_RETRY_ON);
        let too_many = vec!["409"; MAX_RETRY_ON + 1].join(",");
        for bad in [
            "99",
            "600",
            "0",
            "-409",
            "+409",
            "409.0",
            "4O9",
            "abc",
            "409,",
            ",409",
            "409,,404",
            "409 404",
            "409;404",
            "65945",
            too_many.as_str(),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let mut binary = HeaderMap::new();
        binary.insert("retry-on", HeaderValue::from_bytes(b"409\xff").unwrap());
        assert!(retry_on(&binary).is_err());
    }

    #[test]
    fn waits_follow_the_provider_and_give_up_past_the_limit() {
        let max = Duration::from_secs(30);
        let none = RetryHeaders::default();
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(
            retry_wait(&headers, &none, 0, max),
            Some(Duration::from_secs(2))
        );
        headers.insert("retry-after", HeaderValue::from_static("3600"));
        assert_eq!(retry_wait(&headers, &none, 0, max), None);
        let date = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc2822();
        headers.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let wait = retry_wait(&headers, &none, 0, max).unwrap();
        assert!(
            wait <= Duration::from_secs(5) && wait >= Duration::from_secs(3),
            "{wait:?}"
        );

        let github = RetryHeaders {
            at: Some("x-ratelimit-reset".into()),
            after: None,
        };
        let mut headers = HeaderMap::new();
        let reset = (chrono::Utc::now().timestamp() + 4).to_string();
        headers.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let wait = retry_wait(&headers, &github, 0, max).unwrap();
        assert!(
            wait <= Duration::from_secs(4) && wait >= Duration::from_secs(2),
            "{wait:?}"
        );

        let wait = retry_wait(&HeaderMap::new(), &none, 3, max).unwrap();
        assert!(wait <= Duration::from_millis(1600) && wait >= Duration::from_millis(800));
    }
}
