//! The web dashboard at `/dashboard`: login with the secret key and its session cookie, CSRF
//! tokens on every state-changing POST, integrations through the forms, connections with their
//! status, force refresh and delete, escaping of everything a user or provider can write, masked
//! tokens with an explicit reveal, and connect sessions for "connect a test account".

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{header, TestApp, SECRET_KEY};

const COOKIE: &str = "nango_dashboard";

/// The cookie value of a `Set-Cookie: nango_dashboard=...` header, if the response set one.
fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{COOKIE}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

fn set_cookie_line(headers: &HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE))
        .unwrap_or_default()
        .to_string()
}

/// Logs in with the secret key; returns the session cookie value.
async fn login(app: &TestApp) -> String {
    let response = app
        .anon(Method::POST, "/dashboard/login")
        .form(&[("secret_key", SECRET_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(response.headers(), "location"), "/dashboard");
    set_cookie(response.headers()).expect("login sets the session cookie")
}

/// A page answer.
struct Html {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Html {
    /// The CSRF token the page carries for its forms and scripts.
    fn csrf(&self) -> String {
        let marker = r#"<meta name="csrf-token" content=""#;
        let start = self.body.find(marker).expect("a csrf-token meta tag") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    fn location(&self) -> String {
        header(&self.headers, "location")
    }
}

async fn read(response: reqwest::Response) -> Html {
    Html {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn get_page(app: &TestApp, cookie: Option<&str>, path: &str) -> Html {
    let mut request = app.anon(Method::GET, path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{COOKIE}={cookie}"));
    }
    read(request.send().await.unwrap()).await
}

async fn post_form(
    app: &TestApp,
    cookie: Option<&str>,
    path: &str,
    fields: &[(&str, &str)],
) -> Html {
    let mut request = app.anon(Method::POST, path).form(fields);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{COOKIE}={cookie}"));
    }
    read(request.send().await.unwrap()).await
}

/// A signed session cookie in the documented format, as the test computes it.
fn forge(key: &str, expiry: i64, nonce: &str) -> String {
    let payload = format!("{expiry}.{nonce}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(b"nango-dashboard-session\n");
    mac.update(payload.as_bytes());
    let tag: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{payload}.{tag}")
}

/// A path segment as the dashboard writes it: everything but RFC 3986's unreserved characters
/// percent-encoded.
fn path_segment(value: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}

fn connection_path(key: &str, connection_id: &str) -> String {
    format!(
        "/dashboard/integrations/{}/connections/{}",
        path_segment(key),
        path_segment(connection_id)
    )
}

fn config_form<'a>(key: &'a str, provider: &'a str, scopes: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("provider_config_key", key),
        ("provider", provider),
        ("oauth_client_id", "dash-client-id"),
        ("oauth_client_secret", "dash-client-secret"),
        ("oauth_scopes", scopes),
    ]
}

fn with_csrf<'a>(fields: &[(&'a str, &'a str)], csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields = fields.to_vec();
    fields.push(("csrf", csrf));
    fields
}

#[tokio::test]
async fn login_with_the_key_sets_an_http_only_strict_cookie_scoped_to_the_dashboard() {
    let app = TestApp::spawn_with_secret_key().await;
    let form = get_page(&app, None, "/dashboard/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"name="secret_key""#), "{}", form.body);

    let response = app
        .anon(Method::POST, "/dashboard/login")
        .form(&[("secret_key", SECRET_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let line = set_cookie_line(response.headers());
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=43200",
    ] {
        assert!(
            line.split(';').any(|a| a.trim() == attribute),
            "{attribute} missing in {line}"
        );
    }
    assert!(!line.contains("Secure"), "not on plain HTTP: {line}");
    let cookie = set_cookie(response.headers()).unwrap();

    let home = get_page(&app, Some(&cookie), "/dashboard").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Integrations"));
    assert!(home.body.contains("Log out"));
    assert!(
        !home.body.contains("No secret key is configured"),
        "no open-dashboard warning with a key"
    );
    // Signed in, the login form sends the browser on to the dashboard.
    let again = get_page(&app, Some(&cookie), "/dashboard/login").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    // Logging out clears the cookie.
    let logout = post_form(
        &app,
        Some(&cookie),
        "/dashboard/logout",
        &[("csrf", &home.csrf())],
    )
    .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(logout.location(), "/dashboard/login");
    let cleared = set_cookie_line(&logout.headers);
    assert!(
        cleared.starts_with(&format!("{COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_server_url_is_https() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.into()));
        s.server_url = "https://nango.example.com".into();
    })
    .await;
    let response = app
        .anon(Method::POST, "/dashboard/login")
        .form(&[("secret_key", SECRET_KEY)])
        .send()
        .await
        .unwrap();
    let line = set_cookie_line(response.headers());
    assert!(line.split(';').any(|a| a.trim() == "Secure"), "{line}");
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401_and_no_cookie() {
    let app = TestApp::spawn_with_secret_key().await;
    for wrong in ["wrong-key", "", &format!("{SECRET_KEY} "), &SECRET_KEY[1..]] {
        let page = post_form(&app, None, "/dashboard/login", &[("secret_key", wrong)]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(set_cookie(&page.headers).is_none(), "{wrong:?}");
        assert!(
            page.body.contains("not the server&#39;s secret key")
                || page.body.contains("not the server's secret key"),
            "{}",
            page.body
        );
        assert!(page.body.contains(r#"name="secret_key""#), "the form again");
    }
    let no_field = post_form(&app, None, "/dashboard/login", &[]).await;
    assert_eq!(no_field.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&no_field.headers).is_none());
}

#[tokio::test]
async fn pages_and_actions_without_a_session_redirect_to_the_login_form() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read").await;
    for path in [
        "/dashboard",
        "/dashboard/connections",
        "/dashboard/new-integration",
        "/dashboard/integrations/fake-1",
        "/dashboard/integrations/fake-1/edit",
        "/dashboard/integrations/fake-1/delete",
        "/dashboard/integrations/fake-1/connections/c1",
    ] {
        let page = get_page(&app, None, path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "GET {path}");
        assert_eq!(page.location(), "/dashboard/login", "GET {path}");
        assert!(!page.body.contains("fake-1"), "GET {path}: {}", page.body);
    }
    let create = post_form(
        &app,
        None,
        "/dashboard/integrations",
        &config_form("sneaky", "fake", ""),
    )
    .await;
    assert_eq!(create.status, StatusCode::SEE_OTHER);
    assert_eq!(create.location(), "/dashboard/login");
    let delete = post_form(&app, None, "/dashboard/integrations/fake-1/delete", &[]).await;
    assert_eq!(delete.status, StatusCode::SEE_OTHER);
    assert_eq!(app.config_keys().await, vec!["fake-1"]);
}

#[tokio::test]
async fn forged_tampered_and_expired_cookies_are_refused() {
    let app = TestApp::spawn_with_secret_key().await;
    let now = chrono::Utc::now().timestamp();
    // The test's own signature is accepted: the format is the documented one.
    let valid = forge(SECRET_KEY, now + 600, "bm9uY2U");
    assert_eq!(
        get_page(&app, Some(&valid), "/dashboard").await.status,
        StatusCode::OK
    );

    let real = login(&app).await;
    let (expiry, rest) = real.split_once('.').unwrap();
    let later = format!("{}.{rest}", expiry.parse::<i64>().unwrap() + 86_400);
    let flipped_tag = {
        let mut v = real.clone();
        let last = v.pop().unwrap();
        v.push(if last == '0' { '1' } else { '0' });
        v
    };
    for (what, cookie) in [
        ("expired", forge(SECRET_KEY, now - 1, "bm9uY2U")),
        ("another key", forge("not-the-key", now + 600, "bm9uY2U")),
        ("a later expiry", later),
        ("a changed signature", flipped_tag),
        ("no signature", format!("{}", now + 600)),
        ("garbage", "x".repeat(40)),
        ("an open-dashboard cookie", "open.bm9uY2U".to_string()),
    ] {
        let page = get_page(&app, Some(&cookie), "/dashboard").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{what}: {cookie}");
        assert_eq!(page.location(), "/dashboard/login", "{what}");
    }

    // Stateless: another replica (same key) accepts the session; a server with another key does not.
    let replica = app.spawn_replica().await;
    let on_replica = app
        .client
        .get(format!("{}/dashboard", replica.address))
        .header("cookie", format!("{COOKIE}={real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_replica.status(), StatusCode::OK);
    let mut app = app;
    app.restart_with(|s| s.secret_key = Some(nango_server::secret::Secret::new("new-key".into())))
        .await;
    let page = get_page(&app, Some(&real), "/dashboard").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "a new secret key ends sessions"
    );
}

#[tokio::test]
async fn posts_without_the_session_csrf_token_are_forbidden_and_change_nothing() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read").await;
    app.authorize("fake-1", "c1").await;
    let before = app.get_connection("fake-1", "c1").await;
    let cookie = login(&app).await;
    let csrf = get_page(&app, Some(&cookie), "/dashboard").await.csrf();
    let other_session_csrf = {
        let other = login(&app).await;
        get_page(&app, Some(&other), "/dashboard").await.csrf()
    };
    assert_ne!(csrf, other_session_csrf);
    let create = config_form("fake-2", "fake", "read");
    let connection = connection_path("fake-1", "c1");
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/dashboard/integrations".into(), create.clone()),
        ("/dashboard/integrations/fake-1".into(), create.clone()),
        ("/dashboard/integrations/fake-1/delete".into(), vec![]),
        (format!("{connection}/delete"), vec![]),
        (format!("{connection}/refresh"), vec![]),
        ("/dashboard/logout".into(), vec![]),
    ];
    for (path, fields) in &posts {
        for (what, token) in [
            ("no token", None),
            ("a wrong token", Some("d3Jvbmc")),
            ("an empty token", Some("")),
            ("another session's token", Some(other_session_csrf.as_str())),
        ] {
            let fields = match token {
                Some(token) => with_csrf(fields, token),
                None => fields.clone(),
            };
            let page = post_form(&app, Some(&cookie), path, &fields).await;
            assert_eq!(
                page.status,
                StatusCode::FORBIDDEN,
                "POST {path} with {what}"
            );
            assert!(set_cookie(&page.headers).is_none());
        }
    }
    // A request the browser marks as cross-site is refused even with the token.
    let cross_site = app
        .anon(Method::POST, "/dashboard/integrations")
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("sec-fetch-site", "cross-site")
        .form(&with_csrf(&create, &csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);

    assert_eq!(
        app.config_keys().await,
        vec!["fake-1"],
        "nothing created or deleted"
    );
    let config = app
        .get("/config/fake-1")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        config["config"]["oauth_client_id"],
        crate::helpers::CLIENT_ID
    );
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(
        connection["credentials"], before["credentials"],
        "not refreshed"
    );
    assert_eq!(app.provider.token_requests().len(), 1, "no refresh call");
}

#[tokio::test]
async fn integrations_are_created_edited_and_deleted_through_the_forms() {
    let app = TestApp::spawn_with_secret_key().await;
    let cookie = login(&app).await;
    let new = get_page(&app, Some(&cookie), "/dashboard/new-integration").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(
        new.body.contains(&app.state.settings.callback_url),
        "the callback URL is shown"
    );
    assert!(new.body.contains("data-copy="), "with a copy button");
    let csrf = new.csrf();

    let created = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations",
        &with_csrf(
            &config_form("github-test", "fake", "user public_repo"),
            &csrf,
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert!(
        created
            .location()
            .starts_with("/dashboard/integrations/github-test?notice=created"),
        "{}",
        created.location()
    );
    let config: Value = app.get("/config/github-test").await.json().await.unwrap();
    assert_eq!(config["config"]["provider"], "fake");
    assert_eq!(config["config"]["oauth_client_id"], "dash-client-id");
    assert_eq!(
        config["config"]["oauth_client_secret"],
        "dash-client-secret"
    );
    assert_eq!(
        config["config"]["oauth_scopes"], "user,public_repo",
        "normalised"
    );

    let list = get_page(&app, Some(&cookie), "/dashboard").await;
    assert!(list.body.contains("github-test") && list.body.contains("dash-client-id"));
    assert!(list.body.contains("public_repo"));
    assert!(
        !list.body.contains("dash-client-secret"),
        "the client secret is never shown"
    );
    let detail = get_page(&app, Some(&cookie), &created.location()).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Integration github-test created."));
    assert!(!detail.body.contains("dash-client-secret"));

    // Refused input: the form again, with the REST API's validation.
    for (fields, status, message) in [
        (
            config_form("github-test", "fake", ""),
            StatusCode::CONFLICT,
            "An integration with this key exists already.",
        ),
        (
            config_form("other", "no-such-provider", ""),
            StatusCode::BAD_REQUEST,
            "Choose a provider of the catalog",
        ),
        (
            config_form("", "fake", ""),
            StatusCode::BAD_REQUEST,
            "Enter a key for this integration.",
        ),
        (
            config_form("..", "fake", ""),
            StatusCode::BAD_REQUEST,
            "cannot be &#39;.&#39; or &#39;..&#39;",
        ),
    ] {
        let page = post_form(
            &app,
            Some(&cookie),
            "/dashboard/integrations",
            &with_csrf(&fields, &csrf),
        )
        .await;
        assert_eq!(page.status, status, "{fields:?}");
        assert!(
            page.body.contains(message) || page.body.contains(&message.replace("&#39;", "'")),
            "{fields:?}: {}",
            page.body
        );
        assert!(
            !page.body.contains("dash-client-secret"),
            "secrets are not echoed"
        );
    }
    assert_eq!(app.config_keys().await, vec!["github-test"]);

    // Edit: an empty secret keeps the stored one.
    let edit = get_page(
        &app,
        Some(&cookie),
        "/dashboard/integrations/github-test/edit",
    )
    .await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("dash-client-id") && !edit.body.contains("dash-client-secret"));
    let saved = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations/github-test",
        &[
            ("csrf", csrf.as_str()),
            ("provider", "fake-json"),
            ("oauth_client_id", "new-client-id"),
            ("oauth_client_secret", ""),
            ("oauth_scopes", "repo, user"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let config: Value = app.get("/config/github-test").await.json().await.unwrap();
    assert_eq!(config["config"]["provider"], "fake-json");
    assert_eq!(config["config"]["oauth_client_id"], "new-client-id");
    assert_eq!(
        config["config"]["oauth_client_secret"],
        "dash-client-secret"
    );
    assert_eq!(config["config"]["oauth_scopes"], "repo,user");
    let saved = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations/github-test",
        &[
            ("csrf", csrf.as_str()),
            ("provider", "fake-json"),
            ("oauth_client_id", "new-client-id"),
            ("oauth_client_secret", "rotated-secret"),
            ("oauth_scopes", ""),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let config: Value = app.get("/config/github-test").await.json().await.unwrap();
    assert_eq!(config["config"]["oauth_client_secret"], "rotated-secret");
    let unknown = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations/nope",
        &with_csrf(&config_form("nope", "fake", ""), &csrf),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Delete, with a confirm step.
    let confirm = get_page(
        &app,
        Some(&cookie),
        "/dashboard/integrations/github-test/delete",
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm
        .body
        .contains(r#"action="/dashboard/integrations/github-test/delete""#));
    assert_eq!(
        app.config_keys().await,
        vec!["github-test"],
        "not before the POST"
    );
    let deleted = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations/github-test/delete",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(deleted.location().starts_with("/dashboard?notice=deleted"));
    assert!(app.config_keys().await.is_empty());
    let gone = get_page(&app, Some(&cookie), "/dashboard/integrations/github-test").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_integration_form_sets_the_operators_host() {
    let app = TestApp::spawn_with_secret_key().await;
    let cookie = login(&app).await;
    let csrf = get_page(&app, Some(&cookie), "/dashboard/new-integration")
        .await
        .csrf();
    let mut fields = config_form("ghe", "github-enterprise", "repo");
    fields.push(("connection_config", "hostname=169.254.169.254"));
    let refused = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations",
        &with_csrf(&fields, &csrf),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("hostname"), "{}", refused.body);
    assert!(app.config_keys().await.is_empty());

    fields.pop();
    fields.push(("connection_config", "hostname=ghe.example.com\n"));
    let created = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations",
        &with_csrf(&fields, &csrf),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let config: Value = app.get("/config/ghe").await.json().await.unwrap();
    assert_eq!(
        config["config"]["connection_config"],
        serde_json::json!({"hostname": "ghe.example.com"})
    );
    let edit = get_page(&app, Some(&cookie), "/dashboard/integrations/ghe/edit").await;
    assert!(
        edit.body.contains("hostname=ghe.example.com"),
        "{}",
        edit.body
    );

    // Saving the edit form with the box changed replaces the values.
    let saved = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations/ghe",
        &[
            ("csrf", csrf.as_str()),
            ("provider", "github-enterprise"),
            ("oauth_client_id", "id"),
            ("oauth_client_secret", ""),
            ("oauth_scopes", "repo"),
            ("connection_config", "hostname=git.example.org"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let config: Value = app.get("/config/ghe").await.json().await.unwrap();
    assert_eq!(
        config["config"]["connection_config"]["hostname"],
        "git.example.org"
    );
}

#[tokio::test]
async fn markup_in_ids_keys_and_provider_errors_is_rendered_escaped() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.into()));
        s.proactive_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    // No `/` in the key: the flow helpers put it in a path as it is.
    let key = "<b>key";
    let connection_id = "<script>alert(1)</script>";
    app.create_config(key, "fake", "<i>scope</i>").await;
    app.authorize(key, connection_id).await;
    app.provider.set(|b| {
        b.refresh_failure = Some((
            400,
            json!({"error": "invalid_grant", "error_description": "<img src=x onerror=alert(2)>"}),
        ))
    });
    let cookie = login(&app).await;
    let csrf = get_page(&app, Some(&cookie), "/dashboard").await.csrf();
    let connection = connection_path(key, connection_id);
    let refreshed = post_form(
        &app,
        Some(&cookie),
        &format!("{connection}/refresh"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::SEE_OTHER);
    assert!(
        refreshed.location().contains("notice=refresh_rejected"),
        "{}",
        refreshed.location()
    );

    let pages = [
        "/dashboard".to_string(),
        "/dashboard/connections".to_string(),
        format!("/dashboard/integrations/{}", path_segment(key)),
        connection.clone(),
        format!("{connection}/delete"),
        refreshed.location(),
    ];
    for path in &pages {
        let page = get_page(&app, Some(&cookie), path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for raw in ["<script>alert(1)", "<b>key", "<i>scope</i>", "<img src=x"] {
            assert!(!page.body.contains(raw), "{path} has {raw} unescaped");
        }
    }
    let list = get_page(&app, Some(&cookie), "/dashboard/connections").await;
    assert!(
        list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        list.body
    );
    assert!(list.body.contains("&lt;b&gt;key"));
    assert!(
        list.body.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "the provider error, escaped"
    );
    assert!(list.body.contains("needs re-authorization"));
    let detail = get_page(&app, Some(&cookie), &connection).await;
    assert!(detail.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    let integrations = get_page(&app, Some(&cookie), "/dashboard").await;
    assert!(integrations.body.contains("&lt;i&gt;scope&lt;/i&gt;"));
}

#[tokio::test]
async fn no_page_holds_a_full_token_and_reveal_needs_the_session_and_csrf_token() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read").await;
    app.provider.set(|b| {
        b.extra_token_fields.insert(
            "id_token".into(),
            json!("eyJhbGciOiJub25lIn0.secret-id-token-body"),
        );
    });
    app.authorize("fake-1", "c1").await;
    let connection = app.get_connection("fake-1", "c1").await;
    let access = connection["credentials"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = connection["credentials"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = login(&app).await;
    let detail_path = connection_path("fake-1", "c1");
    for path in [
        "/dashboard".to_string(),
        "/dashboard/connections".to_string(),
        "/dashboard/integrations/fake-1".to_string(),
        detail_path.clone(),
        format!("{detail_path}/delete"),
    ] {
        let page = get_page(&app, Some(&cookie), &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret in [
            access.as_str(),
            refresh.as_str(),
            "secret-id-token-body",
            crate::helpers::CLIENT_SECRET,
        ] {
            assert!(!page.body.contains(secret), "{path} shows {secret}");
        }
    }
    let detail = get_page(&app, Some(&cookie), &detail_path).await;
    assert!(detail.body.contains("Reveal"));
    assert!(
        detail.body.contains("eyJh••••"),
        "a long token shows its first 4 characters"
    );
    assert!(detail.body.contains("healthy"));
    let csrf = detail.csrf();
    let reveal = format!("{detail_path}/reveal");

    let ask = |cookie: Option<String>,
               token: Option<&'static str>,
               csrf_header: Option<String>,
               field: &'static str| {
        let mut request = app.anon(Method::POST, &reveal);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("{COOKIE}={cookie}"));
        }
        if let Some(value) = csrf_header {
            request = request.header("x-csrf-token", value);
        }
        let mut fields = vec![("field", field)];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        request.form(&fields).send()
    };
    let no_session = ask(None, None, Some(csrf.clone()), "access_token")
        .await
        .unwrap();
    assert_eq!(no_session.status(), StatusCode::UNAUTHORIZED);
    assert!(!no_session.text().await.unwrap().contains(&access));
    let no_csrf = ask(Some(cookie.clone()), None, None, "access_token")
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    assert!(!no_csrf.text().await.unwrap().contains(&access));
    let wrong_csrf = ask(
        Some(cookie.clone()),
        None,
        Some("d3Jvbmc".into()),
        "access_token",
    )
    .await
    .unwrap();
    assert_eq!(wrong_csrf.status(), StatusCode::FORBIDDEN);
    assert!(!wrong_csrf.text().await.unwrap().contains(&access));

    let revealed = ask(
        Some(cookie.clone()),
        None,
        Some(csrf.clone()),
        "access_token",
    )
    .await
    .unwrap();
    assert_eq!(revealed.status(), StatusCode::OK);
    assert_eq!(header(revealed.headers(), "cache-control"), "no-store");
    assert!(header(revealed.headers(), "content-type").starts_with("application/json"));
    let body: Value = revealed.json().await.unwrap();
    assert_eq!(body, json!({"field": "access_token", "value": access}));
    let refresh_body: Value = ask(
        Some(cookie.clone()),
        None,
        Some(csrf.clone()),
        "refresh_token",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(refresh_body["value"], refresh.as_str());
    let unknown = ask(Some(cookie.clone()), None, Some(csrf.clone()), "raw")
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn force_refresh_shows_its_outcome_and_delete_goes_through_the_rest_code_path() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.into()));
        // An address where nothing listens: the delivery fails, the outbox row stays.
        s.webhook_urls = vec!["http://127.0.0.1:9/hooks".into()];
        s.webhook_secret = Some(nango_server::secret::Secret::new("whsec-dashboard".into()));
    })
    .await;
    app.create_config("fake-1", "fake", "read").await;
    app.authorize("fake-1", "c1").await;
    let before = app.get_connection("fake-1", "c1").await;
    let cookie = login(&app).await;
    let detail_path = connection_path("fake-1", "c1");
    let detail = get_page(&app, Some(&cookie), &detail_path).await;
    let csrf = detail.csrf();
    assert!(detail.body.contains(r#"id="last-refresh""#));

    let refreshed = post_form(
        &app,
        Some(&cookie),
        &format!("{detail_path}/refresh"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::SEE_OTHER);
    assert!(
        refreshed
            .location()
            .starts_with(&format!("{detail_path}?notice=refreshed")),
        "{}",
        refreshed.location()
    );
    let after = get_page(&app, Some(&cookie), &refreshed.location()).await;
    assert!(after.body.contains("The credentials were refreshed."));
    let connection = app.get_connection("fake-1", "c1").await;
    assert_ne!(
        connection["credentials"]["access_token"],
        before["credentials"]["access_token"]
    );
    assert!(app
        .provider
        .token_requests()
        .iter()
        .any(|r| r.grant_type() == "refresh_token"));

    // Credentials without a refresh token: said so, nothing called.
    app.provider.set(|b| b.issue_refresh_token = false);
    app.authorize("fake-1", "no-refresh").await;
    let path = connection_path("fake-1", "no-refresh");
    let page = post_form(
        &app,
        Some(&cookie),
        &format!("{path}/refresh"),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        page.location().contains("notice=not_refreshable"),
        "{}",
        page.location()
    );

    // Delete: confirm step, then gone, with the connection.deleted webhook of DELETE /connection.
    let confirm = get_page(&app, Some(&cookie), &format!("{detail_path}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    app.get_connection("fake-1", "c1").await;
    let deleted = post_form(
        &app,
        Some(&cookie),
        &format!("{detail_path}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(
        deleted
            .location()
            .starts_with("/dashboard/integrations/fake-1?notice=connection_deleted"),
        "{}",
        deleted.location()
    );
    app.assert_no_connection("fake-1", "c1").await;
    let deliveries = app
        .state
        .store
        .list_webhook_deliveries(None, 100)
        .await
        .unwrap();
    let deleted_events: Vec<Value> = deliveries
        .iter()
        .filter(|d| d.event_type == "connection.deleted")
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect();
    assert_eq!(deleted_events.len(), 1, "{deliveries:?}");
    assert_eq!(
        deleted_events[0]["connection_id"], "c1",
        "{}",
        deleted_events[0]
    );
    let again = post_form(
        &app,
        Some(&cookie),
        &format!("{detail_path}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn statuses_follow_the_connection_health() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.into()));
        s.proactive_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    app.create_config("fake-1", "fake", "read").await;
    app.authorize("fake-1", "healthy").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "expiring").await;
    app.provider.set(|b| b.expires_in = Some(3600));
    app.authorize("fake-1", "retrying").await;
    app.authorize("fake-1", "refused").await;
    let cookie = login(&app).await;
    let csrf = get_page(&app, Some(&cookie), "/dashboard").await.csrf();
    app.provider
        .set(|b| b.refresh_failure = Some((503, json!({"error": "temporarily_unavailable"}))));
    let page = post_form(
        &app,
        Some(&cookie),
        &format!("{}/refresh", connection_path("fake-1", "retrying")),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        page.location().contains("notice=refresh_unavailable"),
        "{}",
        page.location()
    );
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    let page = post_form(
        &app,
        Some(&cookie),
        &format!("{}/refresh", connection_path("fake-1", "refused")),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        page.location().contains("notice=refresh_rejected"),
        "{}",
        page.location()
    );

    let list = get_page(&app, Some(&cookie), "/dashboard/connections").await;
    let row = |id: &str| {
        let start = list
            .body
            .find(&format!(r#"data-connection-id="{id}""#))
            .unwrap_or_else(|| panic!("no row {id}"));
        let end = list.body[start..].find("</tr>").unwrap() + start;
        list.body[start..end].to_string()
    };
    assert!(row("healthy").contains(">healthy<"), "{}", row("healthy"));
    assert!(
        row("expiring").contains(">expiring<"),
        "{}",
        row("expiring")
    );
    assert!(
        row("retrying").contains(">retrying<"),
        "{}",
        row("retrying")
    );
    assert!(
        row("retrying").contains("temporarily_unavailable"),
        "the provider error: {}",
        row("retrying")
    );
    assert!(
        row("refused").contains(">needs re-authorization<"),
        "{}",
        row("refused")
    );
    assert!(row("refused").contains("invalid_grant"));
    let integrations = get_page(&app, Some(&cookie), "/dashboard").await;
    assert!(
        integrations.body.contains(r#"<td class="num">4</td>"#),
        "the connection count"
    );
}

#[tokio::test]
async fn without_a_secret_key_the_dashboard_is_open_with_a_warning() {
    let app = TestApp::spawn().await;
    let first = get_page(&app, None, "/dashboard").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.body.contains("No secret key is configured"),
        "the warning banner"
    );
    assert!(!first.body.contains("Log out"));
    let cookie = set_cookie(&first.headers).expect("an anonymous session for the CSRF token");
    let line = set_cookie_line(&first.headers);
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    let login = get_page(&app, None, "/dashboard/login").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/dashboard");

    // Still no state change without the token.
    let fields = config_form("open-1", "fake", "");
    let refused = post_form(&app, Some(&cookie), "/dashboard/integrations", &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = post_form(
        &app,
        None,
        "/dashboard/integrations",
        &with_csrf(&fields, &first.csrf()),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "the token without its cookie"
    );
    assert!(app.config_keys().await.is_empty());
    let created = post_form(
        &app,
        Some(&cookie),
        "/dashboard/integrations",
        &with_csrf(&fields, &first.csrf()),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(app.config_keys().await, vec!["open-1"]);
    let again = get_page(&app, Some(&cookie), "/dashboard").await;
    assert!(set_cookie(&again.headers).is_none(), "the cookie is kept");
    assert_eq!(again.csrf(), first.csrf());
}

#[tokio::test]
async fn pages_forbid_inline_script_and_assets_are_embedded_with_a_long_cache() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read").await;
    let cookie = login(&app).await;
    let mut assets = Vec::new();
    for path in [
        "/dashboard/login",
        "/dashboard",
        "/dashboard/integrations/fake-1",
        "/dashboard/new-integration",
    ] {
        let cookie = (path != "/dashboard/login").then_some(cookie.as_str());
        let page = get_page(&app, cookie, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let csp = header(&page.headers, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(header(&page.headers, "content-type").starts_with("text/html"));
        assert_eq!(header(&page.headers, "cache-control"), "no-store", "{path}");
        for (i, _) in page.body.match_indices("<script") {
            let tag = &page.body[i..i + page.body[i..].find('>').unwrap()];
            assert!(tag.contains(" src=\"/"), "{path}: inline script {tag}");
        }
        assert!(!page.body.contains(" style="), "{path}: inline style");
        for (i, _) in page.body.match_indices("/dashboard/assets/") {
            let url = &page.body[i..i + page.body[i..].find('"').unwrap()];
            assets.push(url.to_string());
        }
    }
    assets.sort();
    assets.dedup();
    assert_eq!(assets.len(), 3, "{assets:?}");
    for url in &assets {
        let response = app.anon(Method::GET, url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(
            header(response.headers(), "cache-control").contains("max-age=31536000"),
            "{url}"
        );
        let expected = if url.contains(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            header(response.headers(), "content-type").starts_with(expected),
            "{url}"
        );
        assert!(!response.text().await.unwrap().is_empty());
    }
    let missing = app
        .anon(Method::GET, "/dashboard/assets/nope.js")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_test_account_gets_a_connect_session_when_the_server_requires_one() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.into()));
        s.require_connect_session = true;
    })
    .await;
    app.create_config("fake-1", "fake", "read").await;
    let cookie = login(&app).await;
    let page = get_page(&app, Some(&cookie), "/dashboard/integrations/fake-1").await;
    assert!(
        page.body.contains(r#"id="connect-test""#),
        "the connect form"
    );
    assert!(page.body.contains(r#"data-require-session="true""#));
    assert!(page.body.contains("/dashboard/assets/connect.js"));
    let csrf = page.csrf();
    let url = "/dashboard/integrations/fake-1/connect-session";
    let mint = |token: Option<String>| {
        let mut request = app
            .anon(Method::POST, url)
            .header("cookie", format!("{COOKIE}={cookie}"))
            .form(&[("connection_id", "test-1")]);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(mint(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    let anonymous = app
        .anon(Method::POST, url)
        .header("x-csrf-token", csrf.clone())
        .form(&[("connection_id", "test-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let minted = mint(Some(csrf.clone())).await.unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    assert_eq!(header(minted.headers(), "cache-control"), "no-store");
    let token = minted.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(token.starts_with("ncs_"), "{token}");

    let callback = app
        .run_flow(
            "fake-1",
            &format!("connection_id=test-1&connect_session_token={token}"),
        )
        .await;
    assert_eq!(callback.status, StatusCode::OK, "{}", callback.body);
    app.get_connection("fake-1", "test-1").await;

    let unknown = app
        .anon(Method::POST, "/dashboard/integrations/nope/connect-session")
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("x-csrf-token", csrf)
        .form(&[("connection_id", "test-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}
