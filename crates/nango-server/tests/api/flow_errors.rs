//! Flow errors (§2.4) as the legacy page reports them, and that none of them stores anything or
//! sends the browser anywhere.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{query_value, Page, TestApp};

const UNKNOWN_ERR: &str = "Unkown error during the Oauth flow.";

#[tokio::test]
async fn missing_connection_id_is_missing_connection_id() {
    let app = TestApp::spawn().await;
    for query in ["", "connection_id=", "other=1"] {
        let page = Page::read(app.connect("fake-1", query).await).await;
        page.assert_failure("missing_connection_id", "Missing Connection ID.");
    }
}

#[tokio::test]
async fn unknown_config_key_is_provider_config_err() {
    let app = TestApp::spawn().await;
    let page = Page::read(app.connect("nope", "connection_id=c1").await).await;
    page.assert_failure(
        "provider_config_err",
        "Could not find a Provider Config matching the \"nope\" key.",
    );
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn missing_subdomain_is_url_param_err() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub", "").await;
    let page = Page::read(app.connect("sub", "connection_id=c1").await).await;
    let message = page.post_message();
    assert_eq!(
        message["data"]["error"]["type"], "url_param_err",
        "{message}"
    );
    let text = message["data"]["error"]["message"].as_str().unwrap();
    assert!(
        text.starts_with("Missing Connection Config param(s) in Auth request to interpolate url "),
        "{text}"
    );
    assert!(
        text.contains("${connectionConfig.params.subdomain}"),
        "{text}"
    );
    // Bad input in the flow's URL is the caller's fault.
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // A param under another name does not fill the placeholder either.
    let page = Page::read(
        app.connect("sub", "connection_id=c1&params[other]=acme")
            .await,
    )
    .await;
    assert_eq!(
        page.post_message()["data"]["error"]["type"],
        "url_param_err"
    );
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn unsafe_subdomains_are_url_param_err_and_never_redirect() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub", "").await;
    for value in [
        "evil.com/x",
        "evil.com%2Fx",
        "evil.com%23",
        "evil.com?x=1",
        "a@evil.com",
        "evil.com:8080",
        "a%20b",
        "..",
    ] {
        let response = app
            .connect(
                "sub",
                &format!("connection_id=c1&params[subdomain]={value}"),
            )
            .await;
        let page = Page::read(response).await;
        assert!(
            page.headers.get("location").is_none(),
            "params[subdomain]={value} redirected to {:?}",
            page.headers.get("location")
        );
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{value}");
        assert!(!page.body.contains("http://evil.com"), "{}", page.body);
        let message = page.post_message();
        assert_eq!(
            message["data"]["error"]["type"], "url_param_err",
            "params[subdomain]={value}: {message}"
        );
    }
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn unsupported_grant_type_is_grant_type_err() {
    let app = TestApp::spawn().await;
    app.create_config("cc", "fake-cc", "").await;
    let page = Page::read(app.connect("cc", "connection_id=c1").await).await;
    page.assert_failure(
        "grant_type_err",
        "The grant type \"client_credentials\" is not supported by this OAuth flow.",
    );
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn provider_denial_is_callback_err_and_stores_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.deny = true);
    let page = app.run_flow("fake-1", "connection_id=c1").await;
    page.assert_failure(
        "callback_err",
        "Did not get oauth_token and/or oauth_verifier in the callback. The provider returned: access_denied (The user denied access).",
    );
    assert!(app.provider.token_requests().is_empty());
    app.assert_no_connection("fake-1", "c1").await;
    assert!(app.connections().await.is_empty());
}

#[tokio::test]
async fn token_endpoint_failures_are_unknown_err_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let failures = [
        (500, json!({"error": "server_error"})),
        (400, json!({"error": "invalid_grant"})),
        (401, json!({"error": "invalid_client"})),
        // GitHub and Slack style: 200 with an error and no token.
        (200, json!({"error": "bad_verification_code"})),
        (200, json!({"ok": false})),
        (200, json!({"access_token": ""})),
    ];
    for (i, failure) in failures.into_iter().enumerate() {
        let connection_id = format!("c{i}");
        let described = format!("{failure:?}");
        app.provider.set(|b| b.code_failure = Some(failure));
        let page = app
            .run_flow("fake-1", &format!("connection_id={connection_id}"))
            .await;
        assert_eq!(
            page.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{described}"
        );
        page.assert_failure("unknown_err", UNKNOWN_ERR);
        app.assert_no_connection("fake-1", &connection_id).await;
    }
    assert!(app.connections().await.is_empty());
    assert_eq!(app.provider.token_requests().len(), 6);
}

/// Found by fuzzing: a token response nested deeper than serde_json reads back, or holding one
/// of its magic keys, used to be stored, and then every read of the connection answered 500.
#[tokio::test]
async fn token_responses_that_could_not_be_read_back_are_unknown_err_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let mut deep = json!("bottom");
    for _ in 0..126 {
        deep = json!({ "nested": deep });
    }
    app.provider.set(|b| {
        b.code_failure = Some((200, json!({"access_token": "a", "deep": deep})));
    });
    let page = app.run_flow("fake-1", "connection_id=c1").await;
    page.assert_failure("unknown_err", UNKNOWN_ERR);
    app.assert_no_connection("fake-1", "c1").await;

    // GitHub's form-encoded shape can carry any key.
    app.provider.set(|b| {
        b.code_failure = None;
        b.form_encoded_response = true;
        b.extra_token_fields
            .insert("$serde_json::private::RawValue".into(), json!("x"));
    });
    let page = app.run_flow("fake-1", "connection_id=c2").await;
    page.assert_failure("unknown_err", UNKNOWN_ERR);
    app.assert_no_connection("fake-1", "c2").await;
    assert!(app.connections().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_unknown_err() {
    let app = TestApp::spawn_with(|s| s.provider_timeout = std::time::Duration::from_secs(1)).await;
    app.create_config("fake-1", "fake", "").await;
    app.provider
        .set(|b| b.token_delay = std::time::Duration::from_secs(3));
    let started = std::time::Instant::now();
    let page = app.run_flow("fake-1", "connection_id=c1").await;
    page.assert_failure("unknown_err", UNKNOWN_ERR);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2900),
        "the provider timeout was not applied ({:?})",
        started.elapsed()
    );
    app.assert_no_connection("fake-1", "c1").await;
}

#[tokio::test]
async fn overlong_connection_ids_never_start_a_flow() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let id = "a".repeat(300);
    let page = Page::read(
        app.connect("fake-1", &format!("connection_id={}", query_value(&id)))
            .await,
    )
    .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.headers.get("location").is_none());
    assert_eq!(page.post_message()["eventType"], "AUTHORIZATION_FAILED");
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn a_config_whose_template_disappeared() {
    let mut app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "c1").await;
    // The operator removes every test template from the providers file; `fake` is not built in.
    app.restart_with_providers("{}\n").await;

    let page = Page::read(app.connect("fake-1", "connection_id=c2").await).await;
    page.assert_failure(
        "unknown_config_key",
        "No Provider Configuration with key \"fake\".",
    );

    // The expiring token cannot be refreshed without its template: the generic 500, JSON.
    let response = app.get_connection_response("fake-1", "c1").await;
    crate::helpers::assert_error(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unhandled error has occured.",
    )
    .await;
    assert_eq!(app.provider.refresh_count(), 0);
    app.assert_healthy().await;
}

#[tokio::test]
async fn dot_segment_connection_ids_are_refused_before_any_redirect() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    for id in [".", ".."] {
        let page = Page::read(app.connect("fake-1", &format!("connection_id={id}")).await).await;
        assert!(page.headers.get("location").is_none(), "{id}");
        assert_eq!(
            page.post_message()["data"]["error"]["type"],
            "invalid_request",
            "{id}"
        );
    }
    assert!(app.provider.authorize_requests().is_empty());
}
