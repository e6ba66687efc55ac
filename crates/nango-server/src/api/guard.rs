//! Protections every response or public route gets: security headers, a per-client rate limit
//! on the routes anyone can call (the OAuth flow, credential entry), and a bound on how long a
//! request may take (the router adds the timeout itself).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};

use crate::http::client_address;
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

/// On the public routes (`/oauth/...`, `/api-auth/...`, the SDK's WebSocket), answers 429 with
/// `Retry-After` once a client address used up its allowance. The address is
/// the TCP peer's: behind a reverse proxy, limit at the proxy (or every client shares one).
pub async fn rate_limit_public(
    State(limit): State<PublicRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let public = path.starts_with("/oauth/")
        || path.starts_with("/api-auth/")
        || crate::oauth::notify::is_socket_request(&request);
    let Some(limiter) = limit.limiter.as_ref().filter(|_| public) else {
        return next.run(request).await;
    };
    let client = client_address(&request);
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
    // A page that says who may frame it (the Connect UI: the app's origins) must not also be
    // refused to every frame.
    let framing_set = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|csp| {
            csp.contains("frame-ancestors") && !csp.contains("frame-ancestors 'none'")
        });
    if !framing_set && !headers.contains_key(header::X_FRAME_OPTIONS) {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// A 429 in the documented error shape, with `Retry-After`.
fn too_many(seconds: u64, message: String) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"error": message, "type": "rate_limited"}),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Failed secret-key checks per client address (REST and dashboard login), counted in fixed
/// one-minute windows. Once an address reaches the limit, every request of it that needs the
/// key is answered 429 until its window ends, even one with the right key: otherwise the 429
/// itself would tell a guesser when a guess was right.
#[derive(Clone)]
pub struct AuthFailureLimit {
    limit: u32,
    window: std::time::Duration,
    failures: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, (std::time::Instant, u32)>>>,
    /// Whether some address may be locked out: every request with the right key asks, so while
    /// none is (nearly always) the answer costs an atomic load, not the map's lock.
    any_locked: Arc<std::sync::atomic::AtomicBool>,
}

impl AuthFailureLimit {
    /// `limit` failures per minute per address; 0: no limit.
    pub fn per_minute(limit: u32) -> AuthFailureLimit {
        AuthFailureLimit {
            limit,
            window: std::time::Duration::from_secs(60),
            failures: Arc::default(),
            any_locked: Arc::default(),
        }
    }

    /// `Some(seconds to wait)` while `client` is locked out.
    pub fn locked_out(&self, client: IpAddr) -> Option<u64> {
        if self.limit == 0 || !self.any_locked.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let failures = self.failures.lock().ok()?;
        let (started, count) = failures.get(&client)?;
        let left = self.window.checked_sub(started.elapsed())?;
        (*count >= self.limit).then(|| left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// Counts a failed check of `client`.
    pub fn failed(&self, client: IpAddr) {
        if self.limit == 0 {
            return;
        }
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures
                .entry(client)
                .or_insert((std::time::Instant::now(), 0));
            if entry.0.elapsed() >= self.window {
                *entry = (std::time::Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
            if entry.1 == self.limit {
                self.any_locked
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::warn!(client = %client, "too many wrong secret keys from this address; refused for the rest of the minute");
            }
        }
    }

    /// Forgets addresses whose window has ended.
    pub fn forget_idle_clients(&self) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.retain(|_, (started, _)| started.elapsed() < self.window);
            let locked = failures.values().any(|(_, count)| *count >= self.limit);
            self.any_locked
                .store(locked, std::sync::atomic::Ordering::Release);
        }
    }

    /// Checks a presented key for `client`: `None` when it is right and the address is not
    /// locked out, the answer to send otherwise (429 while locked out, `wrong()` for a wrong key).
    pub fn refusal(
        &self,
        client: IpAddr,
        right: impl FnOnce() -> bool,
        wrong: impl FnOnce() -> Response,
    ) -> Option<Response> {
        if let Some(seconds) = self.locked_out(client) {
            return Some(too_many(
                seconds,
                format!("Too many wrong secret keys from this address; try again in {seconds} s."),
            ));
        }
        if right() {
            return None;
        }
        self.failed(client);
        Some(wrong())
    }
}

/// Without a secret key, answers only requests addressed to this server by a name it knows
/// (`localhost`, `127.0.0.1`, `[::1]`, or the host of the server or callback URL, any port):
/// a web page that points its own domain at this machine (DNS rebinding) sends its own name in
/// `Host`, and gets a 421 with nothing else (`/health` excepted: it says nothing, and probes
/// address a container by its IP). With a key the key guards the API; no check.
pub async fn check_host(
    State(allowed): State<Arc<Option<Vec<String>>>>,
    request: Request,
    next: Next,
) -> Response {
    // `/health` tells nothing and must answer probes that address the container by its IP.
    let Some(allowed) = allowed
        .as_ref()
        .as_ref()
        .filter(|_| request.uri().path() != "/health")
    else {
        return next.run(request).await;
    };
    // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in `Host`.
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
    let host = authority.as_deref().map(host_without_port);
    if host.is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host))) {
        return next.run(request).await;
    }
    json_response(
        StatusCode::MISDIRECTED_REQUEST,
        &json!({
            "error": "This server does not answer for this host name.",
            "type": "misdirected_request",
        }),
    )
}

/// Whether an `Origin` header names a page of this server (a host a keyless server answers).
pub fn origin_is_this_server(origin: &HeaderValue, settings: &crate::Settings) -> bool {
    let Some(host) = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    settings.keyless_hosts().contains(&host)
}

/// `example.com` of `example.com:3003`, `[::1]` of `[::1]:3003`, without a trailing dot.
fn host_without_port(authority: &str) -> &str {
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_port_is_cut_from_the_host() {
        assert_eq!(host_without_port("localhost:3003"), "localhost");
        assert_eq!(host_without_port("localhost"), "localhost");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(
            host_without_port("nango.example.com.:443"),
            "nango.example.com"
        );
    }

    #[test]
    fn an_address_is_locked_out_after_the_limit_until_the_window_ends() {
        let limit = AuthFailureLimit::per_minute(3);
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let wrong = || StatusCode::UNAUTHORIZED.into_response();
        for _ in 0..3 {
            let answer = limit.refusal(client, || false, wrong);
            assert_eq!(answer.map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        }
        let answer = limit.refusal(client, || true, wrong);
        assert_eq!(
            answer.map(|r| r.status()),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(limit.refusal(other, || true, wrong).is_none());
    }
}
