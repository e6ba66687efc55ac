//! `/config`: list, get, create, edit, delete, with Nango 0.9's validation messages (§1.4–1.8).

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_empty_ok, assert_error, TestApp, CLIENT_ID, CLIENT_SECRET};

fn full_body(key: &str) -> Value {
    json!({
        "provider_config_key": key,
        "provider": "fake",
        "oauth_client_id": "client-1",
        "oauth_client_secret": "secret-1",
        "oauth_scopes": "read,write",
    })
}

fn assert_iso_millis(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    assert!(
        text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.',
        "{text} is not ISO-8601 with milliseconds"
    );
    let at: DateTime<Utc> = text.parse().unwrap();
    let age = Utc::now() - at;
    assert!(age.num_seconds().abs() < 60, "{text} is not now");
}

#[tokio::test]
async fn create_config_answers_its_id_and_get_config_returns_the_row() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/config", &full_body("github-dev")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 1, "create answers only the id: {body}");
    let id = body["config_id"].as_i64().expect("integer config_id");

    let response = app.get("/config/github-dev").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    let config = &body["config"];
    assert_eq!(config["id"], id);
    assert_eq!(config["unique_key"], "github-dev");
    assert_eq!(config["provider"], "fake");
    assert_eq!(config["oauth_client_id"], "client-1");
    assert_eq!(config["oauth_client_secret"], "secret-1");
    assert_eq!(config["oauth_scopes"], "read,write");
    assert_eq!(config["account_id"], 0);
    assert_eq!(config["connection_config"], json!({}));
    assert_iso_millis(&config["created_at"]);
    assert_iso_millis(&config["updated_at"]);
    let keys: Vec<&str> = config
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "created_at",
            "updated_at",
            "unique_key",
            "provider",
            "oauth_client_id",
            "oauth_client_secret",
            "oauth_scopes",
            "account_id",
            // Ours, after the 0.9 fields: the operator's placeholder values.
            "connection_config"
        ]
    );

    let second = app.create_config("other", "fake", "").await;
    assert_ne!(second, id, "ids must differ");
}

#[tokio::test]
async fn create_config_normalises_scopes_to_a_comma_list() {
    let app = TestApp::spawn().await;
    let cases = [
        ("spaces", "user public_repo", "user,public_repo"),
        ("double-commas", "user,,public_repo", "user,public_repo"),
        ("mixed", " a , b  c,", "a,b,c"),
        ("empty", "", ""),
    ];
    for (key, given, stored) in cases {
        app.create_config(key, "fake", given).await;
        let body: Value = app
            .get(&format!("/config/{key}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["config"]["oauth_scopes"], stored, "scopes {given:?}");
    }
}

#[tokio::test]
async fn create_config_validates_fields_in_nango_order() {
    let app = TestApp::spawn().await;

    // No body at all.
    let response = app.api(Method::POST, "/config").send().await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "Missing request body.").await;

    let steps: [(Value, &str); 8] = [
        (json!({}), "Missing param 'provider_config_key'."),
        (
            json!({"provider_config_key": null, "provider": "fake"}),
            "Missing param 'provider_config_key'.",
        ),
        (
            json!({"provider_config_key": "k"}),
            "Missing param 'provider'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "no-such-provider", "oauth_client_id": "i"}),
            "No Provider Template matching the 'provider' parameter.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake"}),
            "Missing param 'oauth_client_id'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "i"}),
            "Missing param 'oauth_client_secret'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s"}),
            "Missing param 'oauth_scopes'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s", "oauth_scopes": null}),
            "Missing param 'oauth_scopes'.",
        ),
    ];
    for (body, message) in steps {
        let response = app.post_json("/config", &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, message).await;
    }
    assert!(
        app.config_keys().await.is_empty(),
        "a refused create wrote a row"
    );

    // Empty strings pass ("null" means absent or null).
    let response = app
        .post_json(
            "/config",
            &json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "", "oauth_client_secret": "", "oauth_scopes": ""}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.config_keys().await, ["k"]);
}

#[tokio::test]
async fn create_config_refuses_a_duplicate_key() {
    let app = TestApp::spawn().await;
    app.create_config("dup", "fake", "read").await;
    let mut body = full_body("dup");
    body["oauth_client_id"] = json!("another-client");
    let response = app.post_json("/config", &body).await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "There is already a Provider Configuration matching the param 'provider_config_key'.",
    )
    .await;
    // The first config is untouched and there is still one.
    assert_eq!(app.config_keys().await, ["dup"]);
    let config: Value = app.get("/config/dup").await.json().await.unwrap();
    assert_eq!(config["config"]["oauth_client_id"], CLIENT_ID);
}

#[tokio::test]
async fn list_configs_returns_every_row_in_creation_order() {
    let app = TestApp::spawn().await;
    let response = app.get("/config").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"configs": []})
    );

    let a = app.create_config("zeta", "fake", "a b").await;
    let b = app.create_config("alpha", "fake-basic", "").await;
    let body: Value = app.get("/config").await.json().await.unwrap();
    let configs = body["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    assert_eq!(configs[0]["id"], a);
    assert_eq!(configs[0]["unique_key"], "zeta");
    assert_eq!(configs[0]["oauth_scopes"], "a,b");
    assert_eq!(configs[0]["oauth_client_secret"], CLIENT_SECRET);
    assert_eq!(configs[1]["id"], b);
    assert_eq!(configs[1]["unique_key"], "alpha");
    assert_eq!(configs[1]["provider"], "fake-basic");
}

#[tokio::test]
async fn get_unknown_config_is_400() {
    let app = TestApp::spawn().await;
    let response = app.get("/config/nope").await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "There is no Provider Configuration matching this key.",
    )
    .await;
}

#[tokio::test]
async fn edit_config_updates_the_row_and_answers_an_empty_200() {
    let app = TestApp::spawn().await;
    let id = app.create_config("k", "fake", "read").await;
    let before: Value = app.get("/config/k").await.json().await.unwrap();

    let response = app
        .put_json(
            "/config",
            &json!({
                "provider_config_key": "k",
                "provider": "fake-basic",
                "oauth_client_id": "new-id",
                "oauth_client_secret": "new-secret",
                "oauth_scopes": "x y",
            }),
        )
        .await;
    assert_empty_ok(response).await;

    let after: Value = app.get("/config/k").await.json().await.unwrap();
    let config = &after["config"];
    assert_eq!(config["id"], id);
    assert_eq!(config["provider"], "fake-basic");
    assert_eq!(config["oauth_client_id"], "new-id");
    assert_eq!(config["oauth_client_secret"], "new-secret");
    // PUT stores scopes as given (no normalisation in 0.9).
    assert_eq!(config["oauth_scopes"], "x y");
    assert_eq!(config["created_at"], before["config"]["created_at"]);
    assert_eq!(app.config_keys().await, ["k"]);
}

#[tokio::test]
async fn edit_config_validates_fields_and_refuses_unknown_keys() {
    let app = TestApp::spawn().await;
    app.create_config("k", "fake", "read").await;

    let response = app.api(Method::PUT, "/config").send().await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "Missing request body.").await;
    let steps: [(Value, &str); 5] = [
        (json!({}), "Missing param 'provider_config_key'."),
        (
            json!({"provider_config_key": "k"}),
            "Missing param 'provider'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake"}),
            "Missing param 'oauth_client_id'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "i"}),
            "Missing param 'oauth_client_secret'.",
        ),
        (
            json!({"provider_config_key": "k", "provider": "fake", "oauth_client_id": "i", "oauth_client_secret": "s"}),
            "Missing param 'oauth_scopes'.",
        ),
    ];
    for (body, message) in steps {
        let response = app.put_json("/config", &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, message).await;
    }

    let response = app.put_json("/config", &full_body("unknown")).await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "There is no Provider Configuration matching this key.",
    )
    .await;
    // Neither created nor changed anything.
    assert_eq!(app.config_keys().await, ["k"]);
    let config: Value = app.get("/config/k").await.json().await.unwrap();
    assert_eq!(config["config"]["oauth_client_id"], CLIENT_ID);
}

#[tokio::test]
async fn delete_config_answers_an_empty_200_even_for_unknown_keys() {
    let app = TestApp::spawn().await;
    app.create_config("a", "fake", "").await;
    app.create_config("b", "fake", "").await;

    assert_empty_ok(app.delete("/config/a").await).await;
    assert_eq!(app.config_keys().await, ["b"]);
    let response = app.get("/config/a").await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "There is no Provider Configuration matching this key.",
    )
    .await;

    assert_empty_ok(app.delete("/config/a").await).await;
    assert_empty_ok(app.delete("/config/never-existed").await).await;
    assert_eq!(app.config_keys().await, ["b"]);

    // The key can be used again.
    app.create_config("a", "fake", "").await;
    assert_eq!(app.config_keys().await, ["b", "a"]);
}
