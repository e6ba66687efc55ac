//! Hardening: a per-client rate limit on the public routes, security headers on every answer,
//! and a bound on request time that never costs a refresh its result.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{header, TestApp};

#[tokio::test]
async fn the_public_routes_are_rate_limited_per_client_and_the_api_is_not() {
    let app = TestApp::spawn_with(|s| s.public_rate_limit_per_minute = 5).await;
    app.create_config("fake-1", "fake", "").await;
    for i in 0..5 {
        let response = app.connect("fake-1", &format!("connection_id=u{i}")).await;
        assert_ne!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "request {i}"
        );
    }
    let limited = app.connect("fake-1", "connection_id=u9").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(limited.headers(), "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "rate_limited");
    // The same client is limited on the credential-entry routes too...
    let entry = app
        .anon(Method::POST, "/api-auth/api-key/fake-1?connection_id=u1")
        .header("content-type", "application/json")
        .body(json!({"apiKey": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(entry.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...but not on the API its backend uses.
    for _ in 0..10 {
        assert_eq!(app.get("/connection").await.status(), StatusCode::OK);
        assert_eq!(
            app.anon(Method::GET, "/health")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    for response in [
        app.anon(Method::GET, "/health").send().await.unwrap(),
        app.get("/config").await,
        app.get("/connection/nope?provider_config_key=fake-1").await,
        app.connect("fake-1", "").await,
        app.anon(Method::GET, "/no-such-route")
            .send()
            .await
            .unwrap(),
    ] {
        let headers = response.headers();
        assert_eq!(header(headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(headers, "x-frame-options"), "DENY");
        assert_eq!(header(headers, "referrer-policy"), "no-referrer");
        assert_eq!(header(headers, "cache-control"), "no-store");
    }
    // The SDK keeps its own caching: revalidated on every load, with its ETag.
    let sdk = app
        .anon(Method::GET, "/sdk/frontend.js")
        .send()
        .await
        .unwrap();
    assert_eq!(header(sdk.headers(), "cache-control"), "no-cache");
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_cut_but_its_refresh_still_lands() {
    let app = TestApp::spawn_with(|s| {
        s.request_timeout = Duration::from_millis(500);
        s.provider_timeout = Duration::from_secs(10);
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.rotate_refresh_tokens = true;
    });
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_millis(1500);
    });

    let started = Instant::now();
    let response = app.get_connection_response("fake-1", "c1").await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );

    // The provider rotated the refresh token while nobody waited: the new one was stored anyway.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.provider.refresh_count(), 1);
    app.provider.set(|b| b.token_delay = Duration::ZERO);
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(app.provider.refresh_count(), 1, "the stored token is fresh");
    let refreshed_with = app.provider.refresh_requests()[0]
        .param("refresh_token")
        .unwrap()
        .to_string();
    assert_ne!(connection["credentials"]["refresh_token"], refreshed_with);
    let forced = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(
        forced.status(),
        StatusCode::OK,
        "the rotated token was not lost"
    );
}
