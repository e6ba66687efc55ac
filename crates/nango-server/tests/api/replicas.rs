//! Several servers on one database (the scale-out of DESIGN.md): a flow may finish on another
//! replica, a token is refreshed once across replicas, and a WebSocket learns a result that
//! another replica produced. The last needs PostgreSQL (SQLite is single-process by design).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Page, TestApp};

#[tokio::test]
async fn a_flow_started_on_one_replica_finishes_on_another() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let page = Page::read(
        app.client
            .get(format!(
                "{}/oauth/callback?{}",
                replica.address,
                callback.query().unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_success("fake-1", "c1");
    // Both replicas see the connection.
    let response = app
        .get_connection_response_at(&replica.address, "fake-1", "c1")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.get_connection("fake-1", "c1").await;
}

/// Two servers on one database file or PostgreSQL database: the refresh lease lives in the
/// database, so it holds on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refresh_a_connection_exactly_once() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(60));
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_millis(300);
    });

    let app = &app;
    let requests = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.address.clone()
        };
        async move { app.get_connection_response_at(&base, "fake-1", "c1").await }
    });
    let responses = futures::future::join_all(requests).await;
    let mut tokens = Vec::new();
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["credentials"]["access_token"].clone());
    }
    assert_eq!(
        app.provider.refresh_count(),
        1,
        "two replicas refreshed the same token (a provider that rotates refresh tokens would revoke one of them)"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

/// Results cross replicas through PostgreSQL LISTEN/NOTIFY; a SQLite server is one process.
/// scripts/test runs this with `--include-ignored` in its PostgreSQL stage.
#[tokio::test]
#[ignore = "needs PostgreSQL (NANGO_TEST_DATABASE_URL); run with --include-ignored"]
async fn a_websocket_learns_the_result_of_a_callback_served_by_another_replica() {
    let app = TestApp::spawn().await;
    assert!(
        app.on_postgres(),
        "replicas share WebSocket results only on PostgreSQL: set NANGO_TEST_DATABASE_URL"
    );
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    let mut ws = app.ws_connect().await;
    let authorize = app
        .start_flow(
            "fake-1",
            &format!("connection_id=c1&ws_client_id={}", ws.id),
        )
        .await;
    let callback = app.authorize_at_provider(&authorize).await;
    let page = Page::read(
        app.client
            .get(format!(
                "{}/oauth/callback?{}",
                replica.address,
                callback.query().unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // The 0.9 SDK opened the popup with noopener: the socket is its only way to learn the result.
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({"message_type": "success", "provider_config_key": "fake-1", "connection_id": "c1"})
    );
}
