//! Hosts belong to the operator (review F1): a placeholder that chooses the host of a template's
//! URLs is filled from the provider config's `connection_config` only, never from the browser's
//! `params[...]` nor from a value stored on a connection; a label placeholder under a fixed domain
//! may still come from the browser, as one DNS label. Built-in templates reach public hosts only.
//! And base URLs a token response gives (review F17) stay under the template's domains.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{
    assert_json_error, FakeApi, FakeProvider, Page, TestApp, CLIENT_ID, CLIENT_SECRET,
};

/// Rows in `oauth_sessions`: a refused flow must store none.
async fn oauth_session_count(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM oauth_sessions";
    if app.on_postgres() {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

fn config_body(key: &str, provider: &str, connection_config: Option<Value>) -> Value {
    let mut body = json!({
        "provider_config_key": key,
        "provider": provider,
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_scopes": "",
    });
    if let Some(cc) = connection_config {
        body["connection_config"] = cc;
    }
    body
}

async fn create_with(app: &TestApp, key: &str, provider: &str, cc: Value) {
    let response = app
        .post_json("/config", &config_body(key, provider, Some(cc)))
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "POST /config: {body}");
}

/// A flow page that refused the request: 400, no redirect, the URL-param error.
fn assert_refused(page: &Page, what: &str) -> String {
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        page.body
    );
    assert!(
        page.headers.get("location").is_none(),
        "{what} redirected to {:?}",
        page.headers.get("location")
    );
    let message = page.post_message();
    assert_eq!(
        message["data"]["error"]["type"], "url_param_err",
        "{what}: {message}"
    );
    message["data"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_browser_cannot_choose_the_host_of_a_builtin_template() {
    let app = TestApp::spawn().await;
    app.create_config("ghe", "github-enterprise", "").await;
    for host in ["attacker.example", "127.0.0.1", "169.254.169.254"] {
        let page = Page::read(
            app.connect("ghe", &format!("connection_id=c1&params[hostname]={host}"))
                .await,
        )
        .await;
        let message = assert_refused(&page, host);
        assert!(
            message.contains("connection_config") && message.contains("hostname"),
            "{message}"
        );
        assert!(
            !page.body.contains(&format!("https://{host}")),
            "{}",
            page.body
        );
    }
    // Without any value the operator is told where to set it, too.
    let page = Page::read(app.connect("ghe", "connection_id=c1").await).await;
    assert_refused(&page, "no hostname");
    assert_eq!(oauth_session_count(&app).await, 0);
    assert!(app.provider.authorize_requests().is_empty());
    assert!(app.provider.token_requests().is_empty());
}

#[tokio::test]
async fn the_operators_host_wins_over_the_browsers() {
    let app = TestApp::spawn().await;
    create_with(
        &app,
        "ghe",
        "github-enterprise",
        json!({"hostname": "ghe.example.com"}),
    )
    .await;
    for query in [
        "connection_id=c1",
        "connection_id=c1&params[hostname]=attacker.example",
    ] {
        let response = app.connect("ghe", query).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{query}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with("https://ghe.example.com/login/oauth/authorize?"),
            "{query}: {location}"
        );
    }
    // GET /config shows the operator's values (and the list does too).
    let config: Value = app.get("/config/ghe").await.json().await.unwrap();
    assert_eq!(
        config["config"]["connection_config"],
        json!({"hostname": "ghe.example.com"})
    );
    let list: Value = app.get("/config").await.json().await.unwrap();
    assert_eq!(
        list["configs"][0]["connection_config"],
        json!({"hostname": "ghe.example.com"})
    );
    // A 0.9 client's PUT (no connection_config) keeps them; an explicit one replaces them.
    let response = app
        .put_json("/config", &config_body("ghe", "github-enterprise", None))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let config: Value = app.get("/config/ghe").await.json().await.unwrap();
    assert_eq!(
        config["config"]["connection_config"]["hostname"],
        "ghe.example.com"
    );
    let response = app
        .put_json(
            "/config",
            &config_body(
                "ghe",
                "github-enterprise",
                Some(json!({"hostname": "git.example.org"})),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.connect("ghe", "connection_id=c2").await;
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://git.example.org/"),
        "{location}"
    );
}

#[tokio::test]
async fn operator_hosts_of_builtin_templates_must_be_public_names() {
    let app = TestApp::spawn().await;
    for host in [
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "localhost",
        "metadata.google.internal",
        "metadata",
    ] {
        let body = config_body(
            "ghe",
            "github-enterprise",
            Some(json!({ "hostname": host })),
        );
        let error = assert_json_error(
            app.post_json("/config", &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            error["error"].as_str().unwrap().contains("hostname"),
            "{host}: {error}"
        );
    }
    // Unknown names, values against the template's pattern or not strings.
    for cc in [
        json!({"host": "ghe.example.com"}),
        json!({"hostname": "ghe.example.com/x"}),
        json!({"hostname": "a@b"}),
        json!({"hostname": 7}),
        json!("ghe.example.com"),
    ] {
        let body = config_body("ghe", "github-enterprise", Some(cc.clone()));
        assert_json_error(
            app.post_json("/config", &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    assert!(app.config_keys().await.is_empty());
    // PUT is checked the same way.
    create_with(
        &app,
        "ghe",
        "github-enterprise",
        json!({"hostname": "ghe.example.com"}),
    )
    .await;
    let body = config_body(
        "ghe",
        "github-enterprise",
        Some(json!({"hostname": "127.0.0.1"})),
    );
    assert_json_error(
        app.put_json("/config", &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let config: Value = app.get("/config/ghe").await.json().await.unwrap();
    assert_eq!(
        config["config"]["connection_config"]["hostname"],
        "ghe.example.com"
    );
}

#[tokio::test]
async fn an_operator_file_template_may_use_a_local_host_for_a_whole_flow_and_refresh() {
    let app = TestApp::spawn().await;
    // Hosts are the operator's for operator-file templates too.
    app.create_config("plain", "fake-host", "").await;
    let page = Page::read(
        app.connect("plain", "connection_id=c1&params[hostname]=127.0.0.1")
            .await,
    )
    .await;
    assert_refused(&page, "browser host on an operator-file template");

    create_with(&app, "fh", "fake-host", json!({"hostname": "127.0.0.1"})).await;
    let page = app.run_flow("fh", "connection_id=c1").await;
    page.assert_success("fh", "c1");
    let response = app
        .get("/connection/c1?provider_config_key=fh&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.provider.refresh_count(), 1);
}

#[tokio::test]
async fn a_refresh_uses_the_operators_host_not_one_stored_on_the_connection() {
    let app = TestApp::spawn().await;
    create_with(&app, "fh", "fake-host", json!({"hostname": "127.0.0.1"})).await;
    // A connection from before this rule, whose stored host points elsewhere.
    app.state
        .store
        .upsert_connection(&nango_server::store::ConnectionFields {
            provider_config_key: "fh".into(),
            connection_id: "old".into(),
            credentials: nango_server::credentials::Credentials::OAuth2(
                nango_server::credentials::OAuth2Credentials {
                    access_token: "old-at".into(),
                    refresh_token: Some("old-rt".into()),
                    expires_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
                    raw: json!({}),
                },
            ),
            connection_config: serde_json::from_value(
                json!({"connectionConfig.params.hostname": "unreachable.invalid"}),
            )
            .unwrap(),
            metadata: Default::default(),
            obtained_at: chrono::Utc::now() - chrono::Duration::hours(1),
            owner: None,
        })
        .await
        .unwrap();
    let response = app.get("/connection/old?provider_config_key=fh").await;
    let body = response.text().await.unwrap();
    // The refresh reached the fake provider on the operator's 127.0.0.1 (which does not know this
    // made-up refresh token); the stored host would have been a DNS failure.
    let refreshes = app.provider.refresh_requests();
    assert_eq!(refreshes.len(), 1, "{body}");
    assert!(body.contains("refresh_rejected"), "{body}");
}

#[tokio::test]
async fn a_refresh_without_an_operator_host_fails_clearly() {
    let app = TestApp::spawn().await;
    app.create_config("fh", "fake-host", "").await;
    app.state
        .store
        .upsert_connection(&nango_server::store::ConnectionFields {
            provider_config_key: "fh".into(),
            connection_id: "old".into(),
            credentials: nango_server::credentials::Credentials::OAuth2(
                nango_server::credentials::OAuth2Credentials {
                    access_token: "old-at".into(),
                    refresh_token: Some("old-rt".into()),
                    expires_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
                    raw: json!({}),
                },
            ),
            connection_config: serde_json::from_value(
                json!({"connectionConfig.params.hostname": "127.0.0.1"}),
            )
            .unwrap(),
            metadata: Default::default(),
            obtained_at: chrono::Utc::now() - chrono::Duration::hours(1),
            owner: None,
        })
        .await
        .unwrap();
    let response = app.get("/connection/old?provider_config_key=fh").await;
    assert!(!response.status().is_success());
    let body = response.text().await.unwrap();
    assert!(
        body.contains("connection_config") && body.contains("hostname"),
        "{body}"
    );
    assert_eq!(app.provider.refresh_count(), 0);
}

#[tokio::test]
async fn a_label_from_the_browser_must_be_one_dns_label() {
    let app = TestApp::spawn().await;
    app.create_config("zd", "zendesk", "").await;
    for value in ["a.b", "evil.com", "a_b", "-a", "a%2Eb"] {
        let page = Page::read(
            app.connect("zd", &format!("connection_id=c1&params[subdomain]={value}"))
                .await,
        )
        .await;
        assert_refused(&page, value);
    }
    assert_eq!(oauth_session_count(&app).await, 0);
    let response = app
        .connect("zd", "connection_id=c1&params[subdomain]=acme-1")
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://acme-1.zendesk.com/oauth/authorizations/new?"),
        "{location}"
    );
}

/// Templates whose API base URL comes from the token response (F17).
fn metadata_templates(provider: &FakeProvider) -> String {
    let p = &provider.base_url;
    let oauth2 = format!(
        "  auth_mode: OAUTH2\n  authorization_url: \"{p}/authorize\"\n  token_url: \"{p}/token\"\n  \
         token_response_metadata:\n    - instance_url\n  base_api_url: \"${{metadata.instance_url}}\"\n"
    );
    format!("meta-open:\n{oauth2}meta-local:\n{oauth2}  metadata_url_hosts:\n    - '127.0.0.1'\n")
}

#[tokio::test]
async fn a_token_response_cannot_send_the_proxy_to_a_local_host_unless_the_operator_file_says_so() {
    let api = FakeApi::start().await;
    let app = TestApp::spawn_with_templates(|_| {}, metadata_templates).await;
    let instance = format!("{}/org", api.base_url);
    app.provider.set(|b| {
        b.extra_token_fields
            .insert("instance_url".into(), json!(instance));
    });
    // E15: an operator-file template with no opt-in and an http://127.0.0.1 instance_url.
    app.create_config("open", "meta-open", "").await;
    app.authorize("open", "u1").await;
    let response = app
        .api(Method::GET, "/proxy/services/data")
        .header("Connection-Id", "u1")
        .header("Provider-Config-Key", "open")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    assert!(body.contains("instance_url"), "{body}");
    assert_eq!(api.request_count(), 0);

    // Listed in the operator file: allowed, http included.
    app.create_config("local", "meta-local", "").await;
    app.authorize("local", "u1").await;
    let response = app
        .api(Method::GET, "/proxy/services/data")
        .header("Connection-Id", "u1")
        .header("Provider-Config-Key", "local")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.last_request().path, "/org/services/data");
}
