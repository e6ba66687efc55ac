//! Connect sessions of current Nango's kind: minted with an end user for any allowed
//! integration, used by flows that name no connection id (the server makes one), reusable until
//! they have made a connection or expired, never after.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{query_value, TestApp};

async fn mint(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/connect/sessions", &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

async fn session_view(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let response = app
        .anon(Method::GET, "/connect/session")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn enter_key(app: &TestApp, key: &str, token: &str, api_key: &str) -> (StatusCode, Value) {
    let response = app
        .anon(
            Method::POST,
            &format!(
                "/api-auth/api-key/{key}?connect_session_token={}",
                query_value(token)
            ),
        )
        .header("content-type", "application/json")
        .body(json!({"apiKey": api_key}).to_string())
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn an_oauth_flow_without_a_connection_id_makes_one_for_the_sessions_end_user() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    app.create_config("fake-2", "fake", "").await;
    let data = mint(
        &app,
        json!({
            "end_user": {"id": "u-1", "email": "u1@example.com", "display_name": "Una"},
            "organization": {"id": "org-9"},
            "tags": {"plan": "pro"},
            "allowed_integrations": ["fake-1"],
            "integrations_config_defaults": {"fake-1": {"authorization_params": {"prompt": "consent"}, "user_scopes": "a,b"}},
        }),
    )
    .await;
    let token = data["token"].as_str().unwrap().to_string();
    assert!(data["expires_at"].is_string());
    assert_eq!(
        data["connect_link"],
        format!("{}/connect/?session_token={token}", app.url("")).as_str()
    );

    // Reads do not use it up; it lists what it allows, by display name.
    for _ in 0..2 {
        let (status, view) = session_view(&app, &token).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["data"]["endUser"]["id"], "u-1");
        assert_eq!(view["data"]["allowed_integrations"], json!(["fake-1"]));
        let keys: Vec<&str> = view["data"]["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["unique_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["fake-1"]);
        assert_eq!(view["data"]["integrations"][0]["auth_mode"], "OAUTH2");
    }

    // An integration it does not allow: refused, and the token survives.
    let refused = app
        .connect(
            "fake-2",
            &format!("connect_session_token={}", query_value(&token)),
        )
        .await;
    assert_ne!(refused.status(), StatusCode::FOUND);
    // Nor may the browser choose the connection id.
    let chosen = app
        .connect(
            "fake-1",
            &format!(
                "connection_id=victim&connect_session_token={}",
                query_value(&token)
            ),
        )
        .await;
    assert_ne!(chosen.status(), StatusCode::FOUND);

    // A flow started and abandoned does not use it up either.
    let abandoned = app
        .start_flow(
            "fake-1",
            &format!("connect_session_token={}", query_value(&token)),
        )
        .await;
    let query: Vec<(String, String)> = abandoned.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("prompt".into(), "consent".into())),
        "{abandoned}"
    );
    assert!(
        query.contains(&("user_scope".into(), "a,b".into())),
        "{abandoned}"
    );

    let page = app
        .run_flow(
            "fake-1",
            &format!("connect_session_token={}", query_value(&token)),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let list: Value = app
        .get("/connections?endUserId=u-1")
        .await
        .json()
        .await
        .unwrap();
    let connections = list["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{list}");
    let id = connections[0]["connection_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert!(page.body.contains(id), "the page reports the id to the SDK");
    assert_eq!(connections[0]["end_user"]["organization"]["id"], "org-9");
    assert_eq!(connections[0]["tags"]["plan"], "pro");
    assert_eq!(connections[0]["tags"]["end_user_email"], "u1@example.com");

    // Used up: no more reads, and the abandoned flow cannot store a second connection.
    let (status, _) = session_view(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let callback = app.authorize_at_provider(&abandoned).await;
    let late = app.open(&callback).await;
    assert_ne!(late.status, StatusCode::OK, "{}", late.body);
    let list: Value = app.get("/connections").await.json().await.unwrap();
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn entered_credentials_under_a_session_get_a_new_id_and_failures_keep_the_token() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("openai", "fake-apikey", "").await;
    let token = mint(&app, json!({"end_user": {"id": "u-2"}})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    // A key not in the provider's format: refused in current Nango's envelope, token kept.
    let (status, body) = enter_key(&app, "openai", &token, "typo").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_credentials", "{body}");
    assert!(body["error"]["message"].is_string());

    let (status, body) = enter_key(&app, "openai", &token, "sk-12345678").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["providerConfigKey"], "openai");
    let id = body["connectionId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let full: Value = app
        .get(&format!("/connections/{id}?provider_config_key=openai"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["end_user"]["id"], "u-2");
    assert_eq!(full["credentials"]["apiKey"], "sk-12345678");

    // Never after.
    let (status, body) = enter_key(&app, "openai", &token, "sk-87654321").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_connect_session");
    let list: Value = app.get("/connections").await.json().await.unwrap();
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_reconnect_session_reauthorizes_its_connection_and_ended_sessions_stop() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "existing").await;
    let before = app.get_connection("fake-1", "existing").await;

    let response = app
        .post_json(
            "/connect/sessions/reconnect",
            &json!({"connection_id": "existing", "integration_id": "fake-1", "end_user": {"id": "u-3"}}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let (_, view) = session_view(&app, &token).await;
    assert_eq!(view["data"]["isReconnecting"], true);
    let page = app
        .run_flow(
            "fake-1",
            &format!("connect_session_token={}", query_value(&token)),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let after = app.get_connection("fake-1", "existing").await;
    assert_ne!(
        after["credentials"]["access_token"],
        before["credentials"]["access_token"]
    );
    let list: Value = app.get("/connections").await.json().await.unwrap();
    assert_eq!(list["connections"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["connections"][0]["end_user"]["id"], "u-3");

    // An unknown connection cannot be reconnected.
    let response = app
        .post_json(
            "/connect/sessions/reconnect",
            &json!({"connection_id": "nobody", "integration_id": "fake-1"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // DELETE /connect/session ends a session.
    let token = mint(&app, json!({"end_user": {"id": "u-4"}})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = app
        .anon(Method::DELETE, "/connect/session")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, body) = session_view(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_connect_session");
    let refused = app
        .connect(
            "fake-1",
            &format!("connect_session_token={}", query_value(&token)),
        )
        .await;
    assert_ne!(refused.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn session_bodies_are_checked() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    for (body, what) in [
        (
            json!({"allowed_integrations": ["nope"]}),
            "unknown integration",
        ),
        (json!({"allowed_integrations": []}), "empty list"),
        (json!({"end_user": {"id": ""}}), "empty end user id"),
        (json!({"end_user": {"id": "u", "age": 3}}), "unknown field"),
        (
            json!({"integrations_config_defaults": {"fake-1": {"authorization_params": {"redirect_uri": "https://evil.example"}}}}),
            "flow param",
        ),
        (
            json!({"allowed_integrations": ["fake-1"], "integrations_config_defaults": {"other": {}}}),
            "defaults outside",
        ),
        (
            json!({"webhook_url_override": "https://example.com"}),
            "webhook override",
        ),
    ] {
        let response = app.post_json("/connect/sessions", &body).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_body", "{what}: {answer}");
    }
    // The first form still answers as before.
    let response = app
        .post_json(
            "/connect/sessions",
            &json!({"provider_config_key": "fake-1", "connection_id": "u"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["connection_id"], "u");
    // And its token is not a session of the new kind.
    let (status, _) = session_view(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
