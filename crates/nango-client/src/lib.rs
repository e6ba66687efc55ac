//! Async Rust client of the Nango-compatible token broker's REST API (`/config`,
//! `/connection`, `/providers`): the Rust counterpart of our Node SDK (`sdks/node`), with the
//! same methods.
//!
//! It speaks the Nango 0.9 wire protocol, so it works against this project's server and against
//! Nango 0.9 itself. Every token, secret, password and raw token response comes wrapped in a
//! [`Secret`], which prints as `***`.
//!
//! # A fresh token before every API call
//!
//! The quickstart's one line: the server refreshes the token first when it expires within 15
//! minutes, so ask for it right before each call rather than caching it.
//!
//! ```no_run
//! # async fn example() -> Result<(), nango_client::Error> {
//! let token = nango_client::Client::new("http://localhost:3003")?
//!     .get_token("github", "user-42")
//!     .await?;
//! // `Token::expose` gives the single string of OAuth2, client credentials and API key tokens.
//! let bearer = token.expose().unwrap_or_default();
//! # let _ = bearer;
//! # Ok(())
//! # }
//! ```
//!
//! With a secret key (the server's `NANGO_SECRET_KEY`) and the other options:
//!
//! ```no_run
//! use std::time::Duration;
//! use nango_client::{Client, Token};
//!
//! # async fn example() -> Result<(), nango_client::Error> {
//! let nango = Client::builder("https://nango.internal.example.com")
//!     .secret_key(std::env::var("NANGO_SECRET_KEY").unwrap_or_default())
//!     .timeout(Duration::from_secs(10)) // per attempt (default 60 s)
//!     .retries(3) // network errors and timeouts of GET/PUT/DELETE (default 2)
//!     .retry_delay(Duration::from_millis(500)) // doubled before each next retry (default 200 ms)
//!     .build()?;
//!
//! match nango.get_token("github", "user-42").await? {
//!     Token::OAuth2(access_token) => println!("Authorization: Bearer {}", access_token.expose()),
//!     Token::OAuth1 { oauth_token, .. } => println!("OAuth1 token {}", oauth_token.expose()),
//!     Token::ApiKey(key) => println!("API key {}", key.expose()),
//!     other => println!("{other:?}"), // prints no secret
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Every method returns [`Error`]. An answer of the server is [`Error::Api`], with its HTTP
//! [`status`](Error::status), its message and its machine-readable [`kind`](Error::kind) (see
//! [`kinds`]); no answer is [`Error::Network`] or [`Error::Timeout`], after the retries.
//!
//! ```no_run
//! use nango_client::{kinds, Client, Error};
//!
//! # async fn example() -> Result<(), Error> {
//! let nango = Client::new("http://localhost:3003")?;
//! match nango.get_token("github", "user-42").await {
//!     Ok(token) => { /* call GitHub */ }
//!     Err(e) if e.kind() == Some(kinds::UNKNOWN_CONNECTION) => {
//!         // The user has not connected GitHub yet: show the "Connect" button.
//!     }
//!     Err(e) if e.kind() == Some(kinds::REFRESH_REJECTED) => {
//!         // GitHub refused the refresh token: the user must connect again.
//!     }
//!     Err(e @ (Error::Network { .. } | Error::Timeout { .. })) => {
//!         eprintln!("Nango is unreachable: {e}");
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Forcing a refresh
//!
//! The `_with` variants of [`Client::get_connection`], [`Client::get_token`] and
//! [`Client::get_raw_token_response`] take [`GetOptions`]; `force_refresh` makes the server
//! refresh the credentials now, whatever their expiry (for a token the provider revoked early,
//! say).
//!
//! ```no_run
//! use nango_client::{kinds, Client, GetOptions};
//!
//! # async fn example() -> Result<(), nango_client::Error> {
//! let nango = Client::new("http://localhost:3003")?;
//! let forced = GetOptions::new().force_refresh(true);
//! match nango.get_token_with("github", "user-42", forced).await {
//!     Ok(token) => { /* a token the provider issued just now */ }
//!     Err(e) if e.kind() == Some(kinds::NOT_REFRESHABLE) => {
//!         // No refresh token (or an API key): nothing to refresh with.
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Calling the provider's API through the server
//!
//! [`Client::proxy`] sends a [`ProxyRequest`] to the provider's API with the connection's
//! credentials put in by the server, and returns the provider's answer as a [`ProxyResponse`]
//! **whatever its status** (a provider's 404 is an `Ok`: check the status); its body is streamed.
//!
//! ```no_run
//! use nango_client::{Client, ProxyRequest};
//!
//! # async fn example() -> Result<(), nango_client::Error> {
//! let nango = Client::new("http://localhost:3003")?;
//! let issue = serde_json::json!({"title": "Found a bug"});
//! let response = nango
//!     .proxy(ProxyRequest::post("github", "user-42", "/repos/octo/hello/issues").json(&issue)?)
//!     .await?;
//! let status = response.status();
//! println!("{status}: {}", response.text().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Retries
//!
//! A request that got **no answer** (connection refused or reset, timeout) is retried
//! [`retries`](ClientBuilder::retries) times, after [`retry_delay`](ClientBuilder::retry_delay),
//! then twice that, and so on, but only `GET`, `PUT` and `DELETE`: a `POST`
//! ([`Client::create_config`], [`Client::create_connection`]) may have been applied before the
//! connection broke. A request that got **an answer** is never retried, whatever its status.
//! Redirects are not followed, so the secret key only ever goes to the configured host.

mod error;
mod proxy;
mod secret;
mod types;

use std::time::Duration;

use base64::Engine;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use error::{kinds, Error};
pub use proxy::{ProxyRequest, ProxyResponse, MAX_PROXY_RETRIES};
/// The `reqwest` types of the proxy's API: [`ProxyRequest::method`], [`ProxyResponse::status`],
/// [`ProxyResponse::headers`].
pub use reqwest::{header, Method, StatusCode};
pub use secret::Secret;
pub use types::{
    Connection, ConnectionSummary, Credentials, GetOptions, NewConfig, NewCredentials,
    ProviderConfig, ProviderDetail, ProviderSummary, RefreshStatus, Token,
};

use types::{
    ConfigCreated, ConfigEnvelope, ConfigList, ConnectionList, NewConfigBody, NewConnectionBody,
    ProviderList,
};

/// Where a Nango server listens when nothing else is said (`NANGO_HOSTPORT`'s default).
pub const DEFAULT_HOST: &str = "http://localhost:3003";

/// How long one attempt may take unless [`ClientBuilder::timeout`] says otherwise. Token
/// refreshes happen inside `GET /connection/:id`, and the server gives a provider 30 s, so this
/// leaves room for a slow one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Retries of a request that got no answer, unless [`ClientBuilder::retries`] says otherwise.
pub const DEFAULT_RETRIES: u32 = 2;

/// The wait before the first retry, unless [`ClientBuilder::retry_delay`] says otherwise.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);

/// No wait between two attempts is longer than this, however many retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A client of one Nango server. Cheap to clone (the connection pool is shared).
///
/// | Method | REST call | Returns |
/// |---|---|---|
/// | [`get_token`](Client::get_token) | `GET /connection/:id?provider_config_key=` | [`Token`] |
/// | [`get_raw_token_response`](Client::get_raw_token_response) | same | the provider's token response |
/// | [`get_connection`](Client::get_connection) | same | [`Connection`] |
/// | [`list_connections`](Client::list_connections) | `GET /connection` | [`ConnectionSummary`]s |
/// | [`create_connection`](Client::create_connection) | `POST /connection` | [`Connection`] |
/// | [`delete_connection`](Client::delete_connection) | `DELETE /connection/:id?provider_config_key=` | `()` |
/// | [`list_configs`](Client::list_configs) | `GET /config` | [`ProviderConfig`]s |
/// | [`get_config`](Client::get_config) | `GET /config/:key` | [`ProviderConfig`] |
/// | [`create_config`](Client::create_config) | `POST /config` | its id |
/// | [`update_config`](Client::update_config) | `PUT /config` | `()` |
/// | [`delete_config`](Client::delete_config) | `DELETE /config/:key` | `()` |
/// | [`list_providers`](Client::list_providers) | `GET /providers` | [`ProviderSummary`]s |
/// | [`get_provider`](Client::get_provider) | `GET /providers/:name` | [`ProviderDetail`] |
/// | [`proxy`](Client::proxy) | `<METHOD> /proxy/<endpoint>` | the provider's [`ProxyResponse`], whatever its status |
///
/// Keys and ids are percent-encoded, so any string round-trips (`a/b c?d`, `#`, `%`,
/// non-ASCII), except that one that goes in the path cannot be empty, `.` or `..`.
///
/// ```no_run
/// use nango_client::{Client, NewConfig};
///
/// # async fn example() -> Result<(), nango_client::Error> {
/// let nango = Client::builder("http://localhost:3003")
///     .secret_key("my-secret-key")
///     .build()?;
///
/// nango
///     .create_config(&NewConfig::new("github", "github", "<client id>", "<client secret>", "repo,user"))
///     .await?;
/// for config in nango.list_configs().await? {
///     println!("{} uses {}", config.unique_key, config.provider);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// As given, minus one trailing `/`: what error messages show.
    host: String,
    base: Url,
    timeout: Duration,
    retries: u32,
    retry_delay: Duration,
}

/// Options for a [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    host: String,
    secret_key: Option<Secret>,
    timeout: Duration,
    retries: u32,
    retry_delay: Duration,
}

impl ClientBuilder {
    /// Sends `Authorization: Basic base64("<key>:")` on every call, as the 0.9 clients do.
    /// An empty key means no authentication.
    pub fn secret_key(mut self, key: impl Into<String>) -> ClientBuilder {
        let key = key.into();
        self.secret_key = (!key.is_empty()).then(|| Secret::new(key));
        self
    }

    /// Time allowed for one attempt: connecting, sending, and reading the whole answer
    /// (default [`DEFAULT_TIMEOUT`]). The worst case of a `GET` is `(retries + 1) × timeout`
    /// plus the delays between attempts.
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// How many times a `GET`, `PUT` or `DELETE` that got no answer (network error, timeout) is
    /// tried again (default [`DEFAULT_RETRIES`]); `0` turns retries off. An answer, whatever its
    /// status, is never retried, and a `POST` never is.
    pub fn retries(mut self, retries: u32) -> ClientBuilder {
        self.retries = retries;
        self
    }

    /// The wait before the first retry, doubled before each next one (default
    /// [`DEFAULT_RETRY_DELAY`]; at most a minute).
    pub fn retry_delay(mut self, delay: Duration) -> ClientBuilder {
        self.retry_delay = delay;
        self
    }

    /// Checks the host and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let host = self
            .host
            .strip_suffix('/')
            .unwrap_or(&self.host)
            .to_string();
        let base = parse_host(&host).ok_or_else(|| Error::InvalidHost {
            host: self.host.clone(),
        })?;
        if self.timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "The timeout must be longer than zero.".into(),
            ));
        }

        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = &self.secret_key {
            let mut value = HeaderValue::from_str(&basic_auth(key)).map_err(|_| {
                Error::InvalidArgument("The secret key contains invalid characters.".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("nango-client-rs/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout)
            // The secret key must reach the configured host only.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("Could not set up the HTTP client: {e}"))
            })?;
        Ok(Client {
            http,
            host,
            base,
            timeout: self.timeout,
            retries: self.retries,
            retry_delay: self.retry_delay,
        })
    }
}

/// What the 0.9 clients send: the key as the Basic username, with an empty password.
fn basic_auth(key: &Secret) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:", key.expose()));
    format!("Basic {encoded}")
}

/// Accepts what `new URL()` accepted in the Node client, narrowed to what we can call: an
/// absolute http(s) URL with a host. A query or fragment would be lost when paths are appended.
fn parse_host(host: &str) -> Option<Url> {
    let url = Url::parse(host).ok()?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.query().is_none()
        && url.fragment().is_none();
    usable.then_some(url)
}

impl Client {
    /// A client without a secret key (for a server that has none) and the default timeout and
    /// retries.
    pub fn new(host: &str) -> Result<Client, Error> {
        Client::builder(host).build()
    }

    /// Starts configuring a client of the server at `host` (e.g. `http://localhost:3003`).
    pub fn builder(host: &str) -> ClientBuilder {
        ClientBuilder {
            host: host.to_string(),
            secret_key: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn host(&self) -> &str {
        &self.host
    }

    // ----- connections -----

    /// The fresh token of a connection (`GET /connection/:id?provider_config_key=`), by
    /// credentials type: the OAuth2 access token, the OAuth1 token and secret, the client
    /// credentials token, the API key, or the username and password. The server refreshes an
    /// OAuth2 token that expires within 15 minutes before answering.
    ///
    /// Fails with [`Error::UnrecognizedOAuthType`] for credentials of a type this client does
    /// not know.
    pub async fn get_token(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Token, Error> {
        self.get_token_with(provider_config_key, connection_id, GetOptions::default())
            .await
    }

    /// [`get_token`](Client::get_token) with options (e.g. a forced refresh).
    pub async fn get_token_with(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        options: GetOptions,
    ) -> Result<Token, Error> {
        let connection = self
            .get_connection_with(provider_config_key, connection_id, options)
            .await?;
        Token::try_from(connection.credentials)
    }

    /// The provider's token response as the server stored it (same call as
    /// [`get_token`](Client::get_token)); `None` for credentials without one (API key, basic).
    pub async fn get_raw_token_response(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Option<Secret<Value>>, Error> {
        self.get_raw_token_response_with(provider_config_key, connection_id, GetOptions::default())
            .await
    }

    /// [`get_raw_token_response`](Client::get_raw_token_response) with options.
    pub async fn get_raw_token_response_with(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        options: GetOptions,
    ) -> Result<Option<Secret<Value>>, Error> {
        let connection = self
            .get_connection_with(provider_config_key, connection_id, options)
            .await?;
        Ok(match connection.credentials {
            Credentials::OAuth2 { raw, .. }
            | Credentials::OAuth1 { raw, .. }
            | Credentials::OAuth2ClientCredentials { raw, .. } => Some(raw),
            Credentials::Unknown(Value::Object(mut fields)) => {
                fields.remove("raw").map(Secret::from)
            }
            _ => None,
        })
    }

    /// A connection with fresh credentials (`GET /connection/:id?provider_config_key=`).
    pub async fn get_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Connection, Error> {
        self.get_connection_with(provider_config_key, connection_id, GetOptions::default())
            .await
    }

    /// [`get_connection`](Client::get_connection) with options.
    pub async fn get_connection_with(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        options: GetOptions,
    ) -> Result<Connection, Error> {
        decode(
            self.get_connection_raw_with(provider_config_key, connection_id, options)
                .await?,
        )
    }

    /// The body of `GET /connection/:id` as sent (tokens in clear).
    pub async fn get_connection_raw(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Value, Error> {
        self.get_connection_raw_with(provider_config_key, connection_id, GetOptions::default())
            .await
    }

    /// [`get_connection_raw`](Client::get_connection_raw) with options.
    pub async fn get_connection_raw_with(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        options: GetOptions,
    ) -> Result<Value, Error> {
        let url = self.connection_url(provider_config_key, connection_id, options)?;
        self.json(Method::GET, url, None).await
    }

    fn connection_url(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        options: GetOptions,
    ) -> Result<Url, Error> {
        let id = path_segment("connection_id", connection_id)?;
        let mut query = vec![("provider_config_key", provider_config_key)];
        if options.force_refresh {
            query.push(("force_refresh", "true"));
        }
        self.url(&["connection", id], &query)
    }

    /// All connections, without credentials (`GET /connection`).
    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>, Error> {
        decode::<ConnectionList>(self.list_connections_raw().await?).map(|l| l.connections)
    }

    /// The body of `GET /connection` as sent.
    pub async fn list_connections_raw(&self) -> Result<Value, Error> {
        self.json(Method::GET, self.url(&["connection"], &[])?, None)
            .await
    }

    /// Creates (or replaces) a connection that needs no browser (`POST /connection`): an
    /// `API_KEY` or `BASIC` provider's credentials, or, for an `OAUTH2_CC` provider, a token the
    /// server fetches now with the config's client credentials. `OAUTH2` and `OAUTH1`
    /// connections come from the browser flow (the server answers `auth_mode_err`). Never
    /// retried.
    pub async fn create_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
        credentials: &NewCredentials,
    ) -> Result<Connection, Error> {
        let body = NewConnectionBody::new(provider_config_key, connection_id, credentials);
        let body = serde_json::to_vec(&body).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        decode(
            self.json(Method::POST, self.url(&["connection"], &[])?, Some(body))
                .await?,
        )
    }

    /// Deletes a connection (`DELETE /connection/:id?provider_config_key=`). A retried delete
    /// whose first attempt did reach the server may fail with `unkown_connection`.
    pub async fn delete_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<(), Error> {
        let id = path_segment("connection_id", connection_id)?;
        let url = self.url(
            &["connection", id],
            &[("provider_config_key", provider_config_key)],
        )?;
        self.send(Method::DELETE, url, None).await.map(drop)
    }

    // ----- provider configs -----

    /// All provider configs (`GET /config`), client secrets included.
    pub async fn list_configs(&self) -> Result<Vec<ProviderConfig>, Error> {
        decode::<ConfigList>(self.list_configs_raw().await?).map(|l| l.configs)
    }

    /// The body of `GET /config` as sent.
    pub async fn list_configs_raw(&self) -> Result<Value, Error> {
        self.json(Method::GET, self.url(&["config"], &[])?, None)
            .await
    }

    /// One provider config (`GET /config/:key`).
    pub async fn get_config(&self, provider_config_key: &str) -> Result<ProviderConfig, Error> {
        decode::<ConfigEnvelope>(self.get_config_raw(provider_config_key).await?).map(|e| e.config)
    }

    /// The body of `GET /config/:key` as sent.
    pub async fn get_config_raw(&self, provider_config_key: &str) -> Result<Value, Error> {
        let key = path_segment("provider_config_key", provider_config_key)?;
        self.json(Method::GET, self.url(&["config", key], &[])?, None)
            .await
    }

    /// Creates a provider config (`POST /config`) and returns its id. The server normalises the
    /// scopes (`"user public_repo"` is stored as `user,public_repo`). Never retried.
    pub async fn create_config(&self, config: &NewConfig) -> Result<i64, Error> {
        let body = config_body(config)?;
        let url = self.url(&["config"], &[])?;
        decode::<ConfigCreated>(self.json(Method::POST, url, Some(body)).await?)
            .map(|c| c.config_id)
    }

    /// Replaces the provider, client id, secret and scopes of an existing config (`PUT /config`);
    /// scopes are stored as given.
    pub async fn update_config(&self, config: &NewConfig) -> Result<(), Error> {
        let body = config_body(config)?;
        self.send(Method::PUT, self.url(&["config"], &[])?, Some(body))
            .await
            .map(drop)
    }

    /// Deletes a provider config (`DELETE /config/:key`); succeeds whether or not it existed.
    /// Reading a connection of the deleted config then fails (400 `unknown_provider_config`, or
    /// `unkown_connection` when the server deleted the connections with it).
    pub async fn delete_config(&self, provider_config_key: &str) -> Result<(), Error> {
        let key = path_segment("provider_config_key", provider_config_key)?;
        self.send(Method::DELETE, self.url(&["config", key], &[])?, None)
            .await
            .map(drop)
    }

    // ----- provider catalog -----

    /// The providers of the server's catalog (`GET /providers`), optionally only those whose
    /// name, display name or a category contains `search` (case-insensitively).
    pub async fn list_providers(
        &self,
        search: Option<&str>,
    ) -> Result<Vec<ProviderSummary>, Error> {
        self.list_providers_of(search, None).await
    }

    /// [`Self::list_providers`], also filtered by auth mode (`auth_mode`: one or more of
    /// OAUTH2, OAUTH1, OAUTH2_CC, API_KEY and BASIC, comma-separated); a 400
    /// `invalid_request` for an unknown mode.
    pub async fn list_providers_of(
        &self,
        search: Option<&str>,
        auth_mode: Option<&str>,
    ) -> Result<Vec<ProviderSummary>, Error> {
        let query: Vec<_> = [("search", search), ("auth_mode", auth_mode)]
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect();
        let body = self
            .json(Method::GET, self.url(&["providers"], &query)?, None)
            .await?;
        decode::<ProviderList>(body).map(|l| l.providers)
    }

    /// One provider's whole template (`GET /providers/:name`); a 404 `unknown_provider` for a
    /// name that is not in the catalog.
    pub async fn get_provider(&self, name: &str) -> Result<ProviderDetail, Error> {
        let name = path_segment("provider name", name)?;
        decode(
            self.json(Method::GET, self.url(&["providers", name], &[])?, None)
                .await?,
        )
    }

    // ----- proxy -----

    /// Calls the provider's API through the server (`<METHOD> /proxy/<endpoint>`), which puts
    /// in the connection's credentials (e.g. `Authorization: Bearer <access token>`), so the
    /// token never reaches this process.
    ///
    /// **Returns the response whatever its HTTP status**: a provider's 404 or 429 is an `Ok`,
    /// and so is an error of the proxy itself (a 4xx or 5xx whose body is the server's
    /// `{"error": ..., "type": ...}`: unknown connection, wrong secret key, provider
    /// unreachable). Check [`ProxyResponse::status`]. `Err` only for arguments that cannot be
    /// sent ([`Error::InvalidArgument`], nothing sent) and for no answer from the server
    /// ([`Error::Network`], [`Error::Timeout`]).
    ///
    /// A request that got no answer is retried like the other calls, for `GET`, `PUT`,
    /// `DELETE`, `HEAD` and `OPTIONS` only; the server's own retries of a provider's 429 or 5xx
    /// are [`ProxyRequest::retries`]. The body of the response is not read yet: see
    /// [`ProxyResponse`].
    ///
    /// ```no_run
    /// use nango_client::{Client, ProxyRequest};
    ///
    /// # async fn example() -> Result<(), nango_client::Error> {
    /// let nango = Client::builder("http://localhost:3003").secret_key("my-secret-key").build()?;
    ///
    /// let response = nango
    ///     .proxy(ProxyRequest::get("github", "user-42", "/user/repos").param("per_page", "5"))
    ///     .await?;
    /// if response.status().is_success() {
    ///     let repos: serde_json::Value = response.json().await?;
    ///     println!("{repos}");
    /// } else {
    ///     let status = response.status();
    ///     eprintln!("GitHub answered {status}: {}", response.text().await?);
    /// }
    ///
    /// // A large download, a piece at a time.
    /// let mut download = nango
    ///     .proxy(ProxyRequest::get("github", "user-42", "/repos/octo/hello/tarball/main"))
    ///     .await?;
    /// let mut size = 0;
    /// while let Some(chunk) = download.chunk().await? {
    ///     size += chunk.len(); // write it somewhere
    /// }
    /// # let _ = size;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn proxy(&self, request: ProxyRequest) -> Result<ProxyResponse, Error> {
        let key = proxy::header_arg("provider_config_key", &request.provider_config_key)?;
        let id = proxy::header_arg("connection_id", &request.connection_id)?;
        let url = proxy::proxy_url(&self.base, &request.endpoint, &request.params)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let invalid = || {
                Error::InvalidArgument(format!(
                    "The header '{name}' cannot be sent: invalid name or value."
                ))
            };
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            if name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()) {
                headers.insert(CONTENT_TYPE, value);
            } else {
                let name = HeaderName::from_bytes(format!("Nango-Proxy-{name}").as_bytes())
                    .map_err(|_| invalid())?;
                headers.append(name, value);
            }
        }
        let header_value = |value: &str| {
            HeaderValue::from_str(value).map_err(|_| {
                Error::InvalidArgument(format!("'{value}' cannot be sent in a header."))
            })
        };
        headers.insert("connection-id", header_value(id)?);
        headers.insert("provider-config-key", header_value(key)?);
        if let Some(retries) = request.retries {
            if retries > MAX_PROXY_RETRIES {
                return Err(Error::InvalidArgument(format!(
                    "The proxy retries must be from 0 to {MAX_PROXY_RETRIES}, got {retries}."
                )));
            }
            headers.insert("retries", HeaderValue::from(retries));
        }
        // The server forwards plain end-to-end headers too: not the client's default
        // `Accept: application/json`, which the provider would take as the caller's.
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));

        let timeout = request.timeout.unwrap_or(self.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "The timeout must be longer than zero.".into(),
            ));
        }
        let method = request.method;
        let what = format!("{method} {}", url.path());
        let attempts = self.attempts(&method);
        let mut body = request.body;
        let mut attempt = 1;
        loop {
            let mut builder = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(timeout);
            // The last attempt takes the body; the others send a copy.
            let this_body = if attempt == attempts {
                body.take()
            } else {
                body.clone()
            };
            if let Some(bytes) = this_body {
                builder = builder.body(bytes);
            }
            match builder.send().await {
                Ok(response) => {
                    return Ok(ProxyResponse {
                        response,
                        host: self.host.clone(),
                        request: what,
                        timeout,
                    })
                }
                Err(_) if attempt < attempts => {
                    tokio::time::sleep(self.delay_before_retry(attempt)).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(Error::unreachable(
                        &self.host, what, attempt, timeout, source,
                    ))
                }
            }
        }
    }

    // ----- transport -----

    /// Appends percent-encoded segments to the base path, so a host with a path prefix (behind a
    /// reverse proxy) keeps it, and ids with `/`, `?`, `#` or spaces reach the server intact.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidHost {
                host: self.host.clone(),
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// How many attempts a request may take: only methods that may be repeated are retried.
    fn attempts(&self, method: &Method) -> u32 {
        let idempotent = matches!(
            *method,
            Method::GET | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS
        );
        if idempotent {
            self.retries.saturating_add(1)
        } else {
            1
        }
    }

    /// The wait before retry number `retry` (1-based): `retry_delay`, doubled each time.
    fn delay_before_retry(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.retry_delay
            .checked_mul(factor)
            .map_or(MAX_RETRY_DELAY, |d| d.min(MAX_RETRY_DELAY))
    }

    /// Sends, retrying what got no answer, and returns the body of a 2xx answer; any other
    /// answer becomes an [`Error::Api`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Error> {
        let attempts = self.attempts(&method);
        let mut attempt = 1;
        let response = loop {
            match self.attempt(&method, &url, body.as_ref()).await {
                Ok(response) => break response,
                Err(_) if attempt < attempts => {
                    tokio::time::sleep(self.delay_before_retry(attempt)).await;
                    attempt += 1;
                }
                Err(source) => {
                    // The path names the resource; the query (the config key) adds nothing.
                    let request = format!("{method} {}", url.path());
                    return Err(Error::unreachable(
                        &self.host,
                        request,
                        attempt,
                        self.timeout,
                        source,
                    ));
                }
            }
        };
        let (status, location, bytes) = response;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(Error::from_response(
                status.as_u16(),
                status.canonical_reason(),
                location.as_deref(),
                &bytes,
            ))
        }
    }

    /// One attempt, within the timeout: the status, `Location` and whole body of the answer.
    /// A body cut short counts as no answer (the attempt may be retried).
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Vec<u8>>,
    ) -> Result<(reqwest::StatusCode, Option<String>, Vec<u8>), reqwest::Error> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await?;
        Ok((status, location, bytes.to_vec()))
    }

    async fn json(&self, method: Method, url: Url, body: Option<Vec<u8>>) -> Result<Value, Error> {
        let body = self.send(method, url, body).await?;
        serde_json::from_slice(&body).map_err(|e| {
            let text = String::from_utf8_lossy(&body);
            Error::Decode(format!(
                "expected JSON ({e}), got: {}",
                text.chars().take(200).collect::<String>()
            ))
        })
    }
}

fn config_body(config: &NewConfig) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&NewConfigBody::from(config))
        .map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn decode<T: DeserializeOwned>(body: Value) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::Decode(e.to_string()))
}

/// The url crate silently drops `.` and `..` segments (and an empty one would hit another route),
/// so such ids would reach a different endpoint: refuse them instead.
fn path_segment<'a>(name: &str, value: &'a str) -> Result<&'a str, Error> {
    if matches!(value, "" | "." | "..") {
        return Err(Error::InvalidArgument(format!(
            "The {name} '{value}' cannot be used: it must not be empty, '.' or '..'."
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_of(client: &Client, segments: &[&str], key: Option<&str>) -> String {
        let query: Vec<_> = key
            .map(|k| ("provider_config_key", k))
            .into_iter()
            .collect();
        match client.url(segments, &query) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("no URL for {segments:?}: {e}"),
        }
    }

    #[test]
    fn invalid_hosts_are_refused_with_the_node_client_message() {
        for host in [
            "",
            "not a url",
            "localhost:3003",
            "ftp://example.com",
            "http://",
            "http://h/?q=1",
        ] {
            match Client::new(host) {
                Err(e @ Error::InvalidHost { .. }) => assert_eq!(
                    e.to_string(),
                    format!("Invalid URL provided for the Nango host: {host}")
                ),
                other => panic!("{host:?} was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn one_trailing_slash_is_stripped() -> Result<(), Error> {
        assert_eq!(
            Client::new("http://localhost:3003/")?.host(),
            "http://localhost:3003"
        );
        assert_eq!(
            Client::new("https://nango.example.com")?.host(),
            "https://nango.example.com"
        );
        assert_eq!(Client::new("http://h:1//")?.host(), "http://h:1/");
        Ok(())
    }

    #[test]
    fn ids_are_percent_encoded_in_path_and_query() -> Result<(), Error> {
        let c = Client::new("http://127.0.0.1:3003")?;
        assert_eq!(
            url_of(&c, &["config"], None),
            "http://127.0.0.1:3003/config"
        );
        assert_eq!(
            url_of(&c, &["connection", "a/b c?#%é"], Some("my key&x=1")),
            "http://127.0.0.1:3003/connection/a%2Fb%20c%3F%23%25%C3%A9?provider_config_key=my+key%26x%3D1"
        );
        Ok(())
    }

    #[test]
    fn a_path_prefix_on_the_host_is_kept() -> Result<(), Error> {
        let c = Client::new("https://example.com/nango/")?;
        assert_eq!(
            url_of(&c, &["config", "github"], None),
            "https://example.com/nango/config/github"
        );
        Ok(())
    }

    #[test]
    fn ids_that_a_path_cannot_carry_are_refused() {
        for id in ["", ".", ".."] {
            assert!(matches!(
                path_segment("connection_id", id),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert!(matches!(path_segment("connection_id", "..."), Ok("...")));
    }

    #[test]
    fn the_force_refresh_option_adds_its_query_parameter() -> Result<(), Error> {
        let c = Client::new("http://h:1")?;
        let url = |options| c.connection_url("k", "u 1", options).map(|u| u.to_string());
        assert_eq!(
            url(GetOptions::new())?,
            "http://h:1/connection/u%201?provider_config_key=k"
        );
        assert_eq!(
            url(GetOptions::new().force_refresh(true))?,
            "http://h:1/connection/u%201?provider_config_key=k&force_refresh=true"
        );
        Ok(())
    }

    #[test]
    fn only_get_put_and_delete_are_retried_with_doubling_delays() -> Result<(), Error> {
        let c = Client::builder("http://h:1")
            .retries(3)
            .retry_delay(Duration::from_millis(100))
            .build()?;
        assert_eq!(c.attempts(&Method::GET), 4);
        assert_eq!(c.attempts(&Method::PUT), 4);
        assert_eq!(c.attempts(&Method::DELETE), 4);
        assert_eq!(c.attempts(&Method::POST), 1);
        let delays: Vec<_> = (1..=4).map(|n| c.delay_before_retry(n)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(Duration::from_millis).to_vec()
        );
        // No overflow, however many retries.
        assert_eq!(c.delay_before_retry(200), MAX_RETRY_DELAY);
        let none = Client::builder("http://h:1").retries(0).build()?;
        assert_eq!(none.attempts(&Method::GET), 1);
        Ok(())
    }

    #[test]
    fn basic_auth_is_the_key_as_username_with_an_empty_password() {
        // base64("sk:") == "c2s6"
        assert_eq!(basic_auth(&Secret::new("sk")), "Basic c2s6");
    }

    #[test]
    fn debug_output_hides_the_secret_key() -> Result<(), Error> {
        let builder = Client::builder("http://h:1").secret_key("super-secret");
        assert!(!format!("{builder:?}").contains("super-secret"));
        let client = builder.build()?;
        assert!(!format!("{client:?}").contains("super-secret"));
        assert!(!format!("{client:?}").contains(&basic_auth(&Secret::new("super-secret"))[6..]));
        Ok(())
    }
}
