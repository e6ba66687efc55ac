//! Connect sessions: `POST /connect/sessions` (secret key) mints a short-lived, single-use token
//! bound to a config key and connection id; with `require_connect_session` the OAuth flow and the
//! credential-entry routes refuse to run without one.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_json_error, query_value, Page, TestApp};

async fn mint(app: &TestApp, key: &str, connection_id: &str) -> String {
    let response = app
        .post_json(
            "/connect/sessions",
            &json!({"provider_config_key": key, "connection_id": connection_id}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider_config_key"], key);
    assert_eq!(body["connection_id"], connection_id);
    assert!(body["expires_at"].is_string());
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ncs_") && token.len() > 40, "{token}");
    token
}

fn flow_error(page: &Page) -> Value {
    assert!(
        page.headers.get("location").is_none(),
        "redirected: {:?}",
        page.headers.get("location")
    );
    page.post_message()["data"]["error"].clone()
}

async fn enter_key(
    app: &TestApp,
    connection_id: &str,
    token: Option<&str>,
    key: &str,
) -> reqwest::Response {
    let mut path = format!("/api-auth/api-key/openai?connection_id={connection_id}");
    if let Some(token) = token {
        path.push_str(&format!("&connect_session_token={}", query_value(token)));
    }
    app.anon(Method::POST, &path)
        .header("content-type", "application/json")
        .body(json!({"apiKey": key}).to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn minting_needs_the_secret_key_and_a_known_config() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    let response = app
        .anon(Method::POST, "/connect/sessions")
        .header("content-type", "application/json")
        .body(json!({"provider_config_key": "fake-1", "connection_id": "u1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error = assert_json_error(
        app.post_json(
            "/connect/sessions",
            &json!({"provider_config_key": "nope", "connection_id": "u1"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "unknown_provider_config");
    let error = assert_json_error(
        app.post_json(
            "/connect/sessions",
            &json!({"provider_config_key": "fake-1"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "missing_connection");
    assert_ne!(
        mint(&app, "fake-1", "u1").await,
        mint(&app, "fake-1", "u1").await
    );
}

#[tokio::test]
async fn when_required_a_flow_needs_its_own_token_and_the_token_works_once() {
    let app = TestApp::spawn_with(|s| s.require_connect_session = true).await;
    app.create_config("fake-1", "fake", "").await;

    let page = Page::read(app.connect("fake-1", "connection_id=u1").await).await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");

    // A token for another user's connection id does not open this one.
    let other = mint(&app, "fake-1", "u2").await;
    let page = Page::read(
        app.connect(
            "fake-1",
            &format!("connection_id=u1&connect_session_token={other}"),
        )
        .await,
    )
    .await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");
    assert!(app.provider.authorize_requests().is_empty());

    let token = mint(&app, "fake-1", "u1").await;
    let query = format!("connection_id=u1&connect_session_token={token}");
    let page = app.run_flow("fake-1", &query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    app.get_connection("fake-1", "u1").await;
    // Used up.
    let page = Page::read(app.connect("fake-1", &query).await).await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");
}

#[tokio::test]
async fn when_required_entered_credentials_need_a_token_that_a_typo_does_not_use_up() {
    let app = TestApp::spawn_with(|s| s.require_connect_session = true).await;
    app.create_config("openai", "fake-apikey", "").await;
    let error = assert_json_error(
        enter_key(&app, "u1", None, "sk-12345678").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(error["type"], "invalid_connect_session");

    let token = mint(&app, "openai", "u1").await;
    let error = assert_json_error(
        enter_key(&app, "u1", Some(&token), "typo").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "invalid_credentials");
    let response = enter_key(&app, "u1", Some(&token), "sk-12345678").await;
    assert_eq!(response.status(), StatusCode::OK);
    let error = assert_json_error(
        enter_key(&app, "u1", Some(&token), "sk-12345678").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(error["type"], "invalid_connect_session");
}

#[tokio::test]
async fn tokens_expire_and_a_bad_token_is_refused_even_when_not_required() {
    let app = TestApp::spawn_with(|s| s.connect_session_ttl = Duration::from_millis(300)).await;
    app.create_config("fake-1", "fake", "").await;
    // Not required: flows run without a token...
    app.run_flow("fake-1", "connection_id=u0").await;
    // ...but a token that is given must be good.
    let page = Page::read(
        app.connect(
            "fake-1",
            "connection_id=u1&connect_session_token=ncs_forged",
        )
        .await,
    )
    .await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");
    let token = mint(&app, "fake-1", "u1").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let page = Page::read(
        app.connect(
            "fake-1",
            &format!("connection_id=u1&connect_session_token={token}"),
        )
        .await,
    )
    .await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");
}

#[tokio::test]
async fn a_flow_with_a_bad_param_does_not_use_up_its_token() {
    let app = TestApp::spawn_with(|s| s.require_connect_session = true).await;
    app.create_config("sub", "fake-sub-pattern", "").await;
    let token = mint(&app, "sub", "u1").await;
    // A subdomain the template's pattern refuses, then none at all: the user's mistakes.
    for params in ["&params[subdomain]=Not_Valid!", ""] {
        let page = Page::read(
            app.connect(
                "sub",
                &format!("connection_id=u1&connect_session_token={token}{params}"),
            )
            .await,
        )
        .await;
        assert_eq!(flow_error(&page)["type"], "url_param_err", "{params}");
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
    }
    assert!(app.provider.authorize_requests().is_empty());

    // The same token still opens the corrected flow, once.
    let query = format!("connection_id=u1&connect_session_token={token}&params[subdomain]=acme");
    let page = app.run_flow("sub", &query).await;
    page.assert_success("sub", "u1");
    let page = Page::read(app.connect("sub", &query).await).await;
    assert_eq!(flow_error(&page)["type"], "connect_session_err");
}
