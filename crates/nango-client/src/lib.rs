//! Async Rust client of the Nango-compatible token broker's REST API (`/config`, `/connection`).
//!
//! It speaks the Nango 0.9 wire protocol, so it works against this project's server and against
//! Nango 0.9 itself. See [`Client`].

mod error;
mod secret;
mod types;

use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use error::Error;
pub use secret::Secret;
pub use types::{Connection, ConnectionSummary, Credentials, NewConfig, ProviderConfig, Token};

use types::{ConfigCreated, ConfigEnvelope, ConfigList, ConnectionList, NewConfigBody};

/// Where a Nango server listens when nothing else is said (`NANGO_HOSTPORT`'s default).
pub const DEFAULT_HOST: &str = "http://localhost:3003";

/// How long a call may take unless [`ClientBuilder::timeout`] says otherwise. Token refreshes
/// happen inside `GET /connection/:id`, so this leaves room for a slow provider.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one Nango server. Cheap to clone (the connection pool is shared).
///
/// ```no_run
/// use nango_client::{Client, Token};
///
/// # async fn example() -> Result<(), nango_client::Error> {
/// let nango = Client::builder("http://localhost:3003")
///     .secret_key("my-secret-key")
///     .build()?;
///
/// // A fresh access token, refreshed by the server if it was about to expire.
/// match nango.get_token("github", "user-42").await? {
///     Token::OAuth2(access_token) => println!("Bearer {}", access_token.expose()),
///     Token::OAuth1 { oauth_token, .. } => println!("OAuth1 token {}", oauth_token.expose()),
/// }
///
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
}

/// Options for a [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    host: String,
    secret_key: Option<Secret>,
    timeout: Duration,
}

impl ClientBuilder {
    /// Sends `Authorization: Basic base64("<key>:")` on every call, as the 0.9 clients do.
    /// An empty key means no authentication.
    pub fn secret_key(mut self, key: impl Into<String>) -> ClientBuilder {
        let key = key.into();
        self.secret_key = (!key.is_empty()).then(|| Secret::new(key));
        self
    }

    /// Total time allowed for one call (connect, request, response).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
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
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("Could not set up the HTTP client: {e}"))
            })?;
        Ok(Client { http, host, base })
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
    /// A client without a secret key (for a server that has none) and the default timeout.
    pub fn new(host: &str) -> Result<Client, Error> {
        Client::builder(host).build()
    }

    /// Starts configuring a client of the server at `host` (e.g. `http://localhost:3003`).
    pub fn builder(host: &str) -> ClientBuilder {
        ClientBuilder {
            host: host.to_string(),
            secret_key: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// All provider configs (`GET /config`).
    pub async fn list_configs(&self) -> Result<Vec<ProviderConfig>, Error> {
        decode::<ConfigList>(self.list_configs_raw().await?).map(|l| l.configs)
    }

    /// The body of `GET /config` as sent.
    pub async fn list_configs_raw(&self) -> Result<Value, Error> {
        self.json(self.request(Method::GET, &["config"], None)?)
            .await
    }

    /// One provider config (`GET /config/:key`).
    pub async fn get_config(&self, provider_config_key: &str) -> Result<ProviderConfig, Error> {
        decode::<ConfigEnvelope>(self.get_config_raw(provider_config_key).await?).map(|e| e.config)
    }

    /// The body of `GET /config/:key` as sent.
    pub async fn get_config_raw(&self, provider_config_key: &str) -> Result<Value, Error> {
        let key = path_segment("provider_config_key", provider_config_key)?;
        self.json(self.request(Method::GET, &["config", key], None)?)
            .await
    }

    /// Creates a provider config (`POST /config`) and returns its id.
    pub async fn create_config(&self, config: &NewConfig) -> Result<i64, Error> {
        let request = self
            .request(Method::POST, &["config"], None)?
            .json(&NewConfigBody::from(config));
        decode::<ConfigCreated>(self.json(request).await?).map(|c| c.config_id)
    }

    /// Replaces the provider, client id, secret and scopes of an existing config (`PUT /config`).
    pub async fn update_config(&self, config: &NewConfig) -> Result<(), Error> {
        let request = self
            .request(Method::PUT, &["config"], None)?
            .json(&NewConfigBody::from(config));
        self.send(request).await.map(drop)
    }

    /// Deletes a provider config (`DELETE /config/:key`); succeeds whether or not it existed.
    /// Its connections are kept.
    pub async fn delete_config(&self, provider_config_key: &str) -> Result<(), Error> {
        let key = path_segment("provider_config_key", provider_config_key)?;
        self.send(self.request(Method::DELETE, &["config", key], None)?)
            .await
            .map(drop)
    }

    /// A connection with fresh credentials (`GET /connection/:id?provider_config_key=`); the
    /// server refreshes an expiring OAuth2 token before answering.
    pub async fn get_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Connection, Error> {
        decode(
            self.get_connection_raw(provider_config_key, connection_id)
                .await?,
        )
    }

    /// The body of `GET /connection/:id` as sent (includes the tokens).
    pub async fn get_connection_raw(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Value, Error> {
        let id = path_segment("connection_id", connection_id)?;
        self.json(self.request(Method::GET, &["connection", id], Some(provider_config_key))?)
            .await
    }

    /// The fresh access token of a connection: the OAuth2 access token, or the OAuth1 token and
    /// secret.
    pub async fn get_token(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<Token, Error> {
        let connection = self
            .get_connection(provider_config_key, connection_id)
            .await?;
        Token::try_from(connection.credentials)
    }

    /// All connections, without credentials (`GET /connection`).
    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>, Error> {
        decode::<ConnectionList>(self.list_connections_raw().await?).map(|l| l.connections)
    }

    /// The body of `GET /connection` as sent.
    pub async fn list_connections_raw(&self) -> Result<Value, Error> {
        self.json(self.request(Method::GET, &["connection"], None)?)
            .await
    }

    /// Deletes a connection (`DELETE /connection/:id?provider_config_key=`).
    pub async fn delete_connection(
        &self,
        provider_config_key: &str,
        connection_id: &str,
    ) -> Result<(), Error> {
        let id = path_segment("connection_id", connection_id)?;
        self.send(self.request(
            Method::DELETE,
            &["connection", id],
            Some(provider_config_key),
        )?)
        .await
        .map(drop)
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        provider_config_key: Option<&str>,
    ) -> Result<RequestBuilder, Error> {
        let url = self.url(segments, provider_config_key)?;
        Ok(self.http.request(method, url))
    }

    /// Appends percent-encoded segments to the base path, so a host with a path prefix (behind a
    /// reverse proxy) keeps it, and ids with `/`, `?`, `#` or spaces reach the server intact.
    fn url(&self, segments: &[&str], provider_config_key: Option<&str>) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidHost {
                host: self.host.clone(),
            })?
            .pop_if_empty()
            .extend(segments);
        if let Some(key) = provider_config_key {
            url.query_pairs_mut()
                .append_pair("provider_config_key", key);
        }
        Ok(url)
    }

    /// Sends and returns the body of a 2xx answer; anything else becomes an [`Error`].
    async fn send(&self, request: RequestBuilder) -> Result<Vec<u8>, Error> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::network(&self.host, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::network(&self.host, e))?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(Error::from_response(
                status.as_u16(),
                status.canonical_reason(),
                &body,
            ))
        }
    }

    async fn json(&self, request: RequestBuilder) -> Result<Value, Error> {
        let body = self.send(request).await?;
        serde_json::from_slice(&body).map_err(|e| {
            let text = String::from_utf8_lossy(&body);
            Error::Decode(format!(
                "expected JSON ({e}), got: {}",
                text.chars().take(200).collect::<String>()
            ))
        })
    }
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
        match client.url(segments, key) {
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
