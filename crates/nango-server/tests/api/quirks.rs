//! Provider quirks as template data, one test per quirk class, each against the fake provider
//! behaving that way: form-encoded token responses, Basic-only and "both" client auth, JSON
//! bodies, nested tokens, missing or millisecond lifetimes, a separate refresh URL with its own
//! parameters, rotating refresh tokens, default and comma scopes, token request headers, and
//! connection config values checked against the template's pattern.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{query_param, Page, TestApp, CLIENT_SECRET};

/// Seconds from now until the connection's `expires_at` (None when it has none).
fn expires_in_secs(connection: &Value) -> Option<i64> {
    let at: DateTime<Utc> = connection["credentials"]["expires_at"]
        .as_str()?
        .parse()
        .ok()?;
    Some((at - Utc::now()).num_seconds())
}

async fn force_refresh(app: &TestApp, key: &str) -> Value {
    let response = app
        .get(&format!(
            "/connection/c1?provider_config_key={key}&force_refresh=true"
        ))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_form_encoded_token_response_is_read() {
    let app = TestApp::spawn().await;
    app.create_config("gh", "fake", "repo").await;
    app.provider.set(|b| b.form_encoded_response = true);
    app.authorize("gh", "c1").await;
    let connection = app.get_connection("gh", "c1").await;
    let token = connection["credentials"]["access_token"].as_str().unwrap();
    assert!(token.starts_with("access-"), "{token}");
    let refresh = connection["credentials"]["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("refresh-"), "{refresh}");
    // `expires_in=3600` arrived as text and still sets the expiry.
    let secs = expires_in_secs(&connection).unwrap();
    assert!((3500..=3600).contains(&secs), "{secs}");
    assert_eq!(connection["credentials"]["raw"]["token_type"], "bearer");
}

#[tokio::test]
async fn a_basic_only_token_endpoint_gets_basic_and_no_secret_in_the_body() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| b.require_basic = true);
    app.create_config("basic", "fake-basic", "").await;
    app.authorize("basic", "c1").await;
    let request = app.provider.last_token_request();
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert!(
        request.param("client_secret").is_none(),
        "{}",
        request.raw_body
    );

    // The same endpoint refuses a template that sends the secret in the body.
    app.create_config("body", "fake", "").await;
    let page = app.run_flow("body", "connection_id=c2").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    app.assert_no_connection("body", "c2").await;
}

#[tokio::test]
async fn client_auth_both_sends_basic_and_the_body_parameters() {
    let app = TestApp::spawn().await;
    app.create_config("both", "fake-both", "").await;
    app.authorize("both", "c1").await;
    let request = app.provider.last_token_request();
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(request.param("client_secret"), Some(CLIENT_SECRET));
    assert!(request.param("client_id").is_some());
}

#[tokio::test]
async fn a_json_token_endpoint_gets_a_json_body() {
    let app = TestApp::spawn().await;
    app.create_config("json", "fake-json", "").await;
    app.authorize("json", "c1").await;
    let request = app.provider.last_token_request();
    assert!(request.content_type.starts_with("application/json"));
    let body: Value = serde_json::from_str(&request.raw_body).unwrap();
    assert_eq!(body["grant_type"], "authorization_code");
    assert!(body["code"].is_string());
}

#[tokio::test]
async fn a_nested_token_is_read_at_its_path_and_refreshed_with_its_nested_refresh_token() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| {
        b.nest_tokens_under = Some("authed_user".into());
        b.expires_in = Some(0);
    });
    app.create_config("slack", "fake-slack", "").await;
    app.authorize("slack", "c1").await;
    let stored = app
        .state
        .store
        .get_connection("slack", "c1")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_value(&stored.credentials).unwrap();
    let user_token = stored["access_token"].as_str().unwrap().to_string();
    assert!(
        user_token.starts_with("access-"),
        "not the top-level bot token: {user_token}"
    );
    let n = user_token.trim_start_matches("access-");
    assert_eq!(stored["refresh_token"], format!("refresh-{n}"));
    assert_eq!(
        stored["raw"]["access_token"],
        format!("bot-{n}"),
        "raw is the whole response"
    );

    // Expired on arrival (expires_in 0): the nested refresh token is used.
    let connection = app.get_connection("slack", "c1").await;
    assert_eq!(app.provider.refresh_count(), 1);
    assert_eq!(
        app.provider.refresh_requests()[0].param("refresh_token"),
        Some(format!("refresh-{n}").as_str())
    );
    let refreshed = connection["credentials"]["access_token"].as_str().unwrap();
    assert!(
        refreshed.starts_with("access-") && refreshed != user_token,
        "{refreshed}"
    );
}

#[tokio::test]
async fn no_expires_in_means_no_expiry_unless_the_template_documents_a_lifetime() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| b.expires_in = None);
    app.create_config("plain", "fake", "").await;
    app.authorize("plain", "c1").await;
    let connection = app.get_connection("plain", "c1").await;
    assert_eq!(expires_in_secs(&connection), None);
    assert_eq!(app.provider.refresh_count(), 0);

    // fake-fixed documents 600 s: the token expires in 10 minutes, and is refreshed once less
    // than half of that remains (its lifetime is shorter than twice the 15-minute margin).
    app.create_config("fixed", "fake-fixed", "").await;
    app.authorize("fixed", "c1").await;
    let stored = app
        .state
        .store
        .get_connection("fixed", "c1")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_value(&stored.credentials).unwrap();
    let at: DateTime<Utc> = stored["expires_at"].as_str().unwrap().parse().unwrap();
    let secs = (at - Utc::now()).num_seconds();
    assert!((500..=600).contains(&secs), "{secs}");
    app.get_connection("fixed", "c1").await;
    assert_eq!(
        app.provider.refresh_count(),
        0,
        "5 minutes before it is due"
    );
}

#[tokio::test]
async fn a_lifetime_in_milliseconds_is_converted() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| b.expires_in = Some(3_600_000));
    app.create_config("ms", "fake-millis", "").await;
    app.authorize("ms", "c1").await;
    let connection = app.get_connection("ms", "c1").await;
    let secs = expires_in_secs(&connection).unwrap();
    assert!(
        (3500..=3600).contains(&secs),
        "an hour, not 41 days: {secs}"
    );

    // Read as seconds, the same number is 41 days.
    app.create_config("s", "fake", "").await;
    app.authorize("s", "c1").await;
    let connection = app.get_connection("s", "c1").await;
    assert!(expires_in_secs(&connection).unwrap() > 40 * 86400);
}

#[tokio::test]
async fn refreshes_go_to_the_refresh_url_with_the_refresh_params() {
    let app = TestApp::spawn().await;
    app.create_config("r", "fake-refresh-url", "").await;
    app.authorize("r", "c1").await;
    let exchange = app.provider.last_token_request();
    assert_eq!(exchange.path, "/token");
    assert_eq!(exchange.param("audience"), Some("code-only"));

    force_refresh(&app, "r").await;
    let refresh = app.provider.last_token_request();
    assert_eq!(refresh.path, "/refresh");
    assert_eq!(refresh.grant_type(), "refresh_token");
    assert_eq!(refresh.param("scope"), Some("offline"));
    assert_eq!(refresh.param("audience"), None, "{}", refresh.raw_body);
}

#[tokio::test]
async fn a_rotating_refresh_token_is_replaced_each_time_and_never_reused() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| b.rotate_refresh_tokens = true);
    app.create_config("rot", "fake", "").await;
    app.authorize("rot", "c1").await;
    let mut expected_sent = Vec::new();
    let mut current = app.get_connection("rot", "c1").await;
    for _ in 0..3 {
        expected_sent.push(
            current["credentials"]["refresh_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let next = force_refresh(&app, "rot").await;
        assert_ne!(
            next["credentials"]["refresh_token"],
            current["credentials"]["refresh_token"]
        );
        current = next;
    }
    // Each refresh used the token the previous one issued; a reused one would be invalid_grant.
    let sent: Vec<String> = app
        .provider
        .refresh_requests()
        .iter()
        .map(|r| r.param("refresh_token").unwrap().to_string())
        .collect();
    assert_eq!(sent, expected_sent);
    let stored = app
        .state
        .store
        .get_connection("rot", "c1")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_value(&stored.credentials).unwrap();
    assert_eq!(
        stored["refresh_token"],
        current["credentials"]["refresh_token"]
    );
}

#[tokio::test]
async fn default_scopes_fill_an_empty_config_joined_by_the_separator() {
    let app = TestApp::spawn().await;
    app.create_config("defaults", "fake-defaults", "").await;
    let defaults = app.start_flow("defaults", "connection_id=c1").await;
    app.create_config("own", "fake-defaults", "admin,profile")
        .await;
    let own = app.start_flow("own", "connection_id=c1").await;
    assert_eq!(
        query_param(&defaults, "scope").as_deref(),
        Some("read,write")
    );
    assert_eq!(query_param(&own, "scope").as_deref(), Some("admin,profile"));
}

#[tokio::test]
async fn token_request_headers_are_sent() {
    let app = TestApp::spawn().await;
    app.create_config("h", "fake-headers", "").await;
    app.authorize("h", "c1").await;
    force_refresh(&app, "h").await;
    for request in app.provider.token_requests() {
        assert_eq!(request.header("x-api-version"), Some("2024-01-01"));
    }
}

#[tokio::test]
async fn a_connection_config_value_outside_the_pattern_is_refused_before_any_redirect() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub-pattern", "").await;
    // `evil.com` passes the generic host-label check but not this template's pattern.
    for value in ["evil.com", "evil.com/x", "Acme", "-acme", "a_b"] {
        let page = Page::read(
            app.connect(
                "sub",
                &format!("connection_id=c1&params[subdomain]={value}"),
            )
            .await,
        )
        .await;
        assert!(page.headers.get("location").is_none(), "{value}");
        let message = page.post_message();
        assert_eq!(message["data"]["error"]["type"], "url_param_err", "{value}");
        let text = message["data"]["error"]["message"].as_str().unwrap();
        assert!(text.contains("Your workspace subdomain"), "{text}");
    }
    assert!(app.provider.authorize_requests().is_empty());

    app.run_flow("sub", "connection_id=c1&params[subdomain]=acme-2")
        .await;
    let authorize = app.provider.authorize_requests();
    assert_eq!(authorize[0].subdomain.as_deref(), Some("acme-2"));
    app.get_connection("sub", "c1").await;
}
