//! `ANY /proxy/*endpoint` against a fake provider API on loopback: credentials put in per auth
//! mode, everything else passed through both ways (streamed), header hygiene, 401 -> one refresh
//! -> one retry, 429/5xx retries (and those `Retry-On` adds) that honour the provider's waits.
//! (OAuth 1.0a signing is checked by oauthlib in oauth1.rs.)

use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use nango_server::secret::Secret;

use crate::helpers::{assert_json_error, basic_auth, FakeApi, FakeProvider, TestApp, SECRET_KEY};

/// Test templates whose API is `api`; OAuth ones use the fake provider.
fn templates(provider: &FakeProvider, api: &FakeApi) -> String {
    let provider = &provider.base_url;
    let api = &api.base_url;
    let oauth2 = format!(
        "  auth_mode: OAUTH2\n  authorization_url: \"{provider}/authorize\"\n  \
         token_url: \"{provider}/token\"\n"
    );
    format!(
        "api-oauth2:\n{oauth2}  base_api_url: \"{api}/v1\"\n\
         api-oauth2-query:\n{oauth2}  base_api_url: \"{api}/v1\"\n  proxy:\n    query:\n      \
           access_token: \"${{accessToken}}\"\n    headers:\n      X-Api-Version: \"2024-06\"\n\
         api-retry-headers:\n{oauth2}  base_api_url: \"{api}/v1\"\n  proxy:\n    retry:\n      \
           after: x-wait-seconds\n\
         api-no-base:\n{oauth2}\
         api-meta:\n{oauth2}  token_response_metadata:\n    - instance_url\n  \
           base_api_url: \"${{metadata.instance_url}}\"\n  metadata_url_hosts:\n    - '127.0.0.1'\n\
         api-sub:\n{oauth2}  base_api_url: \"{api}/${{connectionConfig.params.subdomain}}/v2\"\n\
         api-cc:\n  auth_mode: OAUTH2_CC\n  token_url: \"{provider}/token\"\n  base_api_url: \"{api}/cc\"\n\
         api-key-header:\n  auth_mode: API_KEY\n  base_api_url: \"{api}/k\"\n  api_key:\n    \
           header: X-Api-Key\n    prefix: \"Key \"\n\
         api-key-query:\n  auth_mode: API_KEY\n  base_api_url: \"{api}/q\"\n  api_key:\n    query: api_key\n\
         api-basic:\n  auth_mode: BASIC\n  base_api_url: \"{api}/b\"\n\
         api-closed:\n  auth_mode: API_KEY\n  base_api_url: \"http://127.0.0.1:{closed}/x\"\n  \
           api_key:\n    query: api_key\n",
        closed = closed_port(),
    )
}

/// A proxied call without a body for connection `u1` of `key`.
async fn call(app: &TestApp, method: Method, key: &str, endpoint: &str) -> reqwest::Response {
    proxy(app, method, key, "u1", endpoint)
        .send()
        .await
        .unwrap()
}

/// The JSON error of a call the proxy refuses with 400.
async fn refused(request: reqwest::RequestBuilder) -> Value {
    assert_json_error(request.send().await.unwrap(), StatusCode::BAD_REQUEST).await
}

/// The status of a proxied GET written byte for byte (the path exactly as given).
async fn raw_status(app: &TestApp, endpoint: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /proxy{endpoint} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Connection-Id: u1\r\nProvider-Config-Key: gh\r\nConnection: close\r\n\r\n",
        app.addr,
        basic_auth(SECRET_KEY)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn setup() -> (TestApp, FakeApi) {
    let api = FakeApi::start().await;
    let app = TestApp::spawn_with_templates(
        |s| s.secret_key = Some(Secret::new(SECRET_KEY.to_string())),
        |provider| templates(provider, &api),
    )
    .await;
    (app, api)
}

/// A proxied call for `connection_id` of `key`.
fn proxy(
    app: &TestApp,
    method: Method,
    key: &str,
    connection_id: &str,
    endpoint: &str,
) -> reqwest::RequestBuilder {
    app.api(method, &format!("/proxy{endpoint}"))
        .header("Connection-Id", connection_id)
        .header("Provider-Config-Key", key)
}

async fn access_token(app: &TestApp, key: &str, connection_id: &str) -> String {
    app.get_connection(key, connection_id).await["credentials"]["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn oauth2_connection(app: &TestApp, key: &str, provider: &str) -> String {
    app.create_config(key, provider, "read").await;
    app.authorize(key, "u1").await;
    access_token(app, key, "u1").await
}

#[tokio::test]
async fn an_oauth2_call_gets_the_bearer_token_and_passes_everything_else_through() {
    let (app, api) = setup().await;
    let token = oauth2_connection(&app, "gh", "api-oauth2").await;

    let response = proxy(
        &app,
        Method::POST,
        "gh",
        "u1",
        "/repos/ada/x%20y/issues?state=open&q=a%2Bb&q=c",
    )
    .header("content-type", "application/json")
    .header("accept", "text/plain")
    .header("Nango-Proxy-Accept", "application/vnd.github+json")
    .header("Nango-Proxy-X-Trace", "t-1")
    .header("X-Plain", "kept")
    .header("Cookie", "nango_dashboard=secret")
    .header("X-Forwarded-For", "10.1.2.3")
    .header("Proxy-Authorization", "Basic bWluZTpwcm94eQ==")
    .header("Proxy-Foo", "for a proxy on the way")
    .body(r#"{"title":"hello"}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The provider's headers come back.
    assert_eq!(response.headers()["x-fake-api"], "echo");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let echo: Value = response.json().await.unwrap();

    let seen = api.last_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/repos/ada/x%20y/issues", "{echo}");
    assert_eq!(seen.query.as_deref(), Some("state=open&q=a%2Bb&q=c"));
    assert_eq!(seen.body, br#"{"title":"hello"}"#);
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}"))
    );
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        seen.header("accept").as_deref(),
        Some("application/vnd.github+json")
    );
    assert_eq!(seen.header("x-trace").as_deref(), Some("t-1"));
    assert_eq!(seen.header("x-plain").as_deref(), Some("kept"));
    assert_eq!(seen.headers.get_all("accept").iter().count(), 1);
    // Nothing about our server, the caller's network or the proxy's controls reaches the provider.
    for name in [
        "cookie",
        "x-forwarded-for",
        "connection-id",
        "provider-config-key",
        "nango-proxy-x-trace",
        "proxy-authorization",
        "proxy-foo",
    ] {
        assert!(seen.header(name).is_none(), "{name} was forwarded");
    }
    let everything = format!("{:?}", seen.headers);
    assert!(
        !everything.contains(SECRET_KEY),
        "the secret key was forwarded"
    );

    // Every method goes through as is.
    for method in [
        Method::GET,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ] {
        let response = proxy(&app, method.clone(), "gh", "u1", "/user")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(api.last_request().method, method.as_str());
    }
}

#[tokio::test]
async fn a_template_can_put_the_token_in_the_query_and_add_headers() {
    let (app, api) = setup().await;
    let token = oauth2_connection(&app, "q", "api-oauth2-query").await;
    let response = call(&app, Method::GET, "q", "/me?fields=id").await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = api.last_request();
    assert_eq!(
        seen.query.as_deref(),
        Some(format!("fields=id&access_token={token}").as_str())
    );
    assert_eq!(
        seen.header("authorization"),
        None,
        "no bearer when the template places the token"
    );
    assert_eq!(seen.header("x-api-version").as_deref(), Some("2024-06"));
}

#[tokio::test]
async fn the_base_url_can_come_from_the_token_response_or_the_connection_config() {
    let (app, api) = setup().await;
    // Salesforce's way: each org's API is at the instance_url its token response names.
    let instance = format!("{}/org-7", api.base_url);
    app.provider.set(|b| {
        b.extra_token_fields
            .insert("instance_url".into(), json!(instance));
    });
    app.create_config("sf", "api-meta", "").await;
    app.authorize("sf", "u1").await;
    let response = call(&app, Method::GET, "sf", "/services/data/v59.0/sobjects").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        api.last_request().path,
        "/org-7/services/data/v59.0/sobjects"
    );

    // A per-tenant API named by the connection's config.
    app.create_config("sub", "api-sub", "").await;
    let page = app
        .run_flow("sub", "connection_id=u1&params[subdomain]=acme")
        .await;
    page.assert_success("sub", "u1");
    let response = call(&app, Method::GET, "sub", "/tickets").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.last_request().path, "/acme/v2/tickets");
}

#[tokio::test]
async fn api_keys_basic_and_client_credentials_go_where_the_template_says() {
    let (app, api) = setup().await;
    app.create_config("kh", "api-key-header", "").await;
    app.create_config("kq", "api-key-query", "").await;
    app.create_config("b", "api-basic", "").await;
    app.create_config("cc", "api-cc", "").await;
    for body in [
        json!({"provider_config_key": "kh", "connection_id": "u1", "api_key": "sk-header-1"}),
        json!({"provider_config_key": "kq", "connection_id": "u1", "api_key": "sk query&2"}),
        json!({"provider_config_key": "b", "connection_id": "u1", "username": "ada", "password": "p:w"}),
        json!({"provider_config_key": "cc", "connection_id": "u1"}),
    ] {
        let response = app.post_json("/connection", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }

    let ok = |r: reqwest::Response| assert_eq!(r.status(), StatusCode::OK);
    ok(call(&app, Method::GET, "kh", "/items").await);
    let seen = api.last_request();
    assert_eq!(seen.path, "/k/items");
    assert_eq!(seen.header("x-api-key").as_deref(), Some("Key sk-header-1"));
    assert_eq!(seen.header("authorization"), None);

    ok(call(&app, Method::GET, "kq", "/items?page=2").await);
    let seen = api.last_request();
    assert_eq!(seen.query.as_deref(), Some("page=2&api_key=sk+query%262"));

    ok(call(&app, Method::GET, "b", "/items").await);
    let basic = base64::engine::general_purpose::STANDARD.encode("ada:p:w");
    assert_eq!(
        api.last_request().header("authorization"),
        Some(format!("Basic {basic}"))
    );

    ok(call(&app, Method::GET, "cc", "/items").await);
    let token = app.get_connection("cc", "u1").await["credentials"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.last_request().bearer(), Some(token));
}

#[tokio::test]
async fn a_401_forces_one_shared_refresh_and_one_retry() {
    let (app, api) = setup().await;
    let first = oauth2_connection(&app, "gh", "api-oauth2").await;
    api.refuse_token(&first);

    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.provider.refresh_count(), 1);
    let second = access_token(&app, "gh", "u1").await;
    assert_ne!(second, first);
    let tokens: Vec<_> = api.requests().iter().map(|r| r.bearer().unwrap()).collect();
    assert_eq!(tokens, [first.clone(), second.clone()]);

    // Many calls refused at once share one refresh.
    api.refuse_token(&second);
    let calls = (0..8).map(|_| proxy(&app, Method::GET, "gh", "u1", "/user").send());
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(app.provider.refresh_count(), 2);

    // A token the provider keeps refusing: one refresh, one retry, then its 401 comes back.
    api.refuse_every_bearer(true);
    let before = api.request_count();
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_token"
    );
    assert_eq!(app.provider.refresh_count(), 3);
    assert_eq!(api.request_count(), before + 2);

    // An API key has nothing to refresh: its 401 comes back at once.
    app.create_config("kh", "api-key-header", "").await;
    app.post_json(
        "/connection",
        &json!({"provider_config_key": "kh", "connection_id": "u1", "api_key": "sk-1"}),
    )
    .await;
    api.script(&[(401, &[])]);
    let before = api.request_count();
    let response = call(&app, Method::GET, "kh", "/x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.request_count(), before + 1);
}

#[tokio::test]
async fn a_429_waits_as_long_as_the_provider_asks() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    api.script(&[(429, &[("retry-after", "1")])]);
    let started = Instant::now();
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retried before Retry-After"
    );
    assert_eq!(api.request_count(), 2);

    // POST is not retried unless the caller asks.
    api.script(&[(429, &[("retry-after", "0")])]);
    let response = proxy(&app, Method::POST, "gh", "u1", "/issues")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "0");
    assert_eq!(api.request_count(), 3);
    api.script(&[(429, &[("retry-after", "0")])]);
    let response = proxy(&app, Method::POST, "gh", "u1", "/issues")
        .header("Retries", "1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 5);
    // The retried request carried the same body.
    assert_eq!(api.last_request().body, b"{}");

    // A wait longer than the server allows is not waited: the 429 comes back at once.
    api.script(&[(429, &[("retry-after", "3600")])]);
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.request_count(), 6);

    // The template's own header.
    app.create_config("rh", "api-retry-headers", "").await;
    app.authorize("rh", "u1").await;
    let before = api.request_count();
    api.script(&[(429, &[("x-wait-seconds", "1")])]);
    let started = Instant::now();
    let response = call(&app, Method::GET, "rh", "/user").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retried before x-wait-seconds"
    );
    assert_eq!(api.request_count(), before + 2);

    // Bad Retries headers are refused.
    for bad in ["11", "-1", "many"] {
        let response = proxy(&app, Method::GET, "gh", "u1", "/user")
            .header("Retries", bad)
            .send()
            .await
            .unwrap();
        assert_json_error(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_up_to_the_limit() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    // GET retries twice by default.
    api.script(&[(500, &[]), (502, &[])]);
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 3);

    // Out of retries: the last answer comes back as the provider gave it.
    api.script(&[(503, &[]), (503, &[]), (503, &[("x-last", "yes")])]);
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-last"], "yes");
    assert_eq!(api.request_count(), 6);

    // Retries: 0 turns them off.
    api.script(&[(500, &[])]);
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retries", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.request_count(), 7);
}

#[tokio::test]
async fn retry_on_adds_statuses_to_retry_within_the_same_budget() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    // A 409 is not retried by default.
    api.script(&[(409, &[])]);
    let response = call(&app, Method::GET, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(api.request_count(), 1);

    // Listed, it is, after the wait the provider asks for.
    api.script(&[(409, &[("retry-after", "1")])]);
    let started = Instant::now();
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retry-On", "409")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retried before Retry-After"
    );

    // Spaces in the list, as some callers write it; 429 and 5xx stay retried.
    api.script(&[(404, &[]), (503, &[])]);
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retry-On", "500, 404")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 6);

    // The budget is the Retries header's: out of retries, the last answer comes back.
    api.script(&[(409, &[]), (409, &[("x-last", "yes")])]);
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retry-On", "409")
        .header("Retries", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(response.headers()["x-last"], "yes");
    assert_eq!(api.request_count(), 8);

    // An empty list (what Nango's SDK sends for `retryOn: []`) adds nothing.
    api.script(&[(409, &[])]);
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retry-On", "")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(api.request_count(), 9);
}

#[tokio::test]
async fn retry_on_does_not_retry_a_post_unless_retries_asks() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    api.script(&[(409, &[])]);
    let response = proxy(&app, Method::POST, "gh", "u1", "/issues")
        .header("Retry-On", "409")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(api.request_count(), 1);

    // With Retries, the caller chose to send it again.
    api.script(&[(409, &[])]);
    let response = proxy(&app, Method::POST, "gh", "u1", "/issues")
        .header("Retry-On", "409")
        .header("Retries", "1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.request_count(), 3);
    assert_eq!(api.last_request().body, b"{}");
}

#[tokio::test]
async fn the_proxys_retry_and_redirect_headers_stay_with_the_proxy() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    // Both as Nango's SDK sends them (`retryOn`, `forwardHeadersOnRedirect`).
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Retry-On", "429,409")
        .header("Forward-Headers-On-Redirect", "true")
        .header("X-Plain", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = api.last_request();
    assert_eq!(seen.header("x-plain").as_deref(), Some("kept"));
    for name in ["retry-on", "forward-headers-on-redirect"] {
        assert!(seen.header(name).is_none(), "{name} was forwarded");
    }

    // Redirects are not followed, whatever the header says: the 3xx comes back as it is.
    let elsewhere = format!("{}/v1/elsewhere", api.base_url);
    api.script(&[(302, &[("location", elsewhere.as_str())])]);
    let response = proxy(&app, Method::GET, "gh", "u1", "/user")
        .header("Forward-Headers-On-Redirect", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], elsewhere.as_str());
    assert_eq!(api.request_count(), 2);
    assert!(api
        .last_request()
        .header("forward-headers-on-redirect")
        .is_none());
}

#[tokio::test]
async fn a_bad_retry_on_is_refused_before_calling_the_provider() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    let too_many = vec!["409"; 51].join(",");
    for bad in [
        "abc",
        "409,",
        "99",
        "600",
        "-409",
        "409;404",
        too_many.as_str(),
    ] {
        let error =
            refused(proxy(&app, Method::GET, "gh", "u1", "/user").header("Retry-On", bad)).await;
        assert_eq!(error["type"], "invalid_request", "{bad}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains("Retry-On"),
            "{bad}: {error}"
        );
    }
    assert_eq!(api.request_count(), 0, "nothing reached the provider");
}

/// VmRSS of this process (the server, the fake API and the client all run in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[tokio::test]
async fn fifty_megabytes_stream_through_both_ways_in_flat_memory() {
    const SIZE: usize = 50 * 1024 * 1024;
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = rss_bytes();

    // Download: counted as it arrives, never held.
    let response = call(&app, Method::GET, "gh", &format!("/big/{SIZE}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], SIZE.to_string());
    let mut stream = response.bytes_stream();
    let (mut received, mut position) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(usize::from(chunk[0]), (position % (64 * 1024)) % 251);
        position += chunk.len();
        received += chunk.len();
    }
    assert_eq!(received, SIZE);

    // Upload: made as it is sent.
    let chunks =
        futures::stream::iter((0..SIZE / 65536).map(|_| Ok::<_, std::io::Error>(vec![7u8; 65536])));
    let response = proxy(&app, Method::PUT, "gh", "u1", "/upload")
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.last_request().body_len, SIZE);

    sampler.abort();
    let grew = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(start);
    // Holding either body would grow by 50 MB; streaming takes a few buffers.
    assert!(
        grew < 20 * 1024 * 1024,
        "memory grew by {} MB",
        grew / 1024 / 1024
    );
}

#[tokio::test]
async fn bad_calls_get_clear_errors_and_never_show_a_credential() {
    let (app, api) = setup().await;
    oauth2_connection(&app, "gh", "api-oauth2").await;

    let error = refused(
        app.api(Method::GET, "/proxy/user")
            .header("Provider-Config-Key", "gh"),
    )
    .await;
    assert_eq!(error["error"], "Missing header 'Connection-Id'.");
    let error = refused(
        app.api(Method::GET, "/proxy/user")
            .header("Connection-Id", "u1"),
    )
    .await;
    assert_eq!(error["error"], "Missing header 'Provider-Config-Key'.");
    let error = refused(proxy(&app, Method::GET, "gh", "nobody", "/user")).await;
    assert_eq!(error["type"], "unkown_connection");
    let error = refused(proxy(&app, Method::GET, "nokey", "u1", "/user")).await;
    assert!(
        error["type"] == "unkown_connection" || error["type"] == "unknown_provider_config",
        "{error}"
    );

    // Without the secret key, nothing is proxied.
    let response = app
        .anon(Method::GET, "/proxy/user")
        .header("Connection-Id", "u1")
        .header("Provider-Config-Key", "gh")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Methods APIs do not use.
    let response = call(&app, Method::TRACE, "gh", "/user").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Endpoints that would climb out of the API's base path (sent raw: HTTP clients would
    // remove the dot segments themselves).
    for endpoint in [
        "/a/../b",
        "/a/%2e%2e/b",
        "/a/%2E%2E%2Fadmin",
        "/x/%2f%2fevil.example",
    ] {
        assert_eq!(raw_status(&app, endpoint).await, 400, "{endpoint}");
    }
    assert_eq!(api.request_count(), 0, "nothing reached the provider");

    // A template without base_api_url.
    app.create_config("nb", "api-no-base", "").await;
    app.authorize("nb", "u1").await;
    let error = refused(proxy(&app, Method::GET, "nb", "u1", "/user")).await;
    assert!(
        error["error"].as_str().unwrap().contains("base_api_url"),
        "{error}"
    );

    // An API that cannot be reached: 502, and the key in the query is not in the error.
    app.create_config("closed", "api-closed", "").await;
    app.post_json(
        "/connection",
        &json!({"provider_config_key": "closed", "connection_id": "u1", "api_key": "sk-very-secret"}),
    )
    .await;
    let response = call(&app, Method::GET, "closed", "/x").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("sk-very-secret") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["type"], "provider_unreachable");
}
