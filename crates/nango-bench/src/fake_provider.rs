//! A local OAuth 2 token endpoint for the refresh storm: every refresh is answered after a fixed
//! delay (a provider's round trip) with a new access token and a new refresh token, and counted,
//! so the bench can check that each connection was refreshed exactly once. It also serves a small
//! API (`GET /api/...`, answered at once) for the proxy runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;

/// Counters of the token endpoint.
#[derive(Default)]
struct Stats {
    delay: Duration,
    /// Every POST /token (answered or not yet).
    calls: AtomicU64,
    /// Requests that were not a `refresh_token` grant with a refresh token.
    bad_requests: AtomicU64,
    /// The same refresh token presented twice: a connection refreshed more than once.
    duplicates: AtomicU64,
    seen: Mutex<HashSet<String>>,
}

/// What the endpoint has seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub calls: u64,
    pub bad_requests: u64,
    pub duplicates: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            calls: self.calls - earlier.calls,
            bad_requests: self.bad_requests - earlier.bad_requests,
            duplicates: self.duplicates - earlier.duplicates,
        }
    }
}

pub struct FakeProvider {
    pub url: String,
    stats: Arc<Stats>,
}

impl FakeProvider {
    /// Serves on a free port of 127.0.0.1 until the process ends.
    pub async fn start(delay: Duration) -> Result<FakeProvider> {
        let stats = Arc::new(Stats {
            delay,
            ..Stats::default()
        });
        let app = Router::new()
            .route("/token", post(token))
            // The flow is never run (connections are seeded); this only makes the template real.
            .route("/authorize", get(|| async { StatusCode::NOT_IMPLEMENTED }))
            .route("/api/{*rest}", get(api))
            .with_state(stats.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fake provider stopped: {e}");
            }
        });
        Ok(FakeProvider { url, stats })
    }

    /// Forgets the refresh tokens seen so far: the next storm's connections may reuse the ids
    /// (and so the seeded refresh tokens) of a storm on another backend.
    pub fn forget_refresh_tokens(&self) {
        if let Ok(mut seen) = self.stats.seen.lock() {
            seen.clear();
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            calls: self.stats.calls.load(Ordering::SeqCst),
            bad_requests: self.stats.bad_requests.load(Ordering::SeqCst),
            duplicates: self.stats.duplicates.load(Ordering::SeqCst),
        }
    }
}

/// The key the proxy runs' connection holds; the API refuses calls without it.
pub const API_KEY: &str = "bench-api-key-0123456789";

/// A small JSON answer, as an API's list endpoint gives, to calls that carry [`API_KEY`].
async fn api(headers: axum::http::HeaderMap) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no key"}))).into_response();
    }
    Json(json!({"items": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}], "next": null}))
        .into_response()
}

async fn token(
    State(stats): State<Arc<Stats>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = stats.calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(stats.delay).await;
    let refresh_token = match (form.get("grant_type"), form.get("refresh_token")) {
        (Some(grant), Some(token)) if grant == "refresh_token" && !token.is_empty() => token,
        _ => {
            stats.bad_requests.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "unsupported_grant_type"})),
            )
                .into_response();
        }
    };
    let first_time = stats
        .seen
        .lock()
        .map(|mut seen| seen.insert(refresh_token.clone()))
        .unwrap_or(true);
    if !first_time {
        stats.duplicates.fetch_add(1, Ordering::SeqCst);
    }
    Json(json!({
        "access_token": format!("fresh-access-{n}"),
        "refresh_token": format!("fresh-refresh-{n}"),
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "read",
    }))
    .into_response()
}
