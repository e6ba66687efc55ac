//! The built `nango` binary against a real `nango serve` child process: exit codes, messages and
//! output of every client command, as reference §5 and §1 describe them.

// A test that cannot set up its server should stop right there, with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const NANGO: &str = env!("CARGO_BIN_EXE_nango");

const DUPLICATE: &str =
    "There is already a Provider Configuration matching the param 'provider_config_key'.";
const UNKNOWN_CONFIG: &str = "There is no Provider Configuration matching this key.";
const UNKNOWN_PROVIDER: &str = "No Provider Template matching the 'provider' parameter.";
const UNKNOWN_CONNECTION: &str =
    "No connection matching params 'connection_id' and 'provider_config_key'.";
const WRONG_KEY: &str = "Authentication failed. The provided secret key is invalid.";
const MISSING_KEY: &str = "Authentication failed. The request is missing the Authorization header.";

/// Variables of the test runner's environment that would change what the server or the CLI does.
const INHERITED_SETTINGS: &[&str] = &[
    "NANGO_HOSTPORT",
    "NANGO_SECRET_KEY",
    "NANGO_DATABASE_URL",
    "NANGO_SERVER_URL",
    "NANGO_CALLBACK_URL",
    "NANGO_BIND",
    "NANGO_PROVIDERS_FILE",
    "NANGO_DB_HOST",
    "SERVER_PORT",
    "PORT",
    "LOG_LEVEL",
    "NANGO_LOG_FORMAT",
    "NANGO_ENCRYPTION_KEY",
    "NANGO_DB_PORT",
    "NANGO_DB_USER",
    "NANGO_DB_PASSWORD",
    "NANGO_DB_NAME",
    "NANGO_DB_SSL",
    "NANGO_WEBHOOK_URLS",
    "NANGO_REDIRECT_ALLOWLIST",
    // Colours: a pipe gets none unless these say otherwise.
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
];

/// Where a colour (or bold) escape sequence starts.
const ESC: &str = "\u{1b}[";

fn nango_command() -> Command {
    let mut command = Command::new(NANGO);
    for name in INHERITED_SETTINGS {
        command.env_remove(name);
    }
    command.stdin(Stdio::null());
    command
}

/// A port nothing listens on (free a moment ago).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What one CLI run did.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(args: &[&str], output: Output) -> Run {
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn context(&self) -> String {
        format!(
            "nango {:?} exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Exit 0 and the stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {}", self.context());
        &self.stdout
    }

    /// Exit non-zero with `❌ <message>` on stderr and nothing claiming success on stdout.
    fn fails_with(&self, message: &str) {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a failure: {}",
            self.context()
        );
        assert!(
            self.stderr.contains(&format!("❌ {message}")),
            "expected '❌ {message}' on stderr: {}",
            self.context()
        );
        assert!(!self.stdout.contains('✅'), "{}", self.context());
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.context()))
    }

    /// The line of `nango doctor`'s check `name` (`<mark> <name>  <message>`).
    fn check(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| {
                line.split_once(' ')
                    .is_some_and(|(_, rest)| rest.starts_with(&format!("{name} ")))
            })
            .unwrap_or_else(|| panic!("no {name} check: {}", self.context()))
    }

    /// Asserts that doctor's check `name` has the status `mark` (✓, !, ✗ or -); returns its line.
    fn check_is(&self, name: &str, mark: &str) -> &str {
        let line = self.check(name);
        assert!(
            line.starts_with(&format!("{mark} ")),
            "expected {mark} for {name}: {}",
            self.context()
        );
        line
    }
}

/// A `nango serve` child on its own port and SQLite file; killed when dropped.
struct Server {
    child: Child,
    host: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(None)
    }

    fn start_with(secret_key: Option<&str>) -> Server {
        Server::start_configured(secret_key, None)
    }

    /// A server with `providers_yaml` as its `NANGO_PROVIDERS_FILE`, when given.
    fn start_configured(secret_key: Option<&str>, providers_yaml: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = vec![];
        if let Some(key) = secret_key {
            env.push(("NANGO_SECRET_KEY".to_string(), key.to_string()));
        }
        if let Some(yaml) = providers_yaml {
            let file = dir.path().join("providers.yaml");
            std::fs::write(&file, yaml).expect("providers file");
            env.push((
                "NANGO_PROVIDERS_FILE".to_string(),
                file.display().to_string(),
            ));
        }
        Server::start_in(dir, &env)
    }

    /// A server on the SQLite file `t.db` of `dir`, with `env` added to its environment.
    fn start_in(dir: TempDir, env: &[(String, String)]) -> Server {
        let port = unused_port();
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).expect("server log");
        let mut command = nango_command();
        command
            .arg("serve")
            .env("SERVER_PORT", port.to_string())
            .env("NANGO_DATABASE_URL", sqlite_url(&dir))
            .env("LOG_LEVEL", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        let child = command.spawn().expect("spawn nango serve");
        let mut server = Server {
            child,
            host: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        server.wait_until_healthy(port);
        server
    }

    /// Stops the server and hands back its directory (database included).
    fn stop(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self._dir, dir)
    }

    fn wait_until_healthy(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if healthcheck(port) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "nango serve exited with {status} before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nango serve did not answer GET / with {{\"result\":\"ok\"}} within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the CLI against this server, without a secret key.
    fn nango(&self, args: &[&str]) -> Run {
        self.nango_with(args, &[])
    }

    fn nango_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = nango_command();
        command.args(args).env("NANGO_HOSTPORT", &self.host);
        for (k, v) in env {
            command.env(k, v);
        }
        Run::from_output(args, command.output().expect("run nango"))
    }

    /// `nango doctor` with this server's URL, database and public URL, plus `env`.
    fn doctor(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let database = sqlite_url(&self._dir);
        let mut all = vec![
            ("NANGO_DATABASE_URL", database.as_str()),
            ("NANGO_SERVER_URL", self.host.as_str()),
        ];
        all.extend_from_slice(env);
        let args: Vec<&str> = ["doctor"].iter().chain(args).copied().collect();
        self.nango_with(&args, &all)
    }

    fn create_github_config(&self, key: &str) {
        let run = self.nango(&[
            "config:create",
            key,
            "github",
            "cid",
            "csecret",
            "repo,user",
        ]);
        assert!(
            run.ok()
                .contains("✅ Successfully created a new provider configuration!"),
            "{}",
            run.context()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}/t.db", dir.path().display())
}

/// `GET /` answers `{"result":"ok"}` (Nango 0.9's healthcheck).
fn healthcheck(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains(r#"{"result":"ok"}"#)
}

fn data_rows(table: &str) -> Vec<&str> {
    // comfy-table draws borders with box characters; data rows are the lines with cell text
    // below the header separator.
    table
        .lines()
        .skip_while(|l| !l.starts_with('╞'))
        .skip(1)
        .filter(|l| l.starts_with('│'))
        .collect()
}

#[test]
fn help_lists_every_command() {
    let commands = [
        "serve",
        "config:list",
        "config:get",
        "config:create",
        "config:edit",
        "config:delete",
        "connection:get",
        "connection:list",
        "connection:delete",
        "token:get",
        "providers:list",
        "providers:get",
        "db:rotate-key",
        "import:nango",
        "doctor",
        "completions",
    ];
    for args in [&["help"][..], &["--help"][..]] {
        let run = Run::from_output(args, nango_command().args(args).output().expect("run"));
        let out = run.ok();
        for command in commands {
            assert!(
                out.contains(command),
                "{command} missing: {}",
                run.context()
            );
        }
    }

    let args = ["config:create", "--help"];
    let run = Run::from_output(&args, nango_command().args(args).output().expect("run"));
    let out = run.ok();
    assert!(
        out.contains(
            "<PROVIDER_CONFIG_KEY> <PROVIDER> <OAUTH_CLIENT_ID> <OAUTH_CLIENT_SECRET> <OAUTH_SCOPES>"
        ),
        "{}",
        run.context()
    );
    assert!(
        out.contains("NANGO_HOSTPORT") && out.contains("--secret-key"),
        "{}",
        run.context()
    );

    let args = ["token:get", "only-one-arg"];
    let run = Run::from_output(&args, nango_command().args(args).output().expect("run"));
    assert!(matches!(run.code, Some(c) if c != 0), "{}", run.context());
    assert!(run.stderr.contains("<CONNECTION_ID>"), "{}", run.context());
}

#[test]
fn config_create_list_get_edit_delete_round_trip() {
    let server = Server::start();

    let run = server.nango(&[
        "config:create",
        "github-dev",
        "github",
        "Iv1.client-id",
        "client-secret-abcdef-9876",
        "user public_repo",
    ]);
    assert!(
        run.ok()
            .contains("✅ Successfully created a new provider configuration!"),
        "{}",
        run.context()
    );
    // Nothing asks for the preamble when stderr is not a terminal.
    assert!(!run.stderr.contains("Assuming"), "{}", run.context());

    let run = server.nango(&["config:list"]);
    let rows = data_rows(run.ok());
    assert_eq!(rows.len(), 1, "{}", run.context());
    assert!(
        rows[0].contains("github-dev") && rows[0].contains("github"),
        "{}",
        run.context()
    );
    assert!(!run.stdout.contains("client-secret"), "{}", run.context());

    let run = server.nango(&["config:get", "github-dev"]);
    let out = run.ok();
    for needle in [
        "github-dev",
        "Iv1.client-id",
        "user,public_repo",
        "********9876",
    ] {
        assert!(out.contains(needle), "{needle} missing: {}", run.context());
    }
    assert!(
        !out.contains("client-secret-abcdef"),
        "secret printed: {}",
        run.context()
    );

    // Creation normalises scopes to a comma list (reference §1.6).
    let config = server.nango(&["--json", "config:get", "github-dev"]).json();
    assert_eq!(config["config"]["unique_key"], "github-dev");
    assert_eq!(config["config"]["provider"], "github");
    assert_eq!(config["config"]["oauth_scopes"], "user,public_repo");

    let run = server.nango(&[
        "config:edit",
        "github-dev",
        "github",
        "Iv1.other-id",
        "other-secret-xyz-1234",
        "repo",
    ]);
    assert!(
        run.ok()
            .contains("✅ Successfully edited an existing provider configuration!"),
        "{}",
        run.context()
    );
    let config = server.nango(&["config:get", "github-dev", "--json"]).json();
    assert_eq!(config["config"]["oauth_client_id"], "Iv1.other-id");
    assert_eq!(
        config["config"]["oauth_client_secret"],
        "other-secret-xyz-1234"
    );
    assert_eq!(config["config"]["oauth_scopes"], "repo");

    let run = server.nango(&["config:delete", "github-dev"]);
    assert!(
        run.ok()
            .contains("✅ Successfully deleted the provider configuration!"),
        "{}",
        run.context()
    );
    server
        .nango(&["config:get", "github-dev"])
        .fails_with(UNKNOWN_CONFIG);
    let list = server.nango(&["config:list", "--json"]).json();
    assert_eq!(list, serde_json::json!({"configs": []}));
}

/// Runs the CLI with `input` on its standard input.
fn nango_with_stdin(server: &Server, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut command = nango_command();
    command
        .args(args)
        .env("NANGO_HOSTPORT", &server.host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run nango");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Run::from_output(args, child.wait_with_output().expect("wait for nango"))
}

#[test]
fn the_client_secret_can_come_from_standard_input() {
    let server = Server::start();
    // `-` reads the secret from stdin, less one trailing newline, so it is never in argv.
    let args = ["config:create", "gh", "github", "cid", "-", "repo"];
    let run = nango_with_stdin(&server, &args, "stdin-secret-1234\n");
    assert!(
        run.ok()
            .contains("✅ Successfully created a new provider configuration!"),
        "{}",
        run.context()
    );
    let config = server.nango(&["--json", "config:get", "gh"]).json();
    assert_eq!(config["config"]["oauth_client_secret"], "stdin-secret-1234");

    let args = ["config:edit", "gh", "github", "cid", "-", "repo"];
    let run = nango_with_stdin(&server, &args, "edited secret\r\n");
    run.ok();
    let config = server.nango(&["--json", "config:get", "gh"]).json();
    assert_eq!(config["config"]["oauth_client_secret"], "edited secret");

    // Nothing on stdin is refused rather than stored as an empty secret.
    let args = ["config:edit", "gh", "github", "cid", "-", "repo"];
    nango_with_stdin(&server, &args, "")
        .fails_with("the client secret read from standard input is empty");
    let config = server.nango(&["--json", "config:get", "gh"]).json();
    assert_eq!(config["config"]["oauth_client_secret"], "edited secret");
}

#[test]
fn connection_config_sets_the_operators_host() {
    let server = Server::start();
    let run = server.nango(&[
        "config:create",
        "ghe",
        "github-enterprise",
        "cid",
        "csecret",
        "repo",
        "--connection-config",
        "hostname=ghe.example.com",
    ]);
    run.ok();
    let config = server.nango(&["--json", "config:get", "ghe"]).json();
    assert_eq!(
        config["config"]["connection_config"],
        serde_json::json!({"hostname": "ghe.example.com"})
    );
    // Editing without the option keeps the values; a local address is refused by the server.
    server
        .nango(&[
            "config:edit",
            "ghe",
            "github-enterprise",
            "cid",
            "csecret",
            "repo,user",
        ])
        .ok();
    let config = server.nango(&["--json", "config:get", "ghe"]).json();
    assert_eq!(
        config["config"]["connection_config"]["hostname"],
        "ghe.example.com"
    );
    server
        .nango(&[
            "config:edit",
            "ghe",
            "github-enterprise",
            "cid",
            "csecret",
            "repo",
            "--connection-config",
            "hostname=127.0.0.1",
        ])
        .fails_with("connection_config param 'hostname' is refused");
    let run = server.nango(&[
        "config:create",
        "x",
        "github",
        "a",
        "b",
        "c",
        "--connection-config",
        "novalue",
    ]);
    assert_ne!(run.code, Some(0), "{}", run.context());
    assert!(run.stderr.contains("NAME=VALUE"), "{}", run.context());
}

#[test]
fn creating_a_duplicate_config_fails_with_the_server_message() {
    let server = Server::start();
    server.create_github_config("github");
    server
        .nango(&["config:create", "github", "github", "x", "y", "repo"])
        .fails_with(DUPLICATE);
}

#[test]
fn an_unknown_provider_is_refused() {
    let server = Server::start();
    server
        .nango(&["config:create", "k", "no-such-provider", "x", "y", "repo"])
        .fails_with(UNKNOWN_PROVIDER);
    assert_eq!(
        server.nango(&["--json", "config:list"]).json()["configs"],
        serde_json::json!([])
    );
}

#[test]
fn config_get_of_an_unknown_key_fails() {
    let server = Server::start();
    server
        .nango(&["config:get", "nope"])
        .fails_with(UNKNOWN_CONFIG);
}

#[test]
fn config_edit_of_an_unknown_key_fails() {
    let server = Server::start();
    server
        .nango(&["config:edit", "nope", "github", "x", "y", "repo"])
        .fails_with(UNKNOWN_CONFIG);
}

#[test]
fn keys_with_spaces_and_slashes_survive_the_trip() {
    let server = Server::start();
    server.create_github_config("team a/b?c");
    let config = server.nango(&["--json", "config:get", "team a/b?c"]).json();
    assert_eq!(config["config"]["unique_key"], "team a/b?c");
    server.nango(&["config:delete", "team a/b?c"]).ok();
    server
        .nango(&["config:get", "team a/b?c"])
        .fails_with(UNKNOWN_CONFIG);
}

#[test]
fn connection_list_of_a_new_server_is_empty() {
    let server = Server::start();
    let run = server.nango(&["connection:list"]);
    let out = run.ok();
    assert!(
        out.contains("connection_id") && out.contains("created"),
        "{}",
        run.context()
    );
    assert!(data_rows(out).is_empty(), "{}", run.context());

    let list = server.nango(&["connection:list", "--json"]).json();
    assert_eq!(list, serde_json::json!({"connections": []}));
}

#[test]
fn unknown_connections_fail_for_get_token_and_delete() {
    let server = Server::start();
    server.create_github_config("github");
    for command in ["connection:get", "token:get", "connection:delete"] {
        server
            .nango(&[command, "github", "nobody"])
            .fails_with(UNKNOWN_CONNECTION);
    }
    server
        .nango(&["--json", "token:get", "github", "nobody"])
        .fails_with(UNKNOWN_CONNECTION);
}

#[test]
fn force_refresh_reaches_the_server_from_token_get_and_connection_get() {
    let server = Server::start_configured(None, Some("local-api-key:\n  auth_mode: API_KEY\n"));
    server
        .nango(&["config:create", "keys", "local-api-key", "", "", ""])
        .ok();
    // An API key connection (no browser flow needed), made with the client the CLI uses.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(
            nango_client::Client::new(&server.host)
                .expect("client")
                .create_connection(
                    "keys",
                    "user-1",
                    &nango_client::NewCredentials::ApiKey("sk-cli-test-1".into()),
                ),
        )
        .expect("create the connection");

    assert_eq!(
        server.nango(&["token:get", "keys", "user-1"]).ok().trim(),
        "sk-cli-test-1"
    );
    // An API key has nothing to refresh with: the server says so, which proves the flag
    // reached it.
    let not_refreshable = "These credentials cannot be refreshed";
    for args in [
        &["token:get", "keys", "user-1", "--force-refresh"][..],
        &["--json", "token:get", "keys", "user-1", "--force-refresh"][..],
        &["connection:get", "keys", "user-1", "--force-refresh"][..],
    ] {
        server.nango(args).fails_with(not_refreshable);
    }
    let connection = server.nango(&["connection:get", "keys", "user-1"]).json();
    assert_eq!(connection["credentials"]["apiKey"], "sk-cli-test-1");
}

#[test]
fn the_secret_key_is_required_and_checked() {
    let server = Server::start_with(Some("right-key"));

    server
        .nango_with(&["config:list"], &[("NANGO_SECRET_KEY", "wrong-key")])
        .fails_with(WRONG_KEY);
    server.nango(&["config:list"]).fails_with(MISSING_KEY);

    let run = server.nango_with(&["config:list"], &[("NANGO_SECRET_KEY", "right-key")]);
    run.ok();
    // The flag wins over the environment.
    let run = server.nango_with(
        &["config:list", "--secret-key", "right-key", "--json"],
        &[("NANGO_SECRET_KEY", "wrong-key")],
    );
    assert_eq!(run.json(), serde_json::json!({"configs": []}));
    server
        .nango_with(
            &["token:get", "github", "x", "--secret-key", "wrong-key"],
            &[("NANGO_SECRET_KEY", "right-key")],
        )
        .fails_with(WRONG_KEY);
}

#[test]
fn an_unreachable_server_fails_with_a_network_message() {
    let host = format!("http://127.0.0.1:{}", unused_port());
    for args in [
        &["config:list"][..],
        &["token:get", "github", "user-1"][..],
        &["--json", "connection:list"][..],
    ] {
        let run = Run::from_output(
            args,
            nango_command()
                .args(args)
                .env("NANGO_HOSTPORT", &host)
                .output()
                .expect("run"),
        );
        run.fails_with(&format!("The Nango server at {host} could not be reached"));
    }
}

#[test]
fn hostport_may_end_with_a_slash_and_host_flag_overrides_it() {
    let server = Server::start();
    let with_slash = format!("{}/", server.host);
    let run = server.nango_with(
        &["--json", "config:list"],
        &[("NANGO_HOSTPORT", &with_slash)],
    );
    assert_eq!(run.json(), serde_json::json!({"configs": []}));

    let dead = format!("http://127.0.0.1:{}", unused_port());
    let run = server.nango_with(
        &["--json", "config:list", "--host", &server.host],
        &[("NANGO_HOSTPORT", &dead)],
    );
    assert_eq!(run.json(), serde_json::json!({"configs": []}));

    let run = server.nango_with(&["config:list"], &[("NANGO_HOSTPORT", "localhost:3003")]);
    run.fails_with("Invalid URL provided for the Nango host: localhost:3003");
}

#[test]
fn json_output_is_the_parseable_response_body() {
    let server = Server::start();
    let created = server
        .nango(&[
            "--json",
            "config:create",
            "github",
            "github",
            "cid",
            "csecret-long-0001",
            "repo",
        ])
        .json();
    let config_id = created["config_id"].as_i64();
    assert!(config_id.is_some(), "{created}");

    let list = server.nango(&["--json", "config:list"]).json();
    let configs = list["configs"].as_array().expect("configs array");
    assert_eq!(configs.len(), 1, "{list}");
    assert_eq!(configs[0]["id"].as_i64(), config_id);
    assert_eq!(configs[0]["unique_key"], "github");
    // The raw body, as the server sent it: `--json` is an explicit request for the data.
    assert_eq!(configs[0]["oauth_client_secret"], "csecret-long-0001");

    let one = server.nango(&["config:get", "github", "--json"]).json();
    assert_eq!(one["config"]["id"].as_i64(), config_id);
}

#[test]
fn serve_with_a_bad_setting_exits_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["serve"];
    let output = nango_command()
        .args(args)
        .env("SERVER_PORT", "not-a-port")
        .env(
            "NANGO_DATABASE_URL",
            format!("sqlite://{}/t.db", dir.path().display()),
        )
        .output()
        .expect("run");
    let run = Run::from_output(&args, output);
    run.fails_with("The Nango server could not start");
    assert!(run.stderr.contains("SERVER_PORT"), "{}", run.context());
}

#[test]
fn providers_list_searches_the_catalog_and_providers_get_shows_a_template() {
    let server = Server::start();

    let run = server.nango(&["providers:list"]);
    let out = run.ok();
    let count: usize = out
        .lines()
        .last()
        .and_then(|l| l.strip_suffix(" providers"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count line: {}", run.context()));
    assert!(count >= 250, "{}", run.context());
    assert_eq!(data_rows(out).len(), count, "{}", run.context());

    let run = server.nango(&["providers:list", "--search", "GitHub"]);
    let rows = data_rows(run.ok());
    assert!(
        rows.iter().any(|r| r.starts_with("│ github ")),
        "{}",
        run.context()
    );
    assert!(
        rows.iter().all(|r| r.to_lowercase().contains("github")),
        "{}",
        run.context()
    );
    assert!(rows.len() < count, "{}", run.context());

    // By auth mode: only that mode's rows, and every mode together is the whole list.
    let mut by_mode = 0;
    for mode in ["OAUTH2", "OAUTH1", "OAUTH2_CC", "API_KEY", "BASIC"] {
        let run = server.nango(&["providers:list", "--auth-mode", mode]);
        let rows = data_rows(run.ok());
        assert!(!rows.is_empty(), "{mode}: {}", run.context());
        assert!(
            rows.iter().all(|r| r.contains(&format!(" {mode} "))),
            "{mode}: {}",
            run.context()
        );
        by_mode += rows.len();
    }
    assert_eq!(by_mode, count);
    let run = server.nango(&["providers:list", "--auth-mode", "api_key,basic"]);
    let both = data_rows(run.ok()).len();
    assert!(both > 0 && both < count, "{}", run.context());
    server
        .nango(&["providers:list", "--auth-mode", "PASSWORD"])
        .fails_with("Param 'auth_mode'");

    let run = server.nango(&[
        "--json",
        "providers:list",
        "--search",
        "no-such-provider-xyz",
    ]);
    assert_eq!(run.json(), serde_json::json!({ "providers": [] }));

    let run = server.nango(&["providers:get", "zendesk"]);
    let body = run.json();
    assert_eq!(body["name"], "zendesk");
    assert!(
        body["template"]["authorization_url"]
            .as_str()
            .is_some_and(|u| u.contains("${connectionConfig.params.subdomain}")),
        "{body}"
    );
    assert!(body["template"]["connection_config"]["subdomain"]["pattern"].is_string());

    server
        .nango(&["providers:get", "no-such-provider"])
        .fails_with("");
}

#[test]
fn db_rotate_key_reseals_every_secret_with_the_new_key_and_retires_the_old_one() {
    use base64::Engine;
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let (old_key, new_key) = (key(1), key(2));
    let secret = "rotation-client-secret-4242";

    // A config whose client secret is sealed with the old key.
    let server = Server::start_in(
        tempfile::tempdir().expect("tempdir"),
        &[("NANGO_ENCRYPTION_KEY".into(), old_key.clone())],
    );
    let run = server.nango(&["config:create", "gh", "github", "cid", secret, "repo"]);
    run.ok();
    let dir = server.stop();
    let database = std::fs::read(dir.path().join("t.db")).expect("database file");
    assert!(!String::from_utf8_lossy(&database).contains(secret));

    let rotate = |keys: &str| {
        let args = ["db:rotate-key"];
        let mut command = nango_command();
        command
            .args(args)
            .env("NANGO_DATABASE_URL", sqlite_url(&dir))
            .env("NANGO_ENCRYPTION_KEY", keys);
        Run::from_output(&args, command.output().expect("run nango"))
    };
    // Without the old key the data cannot be opened: refused, nothing changed.
    rotate(&new_key).fails_with("Could not rotate the encryption key");

    let run = rotate(&format!("{new_key},{old_key}"));
    let out = run.ok();
    assert!(
        out.contains("✅ Re-encrypted 1 secret(s) with the primary key (0 already were)"),
        "{}",
        run.context()
    );
    assert!(!out.contains("retired keys: none"), "{}", run.context());
    // Nothing is left to do the second time.
    let run = rotate(&format!("{new_key},{old_key}"));
    assert!(
        run.ok()
            .contains("Re-encrypted 0 secret(s) with the primary key (1 already were)"),
        "{}",
        run.context()
    );

    // The new key alone now opens everything; the old one alone no longer starts a server.
    rotate(&old_key).fails_with("Could not rotate the encryption key");
    let server = Server::start_in(dir, &[("NANGO_ENCRYPTION_KEY".into(), new_key)]);
    let config = server.nango(&["--json", "config:get", "gh"]).json();
    assert_eq!(config["config"]["oauth_client_secret"], secret, "{config}");
}

/// `base64` of 32 times `byte`: an encryption key.
fn encryption_key(byte: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The id the server gives an encryption key (in its messages and sealed values).
fn key_id(key: &str) -> String {
    let cipher =
        nango_server::store::Cipher::from_base64_keys(&[nango_server::secret::Secret::new(
            key.to_string(),
        )])
        .expect("a valid key");
    cipher.primary_key_id().expect("one key").to_string()
}

#[test]
fn colours_go_to_terminals_or_where_asked_never_into_pipes_json_or_against_no_color() {
    let server = Server::start();
    server.create_github_config("github");
    let colours = |args: &[&str], env: &[(&str, &str)]| {
        let run = server.nango_with(args, env);
        run.ok();
        run.stdout.contains(ESC)
    };
    let list = ["config:list"];

    // Through a pipe: plain, and the table the same as ever.
    assert!(!colours(&list, &[]));
    let run = server.nango(&list);
    assert!(
        data_rows(run.ok())[0].starts_with("│ github "),
        "{}",
        run.context()
    );

    // Asked for: the header in bold, the layout unchanged once the codes are stripped.
    let run = server.nango(&["--color", "always", "config:list"]);
    assert!(
        run.ok().contains("\u{1b}[1munique_key"),
        "{}",
        run.context()
    );
    assert!(run.stdout.contains("│ github "), "{}", run.context());
    // `auto` follows the standard variables: CLICOLOR_FORCE as a terminal would, and NO_COLOR
    // wins over it; an explicit --color wins over both.
    assert!(colours(&list, &[("CLICOLOR_FORCE", "1")]));
    assert!(!colours(
        &list,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!colours(
        &["config:list", "--color", "auto"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(colours(
        &["--color=always", "config:list"],
        &[("NO_COLOR", "1")]
    ));
    assert!(!colours(
        &["config:list", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")]
    ));

    // Success in green, errors in red (on stderr, with the same words).
    let run = server.nango(&[
        "--color",
        "always",
        "config:edit",
        "github",
        "github",
        "a",
        "b",
        "c",
    ]);
    assert!(run.ok().contains("\u{1b}[32m✅"), "{}", run.context());
    let run = server.nango(&["--color", "always", "config:get", "nope"]);
    run.fails_with(UNKNOWN_CONFIG);
    assert!(run.stderr.contains("\u{1b}[31m❌"), "{}", run.context());
    let run = server.nango(&["config:get", "nope"]);
    assert!(!run.stderr.contains(ESC), "{}", run.context());

    // --json: never, whatever is asked.
    for args in [
        &["--json", "--color", "always", "config:list"][..],
        &["--json", "--color", "always", "config:get", "github"][..],
        &["--json", "--color", "always", "connection:list"][..],
        &[
            "--json",
            "--color",
            "always",
            "providers:list",
            "--search",
            "github",
        ][..],
        &[
            "--json",
            "--color",
            "always",
            "config:create",
            "gh2",
            "github",
            "a",
            "b",
            "c",
        ][..],
        &["--json", "--color", "always", "config:delete", "gh2"][..],
    ] {
        let run = server.nango_with(args, &[("CLICOLOR_FORCE", "1")]);
        assert!(!run.ok().contains(ESC), "{}", run.context());
    }
    let run = server.doctor(&["--json", "--color", "always"], &[]);
    assert!(!run.stdout.contains(ESC), "{}", run.context());
    run.json();

    // clap's help follows --color too.
    let help = |args: &[&str], env: &[(&str, &str)]| {
        let run = Run::from_output(
            args,
            nango_command()
                .args(args)
                .envs(env.iter().copied())
                .output()
                .expect("run"),
        );
        run.ok();
        run.stdout.contains(ESC)
    };
    assert!(help(&["--color", "always", "--help"], &[]));
    assert!(!help(&["--help"], &[]));
    assert!(!help(
        &["--color", "never", "--help"],
        &[("CLICOLOR_FORCE", "1")]
    ));
}

#[test]
fn doctor_passes_every_check_against_a_well_configured_server() {
    // A key of 16 characters or more (a shorter one is warned about).
    const LONG_KEY: &str = "right-key-0123456789";
    let key = encryption_key(7);
    let server = Server::start_in(
        tempfile::tempdir().expect("tempdir"),
        &[
            ("NANGO_SECRET_KEY".into(), LONG_KEY.into()),
            ("NANGO_ENCRYPTION_KEY".into(), key.clone()),
        ],
    );
    server
        .nango_with(
            &[
                "config:create",
                "gh",
                "github",
                "cid",
                "sealed-secret",
                "repo",
            ],
            &[("NANGO_SECRET_KEY", LONG_KEY)],
        )
        .ok();

    let env = [
        ("NANGO_SECRET_KEY", LONG_KEY),
        ("NANGO_ENCRYPTION_KEY", key.as_str()),
    ];
    let run = server.doctor(&[], &env);
    let out = run.ok();
    assert!(
        run.check_is("server", "✓").contains(&server.host),
        "{}",
        run.context()
    );
    run.check_is("secret key", "✓");
    assert!(
        run.check_is("encryption key", "✓").contains(&key_id(&key)),
        "{}",
        run.context()
    );
    run.check_is("database", "✓");
    run.check_is("callback URL", "✓");
    assert!(
        out.trim_end().ends_with("All 5 checks passed."),
        "{}",
        run.context()
    );
    assert!(!out.contains(ESC), "{}", run.context());

    let report = server.doctor(&["--json"], &env).json();
    assert_eq!(report["ok"], true, "{report}");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 5, "{report}");
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{report}");
}

#[test]
fn doctor_fails_a_wrong_or_missing_secret_key_and_warns_about_an_open_server() {
    let server = Server::start_with(Some("right-key"));
    let run = server.doctor(&[], &[("NANGO_SECRET_KEY", "wrong-key")]);
    assert_eq!(run.code, Some(1), "{}", run.context());
    run.check_is("server", "✓");
    assert!(
        run.check_is("secret key", "✗").contains("NANGO_SECRET_KEY"),
        "{}",
        run.context()
    );
    assert!(run.stdout.contains("1 check failed"), "{}", run.context());
    assert!(!run.stdout.contains("wrong-key"), "{}", run.context());

    let run = server.doctor(&[], &[]);
    assert_eq!(run.code, Some(1), "{}", run.context());
    assert!(
        run.check_is("secret key", "✗")
            .contains("requires a secret key"),
        "{}",
        run.context()
    );

    // A server without a key answers anyone: a warning, which does not fail the run. So is a
    // missing encryption key.
    let open = Server::start();
    let run = open.doctor(&[], &[("NANGO_SECRET_KEY", "any-key")]);
    run.ok();
    assert!(
        run.check_is("secret key", "!").contains("no secret key"),
        "{}",
        run.context()
    );
    run.check_is("encryption key", "!");
    run.check_is("database", "✓");
    assert!(
        run.stdout.contains("No check failed; 2 warnings."),
        "{}",
        run.context()
    );
}

#[test]
fn doctor_fails_first_on_a_server_that_is_down_and_creates_no_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = format!("http://127.0.0.1:{}", unused_port());
    let args = ["doctor"];
    let run = Run::from_output(
        &args,
        nango_command()
            .args(args)
            .env("NANGO_HOSTPORT", &host)
            .env("NANGO_SERVER_URL", &host)
            .env("NANGO_DATABASE_URL", sqlite_url(&dir))
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.context());
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("✗ server")
            && first.contains(&host)
            && first.contains("cannot be reached"),
        "{}",
        run.context()
    );
    run.check_is("secret key", "-");
    assert!(
        run.check_is("database", "✗").contains("no database"),
        "{}",
        run.context()
    );
    run.check_is("callback URL", "✗");
    // Doctor looks; it does not create the file `nango serve` would.
    assert!(!dir.path().join("t.db").exists());
}

#[test]
fn doctor_names_the_key_that_sealed_data_it_was_not_given() {
    let (old_key, other_key) = (encryption_key(1), encryption_key(2));
    let server = Server::start_in(
        tempfile::tempdir().expect("tempdir"),
        &[("NANGO_ENCRYPTION_KEY".into(), old_key.clone())],
    );
    server.create_github_config("github");

    let run = server.doctor(&[], &[("NANGO_ENCRYPTION_KEY", &other_key)]);
    assert_eq!(run.code, Some(1), "{}", run.context());
    run.check_is("encryption key", "✓");
    let line = run.check_is("database", "✗");
    assert!(line.contains(&key_id(&old_key)), "{}", run.context());
    assert!(
        run.stdout.contains("NANGO_ENCRYPTION_KEY"),
        "{}",
        run.context()
    );

    // Without any key, the sealed data is just as unreadable.
    let run = server.doctor(&[], &[]);
    assert!(
        run.check_is("database", "✗").contains(&key_id(&old_key)),
        "{}",
        run.context()
    );
    // With it (as the second key), all is well.
    let both = format!("{other_key},{old_key}");
    let run = server.doctor(&[], &[("NANGO_ENCRYPTION_KEY", &both)]);
    run.ok();
    run.check_is("database", "✓");
}

#[test]
fn doctor_registers_no_key_in_a_sqlite_database() {
    // Plain data, no key: were doctor to register its key the way a starting server does, this
    // server could not start again without it.
    let server = Server::start();
    server.create_github_config("github");
    let run = server.doctor(&[], &[("NANGO_ENCRYPTION_KEY", &encryption_key(3))]);
    run.ok();
    run.check_is("database", "✓");
    let server = Server::start_in(server.stop(), &[]);
    server.nango(&["config:get", "github"]).ok();
}

#[test]
fn doctor_fails_a_malformed_encryption_key() {
    let server = Server::start();
    let short = encryption_key(4)[..24].to_string();
    for key in [
        "not base64 at all!",
        short.as_str(),
        &format!("{},???", encryption_key(5)),
    ] {
        let run = server.doctor(&[], &[("NANGO_ENCRYPTION_KEY", key)]);
        assert_eq!(run.code, Some(1), "{}", run.context());
        assert!(
            run.check_is("encryption key", "✗").contains("32 bytes"),
            "{}",
            run.context()
        );
        run.check_is("database", "-");
        // The rest is still checked.
        run.check_is("server", "✓");
        run.check_is("callback URL", "✓");
        assert!(!run.stdout.contains(key), "{}", run.context());
    }
}

#[test]
fn doctor_never_prints_the_database_password() {
    let password = "Sup3r-s3cret-db-pw";
    let port = unused_port().to_string();
    let url = format!("postgres://nango:{password}@127.0.0.1:{port}/nango");
    let bad_scheme = format!("mysql://nango:{password}@127.0.0.1/nango");
    for (args, env) in [
        (&["doctor"][..], vec![("NANGO_DATABASE_URL", url.as_str())]),
        (
            &["--json", "doctor"][..],
            vec![("NANGO_DATABASE_URL", url.as_str())],
        ),
        (
            &["doctor"][..],
            vec![
                ("NANGO_DB_HOST", "127.0.0.1"),
                ("NANGO_DB_PORT", port.as_str()),
                ("NANGO_DB_PASSWORD", password),
            ],
        ),
        (
            &["doctor"][..],
            vec![("NANGO_DATABASE_URL", bad_scheme.as_str())],
        ),
    ] {
        let run = Run::from_output(
            args,
            nango_command()
                .args(args)
                .envs(env.iter().copied())
                .env(
                    "NANGO_HOSTPORT",
                    format!("http://127.0.0.1:{}", unused_port()),
                )
                .output()
                .expect("run"),
        );
        assert_eq!(run.code, Some(1), "{}", run.context());
        assert!(
            !run.stdout.contains(password) && !run.stderr.contains(password),
            "password printed: {}",
            run.context()
        );
        assert!(run.stdout.contains("database"), "{}", run.context());
    }
    let run = Run::from_output(
        &["doctor"],
        nango_command()
            .arg("doctor")
            .env("NANGO_DATABASE_URL", &url)
            .output()
            .expect("run"),
    );
    let line = run.check_is("database", "✗");
    assert!(
        line.contains("postgres://nango:****@127.0.0.1") && line.contains("cannot connect"),
        "{}",
        run.context()
    );
}

#[test]
fn completions_are_printed_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let args = ["--color", "always", "completions", shell];
        let run = Run::from_output(&args, nango_command().args(args).output().expect("run"));
        let script = run.ok();
        for command in ["config:create", "token:get", "doctor"] {
            assert!(
                script.contains(command),
                "{command} missing: {}",
                run.context()
            );
        }
        assert!(!script.contains(ESC), "{}", run.context());
    }
    let args = ["completions", "bash"];
    let run = Run::from_output(&args, nango_command().args(args).output().expect("run"));
    assert!(run.ok().contains("complete -F _nango"), "{}", run.context());

    let args = ["completions", "tcsh"];
    let run = Run::from_output(&args, nango_command().args(args).output().expect("run"));
    assert!(matches!(run.code, Some(c) if c != 0), "{}", run.context());
}

/// One HTTP/1.1 exchange over a new connection: the status and the body.
fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let address = host.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A provider API that answers every request with `status` (and records nothing).
fn fake_api(status: u16) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buffer = [0u8; 8192];
            let _ = stream.read(&mut buffer);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
        }
    });
    format!("http://{address}")
}

#[test]
fn proxied_calls_leave_no_credential_in_the_logs_even_at_trace_level() {
    const API_KEY: &str = "sk-leakcheck-8c1f0a";
    const PASSWORD: &str = "pw-leakcheck-77d2";
    let refusing = fake_api(401);
    let failing = fake_api(503);
    let closed = unused_port();
    let yaml = format!(
        "key-refused:\n  auth_mode: API_KEY\n  base_api_url: \"{refusing}/v1\"\n  api_key:\n    query: api_key\n\
         key-failing:\n  auth_mode: API_KEY\n  base_api_url: \"{failing}/v1\"\n  api_key:\n    header: X-Api-Key\n\
         key-closed:\n  auth_mode: API_KEY\n  base_api_url: \"http://127.0.0.1:{closed}/v1\"\n  api_key:\n    query: api_key\n\
         basic-refused:\n  auth_mode: BASIC\n  base_api_url: \"{refusing}/v1\"\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("providers.yaml");
    std::fs::write(&file, yaml).unwrap();
    let server = Server::start_in(
        dir,
        &[
            ("NANGO_PROVIDERS_FILE".into(), file.display().to_string()),
            ("LOG_LEVEL".into(), "trace".into()),
        ],
    );
    let json = [("Content-Type", "application/json")];
    for provider in ["key-refused", "key-failing", "key-closed", "basic-refused"] {
        let config = format!(
            r#"{{"provider_config_key":"{provider}","provider":"{provider}","oauth_client_id":"","oauth_client_secret":"","oauth_scopes":""}}"#
        );
        let (status, body) = http(&server.host, "POST", "/config", &json, &config);
        assert_eq!(status, 200, "{body}");
        let credentials = if provider.starts_with("basic") {
            format!(r#""username":"ada","password":"{PASSWORD}""#)
        } else {
            format!(r#""api_key":"{API_KEY}""#)
        };
        let connection =
            format!(r#"{{"provider_config_key":"{provider}","connection_id":"u1",{credentials}}}"#);
        let (status, body) = http(&server.host, "POST", "/connection", &json, &connection);
        assert_eq!(status, 200, "{body}");
        let (status, body) = http(
            &server.host,
            "GET",
            "/proxy/items?page=2",
            &[
                ("Connection-Id", "u1"),
                ("Provider-Config-Key", provider),
                ("Retries", "1"),
            ],
            "",
        );
        let expected = match provider {
            "key-refused" | "basic-refused" => 401,
            "key-failing" => 503,
            _ => 502,
        };
        assert_eq!(status, expected, "{provider}: {body}");
        assert!(
            !body.contains(API_KEY) && !body.contains(PASSWORD),
            "{provider}: {body}"
        );
    }
    let log = server.log();
    assert!(
        log.contains("/proxy/items"),
        "the log has the proxied requests:\n{log}"
    );
    assert!(!log.contains(API_KEY), "the API key is in the log:\n{log}");
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
    assert!(
        !log.contains("page=2"),
        "a proxied query is in the log:\n{log}"
    );
}

/// A Nango 0.9 database on the test PostgreSQL server (`NANGO_TEST_POSTGRES_URL`), made with
/// 0.9's two tables as its migrations left them, holding `rows` (SQL run after the DDL). Dropped
/// with the returned guard.
struct NangoSource {
    admin_url: String,
    name: String,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl NangoSource {
    fn create(rows: &str) -> NangoSource {
        use sqlx::Connection;
        let admin_url = std::env::var("NANGO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let name = format!("nango_cli_src_{}", std::process::id());
        let url = runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} (NANGO_TEST_POSTGRES_URL) is needed: {e}")
            });
            for statement in [
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("CREATE DATABASE {name}"),
            ] {
                sqlx::raw_sql(&statement)
                    .execute(&mut admin)
                    .await
                    .expect("create the source database");
            }
            let mut url = url::Url::parse(&admin_url).expect("a URL");
            url.set_path(&format!("/{name}"));
            let mut source = sqlx::PgConnection::connect(url.as_str()).await.expect("connect");
            sqlx::raw_sql(&format!(
                "CREATE SCHEMA nango;
                 CREATE TABLE nango._nango_configs (id serial PRIMARY KEY,
                   created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                   unique_key varchar(255) NOT NULL, provider varchar(255) NOT NULL,
                   oauth_client_id varchar(255) NOT NULL, oauth_client_secret varchar(255) NOT NULL,
                   oauth_scopes text, account_id integer NOT NULL DEFAULT 0);
                 CREATE TABLE nango._nango_connections (id serial PRIMARY KEY,
                   created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                   provider_config_key varchar(255) NOT NULL, connection_id varchar(255) NOT NULL,
                   credentials json NOT NULL, connection_config jsonb, account_id integer NOT NULL DEFAULT 0,
                   metadata jsonb);
                 {rows}"
            ))
            .execute(&mut source)
            .await
            .expect("the 0.9 tables and rows");
            url.to_string()
        });
        NangoSource {
            admin_url,
            name,
            url,
            runtime,
        }
    }
}

impl Drop for NangoSource {
    fn drop(&mut self) {
        use sqlx::Connection;
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        self.runtime.block_on(async move {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}

#[test]
fn import_nango_reports_dry_runs_skips_and_exit_codes_and_the_server_serves_the_tokens() {
    let source = NangoSource::create(
        r#"INSERT INTO nango._nango_configs (unique_key, provider, oauth_client_id, oauth_client_secret, oauth_scopes)
             VALUES ('github-prod', 'github', 'gh-client', 'gh-client-secret-9', 'repo,user'),
                    ('legacy', 'no-such-provider', 'x', 'legacy-secret-9', NULL);
           INSERT INTO nango._nango_connections (provider_config_key, connection_id, credentials, connection_config, metadata)
             VALUES ('github-prod', 'user-1',
                     '{"type":"OAUTH2","access_token":"gho_imported_access_1","refresh_token":"ghr_imported_refresh_1","raw":{"access_token":"gho_imported_access_1","token_type":"bearer"}}',
                     NULL, '{}'),
                    ('legacy', 'user-2', '{"type":"OAUTH2","access_token":"legacy-access-9"}', '{}', NULL);"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let key = encryption_key(7);
    let import = |extra: &[&str]| {
        let mut args = vec!["import:nango", "--from", source.url.as_str()];
        args.extend_from_slice(extra);
        let mut command = nango_command();
        command
            .args(&args)
            .env("NANGO_DATABASE_URL", sqlite_url(&dir))
            .env("NANGO_ENCRYPTION_KEY", &key);
        Run::from_output(&args, command.output().expect("run nango"))
    };
    let no_secrets = |run: &Run| {
        for secret in [
            "gh-client-secret-9",
            "gho_imported_access_1",
            "ghr_imported_refresh_1",
            "legacy-secret-9",
            "legacy-access-9",
        ] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} printed: {}",
                run.context()
            );
        }
    };

    // A dry run names every item and what it would do; exit 3: some would be skipped.
    let run = import(&["--dry-run", "--json"]);
    assert_eq!(run.code, Some(3), "{}", run.context());
    no_secrets(&run);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["layout"], "database (Nango 0.9)");
    assert_eq!(report["configs"]["new"], 1, "{report}");
    assert_eq!(report["configs"]["skipped"], 1, "{report}");
    assert_eq!(report["connections"]["new"], 1, "{report}");
    assert_eq!(report["connections"]["skipped"], 1, "{report}");
    let items: Vec<(String, String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["provider_config_key"].as_str().unwrap().to_string(),
                i["connection_id"].as_str().unwrap_or("").to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("github-prod", "", "new"),
        ("legacy", "", "skipped"),
        ("github-prod", "user-1", "new"),
        ("legacy", "user-2", "skipped"),
    ] {
        assert!(
            items.contains(&(expected.0.into(), expected.1.into(), expected.2.into())),
            "{expected:?} in {items:?}"
        );
    }
    // Nothing was written: the real import below still finds everything new.

    // The import: a summary for a person, the skipped items with their reasons.
    let run = import(&[]);
    assert_eq!(run.code, Some(3), "{}", run.context());
    no_secrets(&run);
    assert!(
        run.stdout.contains("integrations: 1 new"),
        "{}",
        run.context()
    );
    assert!(
        run.stdout.contains("connections:  1 new"),
        "{}",
        run.context()
    );
    assert!(
        run.stdout
            .contains("unknown provider template 'no-such-provider'"),
        "{}",
        run.context()
    );

    // Again: nothing new, and it says so.
    let run = import(&[]);
    assert_eq!(run.code, Some(3), "{}", run.context());
    assert!(
        run.stdout.contains("Nothing new to import"),
        "{}",
        run.context()
    );
    let run = import(&["--json"]);
    assert_eq!(run.code, Some(3), "{}", run.context());
    let again: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(again["connections"]["new"], 0, "{again}");
    assert_eq!(again["connections"]["unchanged"], 1, "{again}");
    let skipped = again["skipped"].as_array().expect("the skipped items");
    assert_eq!(skipped.len(), 2, "{again}");
    assert!(
        skipped
            .iter()
            .all(|i| i["reason"].as_str().is_some_and(|r| !r.is_empty())),
        "{again}"
    );

    // A source that cannot be read: exit 1, nothing written.
    let args = [
        "import:nango",
        "--from",
        "postgres://postgres@127.0.0.1:1/nango",
    ];
    let mut command = nango_command();
    command
        .args(args)
        .env("NANGO_DATABASE_URL", sqlite_url(&dir));
    let run = Run::from_output(&args, command.output().expect("run nango"));
    assert_eq!(run.code, Some(1), "{}", run.context());
    assert!(
        run.stderr.contains("Nothing was written"),
        "{}",
        run.context()
    );

    // The server on that database serves the imported token, sealed with its key.
    let server = Server::start_in(dir, &[("NANGO_ENCRYPTION_KEY".into(), key.clone())]);
    assert_eq!(
        server
            .nango(&["token:get", "github-prod", "user-1"])
            .ok()
            .trim(),
        "gho_imported_access_1"
    );
}
