//! Connections without a browser flow: API keys and usernames/passwords entered by the end user
//! (`/api-auth/...`, open) or imported by the backend (`POST /connection`, secret key), and
//! OAUTH2_CC tokens fetched and renewed by the server with the config's client credentials.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_json_error, FakeApi, Page, TestApp, CLIENT_ID};

async fn post_connection(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/connection", &body).await
}

async fn enter(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.anon(Method::POST, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_key_is_validated_stored_and_handed_out_as_is() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("openai", "fake-apikey", "").await;

    let response = post_connection(
        &app,
        json!({"provider_config_key": "openai", "connection_id": "u1", "api_key": "sk-abcdef123"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["credentials"],
        json!({"type": "API_KEY", "apiKey": "sk-abcdef123"})
    );
    let connection = app.get_connection("openai", "u1").await;
    assert_eq!(connection["credentials"], created["credentials"]);
    assert_eq!(connection["connection_id"], "u1");

    // Keys in the wrong format, missing or oversized keys are refused; nothing is stored.
    for (body, what) in [
        (json!({"api_key": "not-a-key"}), "format"),
        (json!({"api_key": ""}), "empty"),
        (json!({}), "missing"),
        (
            json!({"api_key": format!("sk-{}", "a".repeat(5000))}),
            "too long",
        ),
        (json!({"api_key": "sk-abcdefgh\n1"}), "control character"),
    ] {
        let mut body = body;
        body["provider_config_key"] = json!("openai");
        body["connection_id"] = json!("u2");
        let error =
            assert_json_error(post_connection(&app, body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["type"], "invalid_credentials", "{what}: {error}");
    }
    app.assert_no_connection("openai", "u2").await;

    // An API key has nothing to refresh.
    let error = assert_json_error(
        app.get("/connection/u1?provider_config_key=openai&force_refresh=true")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "not_refreshable");
}

#[tokio::test]
async fn the_frontend_route_stores_a_key_without_the_secret_key() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("openai", "fake-apikey", "").await;
    let response = enter(
        &app,
        "/api-auth/api-key/openai?connection_id=user%2042",
        json!({"apiKey": "sk-12345678"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"providerConfigKey": "openai", "connectionId": "user 42"})
    );
    let connection = app.get_connection("openai", "user 42").await;
    assert_eq!(connection["credentials"]["apiKey"], "sk-12345678");

    // Entering a key again replaces it.
    enter(
        &app,
        "/api-auth/api-key/openai?connection_id=user%2042",
        json!({"apiKey": "sk-87654321"}),
    )
    .await;
    let connection = app.get_connection("openai", "user 42").await;
    assert_eq!(connection["credentials"]["apiKey"], "sk-87654321");

    for (path, body, kind) in [
        (
            "/api-auth/api-key/openai",
            json!({"apiKey": "sk-12345678"}),
            "missing_connection",
        ),
        (
            "/api-auth/api-key/nope?connection_id=u",
            json!({"apiKey": "sk-12345678"}),
            "unknown_provider_config",
        ),
        (
            "/api-auth/api-key/openai?connection_id=u",
            json!({"apiKey": "bad"}),
            "invalid_credentials",
        ),
        (
            "/api-auth/api-key/openai?connection_id=u",
            json!({"apiKey": 12}),
            "invalid_request",
        ),
        (
            "/api-auth/basic/openai?connection_id=u",
            json!({"username": "a", "password": "b"}),
            "auth_mode_err",
        ),
    ] {
        let error = assert_json_error(enter(&app, path, body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["type"], kind, "{path}: {error}");
    }
    app.assert_no_connection("openai", "u").await;
}

#[tokio::test]
async fn basic_credentials_need_a_password_unless_the_template_says_otherwise() {
    let app = TestApp::spawn().await;
    app.create_config("jira", "fake-basic-auth", "").await;
    app.create_config("keyonly", "fake-basic-nopw", "").await;

    let response = enter(
        &app,
        "/api-auth/basic/jira?connection_id=u1",
        json!({"username": "ada@example.com", "password": "s3cret"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let connection = app.get_connection("jira", "u1").await;
    assert_eq!(
        connection["credentials"],
        json!({"type": "BASIC", "username": "ada@example.com", "password": "s3cret"})
    );

    let error = assert_json_error(
        enter(
            &app,
            "/api-auth/basic/jira?connection_id=u2",
            json!({"username": "ada"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "invalid_credentials");

    let response = post_connection(
        &app,
        json!({"provider_config_key": "keyonly", "connection_id": "u3", "username": "key-as-user"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let connection = app.get_connection("keyonly", "u3").await;
    assert_eq!(connection["credentials"]["password"], "");
}

#[tokio::test]
async fn oauth_providers_are_not_connected_without_their_flow_and_direct_ones_not_through_it() {
    let app = TestApp::spawn().await;
    app.create_config("gh", "fake", "").await;
    let error = assert_json_error(
        post_connection(
            &app,
            json!({"provider_config_key": "gh", "connection_id": "u1", "api_key": "x"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "auth_mode_err");

    app.create_config("openai", "fake-apikey", "").await;
    let page = Page::read(app.connect("openai", "connection_id=u1").await).await;
    assert_eq!(
        page.post_message()["data"]["error"]["type"],
        "auth_mode_err"
    );
}

#[tokio::test]
async fn a_client_credentials_connection_is_fetched_renewed_and_forced() {
    let app = TestApp::spawn().await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.create_config("cc", "fake-cc-mode", "read,write").await;

    let response = post_connection(
        &app,
        json!({"provider_config_key": "cc", "connection_id": "svc"}),
    )
    .await;
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{created}");
    let grant = app.provider.last_token_request();
    assert_eq!(grant.grant_type(), "client_credentials");
    assert_eq!(grant.param("scope"), Some("read write"));
    assert_eq!(grant.param("audience"), Some("fake-api"));
    assert_eq!(grant.param("client_id"), Some(CLIENT_ID));
    let credentials = &created["credentials"];
    assert_eq!(credentials["type"], "OAUTH2_CC");
    let first = credentials["token"].as_str().unwrap().to_string();
    assert!(credentials["expires_at"].is_string());
    assert!(credentials.get("refresh_token").is_none());

    // Expired on arrival: reading it runs the grant again.
    let grants = |app: &TestApp| {
        app.provider
            .token_requests()
            .iter()
            .filter(|r| r.grant_type() == "client_credentials")
            .count()
    };
    let renewed = app.get_connection("cc", "svc").await;
    assert_eq!(grants(&app), 2);
    let second = renewed["credentials"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);

    // Long-lived now: served as stored, until forced.
    app.provider.set(|b| b.expires_in = Some(3600));
    let forced = app
        .get("/connection/svc?provider_config_key=cc&force_refresh=true")
        .await;
    assert_eq!(forced.status(), StatusCode::OK);
    assert_eq!(grants(&app), 3);
    app.get_connection("cc", "svc").await;
    app.get_connection("cc", "svc").await;
    assert_eq!(grants(&app), 3);
}

#[tokio::test]
async fn a_refused_or_failing_client_credentials_grant_stores_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("cc", "fake-cc-mode", "").await;
    // A config whose secret the provider does not know.
    app.put_json(
        "/config",
        &json!({"provider_config_key": "cc", "provider": "fake-cc-mode",
                "oauth_client_id": CLIENT_ID, "oauth_client_secret": "wrong", "oauth_scopes": ""}),
    )
    .await;
    let error = assert_json_error(
        post_connection(
            &app,
            json!({"provider_config_key": "cc", "connection_id": "svc"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "client_credentials_rejected");
    assert!(error["error"].as_str().unwrap().contains("invalid_client"));
    assert!(
        !error.to_string().contains("wrong"),
        "no secret in the error"
    );
    app.assert_no_connection("cc", "svc").await;

    app.create_config("cc2", "fake-cc-mode", "").await;
    app.provider.set(|b| {
        b.client_credentials_failure = Some((503, json!({"error": "temporarily_unavailable"})))
    });
    let error = assert_json_error(
        post_connection(
            &app,
            json!({"provider_config_key": "cc2", "connection_id": "svc"}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(error["type"], "provider_unavailable");
    app.assert_no_connection("cc2", "svc").await;

    // A failed renewal keeps the stored token.
    app.provider.set(|b| {
        b.client_credentials_failure = None;
        b.expires_in = Some(0);
    });
    let created: Value = post_connection(
        &app,
        json!({"provider_config_key": "cc2", "connection_id": "svc"}),
    )
    .await
    .json()
    .await
    .unwrap();
    app.provider
        .set(|b| b.client_credentials_failure = Some((500, json!({"error": "server_error"}))));
    let response = app.get_connection_response("cc2", "svc").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let stored = app
        .state
        .store
        .get_connection("cc2", "svc")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_value(&stored.credentials).unwrap();
    assert_eq!(stored["token"], created["credentials"]["token"]);
}

/// Security review F4 (E4): a web page can post `text/plain` or a form to `/api-auth` without a
/// CORS preflight; only a body declared `application/json` is read, anything else is 415 and
/// nothing is stored or replaced.
#[tokio::test]
async fn entered_credentials_are_read_from_json_bodies_only() {
    let app = TestApp::spawn().await;
    app.create_config("openai", "fake-apikey", "").await;
    app.create_config("jira", "fake-basic-auth", "").await;
    let stored = enter(
        &app,
        "/api-auth/api-key/openai?connection_id=victim-42",
        json!({"apiKey": "sk-victimrealkey"}),
    )
    .await;
    assert_eq!(stored.status(), StatusCode::OK);

    let cross_site = [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ];
    for content_type in cross_site {
        for (path, body) in [
            (
                "/api-auth/api-key/openai?connection_id=victim-42",
                json!({"apiKey": "sk-attackerkey"}),
            ),
            (
                "/api-auth/basic/jira?connection_id=victim-43",
                json!({"username": "attacker", "password": "p"}),
            ),
        ] {
            let mut request = app
                .anon(Method::POST, path)
                .header("origin", "https://evil.example")
                .body(body.to_string());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let error = assert_json_error(
                request.send().await.unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )
            .await;
            assert_eq!(error["type"], "unsupported_media_type", "{content_type:?}");
        }
    }
    let connection = app.get_connection("openai", "victim-42").await;
    assert_eq!(connection["credentials"]["apiKey"], "sk-victimrealkey");
    app.assert_no_connection("jira", "victim-43").await;

    // JSON with parameters, in any case, is JSON.
    let response = app
        .anon(
            Method::POST,
            "/api-auth/api-key/openai?connection_id=victim-42",
        )
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(json!({"apiKey": "sk-newrealkey1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let connection = app.get_connection("openai", "victim-42").await;
    assert_eq!(connection["credentials"]["apiKey"], "sk-newrealkey1");
}

/// A template with a verification call against the fake API, the key in a header, and a
/// per-account subdomain-like value (`account`) put in a header too.
async fn spawn_with_verification() -> (TestApp, FakeApi) {
    let api = FakeApi::start().await;
    let base = api.base_url.clone();
    let app = TestApp::spawn_with_templates(
        |_| {},
        move |_| {
            format!(
                "verified-key:\n  auth_mode: API_KEY\n  base_api_url: \"{base}/v1\"\n  api_key:\n    header: Authorization\n    prefix: 'Bearer '\n    description: Settings > API keys\n  verification:\n    path: /me\n  proxy:\n    headers:\n      X-Account: '${{connectionConfig.params.account}}'\n  connection_config:\n    account:\n      description: Your account id\n      pattern: '[a-z0-9]+'\n      example: acme\n\
                 verified-basic:\n  auth_mode: BASIC\n  base_api_url: \"{base}/v2\"\n  verification:\n    method: POST\n    path: /whoami?fields=id\n"
            )
        },
    )
    .await;
    (app, api)
}

#[tokio::test]
async fn a_saved_key_is_verified_with_the_provider_and_a_refused_one_is_not_stored() {
    let (app, api) = spawn_with_verification().await;
    app.create_config("vk", "verified-key", "").await;

    let response = enter(
        &app,
        "/api-auth/api-key/vk?connection_id=u1&params[account]=acme",
        json!({"apiKey": "good-key"}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let call = api.last_request();
    assert_eq!(call.method, "GET");
    assert_eq!(call.path, "/v1/me");
    assert_eq!(call.bearer().as_deref(), Some("good-key"));
    assert_eq!(call.header("x-account").as_deref(), Some("acme"));
    // The value is kept with the connection, and the proxy sends it the same way.
    let connection = app.get_connection("vk", "u1").await;
    assert_eq!(
        connection["connection_config"]["connectionConfig.params.account"],
        "acme"
    );

    // A key the provider refuses is not stored, with a message that says why.
    api.refuse_token("bad-key");
    let calls = api.request_count();
    let error = assert_json_error(
        enter(
            &app,
            "/api-auth/api-key/vk?connection_id=u2&params[account]=acme",
            json!({"apiKey": "bad-key"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "invalid_credentials", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("HTTP 401"),
        "{error}"
    );
    assert_eq!(api.request_count(), calls + 1);
    app.assert_no_connection("vk", "u2").await;

    // A provider outage is not a verdict on the key: a 502, nothing stored.
    api.script(&[(503, &[])]);
    let error = assert_json_error(
        enter(
            &app,
            "/api-auth/api-key/vk?connection_id=u3&params[account]=acme",
            json!({"apiKey": "good-key"}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(error["type"], "provider_unavailable", "{error}");
    app.assert_no_connection("vk", "u3").await;

    // A value the template's pattern refuses never reaches the provider.
    let calls = api.request_count();
    let error = assert_json_error(
        enter(
            &app,
            "/api-auth/api-key/vk?connection_id=u4&params[account]=a%2Fb",
            json!({"apiKey": "good-key"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        error["error"].as_str().unwrap().contains("account"),
        "{error}"
    );
    assert_eq!(api.request_count(), calls);
    app.assert_no_connection("vk", "u4").await;
}

#[tokio::test]
async fn basic_credentials_are_verified_with_a_post_when_the_template_says_so() {
    let (app, api) = spawn_with_verification().await;
    app.create_config("vb", "verified-basic", "").await;
    let response = enter(
        &app,
        "/api-auth/basic/vb?connection_id=u1",
        json!({"username": "ann", "password": "pw"}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let call = api.last_request();
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/v2/whoami");
    assert_eq!(call.query.as_deref(), Some("fields=id"));
    let expected = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ann:pw")
        )
    };
    assert_eq!(call.header("authorization"), Some(expected));

    api.script(&[(403, &[])]);
    let error = assert_json_error(
        enter(
            &app,
            "/api-auth/basic/vb?connection_id=u2",
            json!({"username": "ann", "password": "wrong"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["type"], "invalid_credentials", "{error}");
    app.assert_no_connection("vb", "u2").await;
}

#[tokio::test]
async fn an_imported_key_keeps_its_connection_config_values_checked_against_the_template() {
    let (app, api) = spawn_with_verification().await;
    app.create_config("vk", "verified-key", "").await;
    let response = post_connection(
        &app,
        json!({"provider_config_key": "vk", "connection_id": "u1", "api_key": "k1",
               "connection_config": {"account": "acme"}}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    // The backend's import is not a login: no verification call.
    assert_eq!(api.request_count(), 0);
    let connection = app.get_connection("vk", "u1").await;
    assert_eq!(
        connection["connection_config"]["connectionConfig.params.account"],
        "acme"
    );

    for (config, what) in [
        (json!({"account": "a/b"}), "a value the pattern refuses"),
        (json!({"account": 7}), "a number"),
        (json!(["acme"]), "not an object"),
    ] {
        let error = assert_json_error(
            post_connection(
                &app,
                json!({"provider_config_key": "vk", "connection_id": "u2", "api_key": "k1",
                       "connection_config": config}),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["type"], "invalid_request", "{what}: {error}");
    }
    app.assert_no_connection("vk", "u2").await;
}
