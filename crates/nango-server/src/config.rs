//! Typed server settings: defaults, then `NANGO_*` / Nango-era environment variables, then flags.
//!
//! `ServeArgs` is what the command line and the environment say; `Settings` is the checked,
//! resolved result the server runs with. Secrets are wrapped in `Secret` so `Debug` never prints them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::secret::Secret;

/// Flags of `nango serve`; every flag can also be given by its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Port to listen on [env: SERVER_PORT, then PORT] [default: 3003]
    #[arg(long)]
    pub port: Option<u16>,

    /// Address to bind (default 127.0.0.1 without a secret key, 0.0.0.0 with one)
    #[arg(long, env = "NANGO_BIND")]
    pub bind: Option<IpAddr>,

    /// Public base URL of this server [default: http://localhost:<port>]
    #[arg(long, env = "NANGO_SERVER_URL")]
    pub server_url: Option<String>,

    /// OAuth callback URL registered with providers [default: <server url>/oauth/callback]
    #[arg(long, env = "NANGO_CALLBACK_URL")]
    pub callback_url: Option<String>,

    /// Database URL: sqlite://path or postgres://... [default: sqlite://nango.db, or NANGO_DB_*]
    #[arg(long, env = "NANGO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret key required (HTTP Basic username or Bearer token) on /config and /connection
    #[arg(long, env = "NANGO_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// YAML file of provider templates merged over the built-in catalog
    #[arg(long, env = "NANGO_PROVIDERS_FILE")]
    pub providers_file: Option<PathBuf>,

    /// Origins the frontend SDK's redirect mode may send users back to (comma separated)
    #[arg(long, env = "NANGO_REDIRECT_ALLOWLIST", value_delimiter = ',')]
    pub redirect_allowlist: Vec<String>,

    /// Requests per minute per client address on the public routes (/oauth/..., /api-auth/...);
    /// 0 turns the limit off
    #[arg(long, env = "NANGO_PUBLIC_RATE_LIMIT", default_value_t = 300)]
    pub public_rate_limit: u32,

    /// Refuse OAuth flows and entered credentials without a connect session token (minted by
    /// the app's backend with POST /connect/sessions)
    #[arg(long, env = "NANGO_REQUIRE_CONNECT_SESSION", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_connect_session: bool,

    /// URLs that receive connection events (created, refreshed after a failure, refresh failed,
    /// deleted) as signed JSON POSTs, comma separated
    #[arg(long, env = "NANGO_WEBHOOK_URLS", value_delimiter = ',')]
    pub webhook_urls: Vec<String>,

    /// Key of the HMAC-SHA256 signature of webhooks (required with webhook URLs; not the
    /// secret key, which receivers must not need to hold)
    #[arg(long, env = "NANGO_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Shape of webhook deliveries: this server's connection events, or current Nango's auth
    /// webhooks (`{from: 'nango', type: 'auth', operation, ...}`, signed in X-Nango-Hmac-Sha256)
    #[arg(long, env = "NANGO_WEBHOOK_FORMAT", value_enum, default_value_t = crate::webhooks::WebhookFormat::Events)]
    pub webhook_format: crate::webhooks::WebhookFormat,

    /// How long delivered and given-up webhook deliveries stay in the outbox (and the delivery
    /// log), e.g. 7d, 36h, 90m [default: 7d]
    #[arg(long, env = "NANGO_WEBHOOK_RETENTION", value_parser = parse_retention)]
    pub webhook_retention: Option<Duration>,

    /// Encryption keys for secrets at rest: base64 of 32 random bytes each (`openssl rand
    /// -base64 32`), comma separated; the first seals new data, the others only open old data
    #[arg(
        long,
        env = "NANGO_ENCRYPTION_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub encryption_key: Vec<String>,

    /// Seconds before expiry that tokens are refreshed (a provider's template may set its own;
    /// a token is also refreshed once less than half its lifetime remains, if that comes later)
    /// [default: 900]
    #[arg(long, env = "NANGO_REFRESH_MARGIN", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub refresh_margin: Option<u64>,

    /// Refreshes in flight at once per provider (token endpoint): a storm of expiring tokens
    /// queues here instead of hammering the provider
    #[arg(long, env = "NANGO_REFRESH_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub refresh_concurrency: u32,

    /// Seconds between the background passes that refresh tokens before they expire and idle
    /// connections once a day [default: 60]; 0 turns them off (requests still refresh what they
    /// need), e.g. while another broker still serves the same connections during a move
    #[arg(long, env = "NANGO_PROACTIVE_REFRESH_INTERVAL", value_name = "SECONDS")]
    pub proactive_refresh_interval: Option<u64>,

    /// Connections kept decrypted in memory for `GET /connection` (0: read the database every
    /// time); about 2 kB each
    #[arg(long, env = "NANGO_CONNECTION_CACHE_SIZE", default_value_t = 10_000)]
    pub connection_cache_size: usize,

    /// Retries of a proxied GET, HEAD, OPTIONS, PUT or DELETE after a 429 or 5xx when the call
    /// sends no `Retries` header (POST and PATCH are never retried unless it asks)
    #[arg(long, env = "NANGO_PROXY_RETRIES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub proxy_retries: u32,

    /// Longest wait, in seconds, before a proxied call is retried; a provider asking for more
    /// (Retry-After, rate-limit reset) gets its answer passed back at once instead
    #[arg(long, env = "NANGO_PROXY_MAX_RETRY_WAIT", default_value_t = 30)]
    pub proxy_max_retry_wait: u64,

    /// Log lines as text for a person, or as one JSON object per line (with the request id)
    #[arg(long, env = "NANGO_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,

    /// Log filter (error, warn, info, debug, trace or a tracing directive)
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    // --- exposure and connection limits (the server's edge) ---
    /// Start without a secret key on an address other machines can reach (dangerous: anyone
    /// who reaches the port reads every client secret and token)
    #[arg(long, env = "NANGO_ALLOW_OPEN_API", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_open_api: bool,

    /// Wrong secret keys per minute from one client address (REST and dashboard login) before
    /// it gets 429 for the rest of the minute; 0 turns the limit off
    #[arg(long, env = "NANGO_AUTH_FAILURE_LIMIT", default_value_t = 20)]
    pub auth_failure_limit: u32,

    /// Most connections open at once; further clients wait until one closes
    #[arg(long, env = "NANGO_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

/// Errors in the configuration: the server refuses to start and says which setting is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// Resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Public base URL, without a trailing slash.
    pub server_url: String,
    /// `redirect_uri` sent to providers.
    pub callback_url: String,
    pub database_url: Secret<String>,
    pub secret_key: Option<Secret<String>>,
    pub providers_file: Option<PathBuf>,
    /// How long an OAuth flow may take between `/oauth/connect` and `/oauth/callback`.
    pub oauth_state_ttl: Duration,
    /// Tokens expiring sooner than this are refreshed before being handed out (or sooner than
    /// half their lifetime, if that is shorter; see `credentials::policy`).
    pub refresh_margin: Duration,
    /// Timeout of every call to a provider's token endpoint.
    pub provider_timeout: Duration,
    /// Origins (`scheme://host[:port]`) allowed as `return_to` in redirect mode.
    pub redirect_allowlist: Vec<String>,
    /// AES-256-GCM keys (base64) for secrets at rest; the first seals. Empty: no encryption.
    pub encryption_keys: Vec<Secret<String>>,
    /// First wait before an automatic refresh is tried again after a temporary failure (12x
    /// that after a refusal); doubles with each failure up to `refresh_retry_max`.
    pub refresh_retry_base: Duration,
    pub refresh_retry_max: Duration,
    /// Requests per minute per client address on the public routes (0: no limit).
    pub public_rate_limit_per_minute: u32,
    /// Longest a request may take before the server answers 504 (a refresh waits for the
    /// provider and, at worst, for another replica's lease).
    pub request_timeout: Duration,
    /// Receivers of connection events.
    pub webhook_urls: Vec<String>,
    /// HMAC key of webhook signatures.
    pub webhook_secret: Option<Secret<String>>,
    /// This server's event model, or current Nango's auth webhooks.
    pub webhook_format: crate::webhooks::WebhookFormat,
    /// Delivered and given-up deliveries older than this are pruned from the outbox.
    pub webhook_retention: Duration,
    /// First wait before a failed delivery is retried; doubles each time, at most an hour.
    pub webhook_retry_base: Duration,
    /// Attempts before a delivery is given up (about 3 days with the defaults).
    pub webhook_max_attempts: u32,
    pub webhook_timeout: Duration,
    /// Flows and entered credentials need a connect session token.
    pub require_connect_session: bool,
    /// How long a connect session token is valid.
    pub connect_session_ttl: Duration,
    /// How often the proactive refresher looks for due connections (zero: never).
    pub proactive_refresh_interval: Duration,
    /// Connections whose credentials are older than this are refreshed even if not expiring,
    /// so refresh tokens that die unused stay alive.
    pub idle_refresh_age: Duration,
    /// Refreshes in flight at once per provider.
    pub refresh_concurrency: usize,
    /// Connections the hot path keeps decrypted in memory (0: none).
    pub connection_cache_size: usize,
    /// Retries of an idempotent proxied call after a 429 or 5xx, unless it says otherwise.
    pub proxy_retries: u32,
    /// Longest wait before a proxied call is retried.
    pub proxy_max_retry_wait: Duration,
    pub log_format: crate::logging::LogFormat,

    // --- exposure and connection limits (the server's edge) ---
    /// Serve without a secret key on a non-loopback address (`NANGO_ALLOW_OPEN_API`).
    pub allow_open_api: bool,
    /// Connections open at once; the next client waits in the listen backlog.
    pub max_connections: usize,
    /// A connection that has not sent a whole request head within this is closed (slowloris);
    /// this also bounds how long an HTTP/1 keep-alive connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// A connection on which nothing was read or written for this long is closed (idle HTTP/2
    /// connections, stalled bodies).
    pub idle_timeout: Duration,
    /// Failed secret-key checks per client address per minute before it gets 429s (0: off).
    pub auth_failures_per_minute: u32,
}

/// Where `Settings::from_env` reads variables from; a closure in tests, the process otherwise.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    fn default_proactive_refresh_interval() -> Duration {
        Duration::from_secs(60)
    }

    /// Settings for a server reachable at `listen` (e.g. a test server on an ephemeral port).
    pub fn for_address(listen: SocketAddr, database_url: impl Into<String>) -> Settings {
        let server_url = format!("http://{listen}");
        Settings {
            listen,
            callback_url: format!("{server_url}/oauth/callback"),
            server_url,
            database_url: Secret::new(database_url.into()),
            secret_key: None,
            providers_file: None,
            oauth_state_ttl: Duration::from_secs(600),
            refresh_margin: Duration::from_secs(15 * 60),
            provider_timeout: Duration::from_secs(30),
            redirect_allowlist: Vec::new(),
            encryption_keys: Vec::new(),
            refresh_retry_base: Duration::from_secs(5),
            refresh_retry_max: Duration::from_secs(3600),
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_format: crate::webhooks::WebhookFormat::Events,
            webhook_retention: DEFAULT_WEBHOOK_RETENTION,
            webhook_retry_base: Duration::from_secs(2),
            webhook_max_attempts: 80,
            webhook_timeout: Duration::from_secs(10),
            public_rate_limit_per_minute: 300,
            request_timeout: Duration::from_secs(90),
            require_connect_session: false,
            connect_session_ttl: Duration::from_secs(15 * 60),
            proactive_refresh_interval: Settings::default_proactive_refresh_interval(),
            idle_refresh_age: Duration::from_secs(24 * 3600),
            refresh_concurrency: 64,
            connection_cache_size: 10_000,
            proxy_retries: 2,
            proxy_max_retry_wait: Duration::from_secs(30),
            log_format: crate::logging::LogFormat::Text,
            allow_open_api: false,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            auth_failures_per_minute: 20,
        }
    }

    /// Resolves flags and the process environment into settings.
    pub fn from_args(args: &ServeArgs) -> Result<Settings, ConfigError> {
        Settings::resolve(args, &|name| std::env::var(name).ok())
    }

    /// Resolves flags plus the Nango-era variables clap does not model (`SERVER_PORT`/`PORT`,
    /// `NANGO_DB_*`). Empty variables count as unset, as they did in Nango.
    pub fn resolve(args: &ServeArgs, env: EnvLookup<'_>) -> Result<Settings, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let port = match args.port {
            Some(port) => port,
            None => match env("SERVER_PORT").or_else(|| env("PORT")) {
                Some(raw) => raw
                    .trim()
                    .parse()
                    .map_err(|_| invalid("SERVER_PORT/PORT", format!("{raw:?} is not a port")))?,
                None => 3003,
            },
        };
        let secret_key = args
            .secret_key
            .clone()
            .filter(|k| !k.is_empty())
            .map(Secret::new);
        if secret_key
            .as_ref()
            .is_some_and(|k| k.expose().contains(':'))
        {
            // HTTP Basic (what the CLI and the 0.9 SDKs send) ends the username at the first
            // ':', so no client could ever present such a key.
            return Err(invalid(
                "NANGO_SECRET_KEY",
                "it contains ':', which HTTP Basic authentication (used by the CLI and the Nango SDKs) cannot carry in a username; choose a key without ':'",
            ));
        }
        let bind = args.bind.unwrap_or(if secret_key.is_some() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        });

        let server_url = match args.server_url.as_deref().filter(|s| !s.is_empty()) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://localhost:{port}"),
        };
        url::Url::parse(&server_url)
            .map_err(|e| invalid("NANGO_SERVER_URL", format!("{server_url:?}: {e}")))?;
        let callback_url = match args.callback_url.as_deref().filter(|s| !s.is_empty()) {
            Some(url) => url.to_string(),
            None => format!("{server_url}/oauth/callback"),
        };
        url::Url::parse(&callback_url)
            .map_err(|e| invalid("NANGO_CALLBACK_URL", format!("{callback_url:?}: {e}")))?;

        let database_url = match args.database_url.as_deref().filter(|s| !s.is_empty()) {
            Some(url) => url.to_string(),
            None => match env("NANGO_DB_HOST") {
                Some(host) => postgres_url_from_parts(&host, &env)?,
                None => "sqlite://nango.db".to_string(),
            },
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "NANGO_DATABASE_URL",
                "must start with sqlite:// or postgres://",
            ));
        }

        let mut redirect_allowlist = Vec::new();
        for entry in args
            .redirect_allowlist
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
        {
            redirect_allowlist.push(origin_of(entry).ok_or_else(|| {
                invalid(
                    "NANGO_REDIRECT_ALLOWLIST",
                    format!("{entry:?} is not an http(s) origin"),
                )
            })?);
        }

        let encryption_keys: Vec<Secret<String>> = args
            .encryption_key
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|k| Secret::new(k.to_string()))
            .collect();
        crate::store::Cipher::from_base64_keys(&encryption_keys)
            .map_err(|e| invalid("NANGO_ENCRYPTION_KEY", e.to_string()))?;

        let mut webhook_urls = Vec::new();
        for url in args
            .webhook_urls
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
        {
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid("NANGO_WEBHOOK_URLS", format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    "NANGO_WEBHOOK_URLS",
                    format!("{url:?} is not http(s)"),
                ));
            }
            webhook_urls.push(url.to_string());
        }
        let webhook_secret = args
            .webhook_secret
            .clone()
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        check_webhook_secret(&webhook_urls, webhook_secret.as_ref(), secret_key.as_ref())?;

        Ok(Settings {
            webhook_urls,
            webhook_secret,
            webhook_format: args.webhook_format,
            webhook_retention: args.webhook_retention.unwrap_or(DEFAULT_WEBHOOK_RETENTION),
            redirect_allowlist,
            encryption_keys,
            require_connect_session: args.require_connect_session,
            public_rate_limit_per_minute: args.public_rate_limit,
            refresh_concurrency: args.refresh_concurrency as usize,
            refresh_margin: Duration::from_secs(args.refresh_margin.unwrap_or(15 * 60)),
            connection_cache_size: args.connection_cache_size,
            proactive_refresh_interval: args.proactive_refresh_interval.map_or(
                Settings::default_proactive_refresh_interval(),
                Duration::from_secs,
            ),
            proxy_retries: args.proxy_retries,
            proxy_max_retry_wait: Duration::from_secs(args.proxy_max_retry_wait),
            log_format: args.log_format,
            allow_open_api: args.allow_open_api,
            auth_failures_per_minute: args.auth_failure_limit,
            // 0 (a `ServeArgs` built in code rather than parsed) means the default.
            max_connections: match args.max_connections {
                0 => 10_000,
                n => n as usize,
            },
            listen: SocketAddr::new(bind, port),
            server_url,
            callback_url,
            database_url: Secret::new(database_url),
            secret_key,
            providers_file: args.providers_file.clone(),
            ..Settings::for_address(SocketAddr::new(bind, port), String::new())
        })
    }
}

/// How long finished webhook deliveries are kept by default.
const DEFAULT_WEBHOOK_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Webhooks are signed with their own key: a receiver holds it to verify deliveries, and must
/// not thereby hold the key of the whole API (anyone with it could read every token).
pub fn check_webhook_secret(
    urls: &[String],
    webhook_secret: Option<&Secret<String>>,
    secret_key: Option<&Secret<String>>,
) -> Result<(), ConfigError> {
    if urls.is_empty() {
        return Ok(());
    }
    let Some(webhook_secret) = webhook_secret else {
        return Err(invalid(
            "NANGO_WEBHOOK_SECRET",
            "webhook URLs are set (NANGO_WEBHOOK_URLS) but no signing key: set NANGO_WEBHOOK_SECRET \
             to a random value of its own (e.g. `openssl rand -hex 32`) and give it to the receivers",
        ));
    };
    if secret_key.is_some_and(|key| key.expose() == webhook_secret.expose()) {
        return Err(invalid(
            "NANGO_WEBHOOK_SECRET",
            "must differ from NANGO_SECRET_KEY: webhook receivers hold it",
        ));
    }
    Ok(())
}

/// A retention such as `7d`, `36h`, `90m` or `600s` (a bare number is seconds); at least a minute.
fn parse_retention(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw
        .find(|c: char| !c.is_ascii_digit())
        .map_or((raw, "s"), |at| raw.split_at(at));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 7d, 36h or 90m"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{raw:?}: the unit must be s, m, h or d")),
    };
    let duration = Duration::from_secs(number.saturating_mul(seconds));
    if duration < Duration::from_secs(60) {
        return Err(format!("{raw:?} is shorter than a minute"));
    }
    Ok(duration)
}

/// Secret keys shorter than this are warned about at start and by `nango doctor`.
pub const SHORT_SECRET_KEY: usize = 16;

impl Settings {
    /// Refuses to serve the API without a secret key on an address other machines can reach,
    /// unless the operator said so explicitly (`NANGO_ALLOW_OPEN_API`): anyone reaching the
    /// port could read every client secret and token.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if self.secret_key.is_none() && !self.listen.ip().is_loopback() && !self.allow_open_api {
            return Err(invalid(
                "NANGO_BIND",
                format!(
                    "{} is reachable from other machines and NANGO_SECRET_KEY is not set, so anyone who reaches it could read every client secret and token. Set NANGO_SECRET_KEY (e.g. `openssl rand -hex 32`), or bind 127.0.0.1, or set NANGO_ALLOW_OPEN_API=true if another layer guards the port",
                    self.listen.ip()
                ),
            ));
        }
        Ok(())
    }

    /// The hosts (lower case, without port) a request may name in `Host` when the server runs
    /// without a secret key: loopback names and those of the server and callback URLs. A page
    /// on another site reaching the server through DNS rebinding names its own host instead.
    pub fn keyless_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(String::from)
            .collect();
        for url in [&self.server_url, &self.callback_url] {
            if let Some(host) = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
            {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }
}

/// `scheme://host[:port]` of an http(s) URL, the unit the redirect allow-list compares.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Builds a PostgreSQL URL from the Nango-era `NANGO_DB_*` variables, with their era defaults.
fn postgres_url_from_parts(
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut url = url::Url::parse("postgres://localhost")
        .map_err(|e| invalid("NANGO_DB_HOST", e.to_string()))?;
    url.set_host(Some(host))
        .map_err(|e| invalid("NANGO_DB_HOST", format!("{host:?}: {e}")))?;
    let port = env("NANGO_DB_PORT").unwrap_or_else(|| "5432".into());
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("NANGO_DB_PORT", format!("{port:?} is not a port")))?;
    let _ = url.set_port(Some(port));
    let _ = url.set_username(&env("NANGO_DB_USER").unwrap_or_else(|| "nango".into()));
    let _ = url.set_password(Some(
        &env("NANGO_DB_PASSWORD").unwrap_or_else(|| "nango".into()),
    ));
    url.set_path(&env("NANGO_DB_NAME").unwrap_or_else(|| "nango".into()));
    let ssl = env("NANGO_DB_SSL").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // The era used TLS without certificate verification; `require` is the libpq equivalent.
    url.query_pairs_mut()
        .append_pair("sslmode", if ssl { "require" } else { "disable" });
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(args: ServeArgs, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(&args, &|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_sqlite_on_localhost_3003() -> Result<(), ConfigError> {
        let s = resolve(ServeArgs::default(), &[])?;
        assert_eq!(s.listen.to_string(), "127.0.0.1:3003");
        assert_eq!(s.server_url, "http://localhost:3003");
        assert_eq!(s.callback_url, "http://localhost:3003/oauth/callback");
        assert_eq!(s.database_url.expose(), "sqlite://nango.db");
        Ok(())
    }

    #[test]
    fn server_port_wins_over_port_and_secret_key_opens_bind() -> Result<(), ConfigError> {
        let args = ServeArgs {
            secret_key: Some("k".into()),
            ..Default::default()
        };
        let s = resolve(args, &[("SERVER_PORT", "4000"), ("PORT", "5000")])?;
        assert_eq!(s.listen.to_string(), "0.0.0.0:4000");
        assert_eq!(s.server_url, "http://localhost:4000");
        let s = resolve(ServeArgs::default(), &[("PORT", "5000")])?;
        assert_eq!(s.listen.port(), 5000);
        Ok(())
    }

    #[test]
    fn nango_db_variables_build_a_postgres_url() -> Result<(), ConfigError> {
        let s = resolve(
            ServeArgs::default(),
            &[("NANGO_DB_HOST", "db"), ("NANGO_DB_PASSWORD", "p@ss")],
        )?;
        assert_eq!(
            s.database_url.expose(),
            "postgres://nango:p%40ss@db:5432/nango?sslmode=disable"
        );
        Ok(())
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(resolve(ServeArgs::default(), &[("SERVER_PORT", "x")]).is_err());
        let args = ServeArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(resolve(args, &[]).is_err());
    }

    #[test]
    fn webhooks_need_their_own_signing_key() {
        let with = |webhook_secret: Option<&str>, secret_key: Option<&str>| ServeArgs {
            webhook_urls: vec!["https://app.example/hooks".into()],
            webhook_secret: webhook_secret.map(String::from),
            secret_key: secret_key.map(String::from),
            ..Default::default()
        };
        let refused = |args| match resolve(args, &[]) {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        assert!(refused(with(None, Some("api-key"))).contains("NANGO_WEBHOOK_SECRET"));
        assert!(refused(with(Some("same"), Some("same"))).contains("must differ"));
        assert!(resolve(with(Some("whsec"), Some("api-key")), &[]).is_ok());
    }

    #[test]
    fn webhook_retention_reads_units() {
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_retention("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_retention("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_retention("600"), Ok(Duration::from_secs(600)));
        for bad in ["", "d", "7w", "30s", "-1d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_key_with_a_colon_is_refused() {
        let args = ServeArgs {
            secret_key: Some("abcdefgh:ijklmnopq".into()),
            ..Default::default()
        };
        let error = resolve(args, &[]).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("':'")),
            "{error:?}"
        );
    }

    #[test]
    fn keyless_on_an_open_address_needs_the_opt_in() -> Result<(), ConfigError> {
        let open = |key: Option<&str>, allow: bool| ServeArgs {
            bind: Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            secret_key: key.map(String::from),
            allow_open_api: allow,
            ..Default::default()
        };
        assert!(resolve(open(None, false), &[])?.check_exposure().is_err());
        resolve(open(None, true), &[])?.check_exposure()?;
        resolve(open(Some("a-long-enough-secret-key"), false), &[])?.check_exposure()?;
        resolve(ServeArgs::default(), &[])?.check_exposure()?;
        Ok(())
    }

    #[test]
    fn keyless_hosts_are_loopback_and_the_server_url() -> Result<(), ConfigError> {
        let args = ServeArgs {
            server_url: Some("https://Nango.Example.com:8443/".into()),
            ..Default::default()
        };
        let hosts = resolve(args, &[])?.keyless_hosts();
        assert_eq!(
            hosts,
            ["localhost", "127.0.0.1", "[::1]", "nango.example.com"]
        );
        Ok(())
    }

    #[test]
    fn debug_output_hides_secrets() -> Result<(), ConfigError> {
        let args = ServeArgs {
            secret_key: Some("super-secret-key".into()),
            ..Default::default()
        };
        let s = resolve(args, &[])?;
        assert!(!format!("{s:?}").contains("super-secret-key"));
        Ok(())
    }
}
