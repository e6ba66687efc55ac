//! Current Nango's `/integrations` (`@nangohq/node` 0.71's integration methods): the provider
//! configs of `/config`, in today's shapes and error envelope.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestApp;

#[tokio::test]
async fn integrations_are_created_read_changed_and_deleted_over_the_configs() {
    let app = TestApp::spawn().await;
    let (status, created) = app.send_json(
        Method::POST,
        "/integrations",
        Some(json!({
            "provider": "fake",
            "unique_key": "fake-int",
            "display_name": "Fake CRM",
            "credentials": {"type": "OAUTH2", "client_id": "cid-1", "client_secret": "cs-1", "scopes": "read write"},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["data"]["unique_key"], "fake-int");
    assert_eq!(created["data"]["provider"], "fake");
    assert_eq!(created["data"]["display_name"], "Fake CRM");
    assert!(created["data"]["created_at"].is_string());
    assert!(created["data"].get("credentials").is_none(), "{created}");

    // The same config as 0.9's /config sees it: scopes normalised, secret stored.
    let config: Value = app.get("/config/fake-int").await.json().await.unwrap();
    assert_eq!(config["config"]["oauth_client_id"], "cid-1");
    assert_eq!(config["config"]["oauth_client_secret"], "cs-1");
    assert_eq!(config["config"]["oauth_scopes"], "read,write");

    // A flow runs with it.
    app.authorize("fake-int", "u1").await;
    assert_eq!(
        app.get_connection("fake-int", "u1").await["connection_id"],
        "u1"
    );

    let (status, list) = app.send_json(Method::GET, "/integrations", None).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["unique_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["fake-int"]);

    let (_, plain) = app
        .send_json(Method::GET, "/integrations/fake-int", None)
        .await;
    assert!(plain["data"].get("credentials").is_none(), "{plain}");
    let (status, with) = app
        .send_json(
            Method::GET,
            "/integrations/fake-int?include=credentials&include=webhook",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{with}");
    assert_eq!(
        with["data"]["credentials"],
        json!({"type": "OAUTH2", "client_id": "cid-1", "client_secret": "cs-1", "scopes": "read,write", "webhook_secret": null})
    );
    assert_eq!(with["data"]["webhook_url"], Value::Null);
    // axios sends arrays as include[]=...
    let (_, brackets) = app
        .send_json(
            Method::GET,
            "/integrations/fake-int?include[]=credentials",
            None,
        )
        .await;
    assert_eq!(brackets["data"]["credentials"]["client_id"], "cid-1");

    // PATCH: new name and OAuth app; the key cannot change while a connection uses it.
    let (status, patched) = app.send_json(
        Method::PATCH,
        "/integrations/fake-int",
        Some(json!({"display_name": "Renamed", "credentials": {"type": "OAUTH2", "client_id": "cid-2", "client_secret": "cs-2"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["data"]["display_name"], "Renamed");
    let (_, with) = app
        .send_json(
            Method::GET,
            "/integrations/fake-int?include=credentials",
            None,
        )
        .await;
    assert_eq!(with["data"]["credentials"]["client_id"], "cid-2");
    assert_eq!(with["data"]["credentials"]["client_secret"], "cs-2");
    let (status, refused) = app
        .send_json(
            Method::PATCH,
            "/integrations/fake-int",
            Some(json!({"unique_key": "fake-new"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_body");
    assert!(app.config_keys().await.contains(&"fake-int".to_string()));

    // Without connections the key changes, and the secret still opens under the new key.
    assert_eq!(
        app.delete("/connection/u1?provider_config_key=fake-int")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, renamed) = app
        .send_json(
            Method::PATCH,
            "/integrations/fake-int",
            Some(json!({"unique_key": "fake-new"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["data"]["unique_key"], "fake-new");
    assert_eq!(renamed["data"]["display_name"], "Renamed");
    assert_eq!(renamed["data"]["created_at"], created["data"]["created_at"]);
    let (_, with) = app
        .send_json(
            Method::GET,
            "/integrations/fake-new?include=credentials",
            None,
        )
        .await;
    assert_eq!(with["data"]["credentials"]["client_secret"], "cs-2");
    let (status, gone) = app
        .send_json(Method::GET, "/integrations/fake-int", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"]["code"], "not_found");
    app.authorize("fake-new", "u2").await;

    let (status, deleted) = app
        .send_json(Method::DELETE, "/integrations/fake-new", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, json!({"success": true}));
    let (status, again) = app
        .send_json(Method::DELETE, "/integrations/fake-new", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(again["error"]["code"], "not_found");
    assert!(app.config_keys().await.is_empty());
}

#[tokio::test]
async fn integration_bodies_are_checked_against_the_providers_auth_mode() {
    let app = TestApp::spawn().await;
    let post = |body: Value| app.send_json(Method::POST, "/integrations", Some(body));

    // An OAuth provider needs its app; an API-key provider takes none.
    let (status, body) = post(json!({"provider": "fake", "unique_key": "a"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_body");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Missing credentials"),
        "{body}"
    );
    let (status, body) = post(json!({
        "provider": "fake-apikey", "unique_key": "k",
        "credentials": {"type": "OAUTH2", "client_id": "x", "client_secret": "y"},
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(json!({"provider": "fake-apikey", "unique_key": "k"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, with) = app
        .send_json(Method::GET, "/integrations/k?include=credentials", None)
        .await;
    assert_eq!(with["data"]["credentials"], Value::Null, "{with}");

    // A type that is not the provider's, unknown providers and fields, a taken key, empty names.
    for (body, what) in [
        (
            json!({"provider": "fake", "unique_key": "b", "credentials": {"type": "OAUTH1", "client_id": "x", "client_secret": "y"}}),
            "wrong type",
        ),
        (
            json!({"provider": "no-such-provider", "unique_key": "b"}),
            "unknown provider",
        ),
        (
            json!({"provider": "fake-apikey", "unique_key": "b", "color": "red"}),
            "unknown field",
        ),
        (
            json!({"provider": "fake-apikey", "unique_key": "k"}),
            "taken key",
        ),
        (
            json!({"provider": "fake-apikey", "unique_key": "b", "display_name": " "}),
            "blank name",
        ),
        (
            json!({"provider": "fake-apikey", "unique_key": ""}),
            "empty key",
        ),
        (
            json!({"provider": "fake", "unique_key": "b", "credentials": {"type": "OAUTH2", "client_id": "", "client_secret": "y"}}),
            "empty client id",
        ),
        (json!({"unique_key": "b"}), "no provider"),
    ] {
        let (status, answer) = post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_body", "{what}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{what}: {answer}");
    }
    assert_eq!(app.config_keys().await, ["k"]);

    let (status, body) = app
        .send_json(
            Method::PATCH,
            "/integrations/nothing",
            Some(json!({"display_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .send_json(Method::GET, "/integrations/k?include=secrets", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query_params");
}

#[tokio::test]
async fn a_rename_to_a_taken_key_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("one", "fake", "").await;
    app.create_config("two", "fake", "").await;
    let (status, body) = app
        .send_json(
            Method::PATCH,
            "/integrations/one",
            Some(json!({"unique_key": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    assert_eq!(app.config_keys().await, ["one", "two"]);
    // Both still open (the secret of `one` was not resealed for `two`).
    for key in ["one", "two"] {
        app.authorize(key, "u").await;
        assert_eq!(app.get_connection(key, "u").await["connection_id"], "u");
    }
}

#[tokio::test]
async fn current_routes_refuse_a_missing_or_wrong_key_in_current_nangos_envelope() {
    let app = TestApp::spawn_with_secret_key().await;
    for path in [
        "/integrations",
        "/connections",
        "/connections/x?provider_config_key=y",
    ] {
        let missing = app.anon(Method::GET, path).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let body: Value = missing.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "missing_auth_header",
            "{path}: {body}"
        );
        let wrong = app
            .anon(Method::GET, path)
            .bearer_auth("not-the-key")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unknown_account", "{path}: {body}");
    }
    // 0.9's routes keep 0.9's envelope.
    let body: Value = app
        .anon(Method::GET, "/config")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["error"].is_string(), "{body}");
    let (status, _) = app.send_json(Method::GET, "/integrations", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn providers_carry_current_nangos_data_key() {
    let app = TestApp::spawn().await;
    let list: Value = app
        .get("/providers?search=fake-apikey")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["providers"][0]["name"], "fake-apikey");
    assert_eq!(list["data"][0]["name"], "fake-apikey");
    assert_eq!(list["data"][0]["auth_mode"], "API_KEY");
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        list["providers"].as_array().unwrap().len()
    );
    let one: Value = app.get("/providers/fake").await.json().await.unwrap();
    assert_eq!(one["name"], "fake");
    assert_eq!(one["data"]["name"], "fake");
    assert_eq!(one["data"]["auth_mode"], "OAUTH2");
    assert_eq!(one["data"]["token_url"], one["template"]["token_url"]);
}
