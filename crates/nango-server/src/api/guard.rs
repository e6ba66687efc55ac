//! Protections every response or public route gets: security headers, a per-client rate limit
//! on the routes anyone can call (the OAuth flow, credential entry), and a bound on how long a
//! request may take (the router adds the timeout itself).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::json_response;

/// Requests per minute per client address on the public routes; `None`: no limit.
#[derive(Clone)]
pub struct PublicRateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl PublicRateLimit {
    pub fn per_minute(requests: u32) -> PublicRateLimit {
        PublicRateLimit {
            limiter: NonZeroU32::new(requests)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
        }
    }

    /// Forgets clients that have been quiet long enough to be back at a full allowance, so
    /// the table does not grow with every address ever seen.
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
    }
}

/// On the public routes (`/oauth/...`, `/api-auth/...`), answers 429 with `Retry-After` once a
/// client address used up its allowance. The address is
/// the TCP peer's: behind a reverse proxy, limit at the proxy (or every client shares one).
pub async fn rate_limit_public(
    State(limit): State<PublicRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let public = path.starts_with("/oauth/") || path.starts_with("/api-auth/");
    let Some(limiter) = limit.limiter.as_ref().filter(|_| public) else {
        return next.run(request).await;
    };
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(client = %client, "public route rate limit reached");
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({
                    "error": format!("Too many requests from this address; try again in {seconds} s."),
                    "type": "rate_limited",
                }),
            );
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// Headers every response carries unless its handler chose otherwise: no MIME sniffing, no
/// framing (clickjacking of the flow pages), no referrer (URLs carry codes and states), and no
/// caching (answers carry tokens and secrets).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
