//! Current Nango's connection routes (`/connections/...`, `@nangohq/node` 0.71): the same
//! connections as `/connection/...`, in today's shape and error envelope.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_connection_is_read_in_current_nangos_shape_and_deleted() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    let old = app.get_connection("fake-1", "c1").await;
    assert!(
        old["credentials"]["raw"]["refresh_token"].is_string(),
        "{old}"
    );

    let response = app
        .get("/connections/c1?provider_config_key=fake-1&force_refresh=false&refresh_token=false&refresh_github_app_jwt_token=false")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["connection_id"], "c1");
    assert_eq!(body["provider_config_key"], "fake-1");
    assert_eq!(body["provider"], "fake");
    assert_eq!(body["errors"], serde_json::json!([]));
    assert_eq!(body["end_user"], Value::Null);
    assert_eq!(body["tags"], serde_json::json!({}));
    assert!(body.get("account_id").is_none(), "{body}");
    assert!(body["last_fetched_at"].is_string());
    let credentials = &body["credentials"];
    assert_eq!(credentials["type"], "OAUTH2");
    assert_eq!(
        credentials["access_token"],
        old["credentials"]["access_token"]
    );
    // The refresh token only when asked for, and never in the raw response otherwise.
    assert!(credentials.get("refresh_token").is_none(), "{credentials}");
    assert!(
        credentials["raw"].get("refresh_token").is_none(),
        "{credentials}"
    );
    let with: Value = app
        .get("/connections/c1?provider_config_key=fake-1&refresh_token=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        with["credentials"]["refresh_token"],
        old["credentials"]["refresh_token"]
    );

    // force_refresh goes through the same refresh path as /connection.
    let forced: Value = app
        .get("/connections/c1?provider_config_key=fake-1&force_refresh=true")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        forced["credentials"]["access_token"],
        old["credentials"]["access_token"]
    );
    assert_eq!(app.provider.refresh_count(), 1);

    // Unknown connection: 404 in today's envelope; a bad flag: 400.
    let missing = app
        .get("/connections/nobody?provider_config_key=fake-1")
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    assert!(error["error"]["message"].is_string());
    let bad = app
        .get("/connections/c1?provider_config_key=fake-1&refresh_token=yes")
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_query_params");

    // Delete: {success: true}, then 400 unknown_connection; the 0.9 route sees it gone too.
    let deleted = app
        .delete("/connections/c1?provider_config_key=fake-1")
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(deleted.json::<Value>().await.unwrap()["success"], true);
    let again = app
        .delete("/connections/c1?provider_config_key=fake-1")
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_connection"
    );
    app.assert_no_connection("fake-1", "c1").await;
}

#[tokio::test]
async fn connections_are_listed_with_current_nangos_filters() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.create_config("fake-2", "fake", "").await;
    for (key, id) in [
        ("fake-1", "alice-1"),
        ("fake-1", "bob-1"),
        ("fake-2", "alice-2"),
    ] {
        app.authorize(key, id).await;
    }
    let list = |query: &'static str| {
        let app = &app;
        async move {
            let response = app.get(&format!("/connections{query}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            let body: Value = response.json().await.unwrap();
            body["connections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["connection_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, ["alice-1", "bob-1", "alice-2"]);
    assert_eq!(list("?connectionId=bob-1").await, ["bob-1"]);
    assert_eq!(list("?integrationId=fake-2").await, ["alice-2"]);
    assert_eq!(
        list("?integrationId=fake-1,fake-2&search=ALICE").await,
        ["alice-1", "alice-2"]
    );
    assert_eq!(list("?limit=2&page=1").await, ["alice-2"]);
    // No connection has an end user or tags yet.
    assert!(list("?endUserId=u1").await.is_empty());
    assert!(list("?tags[team]=x").await.is_empty());

    let body: Value = app
        .get("/connections?connectionId=alice-2")
        .await
        .json()
        .await
        .unwrap();
    let line = &body["connections"][0];
    assert_eq!(line["provider_config_key"], "fake-2");
    assert_eq!(line["provider"], "fake");
    assert!(line["id"].is_i64() && line["created"].is_string());
    assert_eq!(line["metadata"], serde_json::json!({}));
    assert_eq!(line["end_user"], Value::Null);
    assert!(line.get("credentials").is_none(), "{line}");

    for bad in [
        "?limit=0",
        "?limit=2001",
        "?page=-1",
        "?page=2147483648",
        "?limit=x",
    ] {
        let response = app.get(&format!("/connections{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_query_params", "{bad}");
    }
}
