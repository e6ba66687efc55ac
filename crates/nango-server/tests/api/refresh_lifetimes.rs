//! Refresh that is right for every token lifetime (issue 17), against a fake provider that
//! rotates refresh tokens with reuse detection (a retired refresh token presented again revokes
//! the whole grant): a short-lived token is refreshed once however many requests ask, through one
//! server or three on one database; degenerate lifetimes cause no loop; and a failed refresh gets
//! the same answer whoever met it first, a request or the background pass.

use std::time::{Duration, Instant};

use chrono::Utc;
use nango_server::credentials::proactive::refresh_due;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_json_error, TestApp};

/// A provider that issues `lifetime`-second tokens and revokes a grant on refresh-token reuse,
/// and a connection `(fake-1, c1)` whose token of that lifetime is due: three quarters of it
/// have passed. Returns the stored credentials.
async fn due_connection(app: &TestApp, lifetime: u64) -> Value {
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| {
        b.expires_in = Some(lifetime as i64);
        b.revoke_grant_on_reuse = true;
    });
    let refresh_token = app.provider.register_refresh_token();
    app.store_oauth2_connection(
        "fake-1",
        "c1",
        &refresh_token,
        Duration::from_secs(lifetime),
        Duration::from_millis(lifetime * 750),
    )
    .await
}

/// `GET /connection/c1` on `base`: the status and the body.
async fn read(app: &TestApp, base: &str) -> (StatusCode, Value) {
    let response = app.get_connection_response_at(base, "fake-1", "c1").await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Asserts that the provider saw no reuse of a retired refresh token (nor revoked a grant).
fn assert_no_reuse(app: &TestApp) {
    assert_eq!(
        app.provider.refresh_token_reuses(),
        0,
        "a refresh token was reused"
    );
    assert_eq!(app.provider.revoked_grants(), 0, "the grant was revoked");
}

/// 20 concurrent requests, spread over `bases`, on a due connection: one refresh, one token.
async fn twenty_concurrent_reads_refresh_once(app: &TestApp, bases: &[String], lifetime: u64) {
    let old = due_connection(app, lifetime).await;
    app.provider
        .set(|b| b.token_delay = Duration::from_millis(100));
    let reads = (0..20).map(|i| read(app, &bases[i % bases.len()]));
    let answers = futures::future::join_all(reads).await;
    let tokens: Vec<Value> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["credentials"]["access_token"].clone()
        })
        .collect();
    assert_eq!(
        app.provider.refresh_count(),
        1,
        "{lifetime} s tokens: one refresh for 20 requests"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], old["access_token"]);
    assert_no_reuse(app);
    // And the next read (seconds later at most) uses it too.
    let (status, body) = read(app, &bases[0]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["credentials"]["access_token"], tokens[0]);
    // Nor does the background pass refresh what a request refreshed a moment ago.
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), 1);
}

#[tokio::test]
async fn sixty_second_tokens_are_refreshed_once_by_twenty_concurrent_requests() {
    let app = TestApp::spawn().await;
    twenty_concurrent_reads_refresh_once(&app, std::slice::from_ref(&app.address), 60).await;
}

#[tokio::test]
async fn ten_second_tokens_are_refreshed_once_by_twenty_concurrent_requests() {
    let app = TestApp::spawn().await;
    twenty_concurrent_reads_refresh_once(&app, std::slice::from_ref(&app.address), 10).await;
}

#[tokio::test]
async fn one_second_tokens_are_refreshed_once_by_twenty_concurrent_requests() {
    let app = TestApp::spawn().await;
    twenty_concurrent_reads_refresh_once(&app, std::slice::from_ref(&app.address), 1).await;
}

/// Three servers on one database (PostgreSQL in the PostgreSQL run), each with its own
/// single-flight table and cache: the database lease makes it one refresh.
#[tokio::test]
async fn short_lived_tokens_are_refreshed_once_through_three_replicas() {
    for lifetime in [60, 10, 1] {
        let app = TestApp::spawn().await;
        let (r2, r3) = (app.spawn_replica().await, app.spawn_replica().await);
        let bases = [app.address.clone(), r2.address.clone(), r3.address.clone()];
        twenty_concurrent_reads_refresh_once(&app, &bases, lifetime).await;
    }
}

/// 100 requests spread over 30 s on 60 s tokens: the token is refreshed when it is due (less
/// than 30 s left), not on every request; every answer is a token that has not expired.
#[tokio::test]
async fn sequential_requests_over_thirty_seconds_refresh_at_most_twice() {
    let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
    let replica = app.spawn_replica().await;
    due_connection(&app, 60).await;
    let start = Instant::now();
    for i in 0..100u32 {
        let base = if i % 2 == 0 {
            &app.address
        } else {
            &replica.address
        };
        let (status, body) = read(&app, base).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expires_at: chrono::DateTime<Utc> = body["credentials"]["expires_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(expires_at > Utc::now(), "an expired token was handed out");
        let next = start + Duration::from_millis(300) * (i + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    let refreshes = app.provider.refresh_count();
    assert!((1..=2).contains(&refreshes), "{refreshes} refreshes");
    assert_no_reuse(&app);
}

/// Providers that answer `expires_in` 0, negative, or an expiry already past: a request gets the
/// token after one refresh; the requests that follow within seconds are answered without one;
/// once those seconds have passed, a request refreshes once again, never more.
#[tokio::test]
async fn degenerate_lifetimes_never_loop() {
    let past = (Utc::now() - chrono::Duration::minutes(5)).timestamp();
    for (case, expires_in, extra) in [
        ("expires_in 0", Some(0), json!({})),
        ("negative expires_in", Some(-30), json!({})),
        (
            "an expires_at in the past",
            None,
            json!({ "expires_at": past }),
        ),
    ] {
        let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
        app.create_config("fake-1", "fake", "").await;
        app.provider.set(|b| {
            b.expires_in = expires_in;
            b.revoke_grant_on_reuse = true;
            b.extra_token_fields = extra.as_object().unwrap().clone();
        });
        app.authorize("fake-1", "c1").await;
        let first = app.get_connection("fake-1", "c1").await;
        assert_eq!(app.provider.refresh_count(), 1, "{case}");
        for _ in 0..10 {
            let again = app.get_connection("fake-1", "c1").await;
            assert_eq!(again["credentials"], first["credentials"], "{case}");
        }
        // A pass of the background refresher leaves it alone too.
        refresh_due(&app.state).await.unwrap();
        assert_eq!(app.provider.refresh_count(), 1, "{case}: no loop");
        // After the few seconds: one request, one refresh.
        tokio::time::sleep(Duration::from_millis(5100)).await;
        let later = app.get_connection("fake-1", "c1").await;
        assert_ne!(later["credentials"], first["credentials"], "{case}");
        assert_eq!(app.provider.refresh_count(), 2, "{case}");
        assert_no_reuse(&app);
    }
}

/// Concurrent forced refreshes stay one shared refresh, for short-lived tokens too.
#[tokio::test]
async fn concurrent_forced_refreshes_share_one_refresh() {
    let app = TestApp::spawn().await;
    due_connection(&app, 10).await;
    app.provider
        .set(|b| b.token_delay = Duration::from_millis(100));
    let forced =
        (0..10).map(|_| app.get("/connection/c1?provider_config_key=fake-1&force_refresh=true"));
    let responses = futures::future::join_all(forced).await;
    let mut tokens = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["credentials"]["access_token"].clone());
    }
    assert_eq!(app.provider.refresh_count(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    // A forced refresh right after a refresh still refreshes (it is asked for explicitly).
    let response = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.provider.refresh_count(), 2);
    assert_no_reuse(&app);
}

/// Who meets a failure first: the background pass, or a request.
#[derive(Debug, Clone, Copy)]
enum FirstToFail {
    Background,
    Request,
}

/// Two connections in the same state, c-bg whose failure the background pass meets and c-req
/// whose failure a request meets; `lifetime` and `age` say how much of its token is left.
async fn fail_both_ways(
    app: &TestApp,
    failure: (u16, Value),
    lifetime: Duration,
    age: Duration,
) -> Vec<(FirstToFail, &'static str)> {
    app.create_config("fake-1", "fake", "").await;
    let cases = [
        (FirstToFail::Background, "c-bg"),
        (FirstToFail::Request, "c-req"),
    ];
    for (_, id) in cases {
        let refresh_token = app.provider.register_refresh_token();
        app.store_oauth2_connection("fake-1", id, &refresh_token, lifetime, age)
            .await;
    }
    app.provider
        .set(|b| b.refresh_failure = Some(failure.clone()));
    // The background pass meets c-bg's failure (it tries both: c-req is due too, so c-req's
    // state is then reset by storing it again, and a request meets its failure instead).
    refresh_due(&app.state).await.unwrap();
    let refresh_token = app.provider.register_refresh_token();
    app.store_oauth2_connection("fake-1", "c-req", &refresh_token, lifetime, age)
        .await;
    let before = app.provider.refresh_count();
    let response = app.get_connection_response("fake-1", "c-req").await;
    assert_eq!(
        app.provider.refresh_count(),
        before + 1,
        "the request called"
    );
    drop(response);
    cases.to_vec()
}

/// What `GET /connection` answers for `id`: status, error type, and the refresh status.
async fn answer(app: &TestApp, id: &str) -> (StatusCode, Value) {
    let response = app.get_connection_response("fake-1", id).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_refusal_gets_the_same_answer_whoever_met_it_until_a_forced_refresh_succeeds() {
    let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
    let refusal = (
        400,
        json!({"error": "invalid_grant", "error_description": "revoked"}),
    );
    // The token still has 15 s: a refusal is an error anyway (the grant is gone).
    let cases = fail_both_ways(
        &app,
        refusal,
        Duration::from_secs(60),
        Duration::from_secs(45),
    )
    .await;
    let calls = app.provider.refresh_count();
    for round in 0..3 {
        for (first, id) in &cases {
            let (status, body) = answer(&app, id).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{first:?} round {round}: {body}"
            );
            assert_eq!(body["type"], "refresh_rejected", "{first:?}: {body}");
            assert!(body["error"].as_str().unwrap().contains("invalid_grant"));
        }
    }
    assert_eq!(app.provider.refresh_count(), calls, "never asked again");
    // The background pass leaves them alone as well.
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), calls);

    // The provider accepts again (the operator fixed what made it refuse): a forced refresh
    // clears the state, a refused forced refresh keeps it.
    let response = app
        .get("/connection/c-bg?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_json_error(response, StatusCode::BAD_REQUEST).await;
    app.provider.set(|b| b.refresh_failure = None);
    for (first, id) in &cases {
        // The refused refresh token is gone at the provider: a forced refresh with it is
        // refused too, so register what a new authorization would bring.
        let refresh_token = app.provider.register_refresh_token();
        app.store_oauth2_connection(
            "fake-1",
            id,
            &refresh_token,
            Duration::from_secs(60),
            Duration::from_secs(45),
        )
        .await;
        let (status, body) = answer(&app, id).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{first:?}: a new authorization: {body}"
        );
        assert!(body.get("refresh").is_none(), "{body}");
    }
}

#[tokio::test]
async fn a_successful_forced_refresh_clears_a_refusal() {
    let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
    let old = due_connection(&app, 60).await;
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    let (status, _) = answer(&app, "c1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.provider.set(|b| b.refresh_failure = None);
    let (status, _) = answer(&app, "c1").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "still refused until forced"
    );
    let response = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = answer(&app, "c1").await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(body["credentials"]["access_token"], old["access_token"]);
    assert!(body.get("refresh").is_none(), "{body}");
}

#[tokio::test]
async fn an_outage_gets_the_same_answer_whoever_met_it() {
    for failure in [
        (503, json!({"error": "temporarily_unavailable"})),
        (429, json!({"error": "rate_limited"})),
        (200, json!("<html>maintenance</html>")),
    ] {
        // The stored token has 15 s left: it is handed out, with the refresh status.
        let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
        let cases = fail_both_ways(
            &app,
            failure.clone(),
            Duration::from_secs(60),
            Duration::from_secs(45),
        )
        .await;
        let calls = app.provider.refresh_count();
        for (first, id) in &cases {
            let (status, body) = answer(&app, id).await;
            assert_eq!(status, StatusCode::OK, "{failure:?} {first:?}: {body}");
            assert_eq!(body["credentials"]["access_token"], format!("stored-{id}"));
            assert_eq!(body["refresh"]["status"], "retrying", "{body}");
            assert_eq!(body["refresh"]["failures"], 1, "{body}");
            assert!(body["refresh"]["retry_after"].is_string(), "{body}");
        }
        assert_eq!(app.provider.refresh_count(), calls, "inside the backoff");

        // The stored token has expired: refresh_unavailable, whoever met the failure.
        let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
        let cases = fail_both_ways(
            &app,
            failure.clone(),
            Duration::from_secs(60),
            Duration::from_secs(61),
        )
        .await;
        for (first, id) in &cases {
            let response = app.get_connection_response("fake-1", id).await;
            let body = assert_json_error(response, StatusCode::BAD_GATEWAY).await;
            assert_eq!(body["type"], "refresh_unavailable", "{first:?}: {body}");
        }
    }
}

/// The state a long outage leaves: many failures, the background pass backing off for an hour,
/// the last attempt a moment ago. Once the provider is back, requests try again at most 30 s
/// after the last attempt and serve again.
#[tokio::test]
async fn after_a_long_outage_requests_serve_again_within_thirty_seconds() {
    let app = TestApp::spawn_with(|s| s.proactive_refresh_interval = Duration::ZERO).await;
    let old = due_connection(&app, 60).await;
    // Ten minutes of failed attempts, the last one 27 s ago, as a steady outage leaves it: the
    // background pass would wait an hour.
    let store = &app.state.store;
    let read = store.get_connection("fake-1", "c1").await.unwrap().unwrap();
    let now = Utc::now();
    for minutes_ago in (1..=10).rev() {
        let at = if minutes_ago == 1 {
            now - chrono::Duration::seconds(27)
        } else {
            now - chrono::Duration::minutes(minutes_ago)
        };
        let failure = nango_server::store::RefreshFailure {
            error: "HTTP 503".into(),
            permanent: false,
            retry_after: Some(now + chrono::Duration::hours(1)),
            at,
        };
        assert!(store
            .record_refresh_failure("fake-1", "c1", &failure, read.health.refreshed_at)
            .await
            .unwrap());
    }
    // The provider is back. Within the 30 s after the last attempt a request answers the stored
    // token (it has not expired) without calling.
    let (status, body) = answer(&app, "c1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credentials"]["access_token"], old["access_token"]);
    assert_eq!(body["refresh"]["failures"], 10, "{body}");
    assert_eq!(app.provider.refresh_count(), 0);
    // The background pass backs off longer.
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), 0);
    // 30 s after the last attempt, a request refreshes: the connection serves a fresh token.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, body) = answer(&app, "c1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["credentials"]["access_token"], old["access_token"]);
    assert!(body.get("refresh").is_none(), "{body}");
    assert_eq!(app.provider.refresh_count(), 1);
}

/// A template's `refresh_margin` replaces the server's for its tokens (Exact Online's tokens
/// live 10 minutes and may only be refreshed in the last 30 s or so).
#[tokio::test]
async fn a_template_refresh_margin_applies_to_its_tokens() {
    let app = TestApp::spawn_with_templates(
        |s| s.proactive_refresh_interval = Duration::ZERO,
        |p| {
            format!(
                "fake-margin:\n  auth_mode: OAUTH2\n  authorization_url: \"{base}/authorize\"\n  \
                 token_url: \"{base}/token\"\n  refresh_margin: 30\n",
                base = p.base_url
            )
        },
    )
    .await;
    app.create_config("fake-m", "fake-margin", "").await;
    app.create_config("fake-1", "fake", "").await;
    // Ten-minute tokens, 40 s left: inside half the lifetime (the server's rule: refreshed),
    // outside the template's 30 s margin (not refreshed).
    for key in ["fake-m", "fake-1"] {
        let refresh_token = app.provider.register_refresh_token();
        app.store_oauth2_connection(
            key,
            "c1",
            &refresh_token,
            Duration::from_secs(600),
            Duration::from_secs(560),
        )
        .await;
        app.get_connection(key, "c1").await;
    }
    assert_eq!(app.provider.refresh_count(), 1, "only fake-1's");
    // With 25 s left it is due for the template too.
    let refresh_token = app.provider.register_refresh_token();
    app.store_oauth2_connection(
        "fake-m",
        "c1",
        &refresh_token,
        Duration::from_secs(600),
        Duration::from_secs(575),
    )
    .await;
    app.get_connection("fake-m", "c1").await;
    assert_eq!(app.provider.refresh_count(), 2);
}
