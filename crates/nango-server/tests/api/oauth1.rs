//! OAuth 1.0a flows against a provider that is not our code: `tests/oauth1/provider.py`, built on
//! oauthlib's server endpoints (which parse our requests and check every signature), started for
//! each test. Python is `$NANGO_TEST_PYTHON`, else `target/venv/bin/python`, else `python3`; a
//! Python without oauthlib fails the tests, it never skips them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{query_pairs, query_param, Page, TestApp, CLIENT_ID, CLIENT_SECRET};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("NANGO_TEST_PYTHON") {
        if !python.trim().is_empty() {
            return PathBuf::from(python.trim());
        }
    }
    let venv = repo_root().join("target/venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// The Python provider; killed (and its stdin closed) when dropped.
struct OAuth1Provider {
    child: Child,
    /// `http://127.0.0.1:<port>`
    base_url: String,
}

impl OAuth1Provider {
    fn start() -> OAuth1Provider {
        let python = python();
        let check = Command::new(&python)
            .args(["-c", "import oauthlib, jwt, cryptography"])
            .output();
        match check {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "The OAuth 1 tests need Python with oauthlib, PyJWT and cryptography, and {} \
                 cannot import them ({}). Install them with `python3 -m venv target/venv && \
                 target/venv/bin/pip install -r tests/oauth1/requirements.txt`, or point \
                 NANGO_TEST_PYTHON at a Python that has them.",
                python.display(),
                match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                }
            ),
        }
        let script = repo_root().join("tests/oauth1/provider.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} {}: {e}", python.display(), script.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the OAuth 1 provider did not print its port within 30 s");
        let port = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
            .unwrap_or_else(|| {
                panic!("the OAuth 1 provider printed {line:?}, not {{\"port\": N}}")
            });
        OAuth1Provider {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// What each endpoint received, in order (`/_log`).
    async fn log(&self) -> Vec<Value> {
        let body: Value = reqwest::get(format!("{}/_log", self.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body.as_array().unwrap().clone()
    }

    async fn calls_to(&self, endpoint: &str) -> Vec<Value> {
        self.log()
            .await
            .into_iter()
            .filter(|e| e["endpoint"] == endpoint)
            .collect()
    }
}

impl Drop for OAuth1Provider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OAUTH1 templates pointing at the Python provider; `closed` is a port nothing listens on.
fn catalog(base: &str, closed: u16) -> String {
    let template = |name: &str, extra: &str| {
        format!(
            "{name}:\n  auth_mode: OAUTH1\n  request_url: \"{base}/request_token\"\n  \
             authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/access_token\"\n  \
             base_api_url: \"{base}/api\"\n{extra}"
        )
    };
    [
        template(
            "oauth1-hmac",
            "  signature_method: HMAC-SHA1\n  scope_separator: ','\n  request_params:\n    \
             x_auth_access_type: write\n  authorization_params:\n    expiration: never\n  \
             token_params:\n    extra: token-param\n",
        ),
        template(
            "oauth1-plaintext",
            "  signature_method: PLAINTEXT\n  request_http_method: GET\n  token_http_method: GET\n  \
             request_params:\n    x_auth_access_type: read\n",
        ),
        template(
            "oauth1-sha256",
            "  signature_method: HMAC-SHA256\n  token_http_method: PUT\n",
        ),
        template("oauth1-rsa", "  signature_method: RSA-SHA1\n"),
        template(
            "oauth1-deny",
            "  signature_method: HMAC-SHA1\n  authorization_params:\n    decision: deny\n",
        ),
        format!(
            "oauth1-slow:\n  auth_mode: OAUTH1\n  request_url: \"{base}/slow_request_token\"\n  \
             authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/access_token\"\n  \
             signature_method: HMAC-SHA1\n"
        ),
        format!(
            "oauth1-closed:\n  auth_mode: OAUTH1\n  request_url: \"http://127.0.0.1:{closed}/request_token\"\n  \
             authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/access_token\"\n  \
             signature_method: HMAC-SHA1\n"
        ),
    ]
    .concat()
}

async fn setup_with(
    hook: impl Fn(&mut nango_server::Settings) + Send + Sync + 'static,
) -> (TestApp, OAuth1Provider) {
    let provider = OAuth1Provider::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut app = TestApp::spawn_with(hook).await;
    app.restart_with_providers(&catalog(&provider.base_url, closed))
        .await;
    (app, provider)
}

async fn setup() -> (TestApp, OAuth1Provider) {
    setup_with(|_| {}).await
}

async fn create_config_with_secret(app: &TestApp, key: &str, provider: &str, secret: &str) {
    let response = app
        .post_json(
            "/config",
            &json!({
                "provider_config_key": key,
                "provider": provider,
                "oauth_client_id": CLIENT_ID,
                "oauth_client_secret": secret,
                "oauth_scopes": "",
            }),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", response.text().await.unwrap());
}

/// `/oauth/connect` must answer 302 to the provider's authorize page; returns that URL.
async fn start(app: &TestApp, provider: &OAuth1Provider, key: &str, query: &str) -> Url {
    let response = app.connect(key, query).await;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "connect did not redirect: {body}"
    );
    let location = Url::parse(&location.unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}{}",
            location.origin().ascii_serialization(),
            location.path()
        ),
        format!("{}/authorize", provider.base_url)
    );
    location
}

/// Opens the authorize URL at the provider (which decides at once); returns where it sends the
/// browser back, on the current server. The registered callback URL is the first server's (it
/// stays the same across the restart that loaded the OAuth 1 templates, as it would behind a
/// load balancer), so only its port is moved.
async fn authorize_at_provider(app: &TestApp, authorize: &Url) -> Url {
    let response = app.client.get(authorize.clone()).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "{}",
        response.text().await.unwrap()
    );
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&format!("{}?state=", app.state.settings.callback_url)),
        "the provider sent the browser to {location}"
    );
    let mut callback = location;
    callback.set_port(Some(app.addr.port())).unwrap();
    callback
}

/// The whole browser side of a flow; returns the callback URL and the page it answered.
async fn run_flow(app: &TestApp, provider: &OAuth1Provider, key: &str, query: &str) -> (Url, Page) {
    let authorize = start(app, provider, key, query).await;
    let callback = authorize_at_provider(app, &authorize).await;
    let page = app.open(&callback).await;
    (callback, page)
}

fn pair(name: &str, value: &str) -> Value {
    json!([name, value])
}

#[tokio::test]
async fn hmac_sha1_flow_stores_oauth1_credentials_that_get_connection_returns_unchanged() {
    let (app, provider) = setup().await;
    app.create_config("tw", "oauth1-hmac", "read,write").await;

    let authorize = start(&app, &provider, "tw", "connection_id=user-1").await;
    let request_token = query_param(&authorize, "oauth_token").unwrap();
    let names: Vec<String> = query_pairs(&authorize)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, ["oauth_token", "scope", "expiration"]);
    assert_eq!(
        query_param(&authorize, "scope").as_deref(),
        Some("read,write")
    );
    assert_eq!(
        query_param(&authorize, "expiration").as_deref(),
        Some("never")
    );

    let callback = authorize_at_provider(&app, &authorize).await;
    assert_eq!(
        query_param(&callback, "oauth_token"),
        Some(request_token.clone())
    );
    let verifier = query_param(&callback, "oauth_verifier").unwrap();
    app.open(&callback).await.assert_success("tw", "user-1");

    // What oauthlib accepted: a signed request-token call with our callback and the template's
    // request_params in the body, then the access-token call with the verifier and token_params.
    let calls = provider.calls_to("request_token").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["status"], 200, "{call}");
    assert_eq!(call["method"], "POST");
    assert_eq!(call["oauth"]["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(call["oauth"]["oauth_version"], "1.0");
    assert_eq!(call["oauth"]["oauth_consumer_key"], CLIENT_ID);
    let oauth_callback = call["oauth"]["oauth_callback"].as_str().unwrap();
    assert!(
        oauth_callback.starts_with(&format!("{}?state=", app.state.settings.callback_url)),
        "{oauth_callback}"
    );
    assert_eq!(call["body"], json!([pair("x_auth_access_type", "write")]));
    assert_eq!(call["user_agent"], "Nango");

    let calls = provider.calls_to("access_token").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["status"], 200, "{call}");
    assert_eq!(call["method"], "POST");
    assert_eq!(call["oauth"]["oauth_token"], request_token.as_str());
    assert_eq!(call["oauth"]["oauth_verifier"], verifier.as_str());
    assert_eq!(call["body"], json!([pair("extra", "token-param")]));
    let issued = call["response"].clone();

    let connection = app.get_connection("tw", "user-1").await;
    let credentials = &connection["credentials"];
    let keys: Vec<&String> = credentials.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "oauth_token", "oauth_token_secret", "raw"]);
    assert_eq!(credentials["type"], "OAUTH1");
    assert_eq!(credentials["oauth_token"], issued["oauth_token"]);
    assert_eq!(
        credentials["oauth_token_secret"],
        issued["oauth_token_secret"]
    );
    assert_eq!(credentials["raw"], issued);
    assert_eq!(credentials["raw"]["user_id"], "42");
    assert_eq!(credentials["raw"]["screen_name"], "ada");
    assert!(credentials["oauth_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    // OAuth 1 tokens do not expire: later reads return them as stored, nothing is refreshed.
    let again = app.get_connection("tw", "user-1").await;
    assert_eq!(again["credentials"], *credentials);
    assert_eq!(provider.calls_to("access_token").await.len(), 1);
}

#[tokio::test]
async fn plaintext_flow_with_get_calls_notifies_the_websocket() {
    let (app, provider) = setup().await;
    app.create_config("smug", "oauth1-plaintext", "").await;
    let mut ws = app.ws_connect().await;

    let query = format!("connection_id=user-2&ws_client_id={}", ws.id);
    let authorize = start(&app, &provider, "smug", &query).await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some(""));
    let callback = authorize_at_provider(&app, &authorize).await;
    let page = app.open(&callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        ws.next_json().await,
        json!({"message_type": "success", "provider_config_key": "smug", "connection_id": "user-2"})
    );
    ws.assert_closed().await;

    let request = &provider.calls_to("request_token").await[0];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["oauth"]["oauth_signature_method"], "PLAINTEXT");
    assert_eq!(
        request["query"],
        json!([pair("x_auth_access_type", "read")])
    );
    let access = &provider.calls_to("access_token").await[0];
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);

    let connection = app.get_connection("smug", "user-2").await;
    assert_eq!(connection["credentials"]["type"], "OAUTH1");
    assert_eq!(connection["credentials"]["raw"], access["response"]);
}

#[tokio::test]
async fn hmac_sha256_and_rsa_sha1_signatures_are_accepted() {
    let (app, provider) = setup().await;
    app.create_config("sha256", "oauth1-sha256", "").await;
    let rsa_key =
        std::fs::read_to_string(repo_root().join("tests/oauth1/test_rsa_private_key.pem")).unwrap();
    create_config_with_secret(&app, "rsa", "oauth1-rsa", &rsa_key).await;

    for (key, method, token_method) in [
        ("sha256", "HMAC-SHA256", "PUT"),
        ("rsa", "RSA-SHA1", "POST"),
    ] {
        let (_, page) = run_flow(&app, &provider, key, "connection_id=u").await;
        page.assert_success(key, "u");
        let request = provider.calls_to("request_token").await.pop().unwrap();
        assert_eq!(request["oauth"]["oauth_signature_method"], method);
        let access = provider.calls_to("access_token").await.pop().unwrap();
        assert_eq!(access["method"], token_method);
        assert_eq!(access["status"], 200);
        let connection = app.get_connection(key, "u").await;
        assert_eq!(
            connection["credentials"]["oauth_token"],
            access["response"]["oauth_token"]
        );
    }
}

/// A call through `/proxy` for connection `u` of `key`.
fn proxied(
    app: &TestApp,
    method: reqwest::Method,
    key: &str,
    endpoint: &str,
) -> reqwest::RequestBuilder {
    app.api(method, &format!("/proxy{endpoint}"))
        .header("Connection-Id", "u")
        .header("Provider-Config-Key", key)
}

#[tokio::test]
async fn proxied_calls_are_signed_with_the_access_token_and_oauthlib_verifies_them() {
    use reqwest::Method;
    let (app, provider) = setup().await;
    app.create_config("hmac", "oauth1-hmac", "").await;
    app.create_config("plain", "oauth1-plaintext", "").await;
    let rsa_key =
        std::fs::read_to_string(repo_root().join("tests/oauth1/test_rsa_private_key.pem")).unwrap();
    create_config_with_secret(&app, "rsa", "oauth1-rsa", &rsa_key).await;

    // The verifier is not a formality: an unsigned or badly signed call is refused.
    let forged = reqwest::Client::new()
        .get(format!("{}/api/statuses", provider.base_url))
        .header(
            "Authorization",
            "OAuth oauth_consumer_key=\"test-client-id\", oauth_token=\"x\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1\", \
             oauth_nonce=\"abcdefghijklmnopqrstuvwx\", oauth_version=\"1.0\", oauth_signature=\"AAAA\"",
        )
        .send()
        .await
        .unwrap();
    assert_ne!(forged.status(), StatusCode::OK);

    for key in ["hmac", "plain", "rsa"] {
        let (_, page) = run_flow(&app, &provider, key, "connection_id=u").await;
        page.assert_success(key, "u");
        let token = app.get_connection(key, "u").await["credentials"]["oauth_token"]
            .as_str()
            .unwrap()
            .to_string();

        // A query with reserved characters, non-ASCII text and a repeated name.
        let response = proxied(
            &app,
            Method::GET,
            key,
            "/statuses/home.json?count=5&q=caf%C3%A9%20%26%20more&q=b",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{key}");
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["valid"], true, "{key}: {seen}");
        assert_eq!(seen["token"], token.as_str());
        assert_eq!(seen["path"], "/api/statuses/home.json");
        assert_eq!(
            seen["query"],
            json!([["count", "5"], ["q", "café & more"], ["q", "b"]])
        );

        // A form body's parameters are signed too (RFC 5849 §3.4.1.3.1).
        let response = proxied(&app, Method::POST, key, "/statuses/update.json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("status=hello%20world%21&lat=1.5&status=again")
            .send()
            .await
            .unwrap();
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["valid"], true, "{key}: {seen}");
        assert_eq!(
            seen["form"],
            json!([
                ["status", "hello world!"],
                ["lat", "1.5"],
                ["status", "again"]
            ])
        );

        // Other bodies are not (and other methods are signed with their own name).
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            let response = proxied(&app, method.clone(), key, "/statuses/1")
                .header("content-type", "application/json")
                .body(r#"{"text":"x"}"#)
                .send()
                .await
                .unwrap();
            let seen: Value = response.json().await.unwrap();
            assert_eq!(seen["valid"], true, "{key} {method}: {seen}");
            assert_eq!(seen["method"], method.as_str());
            assert_eq!(seen["body"], r#"{"text":"x"}"#);
        }
    }
}

#[tokio::test]
async fn a_wrong_consumer_secret_is_refused_by_the_provider_and_stores_nothing() {
    let (app, provider) = setup().await;
    create_config_with_secret(&app, "tw", "oauth1-hmac", "not-the-secret").await;
    let expected = "Error storing/retrieving the token. The request token endpoint refused the \
                    request (HTTP 401: signature_invalid).";

    let page = Page::read(app.connect("tw", "connection_id=user-1").await).await;
    page.assert_failure("token_err", expected);

    let mut ws = app.ws_connect().await;
    let response = app
        .connect(
            "tw",
            &format!("connection_id=user-1&ws_client_id={}", ws.id),
        )
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        ws.next_json().await,
        json!({
            "message_type": "error",
            "provider_config_key": "tw",
            "connection_id": "user-1",
            "error_type": "token_err",
            "error_desc": expected,
        })
    );

    let calls = provider.calls_to("request_token").await;
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c["status"] == 401), "{calls:?}");
    assert!(provider.calls_to("authorize").await.is_empty());
    app.assert_no_connection("tw", "user-1").await;
    // And the secret appears nowhere in what the browser got.
    assert!(!page.body.contains("not-the-secret"));
}

#[tokio::test]
async fn a_denied_authorization_is_callback_err() {
    let (app, provider) = setup().await;
    app.create_config("deny", "oauth1-deny", "").await;
    let (callback, page) = run_flow(&app, &provider, "deny", "connection_id=user-1").await;
    assert!(query_param(&callback, "denied").is_some(), "{callback}");
    assert_eq!(query_param(&callback, "oauth_verifier"), None);
    page.assert_failure(
        "callback_err",
        "Did not get oauth_token and/or oauth_verifier in the callback.",
    );
    assert!(provider.calls_to("access_token").await.is_empty());
    app.assert_no_connection("deny", "user-1").await;
}

#[tokio::test]
async fn a_replayed_callback_or_an_unknown_oauth_token_is_refused() {
    let (app, provider) = setup().await;
    app.create_config("tw", "oauth1-hmac", "").await;

    let (callback, page) = run_flow(&app, &provider, "tw", "connection_id=user-1").await;
    page.assert_success("tw", "user-1");
    let first = app.get_connection("tw", "user-1").await;
    let state = query_param(&callback, "state").unwrap();
    // Replayed: the flow state was used up, and the provider is not asked again.
    app.open(&callback).await.assert_failure(
        "state_err",
        &format!("Invalid state parameter passed in the callback: {state}"),
    );
    assert_eq!(provider.calls_to("access_token").await.len(), 1);
    assert_eq!(
        app.get_connection("tw", "user-1").await["credentials"],
        first["credentials"]
    );

    // A callback whose oauth_token is not the flow's: the provider refuses the exchange.
    let authorize = start(&app, &provider, "tw", "connection_id=user-2").await;
    let genuine = authorize_at_provider(&app, &authorize).await;
    let mut forged = genuine.clone();
    let pairs: Vec<(String, String)> = query_pairs(&genuine)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "oauth_token" => (k, "unknownrequesttoken00000000000".to_string()),
            _ => (k, v),
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    app.open(&forged).await.assert_failure(
        "unknown_err",
        "Unkown error during the Oauth flow. The access token endpoint refused the request \
         (HTTP 401: token_rejected).",
    );
    let access = provider.calls_to("access_token").await;
    assert_eq!(access.len(), 2);
    assert_eq!(access[1]["status"], 401);
    app.assert_no_connection("tw", "user-2").await;
    // The flow state is single-use even when the exchange failed.
    let state = query_param(&genuine, "state").unwrap();
    app.open(&genuine).await.assert_failure(
        "state_err",
        &format!("Invalid state parameter passed in the callback: {state}"),
    );
    app.assert_no_connection("tw", "user-2").await;
}

#[tokio::test]
async fn an_oauth1_callback_without_the_flow_cookie_is_refused_before_the_access_token_call() {
    let (app, provider) = setup().await;
    app.create_config("tw", "oauth1-hmac", "").await;
    let authorize = start(&app, &provider, "tw", "connection_id=user-1").await;
    let callback = authorize_at_provider(&app, &authorize).await;
    // Another browser (a victim sent the authorize link) comes back with the verifier.
    app.open_elsewhere(&callback)
        .await
        .assert_failure("state_err", crate::state::BROWSER_MISMATCH);
    assert!(provider.calls_to("access_token").await.is_empty());
    app.assert_no_connection("tw", "user-1").await;

    // The starting browser, with its cookie, completes its own flows.
    let (_, page) = run_flow(&app, &provider, "tw", "connection_id=user-2").await;
    page.assert_success("tw", "user-2");
}

#[tokio::test]
async fn an_expired_oauth1_flow_is_refused() {
    let (app, provider) = setup_with(|s| s.oauth_state_ttl = Duration::from_secs(1)).await;
    app.create_config("tw", "oauth1-hmac", "").await;
    let authorize = start(&app, &provider, "tw", "connection_id=user-1").await;
    let callback = authorize_at_provider(&app, &authorize).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = app.open(&callback).await;
    assert_eq!(
        page.post_message()["data"]["error"]["type"],
        "state_err",
        "{}",
        page.body
    );
    assert!(provider.calls_to("access_token").await.is_empty());
    app.assert_no_connection("tw", "user-1").await;
}

#[tokio::test]
async fn an_unreachable_or_slow_request_token_endpoint_is_token_err() {
    let (app, _provider) = setup_with(|s| s.provider_timeout = Duration::from_secs(1)).await;
    app.create_config("closed", "oauth1-closed", "").await;
    app.create_config("slow", "oauth1-slow", "").await;
    Page::read(app.connect("closed", "connection_id=u").await)
        .await
        .assert_failure(
            "token_err",
            "Error storing/retrieving the token. The request token endpoint could not be reached.",
        );
    Page::read(app.connect("slow", "connection_id=u").await)
        .await
        .assert_failure(
            "token_err",
            "Error storing/retrieving the token. The request token endpoint timed out.",
        );
    app.assert_healthy().await;
}

#[tokio::test]
async fn rsa_sha1_needs_a_pem_private_key_as_the_client_secret() {
    let (app, provider) = setup().await;
    create_config_with_secret(&app, "rsa", "oauth1-rsa", CLIENT_SECRET).await;
    let page = Page::read(app.connect("rsa", "connection_id=u").await).await;
    page.assert_failure(
        "provider_config_err",
        "Provider Config \"rsa\" cannot sign OAuth 1 requests: RSA-SHA1 needs the client secret \
         to be an RSA private key in PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY), and it is \
         not.",
    );
    assert!(!page.body.contains(CLIENT_SECRET));
    assert!(
        provider.log().await.is_empty(),
        "nothing may be sent unsigned"
    );
}
