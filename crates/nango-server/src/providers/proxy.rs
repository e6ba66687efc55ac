//! What the API proxy takes from a template: where a connection's API calls go (`base_api_url`,
//! filled from the connection) and what every proxied request carries besides the credentials
//! (`proxy`: extra headers and query parameters, and the rate-limit headers worth reading).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::interpolate::{pieces, Piece};
use super::{interpolate_url, CatalogError, InterpolationError, ProviderTemplate};

/// The placeholders a proxy header or query value may use.
pub(super) const ACCESS_TOKEN: &str = "accessToken";
const API_KEY: &str = "apiKey";
const CONNECTION_PARAM: &str = "connectionConfig.params.";
/// `base_api_url: ${metadata.<field>}`: the whole base URL is a value the token response gave.
const METADATA_PREFIX: &str = "metadata.";

/// Headers a template may not set on proxied requests: they frame the request or name its
/// destination, which only the proxy decides.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Extra headers and query parameters of every proxied request, and the response headers that
/// say when a rate-limited call may be retried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyScheme {
    /// Headers added to every proxied request (e.g. `Notion-Version: 2022-06-28`). Values may use
    /// `${accessToken}`, `${apiKey}` and `${connectionConfig.params.<name>}`.
    #[serde(default, deserialize_with = "super::scalar_map")]
    pub headers: IndexMap<String, String>,
    /// Query parameters added to every proxied request, with the same placeholders.
    #[serde(default, deserialize_with = "super::scalar_map")]
    pub query: IndexMap<String, String>,
    /// Response headers that say when calls may resume after a rate limit.
    #[serde(default)]
    pub retry: RetryHeaders,
}

/// A cheap authenticated call the server makes when an API key or username and password is saved,
/// so a wrong credential is refused at connect time instead of at the first proxied call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// GET (the default) or POST (sent with an empty JSON object).
    #[serde(default)]
    pub method: VerificationMethod,
    /// Path (and optional query) under `base_api_url`, starting with `/`, e.g. `/v1/me`.
    pub path: String,
}

/// HTTP method of a verification call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum VerificationMethod {
    #[default]
    Get,
    Post,
}

/// Names of the response headers a provider uses to say when a rate-limited call may be retried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryHeaders {
    /// Holds the Unix time in seconds when calls may resume (e.g. GitHub's `x-ratelimit-reset`).
    #[serde(default)]
    pub at: Option<String>,
    /// Holds the number of seconds to wait (e.g. `retry-after`).
    #[serde(default)]
    pub after: Option<String>,
}

impl ProxyScheme {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
            && self.query.is_empty()
            && self.retry.at.is_none()
            && self.retry.after.is_none()
    }
}

/// Why a connection's API base URL could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum ProxyUrlError {
    #[error(
        "the provider has no base_api_url in the catalog, so its API cannot be proxied; an operator \
         providers file (NANGO_PROVIDERS_FILE) can add one to the provider's entry"
    )]
    NoBaseUrl,
    /// A `${connectionConfig.params.<name>}` placeholder had no value, or an unsafe one.
    #[error(transparent)]
    Interpolation(#[from] InterpolationError),
    /// `base_api_url: ${metadata.<field>}` and the connection's metadata has no such field, or
    /// not an absolute http(s) URL without userinfo, query or fragment.
    #[error(
        "the connection's metadata field '{field}' (the provider's API base URL) is missing or is \
         not an absolute http(s) URL"
    )]
    BadMetadataUrl { field: String },
    /// F17: the token response named a host the template does not admit.
    #[error("the connection's metadata field '{field}' (the provider's API base URL) is refused: {reason}")]
    MetadataHost { field: String, reason: String },
    /// The operator's host for a built-in template is an address it may not reach.
    #[error("the provider's API host is refused: {0}")]
    Host(super::HostRefusal),
    /// The template's base_api_url does not parse; a catalog-loaded template cannot get here.
    #[error("the provider's base_api_url is not a valid URL: {reason}")]
    InvalidTemplate { reason: String },
}

/// The base URL of the provider's REST API for one connection: the template's `base_api_url`
/// with its placeholders filled, or the connection's metadata value it names.
///
/// - `connection_config` is the connection's stored connection config, keyed by the full
///   placeholder text, as for [`interpolate_url`]: the frontend's `params: {subdomain: 'acme'}`
///   is `{"connectionConfig.params.subdomain": "acme"}` (`Connection::connection_config`).
///   Values must be host names or labels, as for the OAuth URLs.
/// - `metadata` is the connection's metadata, keyed by the bare field name as the callback saved
///   it from `token_response_metadata` (`{"instance_url": "https://na1.salesforce.com"}`,
///   `Connection::metadata`); only read when `base_api_url` is `${metadata.<field>}`.
///
/// The URL is returned as the template gives it, with or without a trailing `/` (a bare host
/// parses with the path `/`): append the proxied path to `path().trim_end_matches('/')` rather
/// than calling `Url::join`, which would drop the base's last path segment.
pub fn api_base_url(
    template: &ProviderTemplate,
    connection_config: &Map<String, Value>,
    metadata: &Map<String, Value>,
) -> Result<Url, ProxyUrlError> {
    api_target(template, connection_config, metadata).map(|target| target.url)
}

/// Where a connection's proxied calls go, and whether that host was chosen by someone other than
/// the operator (a host placeholder of a built-in template, or a token response's URL that no
/// operator file names): those calls must reach public addresses only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTarget {
    pub url: Url,
    pub public_only: bool,
}

/// [`api_base_url`] with the host rules: a `${metadata.<field>}` URL must be https under one of
/// the template's `metadata_url_hosts` (an operator file may list a local host and use http for
/// it), and never an IP literal or local name unless an operator file lists it.
pub fn api_target(
    template: &ProviderTemplate,
    connection_config: &Map<String, Value>,
    metadata: &Map<String, Value>,
) -> Result<ApiTarget, ProxyUrlError> {
    let base = template
        .base_api_url
        .as_deref()
        .ok_or(ProxyUrlError::NoBaseUrl)?;
    if let Some(field) = metadata_field(base) {
        let url = metadata
            .get(field)
            .and_then(Value::as_str)
            .and_then(absolute_base_url)
            .ok_or_else(|| ProxyUrlError::BadMetadataUrl {
                field: field.to_string(),
            })?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        let listed = template.metadata_url_hosts.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("*.")
                .trim_matches('.')
                .to_ascii_lowercase();
            host == entry || host.ends_with(&format!(".{entry}"))
        });
        let refused = |reason: String| ProxyUrlError::MetadataHost {
            field: field.to_string(),
            reason,
        };
        if !template.metadata_url_hosts.is_empty() && !listed {
            return Err(refused(format!(
                "its host is not under the provider's domains ({})",
                template.metadata_url_hosts.join(", ")
            )));
        }
        let operator_allowed = template.operator_file && listed;
        if url.scheme() != "https" && !operator_allowed {
            return Err(refused("it is not https".into()));
        }
        if !operator_allowed {
            super::check_host_name(host).map_err(|e| refused(e.to_string()))?;
        }
        return Ok(ApiTarget {
            url,
            public_only: !operator_allowed,
        });
    }
    let filled = interpolate_url(base, connection_config)?;
    let url = Url::parse(&filled).map_err(|e| ProxyUrlError::InvalidTemplate {
        reason: e.to_string(),
    })?;
    let public_only = !template.operator_file && !template.hosts.host.is_empty();
    if public_only {
        let host = url.host_str().unwrap_or_default();
        super::check_host_name(host).map_err(ProxyUrlError::Host)?;
    }
    Ok(ApiTarget { url, public_only })
}

/// `field` when `base_api_url` is exactly `${metadata.<field>}`.
fn metadata_field(base_api_url: &str) -> Option<&str> {
    let name = base_api_url.strip_prefix("${")?.strip_suffix('}')?;
    // One placeholder, nothing around it (a brace inside would mean two, or a nested one).
    if name.contains(['{', '}']) {
        return None;
    }
    name.strip_prefix(METADATA_PREFIX)
        .filter(|field| !field.is_empty())
}

/// A provider-given base URL (Salesforce's `instance_url`) is used only if it is a plain absolute
/// http(s) URL: no userinfo to smuggle credentials, no query or fragment to mangle the path.
fn absolute_base_url(value: &str) -> Option<Url> {
    let url = Url::parse(value).ok()?;
    let plain = matches!(url.scheme(), "https" | "http")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then_some(url)
}

/// Why a proxy header or query value could not be filled in.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyValueError {
    /// A `${` never closed, or an empty or nested name; a catalog-loaded value cannot have one.
    #[error("the template value has an unclosed, empty or nested `${{...}}` placeholder")]
    Malformed,
    #[error("no value for the placeholder ${{{name}}}")]
    Missing { name: String },
    /// A value with a line break or NUL would split or end a header.
    #[error("the value for the placeholder ${{{name}}} contains a line break or NUL")]
    Unsafe { name: String },
}

/// Replaces every `${name}` in a proxy header or query value with `lookup(name)` (the name is the
/// text in the braces: `accessToken`, `apiKey` or `connectionConfig.params.<name>`). Fails when a
/// lookup gives nothing, or a value holds CR, LF or NUL.
pub fn fill_proxy_value(
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ProxyValueError> {
    let pieces = pieces(value).ok_or(ProxyValueError::Malformed)?;
    let mut out = String::with_capacity(value.len() + 32);
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => {
                let filled = lookup(name).ok_or_else(|| ProxyValueError::Missing {
                    name: name.to_string(),
                })?;
                if filled.contains(['\r', '\n', '\0']) {
                    return Err(ProxyValueError::Unsafe {
                        name: name.to_string(),
                    });
                }
                out.push_str(&filled);
            }
        }
    }
    Ok(out)
}

/// Whether a header or query value of the template sends the access token itself (e.g.
/// `X-Shopify-Access-Token: ${accessToken}`), in which case the proxy adds no default
/// `Authorization: Bearer` header.
pub fn mentions_access_token(proxy: &ProxyScheme) -> bool {
    mentions(proxy, ACCESS_TOKEN)
}

/// Whether a header or query value of the template sends the API key itself, in which case the
/// proxy puts it nowhere else.
pub fn mentions_api_key(proxy: &ProxyScheme) -> bool {
    mentions(proxy, API_KEY)
}

fn mentions(proxy: &ProxyScheme, placeholder: &str) -> bool {
    proxy
        .headers
        .values()
        .chain(proxy.query.values())
        .any(|value| {
            pieces(value).is_some_and(|pieces| pieces.contains(&Piece::Placeholder(placeholder)))
        })
}

fn is_proxy_placeholder(name: &str) -> bool {
    name == ACCESS_TOKEN
        || name == API_KEY
        || name
            .strip_prefix(CONNECTION_PARAM)
            .is_some_and(|param| !param.is_empty())
}

impl ProviderTemplate {
    /// `base_api_url`: an http(s) URL by the same rules as `token_url` (placeholders filled from
    /// the connection config) and with no userinfo, query or fragment, since paths are appended
    /// to it; or exactly `${metadata.<field>}` for a field of `token_response_metadata` or
    /// `metadata_request.fields`.
    pub(super) fn check_base_api_url(
        &self,
        provider: &str,
        allow_http: bool,
    ) -> Result<(), CatalogError> {
        let Some(base) = &self.base_api_url else {
            return Ok(());
        };
        let invalid = |reason: String| CatalogError::InvalidUrl {
            provider: provider.to_string(),
            field: "base_api_url",
            reason,
        };
        if let Some(field) = metadata_field(base) {
            let requested = self
                .metadata_request
                .as_ref()
                .is_some_and(|r| r.fields.contains_key(field));
            if !requested && !self.token_response_metadata.iter().any(|f| f == field) {
                return Err(invalid(format!(
                    "uses ${{metadata.{field}}}, but '{field}' is not in token_response_metadata or metadata_request.fields"
                )));
            }
            return self.check_metadata_url_hosts(provider, allow_http);
        }
        if !self.metadata_url_hosts.is_empty() {
            return Err(CatalogError::InvalidUrl {
                provider: provider.to_string(),
                field: "metadata_url_hosts",
                reason: "applies only to a base_api_url of the form ${metadata.<field>}".into(),
            });
        }
        let mentions_metadata = pieces(base).is_some_and(|pieces| {
            pieces
                .iter()
                .any(|p| matches!(p, Piece::Placeholder(name) if name.starts_with(METADATA_PREFIX)))
        });
        if mentions_metadata {
            return Err(invalid(
                "may use a ${metadata.<field>} placeholder only as its whole value".to_string(),
            ));
        }
        let sample = super::check_url(provider, "base_api_url", base, allow_http)?;
        if !sample.username().is_empty() || sample.password().is_some() {
            return Err(invalid("must not contain userinfo".to_string()));
        }
        if sample.query().is_some() || sample.fragment().is_some() {
            return Err(invalid(
                "must not have a query string or fragment (use proxy.query)".to_string(),
            ));
        }
        Ok(())
    }

    /// The token response chooses the proxy's host for `${metadata.<field>}` base URLs, so a
    /// built-in template must say under which domains that host may be; an operator file may name
    /// exact local hosts too (for local providers), but built-in entries never can.
    fn check_metadata_url_hosts(
        &self,
        provider: &str,
        operator_file: bool,
    ) -> Result<(), CatalogError> {
        let invalid = |reason: String| CatalogError::InvalidUrl {
            provider: provider.to_string(),
            field: "metadata_url_hosts",
            reason,
        };
        if self.metadata_url_hosts.is_empty() && !operator_file {
            return Err(invalid(
                "is required with base_api_url: ${metadata.<field>} (the domains the provider's API hosts are under)".into(),
            ));
        }
        for entry in &self.metadata_url_hosts {
            let valid_text = !entry.is_empty()
                && entry
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
            if !valid_text {
                return Err(invalid(format!("'{entry}' is not a host name")));
            }
            if !operator_file {
                if let Err(e) = super::check_host_name(entry) {
                    return Err(invalid(format!("'{entry}' is not allowed: {e}")));
                }
            }
        }
        Ok(())
    }

    /// `proxy`: header names are HTTP header names the proxy does not own, values hold no line
    /// breaks and use only the placeholders the proxy fills.
    /// A verification call goes to the provider's API with the saved credential, so it needs a
    /// base URL, a mode with such a credential, and a path that stays under that URL.
    pub(super) fn check_verification(&self, provider: &str) -> Result<(), CatalogError> {
        let Some(verification) = &self.verification else {
            return Ok(());
        };
        let invalid = |reason: &str| CatalogError::Template {
            provider: provider.to_string(),
            message: format!("verification {reason}"),
        };
        if !matches!(
            self.auth_mode,
            super::AuthMode::ApiKey | super::AuthMode::Basic
        ) {
            return Err(invalid("applies only to API_KEY and BASIC templates"));
        }
        if self.base_api_url.is_none() {
            return Err(invalid("needs a base_api_url"));
        }
        let path = &verification.path;
        let well_formed = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains(['#', '\\', ' ', '\r', '\n', '\0'])
            && !path.split(['/', '?']).any(|segment| segment == "..")
            && !path.contains("${");
        if !well_formed {
            return Err(invalid(
                "path must start with one `/`, stay under base_api_url (no `..`) and have no placeholder, fragment or space",
            ));
        }
        Ok(())
    }

    pub(super) fn check_proxy(&self, provider: &str) -> Result<(), CatalogError> {
        let invalid = |field: String, reason: &str| CatalogError::InvalidProxy {
            provider: provider.to_string(),
            field,
            reason: reason.to_string(),
        };
        for (name, value) in &self.proxy.headers {
            let field = format!("proxy.headers.{name}");
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(field, "is not a valid HTTP header name"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(invalid(field, "is a header only the proxy sets"));
            }
            check_proxy_value(value).map_err(|reason| invalid(field.clone(), reason))?;
            let sample = fill_proxy_value(value, |_| Some("sample".to_string()))
                .map_err(|_| invalid(field.clone(), PLACEHOLDER_RULE))?;
            if axum::http::HeaderValue::from_str(&sample).is_err() {
                return Err(invalid(field, "is not a valid HTTP header value"));
            }
        }
        for (name, value) in &self.proxy.query {
            let field = format!("proxy.query.{name}");
            if name.is_empty() || name.contains(['\r', '\n', '\0']) {
                return Err(invalid(field, "is not a valid query parameter name"));
            }
            check_proxy_value(value).map_err(|reason| invalid(field, reason))?;
        }
        let retry = [
            ("proxy.retry.at", &self.proxy.retry.at),
            ("proxy.retry.after", &self.proxy.retry.after),
        ];
        for (field, name) in retry {
            if let Some(name) = name {
                if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(invalid(
                        field.to_string(),
                        "is not a valid HTTP header name",
                    ));
                }
            }
        }
        Ok(())
    }
}

const PLACEHOLDER_RULE: &str = "may only use the placeholders ${accessToken}, ${apiKey} and \
                                ${connectionConfig.params.<name>}";

fn check_proxy_value(value: &str) -> Result<(), &'static str> {
    if value.contains(['\r', '\n', '\0']) {
        return Err("must not contain a line break or NUL");
    }
    let pieces = pieces(value).ok_or(PLACEHOLDER_RULE)?;
    let all_known = pieces.iter().all(|piece| match piece {
        Piece::Text(_) => true,
        Piece::Placeholder(name) => is_proxy_placeholder(name),
    });
    if all_known {
        Ok(())
    } else {
        Err(PLACEHOLDER_RULE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use crate::providers::tests::x_with;
    use crate::providers::Catalog;
    use serde_json::json;

    fn load(yaml: &str) -> ProviderTemplate {
        let catalog = Catalog::from_yaml(yaml, false).unwrap();
        catalog.get("x").cloned().unwrap()
    }

    /// As an operator's providers file loads it.
    fn load_operator(yaml: &str) -> ProviderTemplate {
        let catalog = Catalog::from_yaml(yaml, true).unwrap();
        catalog.get("x").cloned().unwrap()
    }

    #[test]
    fn builtin_metadata_base_urls_declare_public_domains() {
        let base = [
            "  token_response_metadata: [instance_url]",
            "  base_api_url: ${metadata.instance_url}",
        ];
        let err = error(&x_with(&base), false);
        assert!(err.contains("metadata_url_hosts is required"), "{err}");
        for entry in ["127.0.0.1", "localhost", "metadata.google.internal", "a/b"] {
            let line = format!("  metadata_url_hosts: ['{entry}']");
            let err = error(&x_with(&[base[0], base[1], &line]), false);
            assert!(err.contains("metadata_url_hosts"), "{entry}: {err}");
        }
        let t = load(&x_with(&[
            base[0],
            base[1],
            "  metadata_url_hosts: [salesforce.com]",
        ]));
        let metadata = map(&[("instance_url", json!("https://acme.my.salesforce.com"))]);
        let target = api_target(&t, &Map::new(), &metadata).unwrap();
        assert!(target.public_only);
        for elsewhere in [
            "https://salesforce.com.evil.example",
            "https://evilsalesforce.com",
            "http://na1.salesforce.com",
        ] {
            let metadata = map(&[("instance_url", json!(elsewhere))]);
            assert!(
                api_target(&t, &Map::new(), &metadata).is_err(),
                "{elsewhere}"
            );
        }
        // Only with a metadata base URL.
        let err = error(
            &x_with(&[
                "  base_api_url: https://api.example.com",
                "  metadata_url_hosts: [example.com]",
            ]),
            false,
        );
        assert!(err.contains("metadata_url_hosts"), "{err}");
    }

    fn error(yaml: &str, allow_http: bool) -> String {
        Catalog::from_yaml(yaml, allow_http)
            .unwrap_err()
            .to_string()
    }

    fn map(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    const SUBDOMAIN: &str = "connectionConfig.params.subdomain";

    #[test]
    fn the_fields_load_and_default_to_empty() {
        let t = load(&x_with(&[]));
        assert!(t.base_api_url.is_none());
        assert!(t.proxy.is_empty());
        assert_eq!(t.proxy, ProxyScheme::default());

        let t = load(&x_with(&[
            "  base_api_url: https://${connectionConfig.params.subdomain}.a.example/api/",
            "  proxy:",
            "    headers:",
            "      Notion-Version: '2022-06-28'",
            "      X-Shop-Token: ${accessToken}",
            "      X-Version: 2",
            "    query:",
            "      key: ${connectionConfig.params.key}",
            "    retry:",
            "      at: x-ratelimit-reset",
            "      after: Retry-After",
        ]));
        assert_eq!(
            t.base_api_url.as_deref(),
            Some("https://${connectionConfig.params.subdomain}.a.example/api/")
        );
        let headers: Vec<(&str, &str)> = t
            .proxy
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("Notion-Version", "2022-06-28"),
                ("X-Shop-Token", "${accessToken}"),
                ("X-Version", "2")
            ]
        );
        assert_eq!(t.proxy.query["key"], "${connectionConfig.params.key}");
        assert_eq!(t.proxy.retry.at.as_deref(), Some("x-ratelimit-reset"));
        assert_eq!(t.proxy.retry.after.as_deref(), Some("Retry-After"));
        assert!(!t.proxy.is_empty());
    }

    #[test]
    fn bad_fields_are_refused_at_load() {
        let cases = [
            (
                x_with(&["  base_api_url: http://api.a.example"]),
                "provider 'x': base_api_url must be an https URL",
            ),
            (
                x_with(&["  base_api_url: api.a.example"]),
                "provider 'x': base_api_url must be an https URL",
            ),
            (
                x_with(&["  base_api_url: https://${a.example/"]),
                "provider 'x': base_api_url has an unclosed",
            ),
            (
                x_with(&["  base_api_url: https://u:p@api.a.example"]),
                "provider 'x': base_api_url must not contain userinfo",
            ),
            (
                x_with(&["  base_api_url: https://api.a.example/?key=1"]),
                "provider 'x': base_api_url must not have a query string or fragment",
            ),
            (
                x_with(&["  base_api_url: https://api.a.example/#x"]),
                "provider 'x': base_api_url must not have a query string or fragment",
            ),
            (
                x_with(&["  base_api_url: ${metadata.instance_url}"]),
                "provider 'x': base_api_url uses ${metadata.instance_url}, but 'instance_url' is not in token_response_metadata or metadata_request.fields",
            ),
            (
                x_with(&[
                    "  token_response_metadata: [instance_url]",
                    "  base_api_url: ${metadata.instance_url}/api",
                ]),
                "provider 'x': base_api_url may use a ${metadata.<field>} placeholder only as its whole value",
            ),
            (
                x_with(&["  base_api_url: [1]"]),
                "provider 'x': base_api_url: invalid type: sequence",
            ),
            (
                x_with(&["  proxy:", "    base: https://a"]),
                "provider 'x': proxy: unknown field `base`",
            ),
            (
                x_with(&["  proxy:", "    retry:", "      remaining: x"]),
                "provider 'x': proxy.retry: unknown field `remaining`",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      \"bad header\": x"]),
                "provider 'x': proxy.headers.bad header is not a valid HTTP header name",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      Host: evil.example"]),
                "provider 'x': proxy.headers.Host is a header only the proxy sets",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      X-A: \"a\\r\\nX-B: b\""]),
                "provider 'x': proxy.headers.X-A must not contain a line break or NUL",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      X-A: \"a\\u0001\""]),
                "provider 'x': proxy.headers.X-A is not a valid HTTP header value",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      X-A: ${clientSecret}"]),
                "provider 'x': proxy.headers.X-A may only use the placeholders",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      X-A: ${connectionConfig.params.}"]),
                "provider 'x': proxy.headers.X-A may only use the placeholders",
            ),
            (
                x_with(&["  proxy:", "    headers:", "      X-A: ${accessToken"]),
                "provider 'x': proxy.headers.X-A may only use the placeholders",
            ),
            (
                x_with(&["  proxy:", "    query:", "      key: \"a\\nb\""]),
                "provider 'x': proxy.query.key must not contain a line break or NUL",
            ),
            (
                x_with(&["  proxy:", "    query:", "      key: ${metadata.x}"]),
                "provider 'x': proxy.query.key may only use the placeholders",
            ),
            (
                x_with(&["  proxy:", "    query:", "      \"\": x"]),
                "provider 'x': proxy.query. is not a valid query parameter name",
            ),
            (
                x_with(&["  proxy:", "    retry:", "      at: \"x ratelimit\""]),
                "provider 'x': proxy.retry.at is not a valid HTTP header name",
            ),
            (
                x_with(&["  proxy:", "    retry:", "      after: \"\""]),
                "provider 'x': proxy.retry.after is not a valid HTTP header name",
            ),
        ];
        for (yaml, expected) in cases {
            let message = error(&yaml, false);
            assert!(message.starts_with(expected), "{yaml:?}: {message}");
        }
    }

    #[test]
    fn an_operator_file_may_use_http_and_a_trailing_slash() {
        let yaml = x_with(&["  base_api_url: http://127.0.0.1:9999/api/"]);
        assert!(Catalog::from_yaml(&yaml, false).is_err());
        let catalog = Catalog::from_yaml(&yaml, true).unwrap();
        let t = catalog.get("x").unwrap();
        let url = api_base_url(t, &Map::new(), &Map::new()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9999/api/");
        assert_eq!(
            error(&x_with(&["  base_api_url: ftp://a/"]), true).as_str(),
            "provider 'x': base_api_url must be an https or http URL"
        );
    }

    #[test]
    fn no_base_url_says_how_to_add_one() {
        let t = load(&x_with(&[]));
        let err = api_base_url(&t, &Map::new(), &Map::new()).unwrap_err();
        assert!(matches!(err, ProxyUrlError::NoBaseUrl), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("no base_api_url in the catalog"),
            "{message}"
        );
        assert!(message.contains("operator providers file"), "{message}");
    }

    #[test]
    fn a_fixed_base_url_is_returned_as_is() {
        let t = load(&x_with(&["  base_api_url: https://api.a.example/v1"]));
        let url = api_base_url(&t, &Map::new(), &Map::new()).unwrap();
        assert_eq!(url.as_str(), "https://api.a.example/v1");
        let t = load(&x_with(&["  base_api_url: https://api.a.example"]));
        let url = api_base_url(&t, &Map::new(), &Map::new()).unwrap();
        assert_eq!(url.as_str(), "https://api.a.example/");
    }

    #[test]
    fn connection_config_params_are_filled_with_the_host_rules() {
        let t = load(&x_with(&[
            "  base_api_url: https://${connectionConfig.params.subdomain}.zendesk.example/api/v2",
        ]));
        let config = map(&[(SUBDOMAIN, json!("acme"))]);
        let url = api_base_url(&t, &config, &Map::new()).unwrap();
        assert_eq!(url.as_str(), "https://acme.zendesk.example/api/v2");

        let err = api_base_url(&t, &Map::new(), &Map::new()).unwrap_err();
        assert!(
            matches!(
                err,
                ProxyUrlError::Interpolation(InterpolationError::MissingParams { .. })
            ),
            "{err:?}"
        );
        // The bare name is not the key: the map is keyed like the OAuth URLs'.
        let bare = map(&[("subdomain", json!("acme"))]);
        assert!(matches!(
            api_base_url(&t, &bare, &Map::new()),
            Err(ProxyUrlError::Interpolation(
                InterpolationError::MissingParams { .. }
            ))
        ));
        for value in ["evil.example/x", "a@b", "x?y", "a:1", ""] {
            let config = map(&[(SUBDOMAIN, json!(value))]);
            let err = api_base_url(&t, &config, &Map::new()).unwrap_err();
            assert!(
                matches!(
                    &err,
                    ProxyUrlError::Interpolation(InterpolationError::UnsafeValue { name })
                        if name == SUBDOMAIN
                ),
                "{value:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_metadata_base_url_is_read_from_the_connection() {
        let t = load_operator(&x_with(&[
            "  token_response_metadata: [instance_url]",
            "  base_api_url: ${metadata.instance_url}",
        ]));
        let metadata = map(&[("instance_url", json!("https://na1.salesforce.com"))]);
        let url = api_base_url(&t, &Map::new(), &metadata).unwrap();
        assert_eq!(url.as_str(), "https://na1.salesforce.com/");
        // An operator-file template without metadata_url_hosts: https and public names only
        // (review F17, repro E15).
        for refused in [
            "http://na1.salesforce.com",
            "http://127.0.0.1:8080/base",
            "https://127.0.0.1:8080/base",
            "https://169.254.169.254/",
            "https://localhost/",
            "https://metadata.google.internal/",
        ] {
            let metadata = map(&[("instance_url", json!(refused))]);
            let err = api_base_url(&t, &Map::new(), &metadata).unwrap_err();
            assert!(
                matches!(&err, ProxyUrlError::MetadataHost { field, .. } if field == "instance_url"),
                "{refused}: {err:?}"
            );
        }
        // Listed in an operator file: that host, over http too.
        let local = load_operator(&x_with(&[
            "  token_response_metadata: [instance_url]",
            "  base_api_url: ${metadata.instance_url}",
            "  metadata_url_hosts: ['127.0.0.1']",
        ]));
        let metadata = map(&[("instance_url", json!("http://127.0.0.1:8080/base"))]);
        let target = api_target(&local, &Map::new(), &metadata).unwrap();
        assert_eq!(target.url.as_str(), "http://127.0.0.1:8080/base");
        assert!(!target.public_only);
        let metadata = map(&[("instance_url", json!("https://na1.salesforce.com"))]);
        assert!(api_base_url(&local, &Map::new(), &metadata).is_err());

        let bad = [
            None,
            Some(json!(42)),
            Some(json!(null)),
            Some(json!("")),
            Some(json!("na1.salesforce.com")),
            Some(json!("/services/data")),
            Some(json!("ftp://na1.salesforce.com")),
            Some(json!("javascript:alert(1)")),
            Some(json!("https://user:pass@na1.salesforce.com")),
            Some(json!("https://user@na1.salesforce.com")),
            Some(json!("https://na1.salesforce.com/?a=b")),
            Some(json!("https://na1.salesforce.com/#x")),
        ];
        for value in bad {
            let metadata = value
                .clone()
                .map(|v| map(&[("instance_url", v)]))
                .unwrap_or_default();
            let err = api_base_url(&t, &Map::new(), &metadata).unwrap_err();
            assert!(
                matches!(&err, ProxyUrlError::BadMetadataUrl { field } if field == "instance_url"),
                "{value:?}: {err:?}"
            );
            assert!(err.to_string().contains("'instance_url'"), "{err}");
        }
    }

    #[test]
    fn fill_proxy_value_replaces_every_placeholder() {
        let lookup = |name: &str| match name {
            "accessToken" => Some("tok".to_string()),
            "apiKey" => Some("k-1".to_string()),
            "connectionConfig.params.version" => Some("2024-01-01".to_string()),
            _ => None,
        };
        assert_eq!(fill_proxy_value("plain", lookup).unwrap(), "plain");
        assert_eq!(fill_proxy_value("", lookup).unwrap(), "");
        assert_eq!(
            fill_proxy_value("Bearer ${accessToken}", lookup).unwrap(),
            "Bearer tok"
        );
        assert_eq!(
            fill_proxy_value(
                "${apiKey}:${accessToken}; v=${connectionConfig.params.version}",
                lookup
            )
            .unwrap(),
            "k-1:tok; v=2024-01-01"
        );
        // `$` and braces alone are text.
        assert_eq!(fill_proxy_value("$x {y}", lookup).unwrap(), "$x {y}");
    }

    #[test]
    fn fill_proxy_value_refuses_missing_unsafe_and_malformed() {
        let lookup = |name: &str| match name {
            "accessToken" => Some("tok\r\nX-Evil: 1".to_string()),
            "apiKey" => Some("a\0b".to_string()),
            "connectionConfig.params.v" => Some("line\nbreak".to_string()),
            _ => None,
        };
        assert_eq!(
            fill_proxy_value("x ${connectionConfig.params.missing}", lookup),
            Err(ProxyValueError::Missing {
                name: "connectionConfig.params.missing".to_string()
            })
        );
        for (value, name) in [
            ("Bearer ${accessToken}", "accessToken"),
            ("${apiKey}", "apiKey"),
            ("${connectionConfig.params.v}", "connectionConfig.params.v"),
        ] {
            assert_eq!(
                fill_proxy_value(value, lookup),
                Err(ProxyValueError::Unsafe {
                    name: name.to_string()
                }),
                "{value}"
            );
        }
        for value in ["${accessToken", "${}", "${a{b}"] {
            assert_eq!(
                fill_proxy_value(value, |_| Some("v".to_string())),
                Err(ProxyValueError::Malformed),
                "{value}"
            );
        }
        let err = fill_proxy_value("${apiKey}", |_| None).unwrap_err();
        assert_eq!(err.to_string(), "no value for the placeholder ${apiKey}");
    }

    #[test]
    fn mentions_access_token_looks_at_headers_and_query() {
        let mut proxy = ProxyScheme::default();
        assert!(!mentions_access_token(&proxy));
        proxy
            .headers
            .insert("Notion-Version".into(), "2022-06-28".into());
        proxy.query.insert("key".into(), "${apiKey}".into());
        assert!(!mentions_access_token(&proxy));
        // Only the placeholder counts, not the text.
        proxy.headers.insert("X-Note".into(), "accessToken".into());
        assert!(!mentions_access_token(&proxy));

        let mut header = proxy.clone();
        header
            .headers
            .insert("X-Shopify-Access-Token".into(), "${accessToken}".into());
        assert!(mentions_access_token(&header));
        let mut query = proxy.clone();
        query
            .query
            .insert("access_token".into(), "${accessToken}".into());
        assert!(mentions_access_token(&query));
        let mut prefixed = proxy;
        prefixed
            .headers
            .insert("Authorization".into(), "token ${accessToken}".into());
        assert!(mentions_access_token(&prefixed));
    }
}
