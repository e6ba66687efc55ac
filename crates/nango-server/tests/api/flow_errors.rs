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
    for len in [300, 5000] {
        let id = "a".repeat(len);
        let page = Page::read(
            app.connect("fake-1", &format!("connection_id={}", query_value(&id)))
                .await,
        )
        .await;
        // The request's fault: a 4xx, never the 500 of a server fault.
        page.assert_failure(
            "invalid_request",
            "Param 'connection_id' is too long (at most 255 characters).",
        );
    }
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn bad_input_on_connect_is_a_4xx_page_with_the_same_payload() {
    let app = TestApp::spawn_with(|s| s.redirect_allowlist = vec!["http://app.test".into()]).await;
    app.create_config("fake-1", "fake", "").await;
    app.create_config("apikey", "fake-apikey", "").await;
    app.create_config("sub", "fake-sub-pattern", "").await;
    let long_key = "k".repeat(5000);
    let cases: Vec<(String, String, &str, u16)> = vec![
        ("fake-1".into(), "".into(), "missing_connection_id", 400),
        (
            long_key.clone(),
            "connection_id=c1".into(),
            "provider_config_err",
            404,
        ),
        (
            "nope".into(),
            "connection_id=c1".into(),
            "provider_config_err",
            404,
        ),
        (
            "fake-1".into(),
            "connection_id=c1%01".into(),
            "invalid_request",
            400,
        ),
        (
            "fake-1".into(),
            "connection_id=c1&return_to=https://evil.test/".into(),
            "invalid_return_to",
            400,
        ),
        (
            "sub".into(),
            "connection_id=c1&params[subdomain]=A!".into(),
            "url_param_err",
            400,
        ),
        (
            "sub".into(),
            "connection_id=c1".into(),
            "url_param_err",
            400,
        ),
        (
            "apikey".into(),
            "connection_id=c1".into(),
            "auth_mode_err",
            400,
        ),
        (
            "fake-1".into(),
            "connection_id=c1&connect_session_token=ncs_forged".into(),
            "connect_session_err",
            400,
        ),
    ];
    for (key, query, error_type, status) in cases {
        let page = Page::read(app.connect(&key, &query).await).await;
        let shown = format!("{}?{query}", &key[..key.len().min(20)]);
        assert_eq!(page.status.as_u16(), status, "{shown}: {}", page.body);
        assert!(page.headers.get("location").is_none(), "{shown}");
        assert!(
            page.header("set-cookie").is_empty(),
            "{shown}: no flow, no cookie"
        );
        assert_eq!(
            page.post_message()["data"]["error"]["type"],
            error_type,
            "{shown}"
        );
    }
    assert!(app.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn browser_params_over_4_kib_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub", "").await;
    // "subdomain" + "acme" + "x" = 14 bytes of names and values, the rest in the value of x.
    let query = |total: usize| {
        format!(
            "connection_id=c1&params[subdomain]=acme&params[x]={}",
            "v".repeat(total - 14)
        )
    };
    let page = Page::read(app.connect("sub", &query(4097)).await).await;
    page.assert_failure(
        "url_param_err",
        "The Connection Config params (params[...]) are too large: 4097 bytes of names and values, at most 4096.",
    );
    // Many small params count together; so do their names.
    let many: String = (0..300)
        .map(|i| format!("&params[p{i:03}]=abcdefghij"))
        .collect();
    let page = Page::read(
        app.connect(
            "sub",
            &format!("connection_id=c1&params[subdomain]=acme{many}"),
        )
        .await,
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(app.provider.authorize_requests().is_empty());
    let stored = app
        .state
        .store
        .delete_expired_oauth_sessions(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(stored, 0, "no flow was stored");

    // 4 KiB exactly is accepted, and kept on the connection.
    app.run_flow("sub", &query(4096))
        .await
        .assert_success("sub", "c1");
    let connection = app.get_connection("sub", "c1").await;
    assert_eq!(
        connection["connection_config"]["connectionConfig.params.x"]
            .as_str()
            .unwrap()
            .len(),
        4082
    );
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

/// A token endpoint that answers a valid JSON token response of `size` bytes, streamed in 64 KiB
/// chunks (no `Content-Length`); counts the bytes it managed to hand to the socket.
struct HugeTokenEndpoint {
    base_url: String,
    produced: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HugeTokenEndpoint {
    async fn start(size: usize) -> HugeTokenEndpoint {
        use futures::StreamExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    let head = br#"{"access_token":"huge-token","refresh_token":"r","expires_in":3600,"pad":""#;
                    let chunk = vec![b'a'; 64 * 1024];
                    let count = size / chunk.len();
                    let parts = std::iter::once(head.to_vec())
                        .chain(std::iter::repeat_n(chunk, count))
                        .chain(std::iter::once(br#""}"#.to_vec()));
                    let stream = futures::stream::iter(parts).map(move |part| {
                        counter.fetch_add(part.len(), Ordering::SeqCst);
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(part))
                    });
                    (
                        [("content-type", "application/json")],
                        axum::body::Body::from_stream(stream),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        HugeTokenEndpoint { base_url, produced }
    }

    fn produced(&self) -> usize {
        self.produced.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Security review F8 (E8): a token answer is read up to 1 MiB and no further (never buffered
/// whole): a 64 MB answer fails the flow cleanly, stores nothing, and the server stopped reading
/// long before the end; a refresh against it fails as the provider's fault and keeps the stored
/// credentials.
#[tokio::test]
async fn a_token_answer_over_one_mebibyte_is_refused_without_reading_it_whole() {
    const SIZE: usize = 64 * 1024 * 1024;
    let huge = HugeTokenEndpoint::start(SIZE).await;
    let huge_url = huge.base_url.clone();
    let app = TestApp::spawn_with_templates(
        |_| {},
        move |provider| {
            format!(
                "fake-huge:\n  auth_mode: OAUTH2\n  authorization_url: \"{}/authorize\"\n  token_url: \"{huge_url}/token\"\n",
                provider.base_url
            )
        },
    )
    .await;
    app.create_config("huge", "fake-huge", "read").await;

    let page = app.run_flow("huge", "connection_id=u1").await;
    page.assert_failure("unknown_err", UNKNOWN_ERR);
    app.assert_no_connection("huge", "u1").await;
    assert!(
        huge.produced() < SIZE / 2,
        "the server read {} bytes of a {SIZE}-byte answer",
        huge.produced()
    );
    app.assert_healthy().await;

    // A refresh against the same endpoint: the provider's fault, the credentials are kept.
    let stored = app
        .store_oauth2_connection(
            "huge",
            "u2",
            "refresh-u2",
            std::time::Duration::from_secs(3600),
            std::time::Duration::ZERO,
        )
        .await;
    let before = huge.produced();
    let response = app
        .get("/connection/u2?provider_config_key=huge&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["type"], "refresh_unavailable", "{error}");
    assert!(huge.produced() - before < SIZE / 2);
    let connection = app.get_connection("huge", "u2").await;
    assert_eq!(
        connection["credentials"]["access_token"],
        stored["access_token"]
    );
}
