//! The client against the real server, over real HTTP on loopback: `nango-server` runs in-process
//! on a bound listener with a fresh SQLite file (or a fresh PostgreSQL database when
//! `NANGO_TEST_DATABASE_URL` is set), and the OAuth provider is the npm package
//! `oauth2-mock-server` (none of our code), run by `tests/compat/lib/mock-provider-cli.js`. The
//! OAuth flow is driven over HTTP without a browser: `/oauth/connect` (302) → provider
//! `/authorize` (302) → `/oauth/callback` (200).
//!
//! Needs `node` and `tests/compat/node_modules` (`cd tests/compat && npm ci`); without them the
//! tests that use the provider fail, saying so.
//!
//! The transport tests (server down, hanging, answering 4xx) use tiny local TCP listeners that
//! count the connections they get.

// Test set-up that cannot even happen (no port, no temp dir, no provider) should stop the test
// right there, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nango_client::{
    kinds, Client, Credentials, Error, GetOptions, NewConfig, NewCredentials, ProxyRequest, Token,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

const SECRET_KEY: &str = "client-test-secret-key";
const UNKNOWN_CONNECTION: &str =
    "No connection matching params 'connection_id' and 'provider_config_key'.";
const UNKNOWN_CONFIG: &str = "There is no Provider Configuration matching this key.";

const OAUTH2: &str = "mock-oauth2";
const OAUTH2_CC: &str = "mock-oauth2-cc";
const API_KEY: &str = "mock-api-key";
const BASIC: &str = "mock-basic";
/// OAUTH2 at the mock provider, with `base_api_url` at a [`FakeApi`]: the proxy's target.
const OAUTH2_API: &str = "mock-oauth2-api";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ---------------------------------------------------------------------------------------------
// The provider: oauth2-mock-server in a node child process.

/// oauth2-mock-server, run by `mock-provider-cli.js`; it exits when its stdin closes (on drop).
struct MockProvider {
    url: String,
    events: Arc<Mutex<Vec<Value>>>,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl MockProvider {
    async fn start(args: &[&str]) -> MockProvider {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || MockProvider::start_blocking(&args))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    fn start_blocking(args: &[String]) -> MockProvider {
        let compat = repo_root().join("tests/compat");
        let script = compat.join("lib/mock-provider-cli.js");
        assert!(
            compat.join("node_modules/oauth2-mock-server").is_dir(),
            "these tests need oauth2-mock-server, and {} has no node_modules/oauth2-mock-server: run `cd tests/compat && npm ci` (Node 20+)",
            compat.display()
        );
        let mut child = Command::new("node")
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need `node` (Node 20+) on the PATH to run oauth2-mock-server, and it could not be started: {e}"
                )
            });
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        let (first_line, first) = std::sync::mpsc::channel::<String>();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let Some(Ok(line)) = lines.next() else {
                return;
            };
            let _ = first_line.send(line);
            for line in lines.map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(event);
                }
            }
        });
        let line = match first.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "{} did not print its URL within 30 s (exit status {status:?}; its stderr is above)",
                    script.display()
                );
            }
        };
        let url = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("the mock provider printed {line:?}, not {{\"url\": ...}}"));
        MockProvider {
            url,
            events,
            child,
            stdin,
        }
    }

    /// The providers file that points the server at this provider, one template per auth mode,
    /// and, with `api_base_url`, an OAuth2 template whose API (`base_api_url`) is there.
    fn providers_yaml(&self, api_base_url: Option<&str>) -> String {
        let url = &self.url;
        let mut yaml = format!(
            "# oauth2-mock-server at {url}\n\
             {OAUTH2}:\n  auth_mode: OAUTH2\n  authorization_url: {url}/authorize\n  token_url: {url}/token\n\
             {OAUTH2_CC}:\n  auth_mode: OAUTH2_CC\n  token_url: {url}/token\n\
             {API_KEY}:\n  auth_mode: API_KEY\n\
             {BASIC}:\n  auth_mode: BASIC\n"
        );
        if let Some(api) = api_base_url {
            yaml.push_str(&format!(
                "{OAUTH2_API}:\n  auth_mode: OAUTH2\n  authorization_url: {url}/authorize\n  token_url: {url}/token\n  base_api_url: {api}\n"
            ));
        }
        yaml
    }

    /// The token requests the provider answered for `client_id` (in order).
    fn token_requests(&self, client_id: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "token" && e["client_id"] == client_id)
            .cloned()
            .collect()
    }

    /// Waits (up to 5 s) until the provider has answered `count` token requests of `grant_type`
    /// for `client_id`, and returns them: its stdout is read by another thread.
    async fn wait_for_grants(&self, client_id: &str, grant_type: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let grants: Vec<Value> = self
                .token_requests(client_id)
                .into_iter()
                .filter(|e| e["grant_type"] == grant_type)
                .collect();
            if grants.len() >= count || Instant::now() > deadline {
                assert_eq!(
                    grants.len(),
                    count,
                    "{grant_type} requests for {client_id} at the provider: {grants:?}"
                );
                return grants;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        // Closing stdin is the provider's signal to stop.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The server: nango-server in-process.

/// A database created for one test on the server of `NANGO_TEST_DATABASE_URL`, dropped after.
struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    async fn create(admin_url: &str) -> (PostgresDatabase, String) {
        use sqlx::Connection;
        let name = format!("nango_client_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to NANGO_TEST_DATABASE_URL");
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let mut url = Url::parse(admin_url).expect("NANGO_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        let db = PostgresDatabase {
            admin_url: admin_url.to_string(),
            name,
        };
        (db, url.to_string())
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        use sqlx::Connection;
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
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

/// The real server on `127.0.0.1:<free port>`, its database, and the provider it talks to.
struct TestServer {
    /// `http://127.0.0.1:<port>`
    host: String,
    provider: MockProvider,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped after the server: the PostgreSQL database, then the directory of the SQLite file
    // and the providers file.
    _postgres: Option<PostgresDatabase>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::start_with(None, &[]).await
    }

    /// A server requiring `secret_key` when given, its provider started with `provider_args`.
    async fn start_with(secret_key: Option<&str>, provider_args: &[&str]) -> TestServer {
        TestServer::start_full(secret_key, provider_args, None).await
    }

    /// [`TestServer::start_with`], plus the template [`OAUTH2_API`] when `api_base_url` is given.
    async fn start_full(
        secret_key: Option<&str>,
        provider_args: &[&str],
        api_base_url: Option<&str>,
    ) -> TestServer {
        let provider = MockProvider::start(provider_args).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let providers_file = dir.path().join("providers.yaml");
        std::fs::write(&providers_file, provider.providers_yaml(api_base_url))
            .expect("providers file");
        let (database_url, postgres) = match std::env::var("NANGO_TEST_DATABASE_URL") {
            Ok(admin) if !admin.trim().is_empty() => {
                let (db, url) = PostgresDatabase::create(admin.trim()).await;
                (url, Some(db))
            }
            _ => (
                format!("sqlite://{}", dir.path().join("nango.db").display()),
                None,
            ),
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let mut settings = nango_server::Settings::for_address(addr, database_url);
        settings.providers_file = Some(providers_file);
        settings.secret_key = secret_key.map(|k| nango_server::secret::Secret::new(k.to_string()));
        let state = nango_server::AppState::new(settings)
            .await
            .expect("start the server");
        let (shutdown, signal) = oneshot::channel::<()>();
        let handle = tokio::spawn(nango_server::serve(listener, state, async move {
            let _ = signal.await;
        }));
        TestServer {
            host: format!("http://{addr}"),
            provider,
            shutdown: Some(shutdown),
            handle: Some(handle),
            _postgres: postgres,
            _dir: dir,
        }
    }

    /// A client of this server (with the secret key when one is given), quick to give up on
    /// network errors.
    fn client(&self, secret_key: Option<&str>) -> Client {
        let mut builder = Client::builder(&self.host)
            .timeout(Duration::from_secs(30))
            .retry_delay(Duration::from_millis(20));
        if let Some(key) = secret_key {
            builder = builder.secret_key(key);
        }
        builder.build().expect("client")
    }

    /// Stops the server (gracefully) and waits for it.
    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("the server did not stop within 10 s")
                .expect("server task")
                .expect("server");
        }
    }

    /// Runs the browser's side of the OAuth flow for `(key, connection_id)` over plain HTTP:
    /// `/oauth/connect/<key>?connection_id=<id>` (302) → provider `/authorize` (302) →
    /// `/oauth/callback` (200).
    async fn connect(&self, key: &str, connection_id: &str) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut url = Url::parse(&self.host).unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["oauth", "connect", key]);
        url.query_pairs_mut()
            .append_pair("connection_id", connection_id);

        let response = http.get(url.clone()).send().await.unwrap();
        assert_eq!(
            response.status(),
            302,
            "GET {url}: {:?}",
            response.text().await
        );
        let authorize = location(&response);
        // The browser's part: the flow cookie /oauth/connect set goes back to /oauth/callback.
        let cookies = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        assert!(
            authorize.as_str().starts_with(&self.provider.url),
            "/oauth/connect redirected to {authorize}, not to the provider"
        );

        let response = http.get(authorize.clone()).send().await.unwrap();
        assert_eq!(
            response.status(),
            302,
            "GET {authorize}: {:?}",
            response.text().await
        );
        let callback = location(&response);
        assert!(
            callback
                .as_str()
                .starts_with(&format!("{}/oauth/callback", self.host)),
            "the provider redirected to {callback}"
        );

        let response = http
            .get(callback.clone())
            .header(reqwest::header::COOKIE, cookies)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {callback}: {page}");
    }

    /// Creates a config for one of the mock providers with the client; its client id is
    /// `client-<key>` (how the provider's log tells configs apart).
    async fn create_config(&self, nango: &Client, key: &str, provider: &str) -> i64 {
        nango
            .create_config(&NewConfig::new(
                key,
                provider,
                format!("client-{key}"),
                format!("secret-{key}"),
                "openid,profile",
            ))
            .await
            .unwrap_or_else(|e| panic!("create_config({key:?}, {provider:?}): {e}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn location(response: &reqwest::Response) -> Url {
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("a {} without Location", response.status()));
    Url::parse(location).unwrap_or_else(|e| panic!("Location {location:?}: {e}"))
}

/// Asserts an error answered by the server: status, `type` and message.
#[track_caller]
fn assert_api_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    status: u16,
    kind: &str,
    message: Option<&str>,
) {
    match result {
        Err(e @ Error::Api { .. }) => {
            assert_eq!(e.status(), Some(status), "{e:?}");
            assert_eq!(e.kind(), Some(kind), "{e:?}");
            if let Some(message) = message {
                assert_eq!(e.server_message(), Some(message));
                assert_eq!(e.to_string(), message);
            }
            assert!(!e.is_unreachable());
        }
        other => panic!("expected HTTP {status} {kind}, got {other:?}"),
    }
}

fn access_token(token: &Token) -> &str {
    match token {
        Token::OAuth2(t) => t.expose(),
        other => panic!("expected an OAuth2 token, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections over a real OAuth flow.

#[tokio::test]
async fn the_seed_quickstart_gets_the_token_the_provider_issued() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    server.create_config(&nango, "github", OAUTH2).await;
    server.connect("github", "user-42").await;
    let issued = server
        .provider
        .wait_for_grants("client-github", "authorization_code", 1)
        .await
        .remove(0);

    // The seed's line, as written.
    let token = Client::new(&server.host)?
        .get_token("github", "user-42")
        .await?;
    assert_eq!(access_token(&token), issued["issued"]["access_token"]);
    assert_eq!(token.expose(), issued["issued"]["access_token"].as_str());
    assert_eq!(format!("{token:?}"), "OAuth2(***)");

    let connection = nango.get_connection("github", "user-42").await?;
    assert_eq!(connection.provider_config_key, "github");
    assert_eq!(connection.connection_id, "user-42");
    assert_eq!(connection.refresh, None);
    match &connection.credentials {
        Credentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            raw,
        } => {
            assert_eq!(
                access_token.expose().as_str(),
                issued["issued"]["access_token"]
            );
            assert_eq!(
                refresh_token.as_ref().map(|t| t.expose().as_str()),
                issued["issued"]["refresh_token"].as_str()
            );
            assert!(expires_at.as_deref().is_some_and(|e| e.ends_with('Z')));
            assert_eq!(raw.expose()["token_type"], "Bearer");
            assert_eq!(raw.expose()["expires_in"], 3600);
        }
        other => panic!("expected OAuth2 credentials, got {other:?}"),
    }
    // Nothing secret in the Debug output of what the server sent.
    let debug = format!("{connection:?} {connection:#?}");
    for secret in [
        &issued["issued"]["access_token"],
        &issued["issued"]["refresh_token"],
    ] {
        let secret = secret.as_str().unwrap();
        assert!(!debug.contains(secret), "{debug}");
    }

    let raw = nango
        .get_raw_token_response("github", "user-42")
        .await?
        .expect("an OAuth2 connection has a raw token response");
    assert_eq!(
        raw.expose()["access_token"],
        issued["issued"]["access_token"]
    );
    assert!(raw.expose()["id_token"].is_string(), "{:?}", raw.expose());
    assert_eq!(format!("{raw:?}"), "***");

    let connections = nango.list_connections().await?;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].connection_id, "user-42");
    assert_eq!(connections[0].provider, "github");
    assert!(connections[0].created.ends_with('Z'));

    // Reading does not refresh a token that is far from expiring.
    assert_eq!(nango.get_token("github", "user-42").await?, token);
    assert!(server
        .provider
        .token_requests("client-github")
        .iter()
        .all(|e| e["grant_type"] == "authorization_code"));
    Ok(())
}

#[tokio::test]
async fn force_refresh_gets_a_new_token_from_the_provider() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    server.create_config(&nango, "gh", OAUTH2).await;
    server.connect("gh", "u1").await;
    let first = nango.get_token("gh", "u1").await?;
    let stored_refresh_token = match nango.get_connection("gh", "u1").await?.credentials {
        Credentials::OAuth2 {
            refresh_token: Some(t),
            ..
        } => t.into_exposed(),
        other => panic!("no refresh token in {other:?}"),
    };
    let forced = GetOptions::new().force_refresh(true);

    let second = nango.get_token_with("gh", "u1", forced).await?;
    assert_ne!(access_token(&second), access_token(&first));
    let refreshes = server
        .provider
        .wait_for_grants("client-gh", "refresh_token", 1)
        .await;
    assert_eq!(refreshes[0]["refresh_token"], stored_refresh_token.as_str());
    assert_eq!(
        access_token(&second),
        refreshes[0]["issued"]["access_token"]
    );
    // The new token is the stored one now.
    assert_eq!(nango.get_token("gh", "u1").await?, second);

    // The same option on the two other reads.
    let connection = nango.get_connection_with("gh", "u1", forced).await?;
    let raw = nango
        .get_raw_token_response_with("gh", "u1", forced)
        .await?
        .expect("raw token response");
    let refreshes = server
        .provider
        .wait_for_grants("client-gh", "refresh_token", 3)
        .await;
    match &connection.credentials {
        Credentials::OAuth2 { access_token, .. } => {
            assert_eq!(
                access_token.expose().as_str(),
                refreshes[1]["issued"]["access_token"]
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        raw.expose()["access_token"],
        refreshes[2]["issued"]["access_token"]
    );
    Ok(())
}

#[tokio::test]
async fn force_refresh_without_a_refresh_token_is_not_refreshable() -> Result<(), Error> {
    let server = TestServer::start_with(None, &["--no-refresh-token"]).await;
    let nango = server.client(None);
    server.create_config(&nango, "gh", OAUTH2).await;
    server.connect("gh", "u1").await;
    let token = nango.get_token("gh", "u1").await?;
    assert!(matches!(
        nango.get_connection("gh", "u1").await?.credentials,
        Credentials::OAuth2 {
            refresh_token: None,
            ..
        }
    ));

    let forced = GetOptions::new().force_refresh(true);
    assert_api_error(
        nango.get_token_with("gh", "u1", forced).await,
        400,
        kinds::NOT_REFRESHABLE,
        None,
    );
    assert_api_error(
        nango.get_connection_with("gh", "u1", forced).await,
        400,
        kinds::NOT_REFRESHABLE,
        None,
    );
    assert_api_error(
        nango.get_raw_token_response_with("gh", "u1", forced).await,
        400,
        kinds::NOT_REFRESHABLE,
        None,
    );
    // Left as they were, and the provider was not asked.
    assert_eq!(nango.get_token("gh", "u1").await?, token);
    assert!(server
        .provider
        .token_requests("client-gh")
        .iter()
        .all(|e| e["grant_type"] != "refresh_token"));
    Ok(())
}

#[tokio::test]
async fn delete_connection_removes_it() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    server.create_config(&nango, "gh", OAUTH2).await;
    server.connect("gh", "u1").await;
    server.connect("gh", "u2").await;
    let ids = |list: Vec<nango_client::ConnectionSummary>| {
        list.into_iter()
            .map(|c| c.connection_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(nango.list_connections().await?), ["u1", "u2"]);

    nango.delete_connection("gh", "u1").await?;
    assert_eq!(ids(nango.list_connections().await?), ["u2"]);
    assert_api_error(
        nango.get_token("gh", "u1").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    assert_api_error(
        nango.delete_connection("gh", "u1").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    nango.get_token("gh", "u2").await?;
    Ok(())
}

#[tokio::test]
async fn ids_and_keys_with_reserved_characters_round_trip() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    let key = "cfg a/b c?d";
    let id = "a/b c?d#%é+&=x";
    server.create_config(&nango, key, OAUTH2).await;
    assert_eq!(nango.get_config(key).await?.unique_key, key);
    server.connect(key, id).await;

    let token = nango.get_token(key, id).await?;
    let connection = nango.get_connection(key, id).await?;
    assert_eq!(connection.connection_id, id);
    assert_eq!(connection.provider_config_key, key);
    let forced = nango
        .get_token_with(key, id, GetOptions::new().force_refresh(true))
        .await?;
    assert_ne!(forced, token);
    let listed = nango.list_connections().await?;
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.connection_id.as_str(), c.provider.as_str()))
            .collect::<Vec<_>>(),
        [(id, key)]
    );
    // Neighbours that a sloppy encoding would confuse with it do not exist.
    for other in ["a", "a/b c", "a%2Fb c?d#%é+&=x"] {
        assert_api_error(
            nango.get_token(key, other).await,
            400,
            kinds::UNKNOWN_CONNECTION,
            None,
        );
    }
    nango.delete_connection(key, id).await?;
    assert!(nango.list_connections().await?.is_empty());
    nango.delete_config(key).await?;
    assert_api_error(
        nango.get_config(key).await,
        400,
        kinds::UNKNOWN_PROVIDER_CONFIG,
        Some(UNKNOWN_CONFIG),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connections without a browser: every credentials type.

#[tokio::test]
async fn every_auth_mode_gives_its_token() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    for (key, provider) in [
        ("keys", API_KEY),
        ("basic", BASIC),
        ("cc", OAUTH2_CC),
        ("oauth", OAUTH2),
    ] {
        server.create_config(&nango, key, provider).await;
    }
    let forced = GetOptions::new().force_refresh(true);

    // API_KEY
    let created = nango
        .create_connection("keys", "u1", &NewCredentials::ApiKey("sk-live-1234".into()))
        .await?;
    assert_eq!(created.credentials.kind(), "API_KEY");
    assert!(!format!("{created:?}").contains("sk-live-1234"));
    let token = nango.get_token("keys", "u1").await?;
    assert!(
        matches!(&token, Token::ApiKey(k) if k.expose() == "sk-live-1234"),
        "{token:?}"
    );
    assert!(nango.get_raw_token_response("keys", "u1").await?.is_none());
    assert_api_error(
        nango.get_token_with("keys", "u1", forced).await,
        400,
        kinds::NOT_REFRESHABLE,
        None,
    );

    // BASIC
    let basic = NewCredentials::Basic {
        username: "ann".into(),
        password: "pa55-w0rd".into(),
    };
    nango.create_connection("basic", "u1", &basic).await?;
    match nango.get_token("basic", "u1").await? {
        Token::Basic { username, password } => {
            assert_eq!(username, "ann");
            assert_eq!(password.expose(), "pa55-w0rd");
        }
        other => panic!("expected a basic token, got {other:?}"),
    }
    let connection = nango.get_connection("basic", "u1").await?;
    assert!(!format!("{connection:?}").contains("pa55-w0rd"));

    // OAUTH2_CC: the server fetched the token from the provider.
    let created = nango
        .create_connection("cc", "u1", &NewCredentials::ClientCredentials)
        .await?;
    let grant = server
        .provider
        .wait_for_grants("client-cc", "client_credentials", 1)
        .await
        .remove(0);
    assert!(created.credentials.expires_at().is_some());
    let token = nango.get_token("cc", "u1").await?;
    assert!(
        matches!(&token, Token::OAuth2ClientCredentials(t) if *t.expose() == grant["issued"]["access_token"]),
        "{token:?}"
    );
    let raw = nango.get_raw_token_response("cc", "u1").await?;
    assert_eq!(
        raw.map(|r| r.expose()["access_token"].clone()),
        Some(grant["issued"]["access_token"].clone())
    );
    // A forced refresh of client credentials is a new grant.
    let renewed = nango.get_token_with("cc", "u1", forced).await?;
    assert_ne!(renewed, token);
    let grants = server
        .provider
        .wait_for_grants("client-cc", "client_credentials", 2)
        .await;
    assert_eq!(
        renewed.expose(),
        grants[1]["issued"]["access_token"].as_str()
    );

    // OAUTH2 connections come from the browser flow only.
    assert_api_error(
        nango
            .create_connection("oauth", "u1", &NewCredentials::ApiKey("x".into()))
            .await,
        400,
        "auth_mode_err",
        None,
    );

    let listed: Vec<_> = nango
        .list_connections()
        .await?
        .into_iter()
        .map(|c| c.provider)
        .collect();
    assert_eq!(listed, ["keys", "basic", "cc"]);

    // A connection whose config is deleted cannot be read any more. (The server's OpenAPI
    // document says the connections go with the config; Nango 0.9 left them orphaned, answering
    // `unknown_provider_config`. Either way, no token.)
    nango.delete_config("keys").await?;
    let orphan = nango.get_token("keys", "u1").await;
    assert!(
        matches!(&orphan, Err(e) if e.status() == Some(400)
            && [kinds::UNKNOWN_PROVIDER_CONFIG, kinds::UNKNOWN_CONNECTION].contains(&e.kind().unwrap_or_default())),
        "{orphan:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Provider configs and the catalog.

#[tokio::test]
async fn config_create_list_get_update_delete_round_trip() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    assert!(nango.list_configs().await?.is_empty());

    let id = nango
        .create_config(&NewConfig::new(
            "github",
            OAUTH2,
            "cid-1",
            "csecret-1",
            "user public_repo",
        ))
        .await?;
    let config = nango.get_config("github").await?;
    assert_eq!(config.id, id);
    assert_eq!(config.unique_key, "github");
    assert_eq!(config.provider, OAUTH2);
    assert_eq!(config.oauth_client_id, "cid-1");
    assert_eq!(config.oauth_client_secret.expose(), "csecret-1");
    // Scopes are normalised on create.
    assert_eq!(config.oauth_scopes, "user,public_repo");
    assert_eq!(config.account_id, Some(0));
    assert!(!format!("{config:?}").contains("csecret-1"));
    assert_eq!(nango.list_configs().await?, std::slice::from_ref(&config));

    nango
        .update_config(&NewConfig::new(
            "github",
            OAUTH2_CC,
            "cid-2",
            "csecret-2",
            "a b",
        ))
        .await?;
    let updated = nango.get_config("github").await?;
    assert_eq!(updated.id, id);
    assert_eq!(updated.provider, OAUTH2_CC);
    assert_eq!(updated.oauth_client_id, "cid-2");
    assert_eq!(updated.oauth_client_secret.expose(), "csecret-2");
    // Stored as given on update, as Nango 0.9 did.
    assert_eq!(updated.oauth_scopes, "a b");

    let second = nango
        .create_config(&NewConfig::new("other", API_KEY, "", "", ""))
        .await?;
    assert_ne!(second, id);
    let keys: Vec<_> = nango
        .list_configs()
        .await?
        .into_iter()
        .map(|c| c.unique_key)
        .collect();
    assert_eq!(keys, ["github", "other"]);

    nango.delete_config("github").await?;
    assert_api_error(
        nango.get_config("github").await,
        400,
        kinds::UNKNOWN_PROVIDER_CONFIG,
        Some(UNKNOWN_CONFIG),
    );
    // Deleting what does not exist succeeds, as in Nango 0.9.
    nango.delete_config("github").await?;
    assert_eq!(nango.list_configs().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn unknown_configs_and_connections_are_the_documented_errors() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    server.create_config(&nango, "gh", OAUTH2).await;

    assert_api_error(
        nango.get_token("gh", "nobody").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    assert_api_error(
        nango.get_connection("gh", "nobody").await,
        400,
        "unkown_connection",
        Some(UNKNOWN_CONNECTION),
    );
    assert_api_error(
        nango.get_raw_token_response("gh", "nobody").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    assert_api_error(
        nango
            .get_token_with("gh", "nobody", GetOptions::new().force_refresh(true))
            .await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    assert_api_error(
        nango.delete_connection("gh", "nobody").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        Some(UNKNOWN_CONNECTION),
    );
    // Under a config key that does not exist, the connection is what is missing first.
    assert_api_error(
        nango.get_token("no-such-config", "nobody").await,
        400,
        kinds::UNKNOWN_CONNECTION,
        None,
    );

    assert_api_error(
        nango.get_config("no-such-config").await,
        400,
        kinds::UNKNOWN_PROVIDER_CONFIG,
        Some(UNKNOWN_CONFIG),
    );
    assert_api_error(
        nango
            .update_config(&NewConfig::new("no-such-config", OAUTH2, "i", "s", "x"))
            .await,
        400,
        kinds::UNKNOWN_PROVIDER_CONFIG,
        Some(UNKNOWN_CONFIG),
    );
    assert_api_error(
        nango
            .create_connection("no-such-config", "u1", &NewCredentials::ApiKey("k".into()))
            .await,
        400,
        kinds::UNKNOWN_PROVIDER_CONFIG,
        Some(UNKNOWN_CONFIG),
    );
    assert_api_error(
        nango
            .create_config(&NewConfig::new("gh", OAUTH2, "i", "s", "x"))
            .await,
        400,
        kinds::DUPLICATE_PROVIDER_CONFIG,
        Some("There is already a Provider Configuration matching the param 'provider_config_key'."),
    );
    assert_api_error(
        nango
            .create_config(&NewConfig::new("new", "no-such-provider", "i", "s", "x"))
            .await,
        400,
        kinds::UNKNOWN_PROVIDER_TEMPLATE,
        Some("No Provider Template matching the 'provider' parameter."),
    );
    // Ids a URL path cannot carry are refused before any request.
    assert!(matches!(
        nango.get_token("gh", "..").await,
        Err(Error::InvalidArgument(_))
    ));
    Ok(())
}

#[tokio::test]
async fn the_provider_catalog_is_browsable() -> Result<(), Error> {
    let server = TestServer::start().await;
    let nango = server.client(None);
    let mock: Vec<_> = nango
        .list_providers(Some("mock-"))
        .await?
        .into_iter()
        .map(|p| (p.name, p.auth_mode))
        .collect();
    for (name, mode) in [
        (OAUTH2, "OAUTH2"),
        (OAUTH2_CC, "OAUTH2_CC"),
        (API_KEY, "API_KEY"),
        (BASIC, "BASIC"),
    ] {
        assert!(
            mock.contains(&(name.to_string(), mode.to_string())),
            "{name} missing from {mock:?}"
        );
    }
    assert!(nango.list_providers(None).await?.len() > mock.len());

    let detail = nango.get_provider(OAUTH2).await?;
    assert_eq!(detail.name, OAUTH2);
    assert_eq!(detail.template["auth_mode"], "OAUTH2");
    assert_eq!(
        detail.template["token_url"],
        format!("{}/token", server.provider.url)
    );
    assert_api_error(
        nango.get_provider("no-such-provider").await,
        404,
        kinds::UNKNOWN_PROVIDER,
        None,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The secret key.

#[tokio::test]
async fn the_secret_key_is_required_and_checked() -> Result<(), Error> {
    let server = TestServer::start_with(Some(SECRET_KEY), &[]).await;
    let nango = server.client(Some(SECRET_KEY));
    server.create_config(&nango, "gh", OAUTH2).await;
    server.connect("gh", "u1").await;
    nango.get_token("gh", "u1").await?;

    let wrong = server.client(Some("not-the-key"));
    let invalid = "Authentication failed. The provided secret key is invalid.";
    assert_api_error(
        wrong.get_token("gh", "u1").await,
        401,
        kinds::INVALID_SECRET_KEY,
        Some(invalid),
    );
    assert_api_error(
        wrong.list_configs().await,
        401,
        kinds::INVALID_SECRET_KEY,
        Some(invalid),
    );
    assert_api_error(
        wrong.delete_connection("gh", "u1").await,
        401,
        kinds::INVALID_SECRET_KEY,
        Some(invalid),
    );
    assert_api_error(
        wrong
            .create_config(&NewConfig::new("x", OAUTH2, "i", "s", ""))
            .await,
        401,
        kinds::INVALID_SECRET_KEY,
        Some(invalid),
    );
    let missing = server.client(None);
    assert_api_error(
        missing.list_connections().await,
        401,
        kinds::MISSING_AUTH_HEADER,
        Some("Authentication failed. The request is missing the Authorization header."),
    );
    // Nothing was changed by the refused calls.
    assert_eq!(nango.list_connections().await?.len(), 1);
    assert_eq!(nango.list_configs().await?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The API proxy, to a fake provider API.

/// How many bytes `GET /big` of the fake API answers.
const BIG: usize = 3 * 1024 * 1024;

/// One request that reached the fake API (header names in lower case).
#[derive(Debug, Clone)]
struct ApiRequest {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ApiRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A provider's REST API on `127.0.0.1:<free port>` (axum): it records every request and
/// answers `/missing` 404 JSON, `/text` text, `/big` [`BIG`] bytes, anything else a JSON echo.
struct FakeApi {
    url: String,
    requests: Arc<Mutex<Vec<ApiRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApi {
    async fn start() -> FakeApi {
        use axum::http::{header::CONTENT_TYPE, StatusCode};
        use axum::response::IntoResponse;

        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = requests.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let sink = sink.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let path = parts.uri.path().to_string();
                let query: Vec<(String, String)> =
                    url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).to_string(),
                        )
                    })
                    .collect();
                sink.lock().unwrap().push(ApiRequest {
                    method: parts.method.to_string(),
                    path: path.clone(),
                    query: query.clone(),
                    headers,
                    body,
                });
                match path.as_str() {
                    "/missing" => (
                        StatusCode::NOT_FOUND,
                        [(CONTENT_TYPE, "application/json")],
                        r#"{"message":"Not Found"}"#,
                    )
                        .into_response(),
                    "/text" => (
                        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                        "hello from the API",
                    )
                        .into_response(),
                    "/big" => ([(CONTENT_TYPE, "application/octet-stream")], vec![1u8; BIG])
                        .into_response(),
                    _ => axum::Json(json!({
                        "method": parts.method.as_str(),
                        "path": parts.uri.path(),
                        "query": query,
                    }))
                    .into_response(),
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            url,
            requests,
            task,
        }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn last(&self) -> ApiRequest {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request reached the fake API")
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake API, a server (with the secret key) whose template [`OAUTH2_API`] points at it,
/// and the connection `("api", "u1")` made through the OAuth flow; also returns its access token.
async fn proxied() -> (FakeApi, TestServer, Client, String) {
    let api = FakeApi::start().await;
    let server = TestServer::start_full(Some(SECRET_KEY), &[], Some(&api.url)).await;
    let nango = server.client(Some(SECRET_KEY));
    server.create_config(&nango, "api", OAUTH2_API).await;
    server.connect("api", "u1").await;
    let issued = server
        .provider
        .wait_for_grants("client-api", "authorization_code", 1)
        .await
        .remove(0);
    let token = issued["issued"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (api, server, nango, token)
}

#[tokio::test]
async fn the_proxy_sends_method_path_query_body_and_headers_with_the_connection_token(
) -> Result<(), Error> {
    let (api, _server, nango, token) = proxied().await;
    let bearer = format!("Bearer {token}");

    let response = nango
        .proxy(
            ProxyRequest::get("api", "u1", "/repos/octo/hello")
                .param("per_page", "5")
                .param("label", "a")
                .param("label", "b c")
                .header("X-Custom", "value 1")
                .header("Accept", "application/vnd.api+json"),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await?;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/repos/octo/hello");
    let seen = api.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/repos/octo/hello");
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        seen.query,
        [
            pair("per_page", "5"),
            pair("label", "a"),
            pair("label", "b c")
        ]
    );
    assert_eq!(seen.header("authorization"), Some(bearer.as_str()));
    assert_eq!(seen.header("x-custom"), Some("value 1"));
    assert_eq!(seen.header("accept"), Some("application/vnd.api+json"));
    for (name, value) in &seen.headers {
        assert!(
            !name.starts_with("nango-proxy-"),
            "{name}: the prefix is stripped"
        );
        assert!(!["connection-id", "provider-config-key", "retries"].contains(&name.as_str()));
        assert!(
            !value.contains(SECRET_KEY),
            "{name}: the secret key reached the provider"
        );
    }
    assert!(seen.body.is_empty());

    // A JSON POST, with its Content-Type.
    let response = nango
        .proxy(ProxyRequest::post("api", "u1", "issues").json(&json!({"title": "Bug", "n": 1}))?)
        .await?;
    assert_eq!(response.status(), 200);
    let seen = api.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/issues")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body).unwrap(),
        json!({"title": "Bug", "n": 1})
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("authorization"), Some(bearer.as_str()));

    // PUT with a raw body and its type, PATCH with a form, DELETE.
    nango
        .proxy(
            ProxyRequest::put("api", "u1", "/notes/1")
                .header("Content-Type", "text/plain")
                .body("raw text"),
        )
        .await?;
    let seen = api.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.body, b"raw text");
    assert_eq!(seen.header("content-type"), Some("text/plain"));

    nango
        .proxy(ProxyRequest::patch("api", "u1", "/issues/1").form([("state", "closed")]))
        .await?;
    let seen = api.last();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.body, b"state=closed");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );

    let response = nango
        .proxy(ProxyRequest::delete("api", "u1", "/issues/1").retries(0))
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(api.last().method, "DELETE");
    assert_eq!(api.last().path, "/issues/1");
    Ok(())
}

#[tokio::test]
async fn the_proxy_returns_every_status_and_streams_the_body() -> Result<(), Error> {
    let (api, server, nango, _token) = proxied().await;

    // A provider's 404 is a response, not an error.
    let response = nango
        .proxy(ProxyRequest::get("api", "u1", "/missing"))
        .await?;
    assert_eq!(response.status(), 404);
    assert!(response
        .content_type()
        .is_some_and(|t| t.starts_with("application/json")));
    assert_eq!(
        response.json::<Value>().await?,
        json!({"message": "Not Found"})
    );

    // Text.
    let response = nango.proxy(ProxyRequest::get("api", "u1", "/text")).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await?, "hello from the API");

    // A large body, a piece at a time.
    let mut response = nango.proxy(ProxyRequest::get("api", "u1", "/big")).await?;
    assert_eq!(response.status(), 200);
    let (mut total, mut chunks) = (0, 0);
    while let Some(chunk) = response.chunk().await? {
        assert!(chunk.iter().all(|b| *b == 1));
        total += chunk.len();
        chunks += 1;
    }
    assert_eq!(total, BIG);
    assert!(chunks > 1, "{chunks} chunk(s)");

    // The proxy's own errors are responses too, and reach no API.
    let before = api.count();
    let response = nango
        .proxy(ProxyRequest::get("api", "nobody", "/x"))
        .await?;
    assert!(response.status().is_client_error(), "{}", response.status());
    let body: Value = response.json().await?;
    assert!(
        body["error"].is_string() && body["type"].is_string(),
        "{body}"
    );

    let wrong = server.client(Some("not-the-key"));
    let response = wrong.proxy(ProxyRequest::get("api", "u1", "/x")).await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await?["type"],
        kinds::INVALID_SECRET_KEY
    );
    assert_eq!(api.count(), before, "the API saw none of them");

    // Arguments that cannot be sent are refused before sending.
    for request in [
        ProxyRequest::get("api", "u1", ""),
        ProxyRequest::get("api", "u1", "/a/../config"),
        ProxyRequest::get("api", "usér", "/x"),
        ProxyRequest::get("", "u1", "/x"),
        ProxyRequest::get("api", "u1", "/x").retries(11),
        ProxyRequest::get("api", "u1", "/x").header("Bad Name", "v"),
    ] {
        match nango.proxy(request).await {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(api.count(), before);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Transport: server down, hanging, answering errors.

/// A port nothing listens on (free a moment ago).
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// A listener that counts connections and does `behaviour` with each; the sockets are kept
/// open until the test ends.
struct CountingListener {
    host: String,
    accepted: Arc<AtomicUsize>,
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Hang,
    /// Closes the connection as soon as it is accepted.
    Close,
    /// Answers every request with this status and a Nango error envelope.
    Answer(u16),
}

impl CountingListener {
    async fn start(behaviour: Behaviour) -> CountingListener {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::Close => drop(socket),
                    Behaviour::Hang => open.push(socket),
                    Behaviour::Answer(status) => {
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 8192];
                            let mut read = Vec::new();
                            while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                                match socket.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => read.extend_from_slice(&buf[..n]),
                                }
                            }
                            let body =
                                json!({"error": "Refused by the test.", "type": "test_refusal"})
                                    .to_string();
                            let response = format!(
                                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = socket.write_all(response.as_bytes()).await;
                            let _ = socket.shutdown().await;
                        });
                    }
                }
            }
        });
        CountingListener { host, accepted }
    }

    /// How many connections it got since the last call.
    fn take_count(&self) -> usize {
        self.accepted.swap(0, Ordering::SeqCst)
    }
}

fn quick_client(host: &str, retries: u32) -> Client {
    Client::builder(host)
        .timeout(Duration::from_millis(300))
        .retries(retries)
        .retry_delay(Duration::from_millis(50))
        .build()
        .unwrap()
}

#[track_caller]
fn assert_network_error<T: std::fmt::Debug>(result: Result<T, Error>, host: &str, tries: u32) {
    let e = match result {
        Err(e @ Error::Network { .. }) => e,
        other => panic!("expected a network error from {host}, got {other:?}"),
    };
    if let Error::Network {
        host: ref reported,
        attempts,
        ..
    } = e
    {
        assert_eq!(reported, host);
        assert_eq!(attempts, tries, "{e}");
    }
    assert!(e.is_unreachable());
    assert_eq!(e.status(), None);
    assert_eq!(e.kind(), None);
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("The Nango server at {host} could not be reached")),
        "{message}"
    );
    if tries > 1 {
        assert!(
            message.ends_with(&format!("({tries} attempts).")),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_network_error_after_the_retries() -> Result<(), Error> {
    let host = format!("http://127.0.0.1:{}", refused_port());

    let nango = quick_client(&host, 2);
    let started = Instant::now();
    assert_network_error(nango.get_token("gh", "u1").await, &host, 3);
    // 50 ms, then 100 ms between the three attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_network_error(nango.list_configs().await, &host, 3);
    assert_network_error(
        nango
            .update_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
            .await,
        &host,
        3,
    );
    assert_network_error(nango.delete_connection("gh", "u1").await, &host, 3);
    // A POST is never retried.
    assert_network_error(
        nango
            .create_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
            .await,
        &host,
        1,
    );
    assert_network_error(
        nango
            .create_connection("k", "u", &NewCredentials::ClientCredentials)
            .await,
        &host,
        1,
    );
    // Retries off.
    assert_network_error(quick_client(&host, 0).get_token("gh", "u1").await, &host, 1);
    Ok(())
}

#[tokio::test]
async fn a_real_server_that_stops_becomes_a_network_error() -> Result<(), Error> {
    let mut server = TestServer::start().await;
    let nango = Client::builder(&server.host)
        .retries(1)
        .retry_delay(Duration::from_millis(10))
        .build()?;
    assert!(nango.list_configs().await?.is_empty());
    server.stop().await;
    let host = server.host.clone();
    assert_network_error(nango.list_configs().await, &host, 2);
    Ok(())
}

#[tokio::test]
async fn a_hanging_server_times_out_on_every_attempt_of_idempotent_calls_only() {
    let hanging = CountingListener::start(Behaviour::Hang).await;
    let nango = quick_client(&hanging.host, 2);

    let started = Instant::now();
    let result = nango.get_token("gh", "u1").await;
    match &result {
        Err(
            e @ Error::Timeout {
                attempts, timeout, ..
            },
        ) => {
            assert_eq!(*attempts, 3);
            assert_eq!(*timeout, Duration::from_millis(300));
            assert!(e.is_unreachable());
            assert_eq!(
                e.to_string(),
                format!(
                    "The Nango server at {} did not answer GET /connection/u1 within 300 ms (3 attempts).",
                    hanging.host
                )
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Three attempts of 300 ms, 50 + 100 ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(1050),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hanging.take_count(), 3);

    let put = nango
        .update_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
        .await;
    assert!(
        matches!(put, Err(Error::Timeout { attempts: 3, .. })),
        "{put:?}"
    );
    assert_eq!(hanging.take_count(), 3);
    let delete = nango.delete_config("k").await;
    assert!(
        matches!(delete, Err(Error::Timeout { attempts: 3, .. })),
        "{delete:?}"
    );
    assert_eq!(hanging.take_count(), 3);

    // A POST may have been applied: never retried.
    let post = nango
        .create_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
        .await;
    assert!(
        matches!(post, Err(Error::Timeout { attempts: 1, .. })),
        "{post:?}"
    );
    assert_eq!(hanging.take_count(), 1);
    let post = nango
        .create_connection("k", "u", &NewCredentials::ApiKey("x".into()))
        .await;
    assert!(
        matches!(post, Err(Error::Timeout { attempts: 1, .. })),
        "{post:?}"
    );
    assert_eq!(hanging.take_count(), 1);
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_retried() {
    let closing = CountingListener::start(Behaviour::Close).await;
    let nango = quick_client(&closing.host, 2);
    assert_network_error(nango.list_connections().await, &closing.host, 3);
    assert_eq!(closing.take_count(), 3);
    assert_network_error(
        nango
            .create_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
            .await,
        &closing.host,
        1,
    );
    assert_eq!(closing.take_count(), 1);
}

#[tokio::test]
async fn an_http_error_is_never_retried() {
    for status in [400, 401, 404, 500, 502, 503] {
        let answering = CountingListener::start(Behaviour::Answer(status)).await;
        let nango = quick_client(&answering.host, 3);
        for call in 0..4 {
            let result = match call {
                0 => nango.get_token("gh", "u1").await.map(drop),
                1 => nango.list_configs().await.map(drop),
                2 => {
                    nango
                        .update_config(&NewConfig::new("k", OAUTH2, "i", "s", ""))
                        .await
                }
                _ => nango.delete_connection("gh", "u1").await,
            };
            assert_api_error(result, status, "test_refusal", Some("Refused by the test."));
            assert_eq!(answering.take_count(), 1, "HTTP {status} was retried");
        }
    }
}

#[tokio::test]
async fn a_proxy_call_without_an_answer_is_a_network_error_after_the_retries() {
    let host = format!("http://127.0.0.1:{}", refused_port());
    let nango = quick_client(&host, 2);
    assert_network_error(
        nango.proxy(ProxyRequest::get("k", "c", "/x")).await,
        &host,
        3,
    );
    // A POST is tried once.
    assert_network_error(
        nango
            .proxy(ProxyRequest::post("k", "c", "/x").body("b"))
            .await,
        &host,
        1,
    );
}

#[tokio::test]
async fn a_proxy_call_returns_any_status_and_never_retries_an_answer() -> Result<(), Error> {
    for status in [400, 401, 404, 429, 500, 502] {
        let answering = CountingListener::start(Behaviour::Answer(status)).await;
        let nango = quick_client(&answering.host, 3);
        let response = nango.proxy(ProxyRequest::get("gh", "u1", "/x")).await?;
        assert_eq!(response.status(), status);
        let body: Value = response.json().await?;
        assert_eq!(body["type"], "test_refusal");
        assert_eq!(answering.take_count(), 1, "HTTP {status} was retried");
    }
    Ok(())
}
