//! Refresh failures are classified and never replace credentials: a refusal (`invalid_grant`)
//! marks the connection as needing re-authorization, an outage (5xx, timeout, garbage) backs off;
//! both are visible in `GET /connection` (list and error); a success or a new flow clears them.
//! And the proactive refresher: expiring and idle connections refreshed ahead of requests,
//! once even with two replicas, never the ones that cannot or should not be.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_json_error, TestApp};

/// `(fake-1, c1)` whose token came expired from the flow (due at once), with a refresh token.
async fn expiring(app: &TestApp) -> Value {
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = true;
    });
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| b.expires_in = Some(3600));
    stored(app).await
}

async fn stored(app: &TestApp) -> Value {
    let c = app
        .state
        .store
        .get_connection("fake-1", "c1")
        .await
        .unwrap()
        .unwrap();
    serde_json::to_value(&c.credentials).unwrap()
}

async fn listed(app: &TestApp) -> Value {
    let list: Value = app.get("/connection").await.json().await.unwrap();
    list["connections"][0].clone()
}

#[tokio::test]
async fn a_refusal_marks_the_connection_for_reauthorization_until_a_new_flow() {
    let app = TestApp::spawn().await;
    let old = expiring(&app).await;
    assert!(
        listed(&app).await.get("refresh").is_none(),
        "healthy: 0.9's shape"
    );
    app.provider.set(|b| {
        b.refresh_failure = Some((
            400,
            json!({"error": "invalid_grant", "error_description": "revoked"}),
        ))
    });
    let error = assert_json_error(
        app.get_connection_response("fake-1", "c1").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "refresh_rejected");
    assert_eq!(stored(&app).await, old, "credentials kept");

    let entry = listed(&app).await;
    assert_eq!(
        entry["refresh"]["status"], "needs_reauthorization",
        "{entry}"
    );
    assert!(entry["refresh"]["error"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    assert_eq!(entry["refresh"]["failures"], 1);

    // Reads do not ask the provider again while it has just refused.
    for _ in 0..3 {
        let response = app.get_connection_response("fake-1", "c1").await;
        let body = assert_json_error(response, StatusCode::BAD_REQUEST).await;
        assert!(
            body["error"].as_str().unwrap().contains("invalid_grant"),
            "{body}"
        );
    }
    assert_eq!(app.provider.refresh_count(), 1);

    // The user connects again: healthy.
    app.provider.set(|b| b.refresh_failure = None);
    app.authorize("fake-1", "c1").await;
    assert!(listed(&app).await.get("refresh").is_none());
    let connection = app.get_connection("fake-1", "c1").await;
    assert!(connection.get("refresh").is_none());
}

#[tokio::test]
async fn an_outage_backs_off_then_recovers_with_the_same_refresh_token() {
    let app = TestApp::spawn_with(|s| {
        s.refresh_retry_base = Duration::from_millis(300);
        // The test counts the provider's calls: a background pass (at a random moment of the
        // first minute) calling while a read waits for its lease would make the read answer the
        // pass's failure without a call of its own.
        s.proactive_refresh_interval = Duration::ZERO;
    })
    .await;
    let old = expiring(&app).await;
    for (status, body) in [
        (503, json!({"error": "temporarily_unavailable"})),
        (500, json!("<html>oops</html>")),
        // A 200 that is not a token response at all.
        (200, json!("<html>maintenance</html>")),
    ] {
        app.provider
            .set(|b| b.refresh_failure = Some((status, body.clone())));
        let before = app.provider.refresh_count();
        let response = app.get_connection_response("fake-1", "c1").await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(app.provider.refresh_count(), before + 1);
        // Inside the backoff: answered at once, without the provider.
        let response = app.get_connection_response("fake-1", "c1").await;
        let error = assert_json_error(response, StatusCode::BAD_GATEWAY).await;
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("not retried before"),
            "{error}"
        );
        assert_eq!(app.provider.refresh_count(), before + 1);
        assert_eq!(stored(&app).await, old);
        let entry = listed(&app).await;
        assert_eq!(entry["refresh"]["status"], "retrying", "{entry}");
        assert!(entry["refresh"]["retry_after"].is_string());
        // Wait out the backoff (300 ms, 600 ms, 1.2 s).
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    app.provider.set(|b| b.refresh_failure = None);
    let connection = app.get_connection("fake-1", "c1").await;
    assert_ne!(
        connection["credentials"]["access_token"],
        old["access_token"]
    );
    assert!(connection.get("refresh").is_none(), "{connection}");
    let last = app.provider.refresh_requests().pop().unwrap();
    assert_eq!(last.param("refresh_token"), old["refresh_token"].as_str());
    assert!(listed(&app).await.get("refresh").is_none());
}

#[tokio::test]
async fn the_proactive_refresher_refreshes_expiring_and_idle_connections_once_across_replicas() {
    use nango_server::credentials::proactive::refresh_due;
    let app = TestApp::spawn_with(|s| {
        // Passes are run by the test; "idle" means older than 6 s here (credentials a refresh
        // stored less than 5 s ago are never refreshed again).
        s.proactive_refresh_interval = Duration::from_secs(60);
        s.idle_refresh_age = Duration::from_secs(6);
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    // c1 lives 2 hours, so the 15-minute margin applies: store it as obtained 1 h 44 min ago,
    // expiring in 16 min (outside the margin, inside margin + lookahead of 2 min).
    let c1_refresh_token = app.provider.register_refresh_token();
    app.store_oauth2_connection(
        "fake-1",
        "c1",
        &c1_refresh_token,
        Duration::from_secs(2 * 3600),
        Duration::from_secs(104 * 60),
    )
    .await;
    // c2 lives for a day: not due until it is idle.
    app.provider.set(|b| b.expires_in = Some(86400));
    app.authorize("fake-1", "c2").await;
    // c3 has no refresh token: never refreshed.
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = false;
    });
    app.authorize("fake-1", "c3").await;
    app.provider.set(|b| {
        b.issue_refresh_token = true;
        b.expires_in = Some(86400);
        b.token_delay = Duration::from_millis(100);
    });

    // Two replicas run a pass at the same time: c1 is refreshed, once.
    let replica = app
        .try_start(|s| s.idle_refresh_age = Duration::from_secs(6))
        .await
        .unwrap();
    let (a, b) = tokio::join!(refresh_due(&app.state), refresh_due(&replica));
    a.unwrap();
    b.unwrap();
    let refreshed: Vec<String> = app
        .provider
        .refresh_requests()
        .iter()
        .map(|r| r.param("refresh_token").unwrap().to_string())
        .collect();
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    let c1 = app.get_connection("fake-1", "c1").await;
    assert_eq!(
        c1["credentials"]["expires_at"].as_str().map(|s| s > "2000"),
        Some(true)
    );

    // Once idle, c1 and c2 are refreshed again; c3 never.
    tokio::time::sleep(Duration::from_millis(6100)).await;
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), 3);
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), 3, "nothing due right after");
}

#[tokio::test]
async fn the_proactive_refresher_leaves_refused_connections_alone() {
    use nango_server::credentials::proactive::refresh_due;
    let app = TestApp::spawn_with(|s| s.refresh_retry_base = Duration::from_millis(1)).await;
    expiring(&app).await;
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    refresh_due(&app.state).await.unwrap();
    assert_eq!(app.provider.refresh_count(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    refresh_due(&app.state).await.unwrap();
    assert_eq!(
        app.provider.refresh_count(),
        1,
        "needs re-authorization: not retried"
    );
    assert_eq!(
        listed(&app).await["refresh"]["status"],
        "needs_reauthorization"
    );
}
