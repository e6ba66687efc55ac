//! Malformed input gets a 4xx JSON error, never a crash, a hang or a partial write.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_client_error, assert_error, path_segment, TestApp};

/// After every bad request: the server still answers and nothing new was stored.
async fn assert_unharmed(app: &TestApp, configs: &[&str]) {
    app.assert_healthy().await;
    assert_eq!(app.config_keys().await, configs);
}

#[tokio::test]
async fn malformed_json_bodies_are_400() {
    let app = TestApp::spawn().await;
    for method in [Method::POST, Method::PUT] {
        for body in [
            "{",
            "{\"provider_config_key\": ",
            "not json",
            "{\"a\":1}}",
            "\u{0}",
        ] {
            let response = app
                .api(method.clone(), "/config")
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} /config with {body:?}"
            );
            assert_client_error(response).await;
        }
    }
    // Invalid UTF-8 inside a JSON string.
    let response = app
        .api(Method::POST, "/config")
        .header("Content-Type", "application/json")
        .body(b"{\"provider_config_key\": \"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_client_error(response).await;
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn non_object_json_bodies_are_400() {
    let app = TestApp::spawn().await;
    for body in [
        json!([{"provider_config_key": "k"}]),
        json!("k"),
        json!(42),
        json!(null),
        json!(true),
    ] {
        for method in [Method::POST, Method::PUT] {
            let response = app
                .api(method.clone(), "/config")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} {body}"
            );
            assert_client_error(response).await;
        }
    }
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn non_string_field_values_are_400() {
    let app = TestApp::spawn().await;
    let valid = json!({
        "provider_config_key": "k",
        "provider": "fake",
        "oauth_client_id": "i",
        "oauth_client_secret": "s",
        "oauth_scopes": "read",
    });
    for field in [
        "provider_config_key",
        "provider",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_scopes",
    ] {
        for bad in [json!(5), json!(["a"]), json!({"a": "b"}), json!(true)] {
            let mut body = valid.clone();
            body[field] = bad.clone();
            let response = app.post_json("/config", &body).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{field} = {bad}"
            );
            assert_client_error(response).await;
        }
    }
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(200 * 1024);
    let body = json!({
        "provider_config_key": "big",
        "provider": "fake",
        "oauth_client_id": "i",
        "oauth_client_secret": big,
        "oauth_scopes": "read",
    });
    for method in [Method::POST, Method::PUT] {
        let response = app
            .api(method.clone(), "/config")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{method}");
        assert_client_error(response).await;
    }
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn unknown_config_keys_are_400_everywhere() {
    let app = TestApp::spawn().await;
    let unknown = "There is no Provider Configuration matching this key.";
    assert_error(
        app.get("/config/nope").await,
        StatusCode::BAD_REQUEST,
        unknown,
    )
    .await;
    let response = app
        .put_json(
            "/config",
            &json!({"provider_config_key": "nope", "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s", "oauth_scopes": ""}),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, unknown).await;
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn non_utf8_connection_ids_are_400() {
    assert_non_utf8_paths_are_400(&[
        "/connection/%FF?provider_config_key=x",
        "/connection/%C3%28?provider_config_key=x",
        "/connection/x?provider_config_key=%FF",
    ])
    .await;
}

#[tokio::test]
async fn non_utf8_config_keys_are_400() {
    assert_non_utf8_paths_are_400(&["/config/%FF", "/config/%C3%28"]).await;
}

#[tokio::test]
async fn non_utf8_config_keys_in_a_flow_are_refused() {
    let app = TestApp::spawn().await;
    for path in [
        "/oauth/connect/%FF?connection_id=c1",
        "/oauth/connect/k?connection_id=%FF",
    ] {
        let response = app.anon(Method::GET, path).send().await.unwrap();
        let status = response.status();
        assert!(
            status.is_client_error() || status.is_server_error(),
            "GET {path}: {status}"
        );
        assert!(response.headers().get("location").is_none(), "GET {path}");
    }
    assert_unharmed(&app, &[]).await;
}

async fn assert_non_utf8_paths_are_400(paths: &[&str]) {
    let app = TestApp::spawn().await;
    for path in paths {
        let response = app.get(path).await;
        assert!(
            response.status().is_client_error(),
            "GET {path}: {}",
            response.status()
        );
        assert_client_error(response).await;
        let response = app.delete(path).await;
        assert!(
            response.status().is_client_error(),
            "DELETE {path}: {}",
            response.status()
        );
        assert_client_error(response).await;
    }
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn overlong_ids_are_400() {
    let app = TestApp::spawn().await;
    app.create_config("k", "fake", "").await;
    let long = "a".repeat(300);
    for path in [
        format!("/connection/{long}?provider_config_key=k"),
        format!("/connection/c?provider_config_key={long}"),
        format!("/config/{long}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "GET {path}");
        assert_client_error(response).await;
    }
    for path in [
        format!("/connection/{long}?provider_config_key=k"),
        format!("/config/{long}"),
    ] {
        let response = app.delete(&path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "DELETE {path}");
        assert_client_error(response).await;
    }
    let response = app
        .post_json(
            "/config",
            &json!({"provider_config_key": long, "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s", "oauth_scopes": ""}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_client_error(response).await;
    assert_unharmed(&app, &["k"]).await;
}

#[tokio::test]
async fn control_characters_in_ids_are_400() {
    let app = TestApp::spawn().await;
    let id = path_segment("a\nb");
    let response = app
        .get(&format!("/connection/{id}?provider_config_key=k"))
        .await;
    assert_client_error(response).await;
    let response = app
        .post_json(
            "/config",
            &json!({"provider_config_key": "a\u{0}b", "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s", "oauth_scopes": ""}),
        )
        .await;
    assert_client_error(response).await;
    assert_unharmed(&app, &[]).await;
}

#[tokio::test]
async fn dot_segments_cannot_be_created_as_ids() {
    let app = TestApp::spawn().await;
    app.create_config("openai", "fake-apikey", "").await;
    for id in [".", ".."] {
        let response = app
            .post_json(
                "/config",
                &json!({"provider_config_key": id, "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s", "oauth_scopes": ""}),
            )
            .await;
        let body = assert_client_error(response).await;
        assert_eq!(body["type"], "invalid_request", "{body}");
        let response = app
            .post_json(
                "/connection",
                &json!({"provider_config_key": "openai", "connection_id": id, "api_key": "sk-12345678"}),
            )
            .await;
        let body = assert_client_error(response).await;
        assert_eq!(body["type"], "invalid_request", "{body}");
    }
    assert_eq!(app.config_keys().await, ["openai"]);
    assert!(app.connections().await.is_empty());
}
