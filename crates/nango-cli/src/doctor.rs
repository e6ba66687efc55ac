//! `nango doctor`: checks a setup from end to end (the server, the secret key, the encryption
//! key, the database, the callback URL), one line per check, and says what to do about each
//! one that fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anstyle::Style;
use nango_server::secret::Secret;
use nango_server::store::{self, cipher::CipherError, Cipher, StoreError};
use nango_server::{ServeArgs, Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::migrate::MigrateError;
use url::Url;

use crate::cli::DoctorArgs;
use crate::output::{self, paint};

/// How long each network check (an HTTP request, opening the database) may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the server answers to a callback without a `state` (Nango 0.9 used the same words), so
/// a page with it comes from a Nango server.
const INVALID_STATE: &str = "Invalid state parameter passed in the callback";

/// SQLite's primary result codes (the extended ones carry them in their low byte).
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Works, but not as it should in production.
    Warn,
    Fail,
    /// Not looked at: something it depends on failed.
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }

    fn style(self) -> Style {
        match self {
            Status::Pass => output::SUCCESS,
            Status::Warn => output::WARNING,
            Status::Fail => output::ERROR,
            Status::Skip => output::MUTED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found, in one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Check {
    fn pass(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            message: message.into(),
            hint: None,
        }
    }

    fn warn(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(name: &'static str, message: impl Into<String>, hint: Option<&str>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }

    fn skip(name: &'static str, why: &str) -> Check {
        Check {
            name,
            status: Status::Skip,
            message: format!("not checked: {why}"),
            hint: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed (warnings and skipped checks do not count: a check is only skipped when
    /// another one failed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// One line per check, the hint indented under its message, then a summary.
    pub fn text(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut lines = Vec::new();
        for check in &self.checks {
            let padding = " ".repeat(width - check.name.chars().count());
            lines.push(format!(
                "{} {}{padding}  {}",
                paint(check.status.style(), check.status.mark()),
                paint(output::HEADER, check.name),
                check.message
            ));
            if let Some(hint) = &check.hint {
                lines.push(format!("{}{hint}", " ".repeat(width + 4)));
            }
        }
        let (failed, warned, skipped) = (
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::Skip),
        );
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let summary = if failed > 0 {
            let mut parts = vec![plural(failed, "check failed", "checks failed")];
            if warned > 0 {
                parts.push(plural(warned, "warning", "warnings"));
            }
            if skipped > 0 {
                parts.push(format!("{skipped} not checked"));
            }
            paint(output::ERROR, &format!("{}.", parts.join(", ")))
        } else if warned > 0 {
            paint(
                output::WARNING,
                &format!(
                    "No check failed; {}.",
                    plural(warned, "warning", "warnings")
                ),
            )
        } else {
            paint(
                output::SUCCESS,
                &format!("All {} checks passed.", self.checks.len()),
            )
        };
        lines.push(String::new());
        lines.push(summary);
        lines.join("\n")
    }

    /// `--json`: `{"ok": bool, "checks": [{"name", "status", "message", "hint"}]}`.
    pub fn json(&self) -> Value {
        json!({
            "ok": self.passed(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "status": c.status.name(),
                "message": c.message,
                "hint": c.hint,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs every check; the independent ones at the same time, so the whole takes a few seconds
/// at worst.
pub async fn run(args: DoctorArgs) -> Report {
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            return Report {
                checks: vec![Check::fail(
                    "HTTP client",
                    format!("cannot make HTTP requests: {e}"),
                    None,
                )],
            }
        }
    };
    let host = args
        .host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(nango_client::DEFAULT_HOST)
        .trim_end_matches('/')
        .to_string();
    let secret_key = args
        .server
        .secret_key
        .clone()
        .filter(|k| !k.trim().is_empty());
    let (encryption, cipher) = check_encryption_key(&args.server.encryption_key);
    // The settings as `nango serve` resolves them, but for the encryption keys: they have their
    // own check, and a bad one must not hide the database and the callback URL.
    let settings = Settings::from_args(&ServeArgs {
        encryption_key: Vec::new(),
        ..args.server.clone()
    });
    let secrets = database_secrets(
        settings
            .as_ref()
            .map(|s| s.database_url.expose().as_str())
            .ok()
            .or(args.server.database_url.as_deref()),
    );
    let settings_check = settings.as_ref().err().map(|e| {
        Check::fail(
            "settings",
            scrub(&e.to_string(), &secrets),
            Some("fix the variable (or flag) it names; `nango serve --help` lists them"),
        )
    });
    let settings = settings.as_ref().ok();

    let server_and_key = async {
        let server = check_server(&http, &host).await;
        let key = if server.status == Status::Fail {
            Check::skip("secret key", "the server does not answer")
        } else {
            check_secret_key(&http, &host, secret_key.as_deref()).await
        };
        [server, key]
    };
    let (server_and_key, database, callback) = tokio::join!(
        server_and_key,
        check_database(settings, cipher, &secrets),
        check_callback(&http, settings),
    );
    let mut checks = Vec::from(server_and_key);
    checks.push(encryption);
    checks.extend(settings_check);
    checks.push(database);
    checks.push(callback);
    Report { checks }
}

/// `base` + `/` + `segments`, keeping a path prefix (a server behind a reverse proxy).
fn endpoint(base: &str, segments: &[&str]) -> Result<Url, String> {
    let mut url = Url::parse(base).map_err(|e| format!("{base:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{base:?} is not an http(s) URL"));
    }
    url.path_segments_mut()
        .map_err(|()| format!("{base:?} cannot have a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Why a request got no answer, in a few words: the innermost cause says the most
/// ("Connection refused", "failed to lookup address").
fn no_answer(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("did not answer within {} s", TIMEOUT.as_secs());
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    format!("cannot be reached: {innermost}")
}

async fn check_server(http: &reqwest::Client, host: &str) -> Check {
    const NAME: &str = "server";
    const WHAT_TO_DO: &str =
        "start it with `nango serve`, or set NANGO_HOSTPORT (or --host) to its URL";
    let (health, root) = match (endpoint(host, &["health"]), endpoint(host, &[])) {
        (Ok(health), Ok(root)) => (health, root),
        (Err(e), _) | (_, Err(e)) => return Check::fail(
            NAME,
            format!("NANGO_HOSTPORT: {e}"),
            Some("set NANGO_HOSTPORT (or --host) to the server's URL, e.g. http://localhost:3003"),
        ),
    };
    let get = |url: Url| async move {
        let response = http.get(url).send().await.map_err(|e| no_answer(&e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok::<_, String>((status, body["result"] == "ok"))
    };
    let started = Instant::now();
    let mut answer = get(health).await;
    if matches!(answer, Ok((StatusCode::NOT_FOUND, _))) {
        // Nango before 0.9.2 answered its health check at `/` only.
        answer = get(root).await;
    }
    let took = started.elapsed();
    match answer {
        Ok((StatusCode::OK, true)) => {
            Check::pass(NAME, format!("{host} answers ({} ms)", took.as_millis()))
        }
        Ok((status, _)) => Check::fail(
            NAME,
            format!(
                "{host} answers GET /health with {status}, not with Nango's {{\"result\":\"ok\"}}"
            ),
            Some("set NANGO_HOSTPORT (or --host) to the URL of the Nango server"),
        ),
        Err(reason) => Check::fail(NAME, format!("{host} {reason}"), Some(WHAT_TO_DO)),
    }
}

/// A server without a secret key lets every request through, so a 200 to a request with our
/// key proves nothing: only a 401 to a request *without* one shows that the server checks keys.
/// Hence two requests, without then with the key. They are `HEAD /config`: the status is all we
/// need, and the server then does not send its configs (client secrets included) over the wire.
async fn check_secret_key(http: &reqwest::Client, host: &str, key: Option<&str>) -> Check {
    const NAME: &str = "secret key";
    const OPEN: &str =
        "the server has no secret key: its /config and /connection API is open to anyone who can reach it";
    const SET_IT: &str =
        "start `nango serve` with NANGO_SECRET_KEY, and give the CLI the same NANGO_SECRET_KEY";
    let url = match endpoint(host, &["config"]) {
        Ok(url) => url,
        Err(e) => return Check::fail(NAME, e, None),
    };
    let anonymous = match http.head(url.clone()).send().await {
        Ok(response) => response.status(),
        Err(e) => return Check::fail(NAME, format!("HEAD /config {}", no_answer(&e)), None),
    };
    match (anonymous, key) {
        (StatusCode::OK, None) => Check::warn(NAME, OPEN, SET_IT),
        (StatusCode::OK, Some(_)) => Check::warn(
            NAME,
            format!("{OPEN} (the CLI's NANGO_SECRET_KEY is not needed)"),
            SET_IT,
        ),
        (StatusCode::UNAUTHORIZED, None) => Check::fail(
            NAME,
            "the server requires a secret key, and NANGO_SECRET_KEY is not set",
            Some("set NANGO_SECRET_KEY (or --secret-key) to the server's secret key"),
        ),
        (StatusCode::UNAUTHORIZED, Some(key)) => {
            // As the CLI sends it: the HTTP Basic username.
            match http.head(url).basic_auth(key, None::<&str>).send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    if key.chars().count() < nango_server::config::SHORT_SECRET_KEY {
                        Check::warn(
                            NAME,
                            format!(
                                "NANGO_SECRET_KEY is accepted by the server, but it is shorter than {} characters and can be guessed",
                                nango_server::config::SHORT_SECRET_KEY
                            ),
                            "restart `nango serve` with a long random NANGO_SECRET_KEY (e.g. `openssl rand -hex 32`)",
                        )
                    } else {
                        Check::pass(NAME, "NANGO_SECRET_KEY is accepted by the server")
                    }
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => Check::fail(
                    NAME,
                    "NANGO_SECRET_KEY is refused by the server (401): it is not the server's secret key",
                    Some("set NANGO_SECRET_KEY (or --secret-key) to the key the server was started with"),
                ),
                Ok(response) => Check::fail(
                    NAME,
                    format!("HEAD /config with the key answered {}", response.status()),
                    None,
                ),
                Err(e) => Check::fail(NAME, format!("HEAD /config {}", no_answer(&e)), None),
            }
        }
        (StatusCode::TOO_MANY_REQUESTS, _) => Check::fail(
            NAME,
            "the server refuses this address for now: too many wrong secret keys came from it in the last minute",
            Some("wait a minute, then try again with the right NANGO_SECRET_KEY"),
        ),
        (status, _) => Check::fail(
            NAME,
            format!("HEAD /config answered {status}, where a Nango server answers 200 or 401"),
            Some("set NANGO_HOSTPORT (or --host) to the URL of the Nango server"),
        ),
    }
}

/// The keys of NANGO_ENCRYPTION_KEY, and the cipher the database check opens the data with
/// (`None` when the keys are unusable).
fn check_encryption_key(keys: &[String]) -> (Check, Option<Cipher>) {
    const NAME: &str = "encryption key";
    let keys: Vec<Secret<String>> = keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(|k| Secret::new(k.to_string()))
        .collect();
    if keys.is_empty() {
        return (
            Check::warn(
                NAME,
                "NANGO_ENCRYPTION_KEY is not set: client secrets and tokens are stored unencrypted",
                "generate a key with `openssl rand -base64 32`, give it to the server as NANGO_ENCRYPTION_KEY, then run `nango db:rotate-key` to seal what is stored",
            ),
            Some(Cipher::disabled()),
        );
    }
    match Cipher::from_base64_keys(&keys) {
        Ok(cipher) => {
            let ids = cipher.key_ids();
            let message = match ids.as_slice() {
                [primary] => format!("valid; new secrets are sealed with key {primary}"),
                [primary, older @ ..] => format!(
                    "{} valid keys; new secrets are sealed with key {primary}, the others ({}) only open older ones",
                    ids.len(),
                    older.join(", ")
                ),
                [] => "valid".to_string(),
            };
            (Check::pass(NAME, message), Some(cipher))
        }
        Err(e) => (
            Check::fail(
                NAME,
                format!("NANGO_ENCRYPTION_KEY: {e}"),
                Some("each key is the base64 of 32 random bytes (`openssl rand -base64 32`); separate several with commas"),
            ),
            None,
        ),
    }
}

/// Why opening the database failed: opening it (and the schema), or checking the keys.
enum DatabaseFailure {
    Open(StoreError),
    Keys(StoreError),
}

/// Opens the database and checks its schema and the encryption keys with the server's own
/// code, the check `nango serve` makes at start.
///
/// A SQLite file is opened read-only, so that the doctor changes nothing: it does not create a
/// missing file, apply a pending migration (sqlx then fails on the first write: the schema is
/// behind) or register its first key as the one new data is sealed with (the last step of the
/// key check, a write refused once the keys have passed). PostgreSQL cannot run the migration
/// step read-only, so it is opened as the server opens it; doctor runs with the server's
/// settings, where that changes nothing.
async fn check_database(
    settings: Option<&Settings>,
    cipher: Option<Cipher>,
    secrets: &[String],
) -> Check {
    const NAME: &str = "database";
    const POINT_IT: &str =
        "check that the database is up and that NANGO_DATABASE_URL (or NANGO_DB_*) points to it";
    let Some(settings) = settings else {
        return Check::skip(NAME, "the settings are invalid");
    };
    let url = settings.database_url.expose();
    let shown = redact_url(url);
    let Some(cipher) = cipher else {
        return Check::skip(
            NAME,
            "the data cannot be opened without a valid NANGO_ENCRYPTION_KEY",
        );
    };
    let sealing = cipher.enabled();
    let sqlite = url.starts_with("sqlite:");
    if sqlite && (url.contains(":memory:") || url.contains("mode=memory")) {
        return Check::warn(
            NAME,
            format!("{shown} is an in-memory database"),
            "it lives and dies with the server process: use a file (sqlite://nango.db) or PostgreSQL",
        );
    }
    let open_url = if sqlite {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=ro")
    } else {
        url.to_string()
    };
    if !sqlite {
        if let Err(reason) = reach_postgres(url).await {
            return Check::fail(NAME, format!("{shown}: {reason}"), Some(POINT_IT));
        }
    }
    let checked = tokio::time::timeout(TIMEOUT, async {
        let store = store::connect(&open_url, Arc::new(cipher), 0)
            .await
            .map_err(DatabaseFailure::Open)?;
        store
            .verify_encryption_keys()
            .await
            .map_err(DatabaseFailure::Keys)
    })
    .await;
    let fine = || {
        Check::pass(
            NAME,
            format!(
                "{shown}: schema up to date, {}",
                if sealing {
                    "every key that sealed data here is in NANGO_ENCRYPTION_KEY"
                } else {
                    "no data sealed with an encryption key"
                }
            ),
        )
    };
    match checked {
        Err(_) => Check::fail(
            NAME,
            format!("{shown} did not answer within {} s", TIMEOUT.as_secs()),
            Some(POINT_IT),
        ),
        Ok(Ok(())) => fine(),
        Ok(Err(DatabaseFailure::Keys(e))) if sqlite && sqlite_code(&e) == Some(SQLITE_READONLY) => {
            fine()
        }
        Ok(Err(DatabaseFailure::Keys(StoreError::Cipher(e)))) => {
            let hint = match e {
                CipherError::UnknownKey { .. } => Some(
                    "give NANGO_ENCRYPTION_KEY the keys the server has (the primary one first); after a key change, `nango db:rotate-key` with the new and the old key re-seals the data",
                ),
                _ => None,
            };
            Check::fail(NAME, format!("{shown}: {e}"), hint)
        }
        Ok(Err(DatabaseFailure::Keys(e))) => {
            Check::fail(NAME, format!("{shown}: {}", scrub(&e.to_string(), secrets)), None)
        }
        Ok(Err(DatabaseFailure::Open(e))) => match (&e, sqlite_code(&e)) {
            (_, Some(SQLITE_CANTOPEN)) if sqlite => Check::fail(
                NAME,
                format!("{shown}: there is no database there"),
                Some("`nango serve` creates it at its first start; give doctor the server's NANGO_DATABASE_URL (a relative SQLite path is relative to the current directory)"),
            ),
            (_, Some(SQLITE_READONLY)) if sqlite => Check::warn(
                NAME,
                format!("{shown}: the schema is older than this nango's (migrations pending), so the encryption keys were not checked"),
                "`nango serve` of this version applies the migrations at start; run doctor again after",
            ),
            (StoreError::Migrate(MigrateError::VersionMissing(version)), _) => Check::fail(
                NAME,
                format!("{shown}: the schema was migrated by a newer nango (migration {version} is unknown to this one)"),
                Some("run the nango version of the server"),
            ),
            _ => Check::fail(
                NAME,
                format!("{shown}: cannot open it: {}", scrub(&e.to_string(), secrets)),
                Some(POINT_IT),
            ),
        },
    }
}

/// sqlx's pool retries a refused connection until its own timeout, and then does not say why:
/// a plain TCP connection first tells "refused" or "unknown host" at once. A URL naming no host
/// (a Unix socket, in a `host` parameter) is left to sqlx.
async fn reach_postgres(url: &str) -> Result<(), String> {
    let Ok(parsed) = Url::parse(url) else {
        return Ok(());
    };
    let Some(host) = parsed.host_str() else {
        return Ok(());
    };
    if parsed.query_pairs().any(|(name, _)| name == "host") {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().unwrap_or(5432);
    match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "{host}:{port} did not answer within {} s",
            TIMEOUT.as_secs()
        )),
    }
}

/// The primary SQLite result code of a database error, wherever sqlx wrapped it.
fn sqlite_code(error: &StoreError) -> Option<i32> {
    let error = match error {
        StoreError::Database(e)
        | StoreError::Migrate(MigrateError::Execute(e))
        | StoreError::Migrate(MigrateError::ExecuteMigration(e, _)) => e,
        _ => return None,
    };
    match error {
        sqlx::Error::Database(e) => e
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .map(|code| code & 0xff),
        _ => None,
    }
}

/// The database URL without its password (in the user info or a `password` parameter).
fn redact_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_string();
    }
    let Ok(mut parsed) = Url::parse(url) else {
        return "(a database URL that does not parse)".to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let value = if name.contains("password") {
                "****".to_string()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// The database passwords a message might repeat: from the URL (as written and decoded) and
/// NANGO_DB_PASSWORD.
fn database_secrets(database_url: Option<&str>) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(url) = database_url.and_then(|u| Url::parse(u).ok()) {
        if let Some(password) = url.password() {
            secrets.push(password.to_string());
            // `p%40ss` is `p@ss` in a driver's message.
            secrets.push(
                percent_encoding::percent_decode_str(password)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
        for (name, value) in url.query_pairs() {
            if name.contains("password") {
                secrets.push(value.into_owned());
            }
        }
    }
    if let Ok(password) = std::env::var("NANGO_DB_PASSWORD") {
        secrets.push(password);
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so that a password containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// `text` with every secret replaced by `****`.
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "****")
    })
}

/// GETs the callback URL without parameters: a Nango server answers its "invalid state" page.
async fn check_callback(http: &reqwest::Client, settings: Option<&Settings>) -> Check {
    const NAME: &str = "callback URL";
    const ROUTE_IT: &str = "providers send the user's browser there after consent: it must reach the Nango server (set NANGO_CALLBACK_URL, or NANGO_SERVER_URL, to the server's public URL)";
    let Some(settings) = settings else {
        return Check::skip(NAME, "the settings are invalid");
    };
    let url = settings.callback_url.as_str();
    let Ok(parsed) = Url::parse(url) else {
        return Check::fail(NAME, format!("{url:?} is not a URL"), Some(ROUTE_IT));
    };
    let started = Instant::now();
    let response = match http.get(parsed.clone()).send().await {
        Ok(response) => response,
        Err(e) => return Check::fail(NAME, format!("{url} {}", no_answer(&e)), Some(ROUTE_IT)),
    };
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("elsewhere")
            .to_string();
        return Check::fail(
            NAME,
            format!("{url} redirects ({status}) to {location}"),
            Some("providers must be given the URL that reaches the server without a redirect: set NANGO_CALLBACK_URL (or NANGO_SERVER_URL) to it"),
        );
    }
    let body = response.text().await.unwrap_or_default();
    let took = started.elapsed();
    if !body.contains(INVALID_STATE) {
        return Check::fail(
            NAME,
            format!("{url} answers {status}, but not as a Nango server's callback"),
            Some(ROUTE_IT),
        );
    }
    match parsed.host_str() {
        Some(host) if parsed.scheme() == "http" && !is_local(&parsed) => Check::warn(
            NAME,
            format!("{url} is served by Nango, but over http:// on {host}"),
            "providers refuse http:// redirect URIs except on localhost, and the authorization codes would travel in clear: serve it over https://",
        ),
        _ => Check::pass(
            NAME,
            format!("{url} is served by Nango ({} ms)", took.as_millis()),
        ),
    }
}

/// localhost, `*.localhost` or a loopback address: where providers accept http:// redirects.
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgres://nango:s3cret@db:5432/nango?sslmode=disable"),
            "postgres://nango:****@db:5432/nango?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://db/nango?user=u&password=s3cret"),
            "postgresql://db/nango?user=u&password=****"
        );
        assert_eq!(redact_url("sqlite://nango.db"), "sqlite://nango.db");
        assert!(!redact_url("postgres://u:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn messages_are_scrubbed_of_the_password_as_written_and_decoded() {
        let secrets = database_secrets(Some("postgres://nango:p%40ss-w0rd@db/nango"));
        assert_eq!(
            scrub("auth failed for p@ss-w0rd and p%40ss-w0rd", &secrets),
            "auth failed for **** and ****"
        );
    }

    #[test]
    fn http_is_fine_on_localhost_only() -> Result<(), url::ParseError> {
        for local in [
            "http://localhost:3003/oauth/callback",
            "http://127.0.0.1/x",
            "http://[::1]:80/",
            "http://app.localhost/",
        ] {
            assert!(is_local(&Url::parse(local)?), "{local}");
        }
        for public in [
            "http://example.com/",
            "http://10.0.0.1/",
            "http://localhost.example/",
        ] {
            assert!(!is_local(&Url::parse(public)?), "{public}");
        }
        Ok(())
    }

    #[test]
    fn endpoints_keep_a_path_prefix() -> Result<(), String> {
        assert_eq!(
            endpoint("https://x.example/nango", &["health"])?.as_str(),
            "https://x.example/nango/health"
        );
        assert_eq!(
            endpoint("http://localhost:3003", &["config"])?.as_str(),
            "http://localhost:3003/config"
        );
        assert!(endpoint("localhost:3003", &[]).is_err());
        Ok(())
    }

    #[test]
    fn the_report_fails_on_a_failure_only_and_says_so() {
        let mut report = Report {
            checks: vec![
                Check::pass("server", "up"),
                Check::warn("encryption key", "not set", "set it"),
            ],
        };
        assert!(report.passed());
        let text = anstream::adapter::strip_str(&report.text()).to_string();
        assert!(text.contains("✓ server          up"), "{text}");
        assert!(
            text.contains("! encryption key  not set\n                  set it"),
            "{text}"
        );
        assert!(text.ends_with("No check failed; 1 warning."), "{text}");

        report.checks.push(Check::fail("database", "gone", None));
        report
            .checks
            .push(Check::skip("callback URL", "no settings"));
        assert!(!report.passed());
        let text = anstream::adapter::strip_str(&report.text()).to_string();
        assert!(
            text.ends_with("1 check failed, 1 warning, 1 not checked."),
            "{text}"
        );
        let json = report.json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][2]["status"], "fail");
        assert_eq!(json["checks"][1]["hint"], "set it");
    }
}
