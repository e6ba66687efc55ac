//! The secret-key gate on `/config` and `/connection` (§1.2) and open CORS (§1).

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, basic_auth, header, TestApp, SECRET_KEY};

const MISSING_HEADER: &str =
    "Authentication failed. The request is missing the Authorization header.";
const INVALID_KEY: &str = "Authentication failed. The provided secret key is invalid.";

fn config_body() -> Value {
    json!({
        "provider_config_key": "k",
        "provider": "fake",
        "oauth_client_id": "id",
        "oauth_client_secret": "secret",
        "oauth_scopes": "read",
    })
}

/// Every route behind the secret key, with a body where it takes one.
fn secret_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/config", None),
        (Method::POST, "/config", Some(config_body())),
        (Method::PUT, "/config", Some(config_body())),
        (Method::GET, "/config/k", None),
        (Method::DELETE, "/config/k", None),
        (Method::GET, "/connection", None),
        (Method::GET, "/connection/c?provider_config_key=k", None),
        (Method::DELETE, "/connection/c?provider_config_key=k", None),
    ]
}

#[tokio::test]
async fn secret_routes_refuse_requests_without_authorization_header() {
    let app = TestApp::spawn_with_secret_key().await;
    for (method, path, body) in secret_routes() {
        let mut request = app.anon(method.clone(), path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = assert_error(response, StatusCode::UNAUTHORIZED, MISSING_HEADER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
    // Nothing was created behind the gate's back.
    assert!(app.config_keys().await.is_empty());
}

#[tokio::test]
async fn wrong_secret_keys_are_refused() {
    // Many wrong keys from one address: without the wrong-key limit (edge.rs tests it), so
    // that each is answered for itself.
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.to_string()));
        s.auth_failures_per_minute = 0;
    })
    .await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let wrong = [
        basic_auth("wrong-key"),
        format!("Basic {}", b64(&format!("{SECRET_KEY}x:"))),
        format!("Basic {}", b64(&format!(":{SECRET_KEY}"))),
        "Basic !!!not-base64!!!".to_string(),
        "Bearer wrong-key".to_string(),
        format!("Bearer {SECRET_KEY}x"),
        "garbage".to_string(),
        String::new(),
    ];
    for authorization in wrong {
        for (method, path, body) in secret_routes() {
            let mut request = app
                .anon(method.clone(), path)
                .header("Authorization", &authorization);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {authorization:?}"
            );
            assert_error(response, StatusCode::UNAUTHORIZED, INVALID_KEY).await;
        }
    }
    assert!(app.config_keys().await.is_empty());
}

#[tokio::test]
async fn basic_and_bearer_secret_keys_are_accepted() {
    let app = TestApp::spawn_with_secret_key().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let accepted = [
        // What @nangohq/node 0.9 and the CLI send.
        basic_auth(SECRET_KEY),
        // Only the username counts.
        format!("Basic {}", b64(&format!("{SECRET_KEY}:any-password"))),
        // What later Nango clients send.
        format!("Bearer {SECRET_KEY}"),
        // Nango took the part after the last "Basic ", or the whole header without one.
        b64(&format!("{SECRET_KEY}:")),
    ];
    for authorization in accepted {
        let response = app
            .anon(Method::GET, "/config")
            .header("Authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{authorization:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"configs": []}));
    }
}

#[tokio::test]
async fn health_and_oauth_routes_stay_public_with_a_secret_key() {
    let app = TestApp::spawn_with_secret_key().await;
    for path in ["/", "/health"] {
        let response = app.anon(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    }
    // The flow pages answer their own errors, never a 401.
    let response = app.connect("unknown", "connection_id=c").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(header(response.headers(), "content-type").starts_with("text/html"));
    let response = app
        .anon(Method::GET, "/oauth/callback?code=x&state=unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(header(response.headers(), "content-type").starts_with("text/html"));
}

#[tokio::test]
async fn a_whole_flow_needs_no_secret_key_in_the_browser() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read").await;
    // `run_flow` sends no Authorization header to /oauth/connect nor /oauth/callback.
    let page = app.run_flow("fake-1", "connection_id=c1").await;
    page.assert_success("fake-1", "c1");
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(connection["credentials"]["type"], "OAUTH2");
}

#[tokio::test]
async fn without_a_secret_key_the_api_is_open() {
    let app = TestApp::spawn().await;
    let response = app.anon(Method::GET, "/config").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.anon(Method::GET, "/connection").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_is_open_on_the_browser_routes_and_absent_on_the_secret_key_routes() {
    // The frontend SDKs call the health and flow routes from any origin; nothing that takes
    // the secret key is readable by a web page (security review 2, F2; see edge.rs).
    let app = TestApp::spawn_with_secret_key().await;
    let response = app
        .anon(Method::GET, "/")
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        "*"
    );
    for request in [
        app.anon(Method::GET, "/config"),
        app.api(Method::GET, "/config"),
    ] {
        let response = request
            .header("Origin", "https://app.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            "",
            "{}",
            response.status()
        );
    }
}

#[tokio::test]
async fn cors_preflight_of_a_secret_key_route_is_not_granted() {
    let app = TestApp::spawn_with_secret_key().await;
    for (path, method) in [
        ("/config", "POST"),
        ("/connection/c", "DELETE"),
        ("/config", "PUT"),
    ] {
        let response = app
            .anon(Method::OPTIONS, path)
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), "", "{path}");
        assert_eq!(
            header(headers, "access-control-allow-methods"),
            "",
            "{path}"
        );
    }
}
