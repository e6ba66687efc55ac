//! `/connection`: get (with its error order), list and delete (§1.9–1.11).

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_empty_ok, assert_error, TestApp};

const MISSING_KEY: &str = "Missing param 'provider_config_key'.";
const UNKNOWN_CONNECTION: &str =
    "No connection matching params 'connection_id' and 'provider_config_key'.";
const UNKNOWN_CONFIG: &str = "There is no Provider Configuration matching this key.";

#[tokio::test]
async fn get_connection_requires_provider_config_key() {
    let app = TestApp::spawn().await;
    for path in [
        "/connection/c1",
        "/connection/c1?provider_config_key=",
        "/connection/c1?other=x",
    ] {
        assert_error(app.get(path).await, StatusCode::BAD_REQUEST, MISSING_KEY).await;
    }
}

#[tokio::test]
async fn get_unknown_connection_is_400() {
    let app = TestApp::spawn().await;
    // Neither connection nor config exist: the connection is looked up first.
    let response = app.get("/connection/c1?provider_config_key=nope").await;
    assert_error(response, StatusCode::BAD_REQUEST, UNKNOWN_CONNECTION).await;

    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    // Right id, wrong key; right key, wrong id.
    app.create_config("fake-2", "fake", "").await;
    let response = app.get("/connection/c1?provider_config_key=fake-2").await;
    assert_error(response, StatusCode::BAD_REQUEST, UNKNOWN_CONNECTION).await;
    let response = app.get("/connection/c2?provider_config_key=fake-1").await;
    assert_error(response, StatusCode::BAD_REQUEST, UNKNOWN_CONNECTION).await;
}

#[tokio::test]
async fn a_connection_whose_config_was_deleted_is_unknown_config() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    assert_empty_ok(app.delete("/config/fake-1").await).await;
    // The connection is orphaned, not deleted (§1.8).
    let response = app.get("/connection/c1?provider_config_key=fake-1").await;
    assert_error(response, StatusCode::BAD_REQUEST, UNKNOWN_CONFIG).await;
    assert_eq!(app.connections().await.len(), 1);
}

#[tokio::test]
async fn get_connection_returns_the_full_row_in_nango_key_order() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "read").await;
    app.authorize("fake-1", "c1").await;
    let connection = app.get_connection("fake-1", "c1").await;
    let keys: Vec<&str> = connection
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
            "provider_config_key",
            "connection_id",
            "credentials",
            "connection_config",
            "account_id",
            "metadata"
        ]
    );
    assert!(connection["id"].is_i64());
    assert_eq!(connection["provider_config_key"], "fake-1");
    assert_eq!(connection["connection_id"], "c1");
    assert_eq!(connection["connection_config"], json!({}));
    assert_eq!(connection["metadata"], json!({}));
    assert_eq!(connection["account_id"], 0);
    let created: DateTime<Utc> = connection["created_at"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now() - created).num_seconds().abs() < 60);
}

#[tokio::test]
async fn list_connections_names_the_config_key_provider() {
    let app = TestApp::spawn().await;
    assert!(app.connections().await.is_empty());
    app.create_config("fake-1", "fake", "").await;
    app.create_config("fake-2", "fake-basic", "").await;
    app.authorize("fake-1", "c1").await;
    app.authorize("fake-2", "c2").await;

    let response = app.get("/connection").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let list = body["connections"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{body}");
    let mut seen: Vec<(String, String)> = Vec::new();
    for item in list {
        let keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["connection_id", "provider", "created"], "{item}");
        let created: DateTime<Utc> = item["created"].as_str().unwrap().parse().unwrap();
        assert!((Utc::now() - created).num_seconds().abs() < 60);
        seen.push((
            item["connection_id"].as_str().unwrap().into(),
            item["provider"].as_str().unwrap().into(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("c1".to_string(), "fake-1".to_string()),
            ("c2".to_string(), "fake-2".to_string())
        ]
    );
}

#[tokio::test]
async fn delete_connection_checks_its_params_and_answers_an_empty_200() {
    let app = TestApp::spawn().await;
    assert_error(
        app.delete("/connection/c1").await,
        StatusCode::BAD_REQUEST,
        MISSING_KEY,
    )
    .await;
    assert_error(
        app.delete("/connection/c1?provider_config_key=fake-1")
            .await,
        StatusCode::BAD_REQUEST,
        UNKNOWN_CONNECTION,
    )
    .await;

    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    app.authorize("fake-1", "c2").await;
    assert_empty_ok(
        app.delete("/connection/c1?provider_config_key=fake-1")
            .await,
    )
    .await;
    app.assert_no_connection("fake-1", "c1").await;
    let remaining: Vec<Value> = app.connections().await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["connection_id"], "c2");
    // Deleting again: unknown.
    assert_error(
        app.delete("/connection/c1?provider_config_key=fake-1")
            .await,
        StatusCode::BAD_REQUEST,
        UNKNOWN_CONNECTION,
    )
    .await;
}
