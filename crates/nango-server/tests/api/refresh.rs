//! Fresh credentials on `GET /connection/:id` (§7): refresh inside the margin, exactly once under
//! concurrency, and failures that keep the stored credentials.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_json_error, TestApp, TokenRequest, CLIENT_ID, CLIENT_SECRET};

/// A connection whose token came expired from the flow (`expires_in: 0`: due at once) with a
/// refresh token.
async fn expiring_connection(app: &TestApp, key: &str, provider: &str) -> Value {
    app.create_config(key, provider, "read").await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = true;
    });
    app.authorize(key, "c1").await;
    // From now on the provider hands out long-lived tokens.
    app.provider.set(|b| b.expires_in = Some(3600));
    stored_credentials(app, key, "c1").await
}

/// The credentials in the database, read without going through the refresh path.
async fn stored_credentials(app: &TestApp, key: &str, connection_id: &str) -> Value {
    let connection = app
        .state
        .store
        .get_connection(key, connection_id)
        .await
        .unwrap()
        .expect("stored connection");
    serde_json::to_value(&connection.credentials).unwrap()
}

fn expires_in_secs(credentials: &Value) -> i64 {
    let at: DateTime<Utc> = credentials["expires_at"].as_str().unwrap().parse().unwrap();
    (at - Utc::now()).num_seconds()
}

fn assert_refresh_body(request: &TokenRequest, refresh_token: &str) {
    assert_eq!(
        request.param("grant_type"),
        Some("refresh_token"),
        "{}",
        request.raw_body
    );
    assert_eq!(request.param("refresh_token"), Some(refresh_token));
    // No code-exchange parameters in a refresh.
    for absent in ["code", "redirect_uri", "code_verifier", "scope"] {
        assert!(
            request.param(absent).is_none(),
            "{absent} in {}",
            request.raw_body
        );
    }
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_stored_and_keeps_its_refresh_token() {
    let app = TestApp::spawn().await;
    let old = expiring_connection(&app, "gt", "fake-granttype").await;
    let old_refresh = old["refresh_token"].as_str().unwrap().to_string();
    assert!(expires_in_secs(&old) <= 60);
    app.provider.set(|b| b.issue_refresh_token = false);

    let connection = app.get_connection("gt", "c1").await;
    let fresh = &connection["credentials"];
    assert_eq!(app.provider.refresh_count(), 1);
    let request = app.provider.refresh_requests().pop().unwrap();
    assert_refresh_body(&request, &old_refresh);
    // The template's token params, minus its grant_type, go along; the grant type is refresh.
    assert_eq!(request.param("audience"), Some("fake-api"));
    let grant_types = request
        .form_names
        .iter()
        .filter(|n| *n == "grant_type")
        .count();
    assert_eq!(grant_types, 1, "{}", request.raw_body);
    assert_eq!(request.param("client_id"), Some(CLIENT_ID));
    assert_eq!(request.param("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        request.form_names,
        [
            "grant_type",
            "audience",
            "refresh_token",
            "client_id",
            "client_secret"
        ]
    );

    assert_eq!(fresh["type"], "OAUTH2");
    assert_ne!(fresh["access_token"], old["access_token"]);
    assert_eq!(fresh["raw"]["access_token"], fresh["access_token"]);
    // The response had no refresh token: the old one is kept.
    assert_eq!(fresh["refresh_token"], old_refresh.as_str());
    assert!(expires_in_secs(fresh) > 3000, "{fresh}");
    assert_eq!(fresh["raw"]["expires_at"], fresh["expires_at"]);

    // Stored, not just returned.
    let stored = stored_credentials(&app, "gt", "c1").await;
    assert_eq!(stored["access_token"], fresh["access_token"]);
    assert_eq!(stored["refresh_token"], old_refresh.as_str());

    // The new token is good for an hour: no second refresh.
    let again = app.get_connection("gt", "c1").await;
    assert_eq!(again["credentials"], *fresh);
    assert_eq!(app.provider.refresh_count(), 1);
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let old = expiring_connection(&app, "fake-1", "fake").await;
    app.provider.set(|b| b.rotate_refresh_tokens = true);
    let first = app.get_connection("fake-1", "c1").await["credentials"].clone();
    assert_ne!(first["refresh_token"], old["refresh_token"]);
    // The next refresh (forced: the new token is good for an hour) presents the rotated token.
    let response = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let requests = app.provider.refresh_requests();
    assert_eq!(requests.len(), 2);
    assert_refresh_body(&requests[1], first["refresh_token"].as_str().unwrap());
}

#[tokio::test]
async fn a_token_outside_the_margin_is_not_refreshed() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(3600));
    app.authorize("fake-1", "c1").await;
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    for _ in 0..3 {
        let connection = app.get_connection("fake-1", "c1").await;
        assert_eq!(connection["credentials"], stored);
    }
    assert_eq!(app.provider.refresh_count(), 0);
}

#[tokio::test]
async fn an_expiring_token_without_refresh_token_is_returned_as_is() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = false;
    });
    app.authorize("fake-1", "c1").await;
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(connection["credentials"], stored);
    assert_eq!(app.provider.refresh_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_requests_refresh_exactly_once() {
    let app = TestApp::spawn().await;
    let old = expiring_connection(&app, "fake-1", "fake").await;
    app.provider
        .set(|b| b.token_delay = Duration::from_millis(200));

    let requests = (0..20).map(|_| app.get_connection_response("fake-1", "c1"));
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
        "one refresh for 20 requests"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], old["access_token"]);
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    assert_eq!(stored["access_token"], tokens[0]);
}

#[tokio::test]
async fn a_rejected_refresh_answers_a_4xx_and_keeps_the_credentials() {
    let app = TestApp::spawn().await;
    let old = expiring_connection(&app, "fake-1", "fake").await;
    app.provider.set(|b| {
        b.refresh_failure = Some((
            400,
            json!({"error": "invalid_grant", "error_description": "Token has been revoked"}),
        ))
    });

    let response = app.get_connection_response("fake-1", "c1").await;
    let status = response.status();
    assert!(status.is_client_error(), "status {status}");
    let body = assert_json_error(response, status).await;
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("invalid_grant"), "{message}");
    // Never the tokens themselves.
    assert!(!body
        .to_string()
        .contains(old["refresh_token"].as_str().unwrap()));
    assert_eq!(stored_credentials(&app, "fake-1", "c1").await, old);

    // Automatic reads back off instead of asking the provider again right away...
    let response = app.get_connection_response("fake-1", "c1").await;
    assert!(response.status().is_client_error());
    assert_eq!(app.provider.refresh_requests().len(), 1);
    // ...but the failure is not final: once the provider works again, a forced refresh (or an
    // automatic one after the backoff) succeeds with the same refresh token as before.
    app.provider.set(|b| b.refresh_failure = None);
    let connection: Value = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        connection["credentials"]["access_token"],
        old["access_token"]
    );
    let requests = app.provider.refresh_requests();
    assert_eq!(requests.len(), 2);
    assert_refresh_body(&requests[1], old["refresh_token"].as_str().unwrap());
}

#[tokio::test]
async fn a_provider_error_during_refresh_answers_a_5xx_and_keeps_the_credentials() {
    let app = TestApp::spawn().await;
    let old = expiring_connection(&app, "fake-1", "fake").await;
    app.provider
        .set(|b| b.refresh_failure = Some((500, json!({"error": "server_error"}))));

    let response = app.get_connection_response("fake-1", "c1").await;
    let status = response.status();
    assert!(status.is_server_error(), "status {status}");
    assert_json_error(response, status).await;
    assert_eq!(stored_credentials(&app, "fake-1", "c1").await, old);
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_hanging_provider_during_refresh_answers_a_5xx_in_time() {
    let app = TestApp::spawn_with(|s| s.provider_timeout = Duration::from_secs(1)).await;
    let old = expiring_connection(&app, "fake-1", "fake").await;
    app.provider.set(|b| b.token_delay = Duration::from_secs(5));

    let started = Instant::now();
    let response = app.get_connection_response("fake-1", "c1").await;
    let elapsed = started.elapsed();
    let status = response.status();
    assert!(status.is_server_error(), "status {status}");
    assert_json_error(response, status).await;
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert_eq!(stored_credentials(&app, "fake-1", "c1").await, old);
}

#[tokio::test]
async fn refresh_uses_the_templates_client_auth_and_body_format() {
    let app = TestApp::spawn().await;
    let basic = expiring_connection(&app, "basic", "fake-basic").await;
    app.get_connection("basic", "c1").await;
    let request = app.provider.refresh_requests().pop().unwrap();
    assert!(request
        .header("authorization")
        .unwrap_or_default()
        .starts_with("Basic "));
    assert!(request.param("client_id").is_none() && request.param("client_secret").is_none());
    assert!(request
        .content_type
        .starts_with("application/x-www-form-urlencoded"));
    assert_refresh_body(&request, basic["refresh_token"].as_str().unwrap());

    let json_creds = expiring_connection(&app, "json", "fake-json").await;
    app.get_connection("json", "c1").await;
    let request = app.provider.refresh_requests().pop().unwrap();
    assert!(request.content_type.starts_with("application/json"));
    let body: Value = serde_json::from_str(&request.raw_body).unwrap();
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["refresh_token"], json_creds["refresh_token"]);
    assert_eq!(body["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn refresh_goes_to_the_interpolated_token_url() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    let page = app
        .run_flow("sub", "connection_id=c1&params[subdomain]=acme")
        .await;
    page.assert_success("sub", "c1");
    app.provider.set(|b| b.expires_in = Some(3600));
    app.get_connection("sub", "c1").await;
    let request = app.provider.refresh_requests().pop().unwrap();
    assert_eq!(request.subdomain.as_deref(), Some("acme"));
}

/// Connection `(fake-1, c1)` with an hour-long token, with or without a refresh token.
async fn long_lived_connection(app: &TestApp, with_refresh_token: bool) {
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.issue_refresh_token = with_refresh_token;
    });
    app.authorize("fake-1", "c1").await;
}

/// `GET /connection/c1?provider_config_key=<key>&force_refresh=<value>`.
async fn force_refresh(app: &TestApp, key: &str, value: &str) -> reqwest::Response {
    app.get(&format!(
        "/connection/c1?provider_config_key={key}&force_refresh={value}"
    ))
    .await
}

#[tokio::test]
async fn force_refresh_refreshes_a_token_that_is_not_expiring() {
    let app = TestApp::spawn().await;
    long_lived_connection(&app, true).await;
    let old = stored_credentials(&app, "fake-1", "c1").await;

    let response = force_refresh(&app, "fake-1", "true").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(app.provider.refresh_count(), 1);
    assert_refresh_body(
        &app.provider.refresh_requests()[0],
        old["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(body["credentials"]["access_token"], old["access_token"]);
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    assert_eq!(stored["access_token"], body["credentials"]["access_token"]);

    // Every forced request refreshes again; without the flag the new token is served as is.
    force_refresh(&app, "fake-1", "true").await;
    assert_eq!(app.provider.refresh_count(), 2);
    force_refresh(&app, "fake-1", "false").await;
    app.get_connection("fake-1", "c1").await;
    assert_eq!(app.provider.refresh_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_forced_requests_share_one_refresh() {
    let app = TestApp::spawn().await;
    long_lived_connection(&app, true).await;
    app.provider
        .set(|b| b.token_delay = Duration::from_millis(300));

    let requests = (0..10).map(|_| force_refresh(&app, "fake-1", "true"));
    let responses = futures::future::join_all(requests).await;
    let mut tokens = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["credentials"]["access_token"].clone());
    }
    // They all arrived while the first refresh was under way: its result is fresh for them all.
    assert_eq!(app.provider.refresh_count(), 1, "{tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[tokio::test]
async fn force_refresh_without_a_refresh_token_is_refused_and_keeps_the_credentials() {
    let app = TestApp::spawn().await;
    long_lived_connection(&app, false).await;
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    let body = assert_json_error(
        force_refresh(&app, "fake-1", "true").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["type"], "not_refreshable");
    assert_eq!(app.provider.refresh_count(), 0);
    assert_eq!(stored_credentials(&app, "fake-1", "c1").await, stored);
}

#[tokio::test]
async fn force_refresh_takes_only_true_or_false() {
    let app = TestApp::spawn().await;
    expiring_connection(&app, "fake-1", "fake").await;
    for bad in ["yes", "1", "TRUE", ""] {
        let body = assert_json_error(
            force_refresh(&app, "fake-1", bad).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["type"], "invalid_request", "force_refresh={bad}");
    }
    assert_eq!(app.provider.refresh_count(), 0);
}

#[tokio::test]
async fn a_rejected_forced_refresh_keeps_the_credentials() {
    let app = TestApp::spawn().await;
    long_lived_connection(&app, true).await;
    let stored = stored_credentials(&app, "fake-1", "c1").await;
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    let body = assert_json_error(
        force_refresh(&app, "fake-1", "true").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["type"], "refresh_rejected");
    assert_eq!(stored_credentials(&app, "fake-1", "c1").await, stored);
}
