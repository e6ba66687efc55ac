//! The OAuth 2 flow end to end (§3): what the authorize redirect and the code exchange carry for
//! each template variant, and what is stored.

use base64::Engine;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    path_segment, query_pairs, query_param, query_value, TestApp, CLIENT_ID, CLIENT_SECRET,
};

/// Base64url without padding of a SHA-256 digest: 43 characters.
fn looks_like_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn authorize_redirect_carries_the_oauth2_parameters() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "read write").await;
    let url = app.start_flow("fake-1", "connection_id=c1").await;

    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        format!("{}/authorize", app.provider.base_url)
    );
    let names: Vec<String> = query_pairs(&url).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method"
        ],
        "{url}"
    );
    assert_eq!(query_param(&url, "response_type").unwrap(), "code");
    assert_eq!(query_param(&url, "client_id").unwrap(), CLIENT_ID);
    assert_eq!(
        query_param(&url, "redirect_uri").unwrap(),
        app.url("/oauth/callback")
    );
    // Stored as "read,write", joined with the default separator (a space), form-encoded.
    assert_eq!(query_param(&url, "scope").unwrap(), "read write");
    assert!(url.query().unwrap().contains("&scope=read+write&"), "{url}");
    let state = query_param(&url, "state").unwrap();
    assert!(
        state.len() >= 16,
        "state {state:?} is too short to be unguessable"
    );
    assert!(looks_like_s256_challenge(
        &query_param(&url, "code_challenge").unwrap()
    ));
    assert_eq!(query_param(&url, "code_challenge_method").unwrap(), "S256");

    // Every flow gets its own state and challenge.
    let other = app.start_flow("fake-1", "connection_id=c1").await;
    assert_ne!(query_param(&other, "state"), query_param(&url, "state"));
    assert_ne!(
        query_param(&other, "code_challenge"),
        query_param(&url, "code_challenge")
    );
}

#[tokio::test]
async fn authorize_redirect_uses_the_scope_separator_and_authorization_params() {
    let app = TestApp::spawn().await;
    app.create_config("comma", "fake-comma", "a b,c").await;
    let url = app.start_flow("comma", "connection_id=c1").await;
    let pairs = query_pairs(&url);
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    // The template's `response_type: code` replaces the standard one in place: no duplicate.
    assert_eq!(
        names,
        [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "prompt",
            "access_type",
            "code_challenge",
            "code_challenge_method"
        ],
        "{url}"
    );
    assert_eq!(query_param(&url, "scope").unwrap(), "a,b,c");
    assert_eq!(query_param(&url, "prompt").unwrap(), "consent");
    assert_eq!(query_param(&url, "access_type").unwrap(), "offline");

    // An empty scope list still sends `scope=`.
    app.create_config("empty", "fake", "").await;
    let url = app.start_flow("empty", "connection_id=c1").await;
    assert_eq!(query_param(&url, "scope").as_deref(), Some(""));
}

#[tokio::test]
async fn code_exchange_sends_client_credentials_in_a_form_body_by_default() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "read").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let code = query_param(&callback, "code").unwrap();
    let page = app.open(&callback).await;
    page.assert_success("fake-1", "c1");

    let requests = app.provider.token_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert!(request.subdomain.is_none());
    assert!(
        request
            .content_type
            .starts_with("application/x-www-form-urlencoded"),
        "content type {:?}",
        request.content_type
    );
    assert!(
        request
            .header("accept")
            .unwrap_or_default()
            .contains("application/json"),
        "Accept {:?}",
        request.header("accept")
    );
    assert_eq!(request.header("user-agent"), Some("Nango"));
    assert!(request.header("authorization").is_none());
    assert_eq!(request.param("grant_type"), Some("authorization_code"));
    assert_eq!(request.param("code"), Some(code.as_str()));
    let callback_url = app.url("/oauth/callback");
    assert_eq!(request.param("redirect_uri"), Some(callback_url.as_str()));
    assert_eq!(request.param("client_id"), Some(CLIENT_ID));
    assert_eq!(request.param("client_secret"), Some(CLIENT_SECRET));
    // The fake provider checked it against the challenge; it must be there.
    assert!(request.param("code_verifier").is_some());
    // In Nango's order (§3.5).
    assert_eq!(
        request.form_names,
        [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_secret"
        ]
    );
    // Nothing but the code exchange went out: no scope, no state.
    assert!(request.param("state").is_none());
}

#[tokio::test]
async fn code_exchange_with_header_auth_uses_http_basic_and_no_body_credentials() {
    let app = TestApp::spawn().await;
    // Characters that the strict form encoding must escape before base64 (§3.5).
    let response = app
        .post_json(
            "/config",
            &json!({
                "provider_config_key": "basic",
                "provider": "fake-basic",
                "oauth_client_id": "a+b",
                "oauth_client_secret": "s e*",
                "oauth_scopes": "read",
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.authorize("basic", "c1").await;

    let request = app.provider.last_token_request();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("a%2Bb:s+e%2A")
    );
    assert_eq!(request.header("authorization"), Some(expected.as_str()));
    assert!(request.param("client_id").is_none(), "{}", request.raw_body);
    assert!(
        request.param("client_secret").is_none(),
        "{}",
        request.raw_body
    );
    assert_eq!(request.param("grant_type"), Some("authorization_code"));
    assert!(request.param("code_verifier").is_some());
    assert!(request
        .content_type
        .starts_with("application/x-www-form-urlencoded"));
}

#[tokio::test]
async fn code_exchange_with_json_body_format_posts_json() {
    let app = TestApp::spawn().await;
    app.create_config("json", "fake-json", "read").await;
    app.authorize("json", "c1").await;

    let request = app.provider.last_token_request();
    assert!(
        request.content_type.starts_with("application/json"),
        "content type {:?}",
        request.content_type
    );
    let body: Value = serde_json::from_str(&request.raw_body).expect("a JSON body");
    let body = body.as_object().unwrap();
    assert_eq!(body["grant_type"], "authorization_code");
    assert_eq!(body["redirect_uri"], json!(app.url("/oauth/callback")));
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert!(body["code"].is_string() && body["code_verifier"].is_string());
}

#[tokio::test]
async fn disable_pkce_sends_neither_challenge_nor_verifier() {
    let app = TestApp::spawn().await;
    app.create_config("nopkce", "fake-nopkce", "read").await;
    let url = app.start_flow("nopkce", "connection_id=c1").await;
    assert!(query_param(&url, "code_challenge").is_none(), "{url}");
    assert!(
        query_param(&url, "code_challenge_method").is_none(),
        "{url}"
    );
    let callback = app.authorize_at_provider(&url).await;
    app.open(&callback).await.assert_success("nopkce", "c1");
    let request = app.provider.last_token_request();
    assert!(
        request.param("code_verifier").is_none(),
        "{}",
        request.raw_body
    );
    assert_eq!(request.param("grant_type"), Some("authorization_code"));
}

#[tokio::test]
async fn a_grant_type_in_token_params_is_sent_once() {
    let app = TestApp::spawn().await;
    app.create_config("gt", "fake-granttype", "").await;
    app.authorize("gt", "c1").await;
    let request = app.provider.last_token_request();
    let grant_types = request
        .form_names
        .iter()
        .filter(|n| *n == "grant_type")
        .count();
    assert_eq!(grant_types, 1, "{}", request.raw_body);
    assert_eq!(request.param("grant_type"), Some("authorization_code"));
    // Other token params are passed through, after redirect_uri and before the verifier.
    assert_eq!(request.param("audience"), Some("fake-api"));
    assert_eq!(
        request.form_names,
        [
            "grant_type",
            "code",
            "redirect_uri",
            "audience",
            "code_verifier",
            "client_id",
            "client_secret"
        ]
    );
}

#[tokio::test]
async fn a_repeated_connection_id_is_joined_with_commas() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let page = app
        .run_flow("fake-1", "connection_id=a&connection_id=b")
        .await;
    page.assert_success("fake-1", "a,b");
    app.get_connection("fake-1", "a,b").await;
}

#[tokio::test]
async fn token_response_expiry_variants_are_understood() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;

    // `expires_at` in UNIX seconds, no `expires_in`.
    let at = Utc::now().timestamp() + 7200;
    app.provider.set(|b| {
        b.expires_in = None;
        b.extra_token_fields.insert("expires_at".into(), json!(at));
    });
    app.authorize("fake-1", "unix").await;
    let credentials = app.get_connection("fake-1", "unix").await["credentials"].clone();
    let expires_at: DateTime<Utc> = credentials["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at.timestamp(), at);
    assert_eq!(credentials["raw"]["expires_at"], credentials["expires_at"]);

    // `expires_in` as a numeric string.
    app.provider.set(|b| {
        b.extra_token_fields.clear();
        b.extra_token_fields
            .insert("expires_in".into(), json!("1800"));
    });
    app.authorize("fake-1", "string").await;
    let credentials = app.get_connection("fake-1", "string").await["credentials"].clone();
    let expires_at: DateTime<Utc> = credentials["expires_at"].as_str().unwrap().parse().unwrap();
    let in_secs = (expires_at - Utc::now()).num_seconds();
    assert!((1700..=1800).contains(&in_secs), "expires in {in_secs} s");
}

#[tokio::test]
async fn stored_credentials_have_the_nango_oauth2_shape() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "read").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.extra_token_fields
            .insert("id_token".into(), json!("id-xyz"));
    });
    app.authorize("fake-1", "c1").await;
    let before_exchange = Utc::now();

    let connection = app.get_connection("fake-1", "c1").await;
    let credentials = &connection["credentials"];
    let keys: Vec<&str> = credentials
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["type", "access_token", "refresh_token", "expires_at", "raw"]
    );
    assert_eq!(credentials["type"], "OAUTH2");
    let access = credentials["access_token"].as_str().unwrap();
    let refresh = credentials["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("access-") && refresh.starts_with("refresh-"));
    let expires_at: DateTime<Utc> = credentials["expires_at"].as_str().unwrap().parse().unwrap();
    let in_secs = (expires_at - before_exchange).num_seconds();
    assert!((3500..=3660).contains(&in_secs), "expires in {in_secs} s");

    let raw = &credentials["raw"];
    assert_eq!(raw["access_token"], access);
    assert_eq!(raw["refresh_token"], refresh);
    assert_eq!(raw["token_type"], "bearer");
    assert_eq!(raw["scope"], "read");
    assert_eq!(raw["expires_in"], 3600);
    assert_eq!(raw["id_token"], "id-xyz");
    // The expiry is injected into raw, as Nango's OAuth library did.
    assert_eq!(raw["expires_at"], credentials["expires_at"]);

    // A token without expiry or refresh token has neither key.
    app.provider.set(|b| {
        b.expires_in = None;
        b.issue_refresh_token = false;
    });
    app.authorize("fake-1", "c2").await;
    let credentials = app.get_connection("fake-1", "c2").await["credentials"].clone();
    let keys: Vec<&str> = credentials
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["type", "access_token", "raw"]);
    assert!(credentials["raw"].get("expires_at").is_none());
}

#[tokio::test]
async fn connection_config_params_are_interpolated_and_stored() {
    let app = TestApp::spawn().await;
    app.create_config("sub", "fake-sub", "read").await;
    // The SDK sends params unencoded: `params[subdomain]=acme`.
    let authorize = app
        .start_flow("sub", "connection_id=c1&params[subdomain]=acme")
        .await;
    assert_eq!(authorize.path(), "/acme/authorize", "{authorize}");
    let callback = app.authorize_at_provider(&authorize).await;
    app.open(&callback).await.assert_success("sub", "c1");

    let authorize_requests = app.provider.authorize_requests();
    assert_eq!(authorize_requests[0].subdomain.as_deref(), Some("acme"));
    let token = app.provider.last_token_request();
    assert_eq!(token.subdomain.as_deref(), Some("acme"));

    let connection = app.get_connection("sub", "c1").await;
    assert_eq!(
        connection["connection_config"],
        json!({"connectionConfig.params.subdomain": "acme"})
    );
}

#[tokio::test]
async fn metadata_comes_from_whitelisted_callback_and_token_response_fields() {
    let app = TestApp::spawn().await;
    app.create_config("meta", "fake-meta", "").await;
    app.provider.set(|b| {
        b.callback_extra = vec![
            ("realmId".into(), "123146".into()),
            ("ignored".into(), "x".into()),
        ];
        b.extra_token_fields
            .insert("instance_url".into(), json!("https://acme.example.com"));
        b.extra_token_fields.insert("other".into(), json!("y"));
    });
    app.authorize("meta", "c1").await;
    let connection = app.get_connection("meta", "c1").await;
    assert_eq!(
        connection["metadata"],
        json!({"realmId": "123146", "instance_url": "https://acme.example.com"})
    );
    // The raw response still has everything.
    assert_eq!(connection["credentials"]["raw"]["other"], "y");

    // Templates without metadata lists store none, whatever the callback says.
    app.create_config("plain", "fake", "").await;
    app.authorize("plain", "c1").await;
    assert_eq!(
        app.get_connection("plain", "c1").await["metadata"],
        json!({})
    );
}

#[tokio::test]
async fn reauthorizing_a_connection_keeps_its_id_and_creation_time() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    let first = app.get_connection("fake-1", "c1").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.authorize("fake-1", "c1").await;
    let second = app.get_connection("fake-1", "c1").await;

    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["created_at"], first["created_at"]);
    assert_ne!(
        second["credentials"]["access_token"],
        first["credentials"]["access_token"]
    );
    assert_eq!(app.connections().await.len(), 1);
}

#[tokio::test]
async fn connection_ids_with_special_characters_round_trip() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let id = "user 1/é+x@y.z";
    app.authorize("fake-1", id)
        .await
        .assert_success("fake-1", id);
    let connection = app.get_connection("fake-1", id).await;
    assert_eq!(connection["connection_id"], id);
    let listed = app.connections().await;
    assert_eq!(listed[0]["connection_id"], id);
    let response = app
        .delete(&format!(
            "/connection/{}?provider_config_key=fake-1",
            path_segment(id)
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_no_connection("fake-1", id).await;
}

#[tokio::test]
async fn pkce_binds_each_code_to_the_flow_that_asked_for_it() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    // Two flows; the code of the first is presented with the state of the second (an injected
    // code). The server sends the second flow's verifier, which does not match the challenge the
    // first code was issued for.
    let first = app.start_flow("fake-1", "connection_id=victim").await;
    let second = app.start_flow("fake-1", "connection_id=victim").await;
    let first_callback = app.authorize_at_provider(&first).await;
    let code = query_param(&first_callback, "code").unwrap();
    let state = query_param(&second, "state").unwrap();
    let page = app
        .callback(&format!(
            "code={}&state={}",
            query_value(&code),
            query_value(&state)
        ))
        .await;
    page.assert_failure("unknown_err", "Unkown error during the Oauth flow.");
    app.assert_no_connection("fake-1", "victim").await;
    let request = app.provider.last_token_request();
    assert!(request.param("code_verifier").is_some());
}
