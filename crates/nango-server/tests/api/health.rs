//! `GET /` (the 0.9.0 healthcheck), `GET /health` (0.9.2+) and unknown routes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{header, TestApp};

#[tokio::test]
async fn root_and_health_answer_result_ok() {
    let app = TestApp::spawn().await;
    for path in ["/", "/health"] {
        let response = app.anon(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let content_type = header(response.headers(), "content-type");
        assert!(
            content_type.starts_with("application/json"),
            "GET {path}: content type {content_type:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"result": "ok"}), "GET {path}");
    }
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::POST, "/connection/x/y"),
        (Method::GET, "/oauth"),
    ] {
        let response = app.anon(method.clone(), path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    app.assert_healthy().await;
}
