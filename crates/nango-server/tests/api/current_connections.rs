//! Current Nango's connection routes (`/connections/...`, `@nangohq/node` 0.71): the same
//! connections as `/connection/...`, in today's shape and error envelope.

use reqwest::StatusCode;
use serde_json::{json, Value};

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

#[tokio::test]
async fn imported_oauth_tokens_are_served_and_refreshed_with_the_imported_refresh_token() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let refresh_token = app.provider.register_refresh_token();
    let (status, created) = app.send_json(
        Method::POST,
        "/connections",
        Some(json!({
            "provider_config_key": "fake-1",
            "connection_id": "imported-1",
            "credentials": {
                "type": "OAUTH2",
                "access_token": "old-access",
                "refresh_token": refresh_token,
                "expires_at": "2020-01-01T00:00:00.000Z",
            },
            "metadata": {"team": "a"},
            "end_user": {"id": "u-7", "email": "u7@example.com", "organization": {"id": "org-1"}},
            "tags": {"plan": "pro"},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["connection_id"], "imported-1");
    assert_eq!(created["credentials"]["access_token"], "old-access");
    assert_eq!(
        created["credentials"]["refresh_token"],
        refresh_token.as_str()
    );
    assert_eq!(created["metadata"], json!({"team": "a"}));
    assert_eq!(created["end_user"]["id"], "u-7");
    assert_eq!(created["end_user"]["organization"]["id"], "org-1");
    assert_eq!(created["tags"]["plan"], "pro");
    assert_eq!(created["tags"]["end_user_id"], "u-7");
    assert_eq!(created["tags"]["end_user_email"], "u7@example.com");
    // No provider was called to import it.
    assert_eq!(app.provider.token_requests().len(), 0);

    // Expired: the first read refreshes it with the imported refresh token.
    let fresh = app.get_connection("fake-1", "imported-1").await;
    assert_ne!(fresh["credentials"]["access_token"], "old-access");
    assert_eq!(app.provider.refresh_count(), 1);
    assert_eq!(
        app.provider.refresh_requests()[0].param("refresh_token"),
        Some(refresh_token.as_str())
    );

    // Without an id, one is made (a UUID); an unexpiring token is served as it is.
    let (status, made) = app
        .send_json(
            Method::POST,
            "/connections",
            Some(json!({
                "provider_config_key": "fake-1",
                "credentials": {"type": "OAUTH2", "access_token": "forever"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["connection_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(made["end_user"], Value::Null);
    let served = app.get_connection("fake-1", id).await;
    assert_eq!(served["credentials"]["access_token"], "forever");
    assert_eq!(app.provider.refresh_count(), 1);
}

#[tokio::test]
async fn imports_that_do_not_fit_store_nothing() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.create_config("cc", "fake-cc-mode", "").await;
    for (body, code, what) in [
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "API_KEY", "apiKey": "sk-abcdefgh"}}),
            "invalid_body",
            "wrong mode",
        ),
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "OAUTH2", "access_token": ""}}),
            "invalid_body",
            "empty token",
        ),
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "OAUTH2"}}),
            "invalid_body",
            "no token",
        ),
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "OAUTH2", "access_token": "t", "expires_at": "tomorrow"}}),
            "invalid_body",
            "bad expiry",
        ),
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "OAUTH2", "access_token": "t"}, "webhook_url_override": "https://example.com"}),
            "invalid_body",
            "webhook override",
        ),
        (
            json!({"provider_config_key": "fake-1", "connection_id": "x", "credentials": {"type": "OAUTH2", "access_token": "t"}, "end_user": {"id": ""}}),
            "invalid_body",
            "empty end user id",
        ),
        (
            json!({"provider_config_key": "nope", "connection_id": "x", "credentials": {"type": "OAUTH2", "access_token": "t"}}),
            "unknown_provider_config",
            "unknown config",
        ),
        (
            json!({"provider_config_key": "cc", "connection_id": "x", "credentials": {"type": "OAUTH2_CC", "token": "t", "client_id": "another-app", "client_secret": "s"}}),
            "invalid_body",
            "another app",
        ),
    ] {
        let (status, answer) = app
            .send_json(Method::POST, "/connections", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
    }
    assert!(app.connections().await.is_empty());
    // The config's own app: imported, served without a token request.
    let client_id = {
        let config: Value = app.get("/config/cc").await.json().await.unwrap();
        config["config"]["oauth_client_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (status, made) = app.send_json(
        Method::POST,
        "/connections",
        Some(json!({"provider_config_key": "cc", "connection_id": "m", "credentials": {"type": "OAUTH2_CC", "token": "cc-token", "client_id": client_id, "expires_at": "2099-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        app.get_connection("cc", "m").await["credentials"]["token"],
        "cc-token"
    );
    assert_eq!(app.provider.token_requests().len(), 0);
}

#[tokio::test]
async fn end_users_and_tags_filter_the_list_and_change_with_patch() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let import = |id: &str, user: Value, tags: Value| {
        json!({
            "provider_config_key": "fake-1", "connection_id": id,
            "credentials": {"type": "OAUTH2", "access_token": format!("t-{id}")},
            "end_user": user, "tags": tags,
        })
    };
    for body in [
        import(
            "a",
            json!({"id": "u1", "display_name": "Ann", "organization": {"id": "o1"}}),
            json!({"env": "prod"}),
        ),
        import(
            "b",
            json!({"id": "u2", "organization": {"id": "o1"}}),
            json!({"env": "test"}),
        ),
        import("c", json!({"id": "u1"}), json!({})),
    ] {
        let (status, answer) = app
            .send_json(Method::POST, "/connections", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    app.authorize("fake-1", "no-owner").await;
    let ids = |query: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .send_json(Method::GET, &format!("/connections{query}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["connections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["connection_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("?endUserId=u1").await, ["a", "c"]);
    assert_eq!(ids("?endUserOrganizationId=o1").await, ["a", "b"]);
    assert_eq!(ids("?tags[env]=prod").await, ["a"]);
    assert_eq!(ids("?tags%5Benv%5D=test").await, ["b"]);
    assert_eq!(ids("?tags[end_user_display_name]=Ann").await, ["a"]);
    assert_eq!(ids("?endUserId=u1&tags[env]=prod").await, ["a"]);
    assert_eq!(ids("?endUserId=nobody").await, Vec::<String>::new());
    assert_eq!(ids("").await.len(), 4);
    let (_, list) = app
        .send_json(Method::GET, "/connections?connectionId=a", None)
        .await;
    assert_eq!(list["connections"][0]["end_user"]["display_name"], "Ann");
    assert_eq!(list["connections"][0]["end_user"]["email"], Value::Null);

    // PATCH: new tags replace, a new end user moves the connection.
    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/connections/no-owner?provider_config_key=fake-1",
            Some(json!({"end_user": {"id": "u3"}, "tags": {"env": "prod"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"success": true}));
    assert_eq!(ids("?endUserId=u3").await, ["no-owner"]);
    assert_eq!(ids("?tags[env]=prod").await, ["a", "no-owner"]);
    // The credentials are untouched by it.
    let (_, full) = app
        .send_json(
            Method::GET,
            "/connections/no-owner?provider_config_key=fake-1",
            None,
        )
        .await;
    assert!(full["credentials"]["access_token"].is_string());
    assert_eq!(full["end_user"]["id"], "u3");

    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/connections/nobody?provider_config_key=fake-1",
            Some(json!({"tags": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_connection");
    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/connections/a?provider_config_key=fake-1",
            Some(json!({"tags": {"x": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn metadata_is_set_and_merged_on_all_named_connections_or_none() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "a").await;
    app.authorize("fake-1", "b").await;
    let body = json!({"connection_id": ["a", "b"], "provider_config_key": "fake-1", "metadata": {"x": 1, "y": {"z": true}}});
    let (status, answer) = app
        .send_json(Method::POST, "/connections/metadata", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, body);
    let (status, answer) = app.send_json(
        Method::PATCH,
        "/connections/metadata",
        Some(json!({"connection_id": "a", "provider_config_key": "fake-1", "metadata": {"x": 2, "w": "new"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let metadata = |id: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .send_json(
                    Method::GET,
                    &format!("/connections/{id}?provider_config_key=fake-1"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            body["metadata"].clone()
        }
    };
    assert_eq!(
        metadata("a").await,
        json!({"x": 2, "y": {"z": true}, "w": "new"})
    );
    assert_eq!(metadata("b").await, json!({"x": 1, "y": {"z": true}}));
    // The credentials still open (they are sealed with the metadata) and still refresh.
    let forced: Value = app
        .get("/connections/a?provider_config_key=fake-1&force_refresh=true")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        forced["credentials"]["access_token"].is_string(),
        "{forced}"
    );

    // One unknown connection: 404, and nothing written on the others.
    let (status, answer) = app.send_json(
        Method::POST,
        "/connections/metadata",
        Some(json!({"connection_id": ["b", "ghost"], "provider_config_key": "fake-1", "metadata": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_connection");
    assert_eq!(metadata("b").await, json!({"x": 1, "y": {"z": true}}));
    let (status, _) = app
        .send_json(
            Method::POST,
            "/connections/metadata",
            Some(
                json!({"connection_id": "b", "provider_config_key": "fake-1", "metadata": "text"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Per connection.
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/connections/b/metadata?provider_config_key=fake-1",
            Some(json!({"only": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/connections/b/metadata?provider_config_key=fake-1",
            Some(json!({"more": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = app
        .send_json(
            Method::GET,
            "/connections/b/metadata?provider_config_key=fake-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"only": 1, "more": 2}));
    let (status, answer) = app
        .send_json(
            Method::GET,
            "/connections/ghost/metadata?provider_config_key=fake-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn what_is_not_offered_answers_json_in_the_envelope_its_client_reads() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    // Current Nango's product beyond a token broker, and frontend auth modes not offered here.
    for (method, path) in [
        (Method::GET, "/records?model=Contact"),
        (Method::POST, "/action/trigger"),
        (Method::POST, "/sync/trigger"),
        (Method::POST, "/auth/tba/some-key"),
        (Method::POST, "/oauth2/auth/some-key"),
        (Method::GET, "/integrations/some-key/functions"),
    ] {
        let (status, body) = app.send_json(method.clone(), path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(
            body["error"]["code"], "not_found",
            "{method} {path}: {body}"
        );
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // A known path with a method it does not take: 405 in JSON, in its contract's envelope.
    let (status, body) = app
        .send_json(Method::POST, "/integrations/quickstart", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let (status, body) = app
        .send_json(Method::PATCH, "/config", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["type"], "method_not_allowed", "{body}");
    // Nango 0.9's paths keep its envelope.
    let (status, body) = app.send_json(Method::GET, "/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "not_found", "{body}");
}

#[tokio::test]
async fn tag_names_are_kept_in_lower_case_as_current_clients_filter_them() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "a").await;
    let (status, _) = app
        .send_json(
            Method::PATCH,
            "/connections/a?provider_config_key=fake-1",
            Some(json!({"tags": {"Plan": "Pro"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app
        .send_json(Method::GET, "/connections?tags[plan]=Pro", None)
        .await;
    assert_eq!(list["connections"][0]["tags"], json!({"plan": "Pro"}));
    let (_, list) = app
        .send_json(Method::GET, "/connections?tags[PLAN]=Pro", None)
        .await;
    assert_eq!(list["connections"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = app
        .send_json(Method::GET, "/connections?tags[plan]=pro", None)
        .await;
    assert_eq!(
        list["connections"].as_array().unwrap().len(),
        0,
        "values keep their case: {list}"
    );
}
