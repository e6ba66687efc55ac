//! The WebSocket protocol of `@nangohq/frontend` 0.9 (§2.3).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Page, TestApp};

#[tokio::test]
async fn websocket_acknowledges_with_a_fresh_client_id() {
    let app = TestApp::spawn().await;
    let a = app.ws_connect().await;
    let b = app.ws_connect().await;
    assert!(
        uuid::Uuid::parse_str(&a.id).is_ok(),
        "{:?} is not a UUID",
        a.id
    );
    assert_ne!(a.id, b.id);
    // Upgrades are accepted only on the SDKs' path, the host root (edge.rs has more).
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/some/path", app.addr))
            .await
            .is_err(),
        "WebSocket upgrade on another path"
    );
}

#[tokio::test]
async fn websocket_receives_success_when_the_flow_completes() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let mut ws = app.ws_connect().await;
    let page = app
        .run_flow(
            "fake-1",
            &format!("connection_id=c1&ws_client_id={}", ws.id),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.header("content-type").starts_with("text/html"));
    // The popup page only closes itself; the result went over the socket.
    assert!(
        !page.body.contains("AUTHORIZATION_SUCEEDED"),
        "{}",
        page.body
    );
    assert!(page.body.contains("window.close"), "{}", page.body);

    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({"message_type": "success", "provider_config_key": "fake-1", "connection_id": "c1"})
    );
    ws.assert_closed().await;
    // The connection was stored before success was announced.
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(connection["credentials"]["type"], "OAUTH2");
}

#[tokio::test]
async fn websocket_receives_an_error_for_an_unknown_config_key() {
    let app = TestApp::spawn().await;
    let mut ws = app.ws_connect().await;
    let response = app
        .connect("nope", &format!("connection_id=c1&ws_client_id={}", ws.id))
        .await;
    let page = Page::read(response).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.headers.get("location").is_none());

    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({
            "message_type": "error",
            "provider_config_key": "nope",
            "connection_id": "c1",
            "error_type": "provider_config_err",
            "error_desc": "Could not find a Provider Config matching the \"nope\" key.",
        })
    );
    ws.assert_closed().await;
}

#[tokio::test]
async fn websocket_error_frame_omits_an_unknown_connection_id() {
    let app = TestApp::spawn().await;
    let mut ws = app.ws_connect().await;
    let response = app
        .connect("fake-1", &format!("ws_client_id={}", ws.id))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({
            "message_type": "error",
            "provider_config_key": "fake-1",
            "error_type": "missing_connection_id",
            "error_desc": "Missing Connection ID.",
        })
    );
}

#[tokio::test]
async fn websocket_receives_an_error_when_the_user_denies_access() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.deny = true);
    let mut ws = app.ws_connect().await;
    let page = app
        .run_flow(
            "fake-1",
            &format!("connection_id=c1&ws_client_id={}", ws.id),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({
            "message_type": "error",
            "provider_config_key": "fake-1",
            "connection_id": "c1",
            "error_type": "callback_err",
            "error_desc": "Did not get oauth_token and/or oauth_verifier in the callback. The provider returned: access_denied (The user denied access).",
        })
    );
    app.assert_no_connection("fake-1", "c1").await;
}

#[tokio::test]
async fn a_flow_whose_websocket_is_gone_still_succeeds() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let ws = app.ws_connect().await;
    let id = ws.id.clone();
    drop(ws);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let page = app
        .run_flow("fake-1", &format!("connection_id=c1&ws_client_id={id}"))
        .await;
    // Nobody is listening on the socket any more; the flow still completes.
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    app.get_connection("fake-1", "c1").await;
}
