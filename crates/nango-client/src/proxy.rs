//! The API proxy (`<METHOD> /proxy/<endpoint>`): [`ProxyRequest`], what to send, and
//! [`ProxyResponse`], the provider's answer as the server passed it on.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::Error;

/// The most retries the server accepts in the `Retries` header.
pub const MAX_PROXY_RETRIES: u32 = 10;

/// A call to a provider's API through the server ([`Client::proxy`](crate::Client::proxy)):
/// the server adds the connection's credentials (e.g. `Authorization: Bearer <access token>`)
/// and sends it to the provider template's `base_api_url` + `endpoint`.
///
/// Build it with [`ProxyRequest::get`] (or `post`, `put`, `patch`, `delete`, [`new`](ProxyRequest::new)
/// for the others) and the setters:
///
/// ```
/// use std::time::Duration;
/// use nango_client::ProxyRequest;
///
/// # fn example() -> Result<(), nango_client::Error> {
/// let request = ProxyRequest::post("github", "user-42", "/repos/octo/hello/issues")
///     .json(&serde_json::json!({"title": "Found a bug"}))?
///     .header("Accept", "application/vnd.github+json")
///     .param("per_page", "10")
///     .retries(2) // the server may retry a 429 or 5xx twice (POSTs get none by default)
///     .timeout(Duration::from_secs(120));
/// assert_eq!(request.method, nango_client::Method::POST);
/// # Ok(())
/// # }
/// ```
///
/// Its `Debug` output shows header names and the body's length, not their values.
#[derive(Clone)]
#[non_exhaustive]
pub struct ProxyRequest {
    /// Any method; `GET` for [`ProxyRequest::get`].
    pub method: Method,
    /// The provider config key (the `Provider-Config-Key` header: printable ASCII).
    pub provider_config_key: String,
    /// The connection id (the `Connection-Id` header: printable ASCII).
    pub connection_id: String,
    /// The path under the provider's `base_api_url` (`/user/repos`; a `/` is added in front when
    /// missing). It may carry a query string, which [`params`](ProxyRequest::params) are
    /// appended to. `.` and `..` segments are refused: URL parsing would resolve them.
    pub endpoint: String,
    /// Query parameters, in order, form-encoded (a repeated name is a repeated key).
    pub params: Vec<(String, String)>,
    /// Headers for the provider, sent as `Nango-Proxy-<name>` (the server forwards them as
    /// `<name>`), except `Content-Type`, which is sent as it is.
    pub headers: Vec<(String, String)>,
    /// The request body, sent as it is.
    pub body: Option<Vec<u8>>,
    /// How many times the server may retry the call on a 429 or 5xx (the `Retries` header, at
    /// most [`MAX_PROXY_RETRIES`]). `None`: the server's default (none for `POST` and `PATCH`,
    /// a few for idempotent methods). Not the client's own retries of a request that got no
    /// answer from the server ([`ClientBuilder::retries`](crate::ClientBuilder::retries)).
    pub retries: Option<u32>,
    /// Time limit of one attempt, reading the body included; `None`: the client's
    /// [`timeout`](crate::ClientBuilder::timeout). Raise it for a large download.
    pub timeout: Option<Duration>,
}

impl ProxyRequest {
    /// A request of any method.
    pub fn new(
        method: Method,
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest {
            method,
            provider_config_key: provider_config_key.into(),
            connection_id: connection_id.into(),
            endpoint: endpoint.into(),
            params: Vec::new(),
            headers: Vec::new(),
            body: None,
            retries: None,
            timeout: None,
        }
    }

    /// A `GET` of `endpoint`.
    pub fn get(
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest::new(Method::GET, provider_config_key, connection_id, endpoint)
    }

    /// A `POST` to `endpoint`.
    pub fn post(
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest::new(Method::POST, provider_config_key, connection_id, endpoint)
    }

    /// A `PUT` to `endpoint`.
    pub fn put(
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest::new(Method::PUT, provider_config_key, connection_id, endpoint)
    }

    /// A `PATCH` of `endpoint`.
    pub fn patch(
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest::new(Method::PATCH, provider_config_key, connection_id, endpoint)
    }

    /// A `DELETE` of `endpoint`.
    pub fn delete(
        provider_config_key: impl Into<String>,
        connection_id: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> ProxyRequest {
        ProxyRequest::new(Method::DELETE, provider_config_key, connection_id, endpoint)
    }

    /// Adds a query parameter (after those already there).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> ProxyRequest {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds a header for the provider (sent as `Nango-Proxy-<name>`; `Content-Type` as it is).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ProxyRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body as it is, without a `Content-Type` (set one with [`header`](ProxyRequest::header)).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> ProxyRequest {
        self.body = Some(body.into());
        self
    }

    /// `value` as a JSON body, with `Content-Type: application/json` unless a `Content-Type`
    /// header is given. Fails when `value` cannot be serialised (a map with non-string keys).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<ProxyRequest, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::InvalidArgument(format!("The proxy body is not JSON: {e}")))?;
        self.body = Some(body);
        Ok(self.default_content_type("application/json"))
    }

    /// `pairs` as an `application/x-www-form-urlencoded` body (unless a `Content-Type` header is
    /// given).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> ProxyRequest {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            form.append_pair(name.as_ref(), value.as_ref());
        }
        self.body = Some(form.finish().into_bytes());
        self.default_content_type("application/x-www-form-urlencoded")
    }

    /// Sets [`ProxyRequest::retries`].
    pub fn retries(mut self, retries: u32) -> ProxyRequest {
        self.retries = Some(retries);
        self
    }

    /// Sets [`ProxyRequest::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> ProxyRequest {
        self.timeout = Some(timeout);
        self
    }

    fn default_content_type(mut self, content_type: &str) -> ProxyRequest {
        if !self.has_content_type() {
            self.headers
                .push((CONTENT_TYPE.as_str().to_string(), content_type.to_string()));
        }
        self
    }

    fn has_content_type(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()))
    }
}

impl fmt::Debug for ProxyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ProxyRequest")
            .field("method", &self.method)
            .field("provider_config_key", &self.provider_config_key)
            .field("connection_id", &self.connection_id)
            .field("endpoint", &self.endpoint)
            .field("params", &self.params)
            .field("headers", &header_names)
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("{} bytes", b.len())),
            )
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What URL parsing resolves as `.` and `..` segments, encoded or not.
const DOT_SEGMENTS: &[&str] = &[".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"];

/// `base` + `/proxy` + the endpoint (a `/` added in front when missing), with the endpoint's own
/// query followed by `params`.
pub(crate) fn proxy_url(
    base: &Url,
    endpoint: &str,
    params: &[(String, String)],
) -> Result<Url, Error> {
    if endpoint.is_empty() {
        return Err(Error::InvalidArgument(
            "The proxy endpoint must not be empty.".into(),
        ));
    }
    // A `#` would end the URL: it is data here.
    let endpoint = endpoint.replace('#', "%23");
    let (path, query) = match endpoint.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (endpoint.as_str(), None),
    };
    if path
        .split('/')
        .any(|segment| DOT_SEGMENTS.contains(&segment.to_ascii_lowercase().as_str()))
    {
        return Err(Error::InvalidArgument(format!(
            "The proxy endpoint '{endpoint}' cannot be sent: URL parsing resolves its '.' and '..' segments."
        )));
    }
    let slash = if path.starts_with('/') { "" } else { "/" };
    // URL parsing turns `\` into `/` in http(s) paths.
    let path = path.replace('\\', "%5C");
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/proxy{slash}{path}"));
    url.set_query(query.filter(|q| !q.is_empty()));
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url)
}

/// A key or id for a request header: printable ASCII, not empty, no surrounding spaces.
pub(crate) fn header_arg<'a>(name: &str, value: &'a str) -> Result<&'a str, Error> {
    let printable = |b: &u8| (0x20..0x7f).contains(b);
    let ok = !value.is_empty()
        && value.bytes().all(|b| printable(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if ok {
        Ok(value)
    } else {
        Err(Error::InvalidArgument(format!(
            "The {name} '{value}' cannot be sent to the proxy: it goes in a header, which carries printable ASCII only (and not nothing)."
        )))
    }
}

/// The provider's answer, as the server passed it on, **whatever its status**: a provider's
/// 404 or 429 is a `ProxyResponse`, and so is an error of the proxy itself (a 4xx or 5xx whose
/// body is the server's `{"error": ..., "type": ...}`). Check [`status`](ProxyResponse::status).
///
/// The body is not read yet: read it whole ([`bytes`](ProxyResponse::bytes),
/// [`text`](ProxyResponse::text), [`json`](ProxyResponse::json)) or piece by piece
/// ([`chunk`](ProxyResponse::chunk)), so a large download is never held in memory.
#[derive(Debug)]
pub struct ProxyResponse {
    pub(crate) response: reqwest::Response,
    /// For the errors of reading the body: the server, `METHOD /proxy/...` and the timeout.
    pub(crate) host: String,
    pub(crate) request: String,
    pub(crate) timeout: Duration,
}

impl ProxyResponse {
    /// The provider's status (or the proxy's, for its own errors).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The provider's response headers (hop-by-hop ones removed by the server).
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The `Content-Type` header, when there is one and it is text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The next piece of the body, `None` at its end: a download of any size, a piece at a time.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match self.response.chunk().await {
            Ok(chunk) => Ok(chunk),
            Err(e) => Err(self.read_error(e)),
        }
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let (response, failed) = self.split();
        response.bytes().await.map_err(failed)
    }

    /// The whole body as text (invalid UTF-8 replaced; the charset of `Content-Type` honoured).
    pub async fn text(self) -> Result<String, Error> {
        let (response, failed) = self.split();
        response.text().await.map_err(failed)
    }

    /// The whole body, parsed as JSON; [`Error::Decode`] when it is not JSON of that shape.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let text = String::from_utf8_lossy(&bytes);
            Error::Decode(format!(
                "expected JSON ({e}), got: {}",
                text.chars().take(200).collect::<String>()
            ))
        })
    }

    /// The underlying `reqwest::Response` (for `bytes_stream()`, `remote_addr()`, ...).
    pub fn into_inner(self) -> reqwest::Response {
        self.response
    }

    /// A body cut short is [`Error::Network`] (or [`Error::Timeout`]), like a request that got
    /// no answer: it is not retried (part of the body was already handed over).
    fn read_error(&self, source: reqwest::Error) -> Error {
        Error::unreachable(&self.host, self.request.clone(), 1, self.timeout, source)
    }

    fn split(self) -> (reqwest::Response, impl FnOnce(reqwest::Error) -> Error) {
        let ProxyResponse {
            response,
            host,
            request,
            timeout,
        } = self;
        (response, move |e| {
            Error::unreachable(&host, request, 1, timeout, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        let base = Url::parse(base).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        proxy_url(&base, endpoint, &params).map(|u| u.to_string())
    }

    #[test]
    fn the_endpoint_goes_under_proxy_with_its_query_then_the_params() -> Result<(), Error> {
        let h = "http://h:1";
        assert_eq!(url(h, "/user/repos", &[])?, "http://h:1/proxy/user/repos");
        assert_eq!(url(h, "user", &[])?, "http://h:1/proxy/user");
        assert_eq!(url(h, "/", &[])?, "http://h:1/proxy/");
        assert_eq!(
            url(
                h,
                "/search?q=a#b",
                &[("page", "2"), ("l", "x y&z"), ("l", "é")]
            )?,
            "http://h:1/proxy/search?q=a%23b&page=2&l=x+y%26z&l=%C3%A9"
        );
        assert_eq!(
            url(h, "/a b/c%20d...", &[])?,
            "http://h:1/proxy/a%20b/c%20d..."
        );
        assert_eq!(url(h, "/a\\b", &[])?, "http://h:1/proxy/a%5Cb");
        assert_eq!(url(h, "/x?", &[])?, "http://h:1/proxy/x");
        assert_eq!(
            url("https://example.com/nango/", "/x", &[])?,
            "https://example.com/nango/proxy/x"
        );
        Ok(())
    }

    #[test]
    fn empty_and_dot_segment_endpoints_are_refused() {
        for endpoint in [
            "",
            "..",
            "/a/../config",
            "/a/./b",
            "/a/%2E%2e/b",
            "/.%2e",
            "%2e",
        ] {
            assert!(
                matches!(
                    url("http://h:1", endpoint, &[]),
                    Err(Error::InvalidArgument(_))
                ),
                "{endpoint:?}"
            );
        }
        // In the query they are data.
        assert!(url("http://h:1", "/a?path=../b", &[]).is_ok());
    }

    #[test]
    fn keys_and_ids_must_fit_in_a_header() {
        for ok in ["github", "user-42", "a b", "a/b?c#d"] {
            assert!(header_arg("connection_id", ok).is_ok(), "{ok:?}");
        }
        for bad in ["", " a", "a ", "usér", "a\nb", "a\tb"] {
            assert!(
                matches!(
                    header_arg("connection_id", bad),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_and_form_bodies_set_a_content_type_unless_one_is_given() -> Result<(), Error> {
        let r = ProxyRequest::post("k", "c", "/x").json(&serde_json::json!({"a": 1}))?;
        assert_eq!(r.body.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(
            r.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );

        let r = ProxyRequest::post("k", "c", "/x")
            .header("Content-Type", "application/merge-patch+json")
            .json(&serde_json::json!([1]))?;
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].1, "application/merge-patch+json");

        let r = ProxyRequest::patch("k", "c", "/x").form([("state", "closed"), ("a b", "c&d")]);
        assert_eq!(r.body.as_deref(), Some(&b"state=closed&a+b=c%26d"[..]));
        assert_eq!(r.headers[0].1, "application/x-www-form-urlencoded");

        let bad = std::collections::HashMap::from([((1, 2), "non-string key")]);
        assert!(matches!(
            ProxyRequest::post("k", "c", "/x").json(&bad),
            Err(Error::InvalidArgument(_))
        ));
        Ok(())
    }

    #[test]
    fn debug_shows_header_names_and_body_length_only() {
        let r = ProxyRequest::put("k", "c", "/x")
            .header("X-Api-Signature", "very-secret")
            .body(b"secret body".to_vec());
        let debug = format!("{r:?}");
        assert!(debug.contains("X-Api-Signature"), "{debug}");
        assert!(debug.contains("11 bytes"), "{debug}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(!debug.contains("secret body"), "{debug}");
    }

    #[test]
    fn the_shorthands_set_the_method() {
        let methods: Vec<Method> = [
            ProxyRequest::get("k", "c", "/x"),
            ProxyRequest::post("k", "c", "/x"),
            ProxyRequest::put("k", "c", "/x"),
            ProxyRequest::patch("k", "c", "/x"),
            ProxyRequest::delete("k", "c", "/x"),
            ProxyRequest::new(Method::HEAD, "k", "c", "/x"),
        ]
        .into_iter()
        .map(|r| r.method)
        .collect();
        assert_eq!(
            methods,
            [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::HEAD
            ]
        );
    }
}
