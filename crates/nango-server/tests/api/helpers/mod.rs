//! `TestApp`: a real server on an ephemeral port with its own database and a fake provider, plus
//! small helpers to drive it the way the Nango clients do.

mod fake_api;
pub mod fake_nango;
mod fake_provider;
pub mod nango_db;

pub use fake_api::FakeApi;
pub use fake_provider::{FakeProvider, TokenRequest};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use nango_server::secret::Secret;
use nango_server::{serve, AppState, Settings};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const SECRET_KEY: &str = "test-secret-key";

type SettingsHook = Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// A running server, its database and the fake provider it talks to.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` of the current server.
    pub address: String,
    pub addr: SocketAddr,
    /// The server's state (for direct store reads).
    pub state: AppState,
    pub provider: FakeProvider,
    /// HTTP client that never follows redirects and never waits more than 10 s; it keeps no
    /// cookies (a browser other than the one that started a flow).
    pub client: reqwest::Client,
    /// The browser of the flows: like `client`, with a cookie jar, so the flow cookie
    /// `/oauth/connect` sets goes back to `/oauth/callback` (on any port of 127.0.0.1: cookies
    /// ignore ports, so a restarted server or a replica gets it too).
    pub browser: reqwest::Client,
    pub database_url: String,
    /// The secret key the server requires, if any; added to every `api` request.
    pub secret_key: Option<String>,
    hook: SettingsHook,
    providers_file: PathBuf,
    server: Option<RunningServer>,
    // Dropped last: removes the SQLite file or the PostgreSQL database.
    _db: TestDatabase,
}

struct RunningServer {
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

struct TestDatabase {
    _dir: tempfile::TempDir,
    _postgres: Option<PostgresDatabase>,
}

/// A database created for one test on a PostgreSQL server (`NANGO_TEST_DATABASE_URL`, or the
/// Nango sources' `NANGO_TEST_POSTGRES_URL`), dropped with the value.
pub(crate) struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    /// A fresh database on the server of `admin_url`, and its URL.
    pub(crate) async fn create(admin_url: &str) -> (PostgresDatabase, String) {
        use sqlx::Connection;
        let name = format!("nango_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("the tests need PostgreSQL at {admin_url}: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let mut url = Url::parse(admin_url).expect("NANGO_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        (
            PostgresDatabase {
                admin_url: admin_url.to_string(),
                name,
            },
            url.to_string(),
        )
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        use sqlx::Connection;
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // runtime can. Best effort: a leftover database is harmless.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

impl TestApp {
    /// A server with default settings (no secret key).
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A server that requires [`SECRET_KEY`].
    pub async fn spawn_with_secret_key() -> TestApp {
        TestApp::spawn_with(|s| s.secret_key = Some(Secret::new(SECRET_KEY.to_string()))).await
    }

    /// A server whose settings `hook` may change (it runs again on [`TestApp::restart`]).
    pub async fn spawn_with(hook: impl Fn(&mut Settings) + Send + Sync + 'static) -> TestApp {
        TestApp::spawn_with_templates(hook, |_| String::new()).await
    }

    /// A server whose catalog has, besides the fake provider's templates, those `templates`
    /// writes (YAML, given the fake provider), from the first start: OAuth flows need the first
    /// server's callback URL to stay served.
    pub async fn spawn_with_templates(
        hook: impl Fn(&mut Settings) + Send + Sync + 'static,
        templates: impl FnOnce(&FakeProvider) -> String,
    ) -> TestApp {
        let provider = FakeProvider::start().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let providers_file = dir.path().join("providers.yaml");
        let catalog = provider.catalog_yaml() + &templates(&provider);
        std::fs::write(&providers_file, catalog).expect("write providers file");
        let (database_url, postgres) = match std::env::var("NANGO_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.trim().is_empty() => {
                let (db, url) = PostgresDatabase::create(admin_url.trim()).await;
                (url, Some(db))
            }
            _ => (
                format!("sqlite://{}", dir.path().join("nango.db").display()),
                None,
            ),
        };
        let hook: SettingsHook = Arc::new(hook);
        let (addr, state, server, secret_key) =
            start_server(&database_url, &providers_file, &hook, None).await;
        TestApp {
            address: format!("http://{addr}"),
            addr,
            state,
            provider,
            client: http_client(false),
            browser: http_client(true),
            database_url,
            secret_key,
            hook,
            providers_file,
            server: Some(server),
            _db: TestDatabase {
                _dir: dir,
                _postgres: postgres,
            },
        }
    }

    /// Stops the server (gracefully) and starts a new one, with a new `AppState`, on another
    /// port and the same database; the OAuth callback URL stays the first server's.
    pub async fn restart(&mut self) {
        self.stop().await;
        let callback_url = self.state.settings.callback_url.clone();
        let (addr, state, server, _) = start_server(
            &self.database_url,
            &self.providers_file,
            &self.hook,
            Some(callback_url),
        )
        .await;
        self.addr = addr;
        self.address = format!("http://{addr}");
        self.state = state;
        self.server = Some(server);
    }

    /// Restarts with other settings (the new `hook` also applies to later restarts).
    pub async fn restart_with(&mut self, hook: impl Fn(&mut Settings) + Send + Sync + 'static) {
        self.hook = Arc::new(hook);
        self.restart().await;
    }

    /// Tries to build a server's state on this database with other settings, without serving:
    /// for the checks a server makes at start.
    pub async fn try_start(
        &self,
        hook: impl Fn(&mut Settings),
    ) -> Result<AppState, nango_server::StartupError> {
        let mut settings = Settings::for_address(self.addr, self.database_url.as_str());
        settings.providers_file = Some(self.providers_file.clone());
        hook(&mut settings);
        AppState::new(settings).await
    }

    /// Another server (a replica) on the same database, providers file and settings, on its
    /// own port with its own `AppState`, running next to this one.
    pub async fn spawn_replica(&self) -> Replica {
        let (addr, _, server, _) =
            start_server(&self.database_url, &self.providers_file, &self.hook, None).await;
        Replica {
            address: format!("http://{addr}"),
            _server: server,
        }
    }

    /// Whether this suite runs on PostgreSQL (`NANGO_TEST_DATABASE_URL`).
    pub fn on_postgres(&self) -> bool {
        self._db._postgres.is_some()
    }

    /// Replaces the providers file (e.g. to drop a template a config uses) and restarts.
    pub async fn restart_with_providers(&mut self, yaml: &str) {
        std::fs::write(&self.providers_file, yaml).expect("write providers file");
        self.restart().await;
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            let mut handle = server.handle;
            match tokio::time::timeout(Duration::from_secs(10), &mut handle).await {
                Ok(result) => result
                    .expect("server task panicked")
                    .expect("server failed"),
                Err(_) => {
                    handle.abort();
                    panic!("the server did not shut down within 10 s");
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request without any authorization.
    pub fn anon(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request as the Node client sends it: with `Basic base64("<key>:")` when a key is set.
    pub fn api(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.anon(method, path);
        match &self.secret_key {
            Some(key) => request.header("Authorization", basic_auth(key)),
            None => request,
        }
    }

    /// A request with the secret key (and a JSON body when given); the status and the JSON answer.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.api(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.api(Method::GET, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.api(Method::DELETE, path).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.api(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.api(Method::PUT, path).json(body).send().await.unwrap()
    }

    /// `POST /config`, asserting success; returns the new config id.
    pub async fn create_config(&self, key: &str, provider: &str, scopes: &str) -> i64 {
        let response = self
            .post_json(
                "/config",
                &json!({
                    "provider_config_key": key,
                    "provider": provider,
                    "oauth_client_id": CLIENT_ID,
                    "oauth_client_secret": CLIENT_SECRET,
                    "oauth_scopes": scopes,
                }),
            )
            .await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "POST /config failed: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        body["config_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no integer config_id in {body}"))
    }

    /// `GET /config`: the keys of all configs, in the order listed.
    pub async fn config_keys(&self) -> Vec<String> {
        let response = self.get("/config").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["configs"]
            .as_array()
            .unwrap_or_else(|| panic!("no configs array in {body}"))
            .iter()
            .map(|c| c["unique_key"].as_str().unwrap().to_string())
            .collect()
    }

    /// `GET /connection`: the list body.
    pub async fn connections(&self) -> Vec<Value> {
        let response = self.get("/connection").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["connections"]
            .as_array()
            .unwrap_or_else(|| panic!("no connections array in {body}"))
            .clone()
    }

    /// `GET /connection/:id?provider_config_key=...` (the id is percent-encoded for the path).
    pub async fn get_connection_response(
        &self,
        key: &str,
        connection_id: &str,
    ) -> reqwest::Response {
        self.get_connection_response_at(&self.address, key, connection_id)
            .await
    }

    /// `GET /connection/:id` on the server at `base` (this one or a replica).
    pub async fn get_connection_response_at(
        &self,
        base: &str,
        key: &str,
        connection_id: &str,
    ) -> reqwest::Response {
        let path = format!(
            "/connection/{}?provider_config_key={}",
            path_segment(connection_id),
            query_value(key)
        );
        let mut request = self.client.get(format!("{base}{path}"));
        if let Some(key) = &self.secret_key {
            request = request.header("Authorization", basic_auth(key));
        }
        request.send().await.unwrap()
    }

    /// `GET /connection/:id`, asserting 200; returns the body.
    pub async fn get_connection(&self, key: &str, connection_id: &str) -> Value {
        let response = self.get_connection_response(key, connection_id).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET /connection failed: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stores an OAuth 2 connection through the store, as a flow `age` ago would have left it:
    /// a token issued for `lifetime` (so it expires in `lifetime - age`) with `refresh_token`
    /// (one the fake provider knows: `FakeProvider::register_refresh_token`). Returns the
    /// stored credentials.
    pub async fn store_oauth2_connection(
        &self,
        key: &str,
        connection_id: &str,
        refresh_token: &str,
        lifetime: Duration,
        age: Duration,
    ) -> Value {
        use nango_server::credentials::{Credentials, OAuth2Credentials};
        let obtained_at = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap();
        let expires_at = obtained_at + chrono::Duration::from_std(lifetime).unwrap();
        let access_token = format!("stored-{connection_id}");
        let credentials = Credentials::OAuth2(OAuth2Credentials {
            access_token: access_token.clone(),
            refresh_token: Some(refresh_token.to_string()),
            expires_at: Some(expires_at),
            raw: json!({
                "access_token": access_token,
                "refresh_token": refresh_token,
                "expires_in": lifetime.as_secs(),
            }),
        });
        let stored = self
            .state
            .store
            .upsert_connection(&nango_server::store::ConnectionFields {
                provider_config_key: key.to_string(),
                connection_id: connection_id.to_string(),
                credentials,
                connection_config: Default::default(),
                metadata: Default::default(),
                obtained_at,
                owner: None,
            })
            .await
            .expect("store the connection");
        serde_json::to_value(&stored.credentials).unwrap()
    }

    /// Asserts that no connection `(key, connection_id)` exists.
    pub async fn assert_no_connection(&self, key: &str, connection_id: &str) {
        let response = self.get_connection_response(key, connection_id).await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "No connection matching params 'connection_id' and 'provider_config_key'.",
        )
        .await;
    }

    /// Asserts `GET /health` still answers (the server did not crash).
    pub async fn assert_healthy(&self) {
        let response = self.anon(Method::GET, "/health").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// `GET /oauth/connect/:key?<query>` in the browser (the query as given: the frontend SDK
    /// does not encode).
    pub async fn connect(&self, key: &str, query: &str) -> reqwest::Response {
        self.browser
            .get(self.url(&format!("/oauth/connect/{key}?{query}")))
            .send()
            .await
            .unwrap()
    }

    /// `GET /oauth/connect`, asserting a 302 to the fake provider; returns the authorize URL.
    pub async fn start_flow(&self, key: &str, query: &str) -> Url {
        let response = self.connect(key, query).await;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::FOUND,
            "/oauth/connect/{key}?{query} did not redirect: {body}"
        );
        let location = Url::parse(&location.expect("302 without Location")).unwrap();
        assert!(
            location.as_str().starts_with(&self.provider.base_url),
            "redirected to {location}, not to the fake provider"
        );
        location
    }

    /// Follows the authorize URL at the fake provider; returns where it sends the browser back.
    pub async fn authorize_at_provider(&self, authorize_url: &Url) -> Url {
        let response = self
            .browser
            .get(authorize_url.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"].to_str().unwrap();
        Url::parse(location).unwrap()
    }

    /// `GET /oauth/callback?<query>` on the current server, in the browser.
    pub async fn callback(&self, query: &str) -> Page {
        Page::read(
            self.browser
                .get(self.url(&format!("/oauth/callback?{query}")))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Opens a URL (e.g. the provider's redirect back to our callback) in the browser.
    pub async fn open(&self, url: &Url) -> Page {
        Page::read(self.browser.get(url.clone()).send().await.unwrap()).await
    }

    /// Opens a URL in another browser: no cookies (e.g. a victim sent the authorize link).
    pub async fn open_elsewhere(&self, url: &Url) -> Page {
        Page::read(self.client.get(url.clone()).send().await.unwrap()).await
    }

    /// The whole browser side of a flow: connect, provider, callback. Returns the callback page.
    pub async fn run_flow(&self, key: &str, query: &str) -> Page {
        let authorize = self.start_flow(key, query).await;
        let callback = self.authorize_at_provider(&authorize).await;
        assert!(
            callback.as_str().starts_with(&self.url("/oauth/callback")),
            "the provider sent the browser to {callback}"
        );
        self.open(&callback).await
    }

    /// A flow for `connection_id` that must succeed; returns the callback page.
    pub async fn authorize(&self, key: &str, connection_id: &str) -> Page {
        let page = self
            .run_flow(
                key,
                &format!("connection_id={}", query_value(connection_id)),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "flow failed: {}", page.body);
        page
    }

    /// Opens the frontend SDK's WebSocket (`ws://<host>/`) and reads the `connection_ack`.
    pub async fn ws_connect(&self) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}/", self.addr))
            .await
            .expect("WebSocket upgrade");
        let mut client = WsClient {
            stream,
            id: String::new(),
        };
        let ack = client.next_json().await;
        assert_eq!(ack["message_type"], "connection_ack", "first frame: {ack}");
        assert_eq!(ack.as_object().unwrap().len(), 2, "ack frame: {ack}");
        client.id = ack["ws_client_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no ws_client_id in {ack}"))
            .to_string();
        client
    }
}

/// A second server on the same database; stops when dropped.
pub struct Replica {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    // Dropping the shutdown sender stops the server.
    _server: RunningServer,
}

/// A client that never follows redirects and never waits more than 10 s.
fn http_client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .cookie_store(cookies)
        .build()
        .unwrap()
}

async fn start_server(
    database_url: &str,
    providers_file: &std::path::Path,
    hook: &SettingsHook,
    callback_url: Option<String>,
) -> (SocketAddr, AppState, RunningServer, Option<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the server");
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::for_address(addr, database_url);
    settings.providers_file = Some(providers_file.to_path_buf());
    hook(&mut settings);
    if let Some(callback_url) = callback_url {
        settings.callback_url = callback_url;
    }
    let secret_key = settings.secret_key.as_ref().map(|k| k.expose().clone());
    let state = AppState::new(settings).await.expect("start the server");
    let (shutdown, signal) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = signal.await;
    }));
    (addr, state, RunningServer { shutdown, handle }, secret_key)
}

/// `Basic base64("<key>:")`, what `@nangohq/node` and the CLI send.
pub fn basic_auth(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// Percent-encodes a query value.
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Percent-encodes a path segment.
pub fn path_segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The query parameters of a URL, decoded, in order.
pub fn query_pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

/// One decoded query parameter of a URL.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Asserts a JSON error response `{"error": message, ...}` with the given status; returns the body.
pub async fn assert_error(response: reqwest::Response, status: StatusCode, message: &str) -> Value {
    let body = assert_json_error(response, status).await;
    assert_eq!(body["error"], message, "error body: {body}");
    body
}

/// Asserts a JSON error response `{"error": "<string>", ...}` with the given status.
pub async fn assert_json_error(response: reqwest::Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = header(response.headers(), "content-type");
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status, body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?} of error {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("error body {text:?} is not JSON: {e}"));
    assert!(body["error"].is_string(), "no error message in {body}");
    body
}

/// Asserts a 4xx JSON error, whatever its message; returns the body.
pub async fn assert_client_error(response: reqwest::Response) -> Value {
    let status = response.status();
    assert!(status.is_client_error(), "expected a 4xx, got {status}");
    assert_json_error(response, status).await
}

/// Asserts a `200` with an empty body.
pub async fn assert_empty_ok(response: reqwest::Response) {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    assert_eq!(body, "", "expected an empty body");
}

pub fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The status of a flow error page of this type: 4xx when the request was at fault (404 for an
/// unknown provider config), 500 only for faults of the server or the provider.
pub fn flow_error_status(error_type: &str) -> StatusCode {
    match error_type {
        "provider_config_err" | "unknown_config_key" => StatusCode::NOT_FOUND,
        "unknown_err" | "token_err" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An HTML page answered to the popup (by `/oauth/connect` on early errors, or the callback).
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn header(&self, name: &str) -> String {
        header(&self.headers, name)
    }

    /// The content of the page's (first) inline script.
    pub fn script(&self) -> &str {
        let start = self
            .body
            .find("<script")
            .unwrap_or_else(|| panic!("no script in {}", self.body));
        let open_end = start + self.body[start..].find('>').unwrap() + 1;
        let close = open_end + self.body[open_end..].find("</script>").unwrap();
        &self.body[open_end..close]
    }

    /// The object the legacy page passes to `window.opener.postMessage`: the first JSON object in
    /// the script with an `eventType`.
    pub fn post_message(&self) -> Value {
        let script = self.script();
        for (i, _) in script.match_indices('{') {
            let mut values = serde_json::Deserializer::from_str(&script[i..]).into_iter::<Value>();
            if let Some(Ok(value)) = values.next() {
                if value.get("eventType").is_some() {
                    return value;
                }
            }
        }
        panic!("no postMessage payload in {}", self.body)
    }

    /// Asserts a legacy failure page: the status of its type ([`flow_error_status`]), HTML,
    /// `AUTHORIZATION_FAILED` with this type and message.
    pub fn assert_failure(&self, error_type: &str, message: &str) {
        assert_eq!(self.status, flow_error_status(error_type), "{}", self.body);
        assert!(
            self.header("content-type").starts_with("text/html"),
            "content type {:?}",
            self.header("content-type")
        );
        assert!(
            self.headers.get("location").is_none(),
            "an error page must not redirect"
        );
        let message_json = self.post_message();
        assert_eq!(
            message_json["eventType"], "AUTHORIZATION_FAILED",
            "{message_json}"
        );
        assert_eq!(
            message_json["data"]["error"]["type"], error_type,
            "{message_json}"
        );
        assert_eq!(
            message_json["data"]["error"]["message"], message,
            "{message_json}"
        );
    }

    /// Asserts a legacy success page for `(key, connection_id)`.
    pub fn assert_success(&self, key: &str, connection_id: &str) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(
            self.post_message(),
            json!({
                "eventType": "AUTHORIZATION_SUCEEDED",
                "data": {"connectionId": connection_id, "providerConfigKey": key},
            })
        );
    }

    /// Asserts that the Content-Security-Policy lets the browser run the page's inline script.
    pub fn assert_csp_allows_script(&self) {
        let csp = self.header("content-security-policy");
        assert!(!csp.is_empty(), "no Content-Security-Policy header");
        let script = self.script();
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
        let tag = &self.body[self.body.find("<script").unwrap()..];
        let tag = &tag[..tag.find('>').unwrap()];
        let nonce_ok = tag
            .split("nonce=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .is_some_and(|nonce| csp.contains(&format!("'nonce-{nonce}'")));
        assert!(
            csp.contains(&format!("'sha256-{hash}'"))
                || csp.contains("'unsafe-inline'")
                || nonce_ok,
            "the CSP {csp:?} blocks the inline script {script:?}"
        );
    }
}

/// The frontend SDK's side of the WebSocket protocol.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ws_client_id` of the `connection_ack`.
    pub id: String,
}

impl WsClient {
    /// The next text frame as JSON (fails after 5 s).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .expect("no WebSocket frame within 5 s")
                .expect("the WebSocket closed")
                .expect("WebSocket error");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected WebSocket message {other:?}"),
            }
        }
    }

    /// Asserts that the server closes the socket (after its one result frame).
    pub async fn assert_closed(&mut self) {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .expect("the server did not close the WebSocket within 5 s");
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected WebSocket message {other:?}"),
            }
        }
    }
}
