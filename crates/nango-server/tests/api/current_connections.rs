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
