//! The OAuth `state`: unknown, missing, reused and expired states are refused with `state_err`;
//! a state survives a server restart because it lives in the database.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{query_param, TestApp};

fn state_err(state: &str) -> String {
    format!("Invalid state parameter passed in the callback: {state}")
}

#[tokio::test]
async fn an_unknown_state_is_state_err() {
    let app = TestApp::spawn().await;
    // The client times out after 10 s: a hang fails the test.
    let page = app.callback("code=abc&state=no-such-state").await;
    page.assert_failure("state_err", &state_err("no-such-state"));
    assert!(app.provider.token_requests().is_empty());
}

#[tokio::test]
async fn a_missing_state_is_state_err() {
    let app = TestApp::spawn().await;
    for query in ["code=abc", "", "error=access_denied"] {
        let page = app.callback(query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "?{query}");
        assert_eq!(
            page.post_message()["data"]["error"]["type"],
            "state_err",
            "?{query}"
        );
    }
}

#[tokio::test]
async fn a_state_works_only_once() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.authorize_at_provider(&authorize).await;
    app.open(&callback).await.assert_success("fake-1", "c1");
    let first = app.get_connection("fake-1", "c1").await;

    let replay = app.open(&callback).await;
    replay.assert_failure("state_err", &state_err(&state));
    // The replay neither reached the provider nor changed the connection.
    assert_eq!(app.provider.token_requests().len(), 1);
    let after = app.get_connection("fake-1", "c1").await;
    assert_eq!(after["credentials"], first["credentials"]);
}

#[tokio::test]
async fn concurrent_callbacks_with_one_state_complete_once() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let (a, b) = tokio::join!(app.open(&callback), app.open(&callback));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{}\n{}", a.body, b.body);
    assert_eq!(app.provider.token_requests().len(), 1);
}

#[tokio::test]
async fn an_expired_state_is_state_err() {
    let app = TestApp::spawn_with(|s| s.oauth_state_ttl = Duration::from_secs(1)).await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.authorize_at_provider(&authorize).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.open(&callback)
        .await
        .assert_failure("state_err", &state_err(&state));
    assert!(app.provider.token_requests().is_empty());
    app.assert_no_connection("fake-1", "c1").await;

    // A flow finished within the TTL still works.
    app.authorize("fake-1", "c1").await;
}

#[tokio::test]
async fn a_state_survives_a_server_restart() {
    let mut app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let first_address = app.address.clone();

    app.restart().await;
    assert_ne!(app.address, first_address, "the new server has a new port");
    // The provider sent the browser to the first server's callback URL; the same query lands on
    // the new server (as it would behind a load balancer).
    let page = app.callback(callback.query().unwrap()).await;
    page.assert_success("fake-1", "c1");
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(connection["credentials"]["type"], "OAUTH2");
    // The verifier came back from the database: the fake provider checked it.
    let request = app.provider.last_token_request();
    assert!(request.param("code_verifier").is_some());
    assert_eq!(
        request.param("redirect_uri"),
        Some(format!("{first_address}/oauth/callback").as_str())
    );

    // The state was consumed on the new server.
    let page = app.callback(callback.query().unwrap()).await;
    let state = query_param(&authorize, "state").unwrap();
    page.assert_failure("state_err", &state_err(&state));
}
