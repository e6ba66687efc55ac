//! The provider catalog: typed templates saying how each provider does OAuth (and where its API
//! is, for the proxy), loaded from the built-in `providers.yaml` and an optional operator file,
//! plus URL placeholder interpolation.
//!
//! Provider quirks are data in the YAML so that the flow code can follow templates instead of
//! naming providers.

mod flow;
mod hosts;
mod interpolate;
mod nango_format;
mod proxy;

pub use hosts::{
    check_host_name, check_resolved_host, is_dns_label, is_public, settle_connection_config,
    settled_url, stored_url, HostError, HostPlaceholders, HostRefusal, ValueSource, PARAMS_PREFIX,
};

pub use flow::{fill_exchange_params, fill_metadata_headers, fill_params, FlowValues};
pub use interpolate::{interpolate_url, InterpolationError};
pub use proxy::{
    api_base_url, api_target, fill_proxy_value, mentions_access_token, mentions_api_key, ApiTarget,
    ProxyScheme, ProxyUrlError, ProxyValueError, RetryHeaders, Verification, VerificationMethod,
};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use interpolate::{pieces, Piece};

/// The built-in catalog (Nango 0.9.4's list), compiled into the binary.
pub const BUILTIN_CATALOG: &str = include_str!("../../providers.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuthMode {
    /// Authorization code grant, through the user's browser.
    #[serde(rename = "OAUTH2")]
    OAuth2,
    /// OAuth 1.0a, through the user's browser.
    #[serde(rename = "OAUTH1")]
    OAuth1,
    /// Client credentials grant: the server fetches (and refetches) the token, no user involved.
    #[serde(rename = "OAUTH2_CC")]
    OAuth2ClientCredentials,
    /// The end user's API key, stored as given.
    #[serde(rename = "API_KEY")]
    ApiKey,
    /// The end user's username and password, stored as given.
    #[serde(rename = "BASIC")]
    Basic,
}

impl AuthMode {
    /// Every mode, in the order they are listed.
    pub const ALL: [AuthMode; 5] = [
        AuthMode::OAuth2,
        AuthMode::OAuth1,
        AuthMode::OAuth2ClientCredentials,
        AuthMode::ApiKey,
        AuthMode::Basic,
    ];

    /// The wire name (`OAUTH2`, `API_KEY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::OAuth2 => "OAUTH2",
            AuthMode::OAuth1 => "OAUTH1",
            AuthMode::OAuth2ClientCredentials => "OAUTH2_CC",
            AuthMode::ApiKey => "API_KEY",
            AuthMode::Basic => "BASIC",
        }
    }

    /// Modes whose connections are made in the user's browser, through `/oauth/connect`.
    pub fn uses_browser_flow(self) -> bool {
        matches!(self, AuthMode::OAuth2 | AuthMode::OAuth1)
    }
}

/// How an API key is checked when stored, and how it is sent to the provider's API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyScheme {
    /// Header the key goes in (e.g. `Authorization`, `X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// Text before the key in that header (e.g. `Bearer `).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Query parameter the key goes in instead of a header.
    #[serde(default)]
    pub query: Option<String>,
    /// A regular expression the whole key must match (the provider's documented key format).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where the user finds their key, for the key-entry form.
    #[serde(default)]
    pub description: Option<String>,
}

/// How a username and password are checked when stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicScheme {
    /// Some APIs take a key as the username and no password.
    #[serde(default = "yes")]
    pub password_required: bool,
    /// A regular expression the whole username must match.
    #[serde(default)]
    pub username_pattern: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for BasicScheme {
    fn default() -> Self {
        BasicScheme {
            password_required: true,
            username_pattern: None,
            description: None,
        }
    }
}

/// How the OAuth2 client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationMethod {
    /// `client_id` and `client_secret` as body parameters.
    #[default]
    Body,
    /// HTTP Basic.
    Header,
    /// Both: HTTP Basic and the body parameters (for token endpoints that want one and ignore
    /// the other, in ways that differ between their code exchange and their refresh).
    Both,
}

impl AuthorizationMethod {
    pub fn sends_basic(self) -> bool {
        matches!(
            self,
            AuthorizationMethod::Header | AuthorizationMethod::Both
        )
    }

    pub fn sends_body(self) -> bool {
        matches!(self, AuthorizationMethod::Body | AuthorizationMethod::Both)
    }
}

/// The unit of a token response's `expires_in`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExpiresInUnit {
    #[default]
    Seconds,
    Milliseconds,
    Minutes,
    Hours,
    Days,
}

impl ExpiresInUnit {
    /// Whole seconds in `value` of this unit (rounded down for milliseconds).
    pub fn to_seconds(self, value: f64) -> f64 {
        match self {
            ExpiresInUnit::Seconds => value,
            ExpiresInUnit::Milliseconds => value / 1000.0,
            ExpiresInUnit::Minutes => value * 60.0,
            ExpiresInUnit::Hours => value * 3600.0,
            ExpiresInUnit::Days => value * 86400.0,
        }
    }
}

/// Where a provider's token response keeps what we read from it, when it is not the RFC 6749
/// shape (Slack's user token under `authed_user`, APIs that wrap everything in `data`, lifetimes
/// in milliseconds or not given at all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponseShape {
    /// Dotted path of the access token (e.g. `authed_user.access_token`). Default: `access_token`.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Dotted path of the refresh token. Default: `refresh_token`.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Dotted path of the lifetime. Default: `expires_in`.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Unit of that lifetime. Default: seconds.
    #[serde(default)]
    pub expires_in_unit: ExpiresInUnit,
    /// Lifetime in seconds of tokens whose response says nothing about it (documented by the
    /// provider), so they get refreshed in time. Default: none (the token is taken as not expiring).
    #[serde(default)]
    pub default_expires_in: Option<u64>,
    /// True for providers whose non-expiring tokens come with `expires_in: 0` (Mailchimp): a
    /// zero lifetime is then read as none. Default: false (zero is already expired).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero_expires_in_never_expires: bool,
}

impl TokenResponseShape {
    pub fn access_token_path(&self) -> &str {
        self.access_token.as_deref().unwrap_or("access_token")
    }

    pub fn refresh_token_path(&self) -> &str {
        self.refresh_token.as_deref().unwrap_or("refresh_token")
    }

    pub fn expires_in_path(&self) -> &str {
        self.expires_in.as_deref().unwrap_or("expires_in")
    }
}

/// Encoding of the OAuth2 token request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Form,
    Json,
}

/// OAuth 1.0a signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SignatureMethod {
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    #[serde(rename = "RSA-SHA1")]
    RsaSha1,
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

/// HTTP method of an OAuth1 request-token or access-token call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
}

/// One provider's entry in the catalog; field meanings are documented at the top of
/// `providers.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderTemplate {
    pub auth_mode: AuthMode,
    /// Required for OAUTH2 and OAUTH1; empty for the modes without a browser flow.
    #[serde(default)]
    pub authorization_url: String,
    /// Required for OAUTH2, OAUTH1 and OAUTH2_CC.
    #[serde(default)]
    pub token_url: String,
    #[serde(default, deserialize_with = "scalar_map")]
    pub authorization_params: IndexMap<String, String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub token_params: IndexMap<String, String>,
    #[serde(default)]
    pub scope_separator: Option<String>,
    #[serde(default)]
    pub authorization_method: AuthorizationMethod,
    #[serde(default)]
    pub body_format: BodyFormat,
    #[serde(default)]
    pub disable_pkce: bool,
    #[serde(default)]
    pub refresh_url: Option<String>,
    #[serde(default)]
    pub redirect_uri_metadata: Vec<String>,
    #[serde(default)]
    pub token_response_metadata: Vec<String>,
    #[serde(default)]
    pub request_url: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub request_params: IndexMap<String, String>,
    #[serde(default)]
    pub request_http_method: HttpMethod,
    #[serde(default)]
    pub token_http_method: HttpMethod,
    #[serde(default)]
    pub signature_method: Option<SignatureMethod>,
    /// A typo in Nango's airtable and asana templates (`auth: {response_type: code}`), kept so
    /// those templates load; nothing reads it.
    #[serde(default)]
    pub auth: Option<IndexMap<String, String>>,
    /// The provider's name for people, e.g. `Google Calendar`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The provider's own OAuth documentation (https).
    #[serde(default)]
    pub docs: Option<String>,
    /// When the entry was last checked against `docs` (`YYYY-MM-DD`).
    #[serde(default)]
    pub verified: Option<String>,
    /// What kind of API it is (`crm`, `communication`, ...), for browsing the catalog.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Scopes a user of the catalog usually needs, shown when browsing it.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// The values each connection supplies (`auth(key, id, {params: {subdomain: ...}})`), by the
    /// name their `${connectionConfig.params.<name>}` placeholders use.
    #[serde(default)]
    pub connection_config: IndexMap<String, ConnectionConfigField>,
    /// Where the token response keeps the tokens and their lifetime.
    #[serde(default)]
    pub token_response: TokenResponseShape,
    /// Seconds before expiry that this provider's tokens are refreshed, instead of the server's
    /// margin (`NANGO_REFRESH_MARGIN`); the lifetime rule still applies (`docs/refresh.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_margin: Option<u64>,
    /// Extra parameters of a refresh request, replacing `token_params` there; values may also
    /// use `${redirectUri}`, the server's callback URL. Default: the `token_params` (without
    /// their `grant_type`).
    #[serde(default, deserialize_with = "scalar_map")]
    pub refresh_params: IndexMap<String, String>,
    /// Extra HTTP headers of every token request (e.g. an API version header).
    #[serde(default, deserialize_with = "scalar_map")]
    pub token_request_headers: IndexMap<String, String>,
    /// API_KEY: how the key is checked and sent.
    #[serde(default)]
    pub api_key: Option<ApiKeyScheme>,
    /// BASIC: how the username and password are checked.
    #[serde(default)]
    pub basic: Option<BasicScheme>,
    /// Base URL of the provider's REST API, for the proxy: https, with
    /// `${connectionConfig.params.<name>}` placeholders like the OAuth URLs, or exactly
    /// `${metadata.<field>}` for a `token_response_metadata` (or `metadata_request`) field
    /// holding the whole URL (Salesforce's `${metadata.instance_url}`). Default: none (the
    /// provider cannot be proxied).
    #[serde(default)]
    pub base_api_url: Option<String>,
    /// Extra headers and query parameters of every proxied request, and the rate-limit headers.
    #[serde(default)]
    pub proxy: ProxyScheme,
    /// OAUTH2: leave parameters whose value is empty out of the authorize URL (Nango 0.9 always
    /// sent `scope`, even empty; some providers refuse `scope=`).
    #[serde(default)]
    pub omit_empty_params: bool,
    /// OAUTH2: the names this provider gives standard parameters (`client_id: client_key`), used
    /// in the authorize URL and in every token request.
    #[serde(default, deserialize_with = "scalar_map")]
    pub param_names: IndexMap<String, String>,
    /// OAUTH2: the callback query parameter holding the authorization code. Default: `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_code_param: Option<String>,
    /// OAUTH2: a second exchange right after the code exchange, for providers whose code gives a
    /// short-lived token that must be traded for a long-lived one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_lived_token: Option<TokenExchange>,
    /// OAUTH2: how a token without a refresh token is renewed with itself, for providers that
    /// extend the access token in place (Instagram's `ig_refresh_token`, Threads'
    /// `th_refresh_token`); used instead of a refresh when the connection holds no refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_refresh: Option<TokenExchange>,
    /// OAUTH2: a call made with the new token right after authorization whose answer gives
    /// connection metadata (Mailchimp's data centre and API host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_request: Option<MetadataRequest>,
    /// API_KEY and BASIC: the call that checks a credential when it is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// For `base_api_url: ${metadata.<field>}`: the domains the provider's API hosts are under
    /// (`salesforce.com` admits `salesforce.com` and `*.salesforce.com`); a value the token
    /// response gives elsewhere is refused. Required for such built-in templates; an operator file
    /// may also list an IP address or `localhost`, and then reach it over http.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_url_hosts: Vec<String>,
    /// For an `alias:` entry, the provider it stands for (its template is that one's, with the
    /// entry's own fields laid over it).
    #[serde(skip)]
    #[schema(ignore)]
    pub alias_of: Option<String>,
    /// Which placeholders choose the host of the template's URLs (worked out at load).
    #[serde(skip)]
    #[schema(ignore)]
    pub hosts: HostPlaceholders,
    /// True when the template comes from the operator's providers file (NANGO_PROVIDERS_FILE),
    /// which may point at private and local hosts; built-in templates may not.
    #[serde(skip)]
    #[schema(ignore)]
    pub operator_file: bool,
}

/// A token exchange of a template (`long_lived_token` after the code exchange,
/// `access_token_refresh` in place of a refresh): one request, made with the token in hand, whose
/// answer replaces the access token and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchange {
    /// Where the exchange goes (https; placeholders as in the other URLs).
    pub url: String,
    /// GET (parameters in the query, the default) or POST (a form body).
    #[serde(default = "get_method")]
    pub method: HttpMethod,
    /// Parameters of the request; values may use `${accessToken}` (the token in hand),
    /// `${clientId}` and `${clientSecret}`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub params: IndexMap<String, String>,
}

/// A call made with a new connection's token right after authorization (`metadata_request`),
/// whose JSON answer gives values kept in the connection's metadata, such as the API host of the
/// user's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataRequest {
    /// Where the GET goes (https; placeholders as in the other URLs).
    pub url: String,
    /// Headers of the request; values may use `${accessToken}`. Default:
    /// `Authorization: Bearer <token>`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: IndexMap<String, String>,
    /// Map from metadata field name to where the value is in the answer: a dotted path, array
    /// positions as numbers (`accounts.0.base_uri`).
    #[serde(deserialize_with = "scalar_map")]
    pub fields: IndexMap<String, String>,
}

fn get_method() -> HttpMethod {
    HttpMethod::Get
}

/// The standard OAuth 2 parameters a template may rename with `param_names`.
pub const RENAMABLE_PARAMS: [&str; 7] = [
    "client_id",
    "client_secret",
    "redirect_uri",
    "scope",
    "state",
    "response_type",
    "code",
];

/// Placeholders an exchange parameter may use.
const EXCHANGE_PLACEHOLDERS: [&str; 3] = [proxy::ACCESS_TOKEN, "clientId", "clientSecret"];

/// The placeholder of `authorization_params` filled with a fresh random value per flow.
pub const NONCE_PLACEHOLDER: &str = "nonce";

/// The placeholder of `refresh_params` filled with the server's callback URL, for providers that
/// want the redirect URI again on a refresh.
pub const REDIRECT_URI_PLACEHOLDER: &str = "redirectUri";

/// The placeholder of extra parameters filled with the provider config's client id (for
/// providers that want it under another name in one step only).
pub const CLIENT_ID_PLACEHOLDER: &str = "clientId";

/// One value a connection supplies for a template's placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfigField {
    /// What the value is, for the person connecting (e.g. `Your Zendesk subdomain`).
    #[serde(default)]
    pub description: Option<String>,
    /// A regular expression (Rust `regex` syntax) the whole value must match, e.g.
    /// `[a-z0-9][a-z0-9-]*` for a subdomain; checked before the value is put in a URL.
    #[serde(default)]
    pub pattern: Option<String>,
    /// A valid value, for documentation.
    #[serde(default)]
    pub example: Option<String>,
    /// The value used when the connection gives none (e.g. a data centre's `com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The only values accepted (e.g. a provider's regions). A placeholder with choices may
    /// choose a URL's host even when the browser gives it: every choice is the provider's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

impl ConnectionConfigField {
    /// Whether `value` is acceptable by `choices` and `pattern` (a value the template forms its
    /// own URLs with, so the check is strict).
    pub fn accepts(&self, value: &str) -> bool {
        let chosen = self.choices.is_empty() || self.choices.iter().any(|c| c == value);
        chosen && self.matches_pattern(value)
    }

    /// Whether `value` matches `pattern` (any value when there is none).
    pub fn matches_pattern(&self, value: &str) -> bool {
        match &self.pattern {
            // Validated when the catalog loaded; anchored so the whole value must match.
            Some(pattern) => regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(|re| re.is_match(value))
                .unwrap_or(false),
            None => true,
        }
    }
}

impl ProviderTemplate {
    /// The template validated, with what is worked out at load filled in.
    fn checked(mut self, provider: &str, allow_http: bool) -> Result<Self, CatalogError> {
        self.validate(provider, allow_http)?;
        self.hosts = HostPlaceholders::classify(self.urls());
        // Only operator files may use http, so the flag also says where a template is from.
        self.operator_file = allow_http;
        Ok(self)
    }

    /// The template of an `alias:` entry: this (its target's) template with the alias entry's
    /// own fields laid over it, field by field at the top level.
    fn aliased(
        &self,
        name: &str,
        target: &str,
        overrides: serde_norway::Value,
    ) -> Result<ProviderTemplate, CatalogError> {
        let invalid = |message: String| CatalogError::Template {
            provider: name.to_string(),
            message,
        };
        let mut merged = serde_norway::to_value(self).map_err(|e| invalid(e.to_string()))?;
        if let (Some(merged), serde_norway::Value::Mapping(overrides)) =
            (merged.as_mapping_mut(), overrides)
        {
            for (key, value) in overrides {
                if key.as_str() != Some("alias") {
                    merged.insert(key, value);
                }
            }
        }
        let mut template: ProviderTemplate =
            serde_norway::from_value(merged).map_err(|e| invalid(e.to_string()))?;
        template.alias_of = Some(self.alias_of.clone().unwrap_or_else(|| target.to_string()));
        Ok(template)
    }

    /// Every URL the template's requests go to (the empty ones of modes without a flow skipped).
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        [
            Some(self.authorization_url.as_str()),
            Some(self.token_url.as_str()),
            self.refresh_url.as_deref(),
            self.request_url.as_deref(),
            self.base_api_url.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|url| !url.is_empty())
    }

    /// True when a placeholder chooses the host of this built-in template's URLs: its requests
    /// must reach public addresses only (an operator file's template may point anywhere).
    pub fn public_hosts_only(&self) -> bool {
        !self.operator_file && !self.hosts.host.is_empty()
    }

    /// The string that joins scopes; a single space unless the template says otherwise.
    pub fn scope_separator(&self) -> &str {
        self.scope_separator.as_deref().unwrap_or(" ")
    }

    /// The `scope` parameter for a config's comma-separated scopes: joined with the template's
    /// separator, or the template's default scopes when the config has none.
    pub fn scope_param(&self, configured: &str) -> String {
        let mut scopes: Vec<&str> = configured.split(',').filter(|s| !s.is_empty()).collect();
        if scopes.is_empty() {
            scopes = self.default_scopes.iter().map(String::as_str).collect();
        }
        scopes.join(self.scope_separator())
    }

    fn validate(&self, provider: &str, allow_http: bool) -> Result<(), CatalogError> {
        if self
            .refresh_margin
            .is_some_and(|secs| secs > MAX_REFRESH_MARGIN_SECS)
        {
            return Err(CatalogError::Template {
                provider: provider.to_string(),
                message: format!(
                    "refresh_margin must be at most {MAX_REFRESH_MARGIN_SECS} seconds (a day)"
                ),
            });
        }
        let needs_authorization_url = self.auth_mode.uses_browser_flow();
        let needs_token_url =
            needs_authorization_url || self.auth_mode == AuthMode::OAuth2ClientCredentials;
        for (field, needed, value) in [
            (
                "authorization_url",
                needs_authorization_url,
                &self.authorization_url,
            ),
            ("token_url", needs_token_url, &self.token_url),
        ] {
            if needed && value.is_empty() {
                return Err(CatalogError::RequiredForMode {
                    provider: provider.to_string(),
                    field,
                    mode: self.auth_mode.as_str(),
                });
            }
        }
        let patterns = [
            (
                "api_key.pattern",
                self.api_key.as_ref().and_then(|k| k.pattern.as_ref()),
            ),
            (
                "basic.username_pattern",
                self.basic
                    .as_ref()
                    .and_then(|b| b.username_pattern.as_ref()),
            ),
        ];
        for (field, pattern) in patterns {
            if let Some(pattern) = pattern {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(CatalogError::InvalidPattern {
                        provider: provider.to_string(),
                        field: field.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        fn optional(url: &String) -> Option<&String> {
            (!url.is_empty()).then_some(url)
        }
        let urls = [
            ("authorization_url", optional(&self.authorization_url)),
            ("token_url", optional(&self.token_url)),
            ("refresh_url", self.refresh_url.as_ref()),
            ("request_url", self.request_url.as_ref()),
        ];
        for (field, url) in urls {
            if let Some(url) = url {
                check_url(provider, field, url, allow_http)?;
            }
        }
        for (name, value) in &self.token_request_headers {
            let reserved = ["authorization", "content-type", "content-length", "host"];
            let valid = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(value).is_ok()
                && !reserved.contains(&name.to_ascii_lowercase().as_str());
            if !valid {
                return Err(CatalogError::InvalidHeader {
                    provider: provider.to_string(),
                    name: name.clone(),
                });
            }
        }
        if let Some(docs) = &self.docs {
            check_url(provider, "docs", docs, false)?;
        }
        if let Some(verified) = &self.verified {
            if chrono::NaiveDate::parse_from_str(verified, "%Y-%m-%d").is_err() {
                return Err(CatalogError::Template {
                    provider: provider.to_string(),
                    message: format!("verified must be a date (YYYY-MM-DD), not {verified:?}"),
                });
            }
        }
        self.check_base_api_url(provider, allow_http)?;
        self.check_proxy(provider)?;
        self.check_verification(provider)?;
        self.check_flow_features(provider, allow_http)?;
        for (name, field) in &self.connection_config {
            if let Some(pattern) = &field.pattern {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(CatalogError::InvalidPattern {
                        provider: provider.to_string(),
                        field: format!("connection_config.{name}.pattern"),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if self.auth_mode == AuthMode::OAuth1 {
            // The OAuth1 flow cannot start without these, so say so at startup rather than on the
            // first user's click.
            if self.request_url.is_none() {
                return Err(CatalogError::RequiredForOAuth1 {
                    provider: provider.to_string(),
                    field: "request_url",
                });
            }
            if self.signature_method.is_none() {
                return Err(CatalogError::RequiredForOAuth1 {
                    provider: provider.to_string(),
                    field: "signature_method",
                });
            }
        }
        Ok(())
    }
}

/// A template URL must be absolute https (or http where allowed) with a host, once its
/// placeholders are filled with any safe value; that filled-in sample is returned.
fn check_url(
    provider: &str,
    field: &'static str,
    url: &str,
    allow_http: bool,
) -> Result<Url, CatalogError> {
    let invalid = |reason: String| CatalogError::InvalidUrl {
        provider: provider.to_string(),
        field,
        reason,
    };
    let pieces = pieces(url).ok_or_else(|| {
        invalid("has an unclosed, empty or nested `${...}` placeholder".to_string())
    })?;
    let sample: String = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => *text,
            Piece::Placeholder(_) => "placeholder",
        })
        .collect();
    let wanted = if allow_http {
        "an https or http URL"
    } else {
        "an https URL"
    };
    let parsed = Url::parse(&sample).map_err(|e| invalid(format!("must be {wanted} ({e})")))?;
    let scheme_ok = parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http");
    if !scheme_ok || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("must be {wanted}")));
    }
    Ok(parsed)
}

/// Why the catalog could not be loaded. Every message names the provider (and field) or file at
/// fault, because it is shown to an operator at startup.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read provider catalog file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("provider catalog file {}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<CatalogError>,
    },
    #[error("provider catalog is not valid YAML: {0}")]
    Yaml(serde_norway::Error),
    #[error("provider catalog must be a YAML map of provider name to template")]
    NotAMap,
    #[error("provider name {name} is not allowed: use letters, digits, '-', '_' and '.'")]
    InvalidName { name: String },
    /// A field is unknown, missing or of the wrong type (serde's own words).
    #[error("provider '{provider}': {message}")]
    Template { provider: String, message: String },
    #[error("provider '{provider}': {field} {reason}")]
    InvalidUrl {
        provider: String,
        field: &'static str,
        reason: String,
    },
    #[error("provider '{provider}': {field} is required for {mode}")]
    RequiredForMode {
        provider: String,
        field: &'static str,
        mode: &'static str,
    },
    #[error("provider '{provider}': {field} is not a valid regular expression: {reason}")]
    InvalidPattern {
        provider: String,
        field: String,
        reason: String,
    },
    #[error("provider '{provider}': token_request_headers.{name} is not a valid header, or one the server sets itself")]
    InvalidHeader { provider: String, name: String },
    #[error("provider '{provider}': {field} is required for OAUTH1")]
    RequiredForOAuth1 {
        provider: String,
        field: &'static str,
    },
    /// A `proxy` header, query parameter or retry header the proxy could not send or read.
    #[error("provider '{provider}': {field} {reason}")]
    InvalidProxy {
        provider: String,
        field: String,
        reason: String,
    },
}

/// The longest `refresh_margin` a template may set: a day (a longer one is a mistake in units).
const MAX_REFRESH_MARGIN_SECS: u64 = 86_400;

/// Provider templates by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    // Sorted, so `names()` needs no sort and listings are stable.
    providers: BTreeMap<String, ProviderTemplate>,
    /// Entries of a Nango-format operator file left out, each with the reason.
    pub skipped: Vec<SkippedEntry>,
    /// Whether the (operator) file was in current Nango's format.
    pub nango_format: bool,
}

/// An entry of an operator file that cannot be used here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    pub provider: String,
    pub reason: String,
}

/// `alias: <name>` of an entry, if it has one.
fn alias_target(name: &str, value: &serde_norway::Value) -> Result<Option<String>, CatalogError> {
    let Some(target) = value.get("alias") else {
        return Ok(None);
    };
    match target.as_str() {
        Some(target) if is_valid_name(target) && target != name => Ok(Some(target.to_string())),
        _ => Err(CatalogError::Template {
            provider: name.to_string(),
            message: "alias must name another provider".into(),
        }),
    }
}

/// Gives each `alias:` entry its target's template (from the same file, or from `base`), with
/// the alias entry's own fields laid over it; aliases of aliases are followed.
fn resolve_aliases(
    providers: &mut BTreeMap<String, ProviderTemplate>,
    mut pending: Vec<(String, String, serde_norway::Value)>,
    base: Option<&Catalog>,
    allow_http: bool,
) -> Result<(), CatalogError> {
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for (name, target, value) in pending {
            let found = providers
                .get(&target)
                .or_else(|| base.and_then(|b| b.get(&target)));
            let Some(found) = found else {
                waiting.push((name, target, value));
                continue;
            };
            let template = found.aliased(&name, &target, value)?;
            let template = template.checked(&name, allow_http)?;
            providers.insert(name, template);
        }
        if waiting.len() == before {
            let (name, target, _) = &waiting[0];
            return Err(CatalogError::Template {
                provider: name.clone(),
                message: format!(
                    "alias names '{target}', which is not a provider (or the aliases form a loop)"
                ),
            });
        }
        pending = waiting;
    }
    Ok(())
}

impl Catalog {
    /// The catalog compiled into the binary; all its URLs are https.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_yaml(BUILTIN_CATALOG, false)
    }

    /// The built-in catalog with the entries of `extra_file` laid over it: an entry there replaces
    /// the same-named built-in one whole, or adds a provider. The file may use http URLs so tests
    /// and local setups can point a provider at a server without TLS. It may be written in this
    /// catalog's format or in current Nango's (detected by its field names); entries of a Nango
    /// file that cannot work here are left out and listed in `skipped`.
    pub fn load(extra_file: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::builtin()?;
        if let Some(path) = extra_file {
            let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let extra = Catalog::parse(&text, true, Some(&catalog)).map_err(|source| {
                CatalogError::InFile {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                }
            })?;
            catalog.extend(extra);
        }
        Ok(catalog)
    }

    /// Parses and validates a catalog document (an empty document is an empty catalog).
    pub fn from_yaml(yaml: &str, allow_http: bool) -> Result<Catalog, CatalogError> {
        Catalog::parse(yaml, allow_http, None)
    }

    /// [`Catalog::from_yaml`], with `base` (the built-in catalog) as where `alias:` entries may
    /// also point.
    fn parse(
        yaml: &str,
        allow_http: bool,
        base: Option<&Catalog>,
    ) -> Result<Catalog, CatalogError> {
        let mut doc: serde_norway::Value =
            serde_norway::from_str(yaml).map_err(CatalogError::Yaml)?;
        // Lets operator files share a base template with `<<: *anchor`.
        doc.apply_merge().map_err(CatalogError::Yaml)?;
        let entries = match doc {
            serde_norway::Value::Null => return Ok(Catalog::default()),
            serde_norway::Value::Mapping(entries) => entries,
            _ => return Err(CatalogError::NotAMap),
        };
        let mut named = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let name = match key {
                serde_norway::Value::String(name) if is_valid_name(&name) => name,
                serde_norway::Value::String(name) => {
                    return Err(CatalogError::InvalidName {
                        name: format!("'{name}'"),
                    })
                }
                other => {
                    let name = serde_norway::to_string(&other)
                        .map_or_else(|_| format!("{other:?}"), |text| text.trim_end().to_string());
                    return Err(CatalogError::InvalidName { name });
                }
            };
            named.push((name, value));
        }
        // Current Nango's providers.yaml is recognised by its own field names and translated.
        let nango_format = nango_format::detect(&named);
        let mut skipped = Vec::new();
        if nango_format {
            let translated = nango_format::translate(named, yaml)?;
            named = translated.entries;
            skipped = translated.skipped;
        }
        let mut providers = BTreeMap::new();
        let mut aliases = Vec::new();
        for (name, value) in named {
            if let Some(target) = alias_target(&name, &value)? {
                aliases.push((name, target, value));
                continue;
            }
            // Deserialising entry by entry (rather than the whole map at once) is what lets every
            // error name its provider (and, in this catalog's format, its line).
            let template: ProviderTemplate = serde_norway::from_value(value).map_err(|e| {
                let message = e.to_string();
                let located = if nango_format {
                    nango_format::located(yaml, &name, &message)
                } else {
                    located_message(yaml, &name, &message)
                };
                CatalogError::Template {
                    message: located.unwrap_or(message),
                    provider: name.clone(),
                }
            })?;
            let template = template.checked(&name, allow_http)?;
            providers.insert(name, template);
        }
        resolve_aliases(&mut providers, aliases, base, allow_http)?;
        Ok(Catalog {
            providers,
            skipped,
            nango_format,
        })
    }

    /// Adds `other`'s entries, replacing same-named ones whole (and keeps what it says about
    /// its file: its format and the entries it left out).
    pub fn extend(&mut self, other: Catalog) {
        self.providers.extend(other.providers);
        self.skipped.extend(other.skipped);
        self.nango_format |= other.nango_format;
    }

    /// Says at startup how the operator's file was read: in Nango's format or not, and, in one
    /// warning, which of its entries were left out and why.
    pub fn log_operator_file(&self, path: Option<&Path>) {
        let Some(path) = path else {
            return;
        };
        if self.nango_format {
            tracing::info!(path = %path.display(), "providers file is in Nango's format: translated");
        }
        if !self.skipped.is_empty() {
            let list: Vec<String> = self
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.provider, s.reason))
                .collect();
            tracing::warn!(
                path = %path.display(),
                count = self.skipped.len(),
                "providers file: entries left out, they cannot work on this server: {}",
                list.join("; ")
            );
        }
    }

    pub fn get(&self, name: &str) -> Option<&ProviderTemplate> {
        self.providers.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Provider names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The longest `refresh_margin` of any template (zero when none sets one).
    pub fn longest_refresh_margin(&self) -> std::time::Duration {
        let secs = self
            .providers
            .values()
            .filter_map(|t| t.refresh_margin)
            .max()
            .unwrap_or(0);
        std::time::Duration::from_secs(secs)
    }

    /// Providers and their templates, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ProviderTemplate)> {
        self.providers.iter().map(|(name, t)| (name.as_str(), t))
    }
}

/// A value-tree error has neither the field path nor the line; parsing the text directly has
/// both, so the error is recomputed that way. `None` unless that finds the same error in the same
/// provider: merge keys, for one, are resolved only in the value tree.
fn located_message(yaml: &str, provider: &str, message: &str) -> Option<String> {
    let err = serde_norway::from_str::<IndexMap<String, ProviderTemplate>>(yaml).err()?;
    let located = err.to_string();
    let rest = located.strip_prefix(provider)?;
    let rest = rest.strip_prefix(": ").or_else(|| rest.strip_prefix('.'))?;
    rest.contains(message).then(|| rest.to_string())
}

/// Names end up in stored configs and API responses; keeping them to the characters every Nango
/// provider name has ever used keeps them safe to print and to put in a URL path.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A string-valued map where plain YAML numbers and booleans are taken as their text (js-yaml
/// gave Nango numbers, which it then stringified into the query or body), and an empty value
/// (`token_params:`) is an empty map.
fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<IndexMap<String, String>, D::Error> {
    let map = Option::<IndexMap<String, ScalarText>>::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(key, ScalarText(value))| (key, value))
        .collect())
}

struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ScalarText, E> {
                Ok(ScalarText(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;

    /// §4.4 of the wire reference: the Nango 0.9.4 list.
    const NANGO_094: [&str; 58] = [
        "airtable",
        "asana",
        "bitbucket",
        "braintree",
        "braintree-sandbox",
        "brex",
        "clickup",
        "digitalocean",
        "discord",
        "dropbox",
        "epic-games",
        "facebook",
        "fitbit",
        "freshbooks",
        "front",
        "github",
        "gitlab",
        "google",
        "google-calendar",
        "google-mail",
        "google-sheet",
        "greenhouse",
        "hubspot",
        "instagram",
        "intercom",
        "intuit",
        "jira",
        "lever",
        "linear",
        "linkedin",
        "linkhut",
        "microsoft-teams",
        "monday",
        "notion",
        "outreach",
        "pagerduty",
        "pipedrive",
        "quickbooks",
        "ramp",
        "ramp-sandbox",
        "reddit",
        "sage",
        "salesforce",
        "salesloft",
        "shopify",
        "slack",
        "splitwise",
        "stackexchange",
        "stripe",
        "trello",
        "twitter",
        "wave_accounting",
        "xero",
        "zendesk",
        "zoho-books",
        "zoho-crm",
        "zoho-invoice",
        "zoom",
    ];

    fn builtin() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn template(catalog: &Catalog, name: &str) -> ProviderTemplate {
        catalog
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn params(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn builtin_catalog_loads_with_the_nango_094_list() {
        let catalog = builtin();
        println!("built-in catalog: {} providers", catalog.len());
        assert!(!catalog.is_empty());
        // Every name Nango 0.9.4 shipped keeps working; the catalog has grown far past it.
        for name in NANGO_094 {
            assert!(catalog.contains(name), "{name} is missing");
        }
        assert!(catalog.len() >= 250, "{}", catalog.len());
        // Nango 0.9's name and today's Nango name both work.
        assert!(catalog.contains("wave_accounting"));
        assert!(catalog.contains("wave-accounting"));
        assert!(catalog.get("nope").is_none());
    }

    #[test]
    fn an_alias_without_overrides_is_its_target_template() {
        // What alias resolution relies on: a template survives the trip through YAML whole.
        let catalog = builtin();
        for (name, t) in catalog.iter().filter(|(_, t)| t.alias_of.is_none()) {
            let empty = serde_norway::Value::Mapping(Default::default());
            let mut alias = t.aliased("copy", name, empty).unwrap();
            assert_eq!(alias.alias_of.as_deref(), Some(name));
            alias.alias_of = None;
            alias.hosts = t.hosts.clone();
            alias.operator_file = t.operator_file;
            assert_eq!(&alias, t, "{name}");
        }
    }

    #[test]
    fn builtin_urls_are_https_and_parse() {
        let catalog = builtin();
        for (name, t) in catalog.iter() {
            let urls = [
                Some(&t.authorization_url),
                Some(&t.token_url),
                t.refresh_url.as_ref(),
                t.request_url.as_ref(),
            ];
            for url in urls.into_iter().flatten().filter(|url| !url.is_empty()) {
                assert!(url.starts_with("https://"), "{name}: {url}");
                let sample = url.replace("${connectionConfig.params.subdomain}", "acme");
                let parsed = Url::parse(&sample).unwrap_or_else(|e| panic!("{name}: {url}: {e}"));
                assert_eq!(parsed.scheme(), "https");
                assert!(parsed.host_str().is_some_and(|h| !h.is_empty()), "{name}");
            }
        }
    }

    #[test]
    fn builtin_modes_match_the_reference() {
        let catalog = builtin();
        let oauth1: Vec<&str> = catalog
            .iter()
            .filter(|(_, t)| t.auth_mode == AuthMode::OAuth1)
            .map(|(name, _)| name)
            .collect();
        assert!(oauth1.contains(&"trello") && oauth1.contains(&"twitter"));
        for (name, t) in catalog.iter() {
            // The URLs each mode needs, and only those.
            let browser = t.auth_mode.uses_browser_flow();
            assert_eq!(!t.authorization_url.is_empty(), browser, "{name}");
            let token = browser || t.auth_mode == AuthMode::OAuth2ClientCredentials;
            assert_eq!(!t.token_url.is_empty(), token, "{name}");
            if t.auth_mode == AuthMode::OAuth1 {
                assert!(t.request_url.is_some(), "{name}");
                assert!(t.signature_method.is_some(), "{name}");
            } else {
                assert!(
                    t.request_url.is_none() && t.signature_method.is_none(),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn builtin_quirks_are_kept() {
        let catalog = builtin();

        let salesforce = template(&catalog, "salesforce");
        assert_eq!(salesforce.token_response_metadata, ["instance_url"]);
        let quickbooks = template(&catalog, "quickbooks");
        assert_eq!(quickbooks.redirect_uri_metadata, ["realmId"]);

        for name in ["braintree", "braintree-sandbox"] {
            let t = template(&catalog, name);
            assert_eq!(t.scope_separator(), ",");
            assert_eq!(t.authorization_method, AuthorizationMethod::Header);
            assert_eq!(t.body_format, BodyFormat::Json);
            assert_eq!(
                t.token_params,
                params(&[("grant_type", "authorization_code")])
            );
            assert_eq!(t.redirect_uri_metadata, ["merchantId"]);
        }

        let notion = template(&catalog, "notion");
        assert_eq!(
            notion.authorization_params,
            params(&[("response_type", "code"), ("owner", "user")])
        );
        assert_eq!(notion.authorization_method, AuthorizationMethod::Header);
        assert_eq!(notion.body_format, BodyFormat::Json);

        // Order is kept: it is the order of the query parameters on the redirect.
        let google = template(&catalog, "google");
        let keys: Vec<&str> = google
            .authorization_params
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["response_type", "access_type", "prompt"]);
        let lever = template(&catalog, "lever");
        assert_eq!(
            lever
                .authorization_params
                .get("audience")
                .map(String::as_str),
            Some("https://api.lever.co/v1/")
        );
        assert_eq!(
            template(&catalog, "sage").authorization_params,
            params(&[("filter", "apiv3.1")])
        );

        assert!(template(&catalog, "linkedin").disable_pkce);
        assert_eq!(template(&catalog, "linear").scope_separator(), ",");

        let github = template(&catalog, "github");
        assert_eq!(github.scope_separator(), " ");
        assert_eq!(github.authorization_method, AuthorizationMethod::Body);
        assert_eq!(github.body_format, BodyFormat::Form);
        assert!(!github.disable_pkce);
        assert!(github.authorization_params.is_empty() && github.token_params.is_empty());
        assert!(github.auth.is_none());

        for name in ["airtable", "asana"] {
            assert_eq!(
                template(&catalog, name).auth,
                Some(params(&[("response_type", "code")])),
                "{name}"
            );
        }

        let trello = template(&catalog, "trello");
        assert_eq!(
            trello.request_url.as_deref(),
            Some("https://trello.com/1/OAuthGetRequestToken")
        );
        assert_eq!(trello.scope_separator(), ",");
        assert_eq!(
            trello.authorization_params,
            params(&[("expiration", "never")])
        );
        assert_eq!(trello.request_http_method, HttpMethod::Post);
        assert_eq!(trello.token_http_method, HttpMethod::Post);
        let twitter = template(&catalog, "twitter");
        assert_eq!(
            twitter.request_params,
            params(&[("x_auth_access_type", "write")])
        );

        for name in ["shopify", "zendesk"] {
            let t = template(&catalog, name);
            assert!(t
                .authorization_url
                .contains("${connectionConfig.params.subdomain}"));
            assert!(t.token_url.contains("${connectionConfig.params.subdomain}"));
        }
    }

    /// A catalog document from its lines, so that test YAML reads as YAML.
    pub(super) fn doc(lines: &[&str]) -> String {
        lines.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Provider `x`: a valid OAUTH2 entry followed by `extra` lines.
    pub(super) fn x_with(extra: &[&str]) -> String {
        let mut lines = vec![
            "x:",
            "  auth_mode: OAUTH2",
            "  authorization_url: https://a.example/auth",
            "  token_url: https://a.example/token",
        ];
        lines.extend_from_slice(extra);
        doc(&lines)
    }

    fn error(yaml: &str) -> String {
        Catalog::from_yaml(yaml, false).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_are_rejected_with_provider_and_field() {
        let message = error(&x_with(&["  bar: 1"]));
        assert!(
            message.starts_with("provider 'x': unknown field `bar`"),
            "{message}"
        );
        assert!(message.ends_with("at line 5 column 3"), "{message}");
        // A field of current Nango's format makes the file a Nango file: a field neither
        // format knows is still an error there, with the entry's line.
        let message = error(&x_with(&["  webhook_routing_script: x", "  bar: 1"]));
        assert!(
            message.starts_with("provider 'x': line 1: unknown field `bar`"),
            "{message}"
        );
        let message = error(&x_with(&[
            "  token_response:",
            "    access_token_path: a.b",
        ]));
        assert!(
            message.starts_with("provider 'x': token_response: unknown field `access_token_path`"),
            "{message}"
        );
    }

    #[test]
    fn bad_templates_are_rejected_with_provider_and_field() {
        let cases = [
            (
                doc(&["x:", "  authorization_url: https://a/", "  token_url: https://a/t"]),
                "provider 'x': missing field `auth_mode`",
            ),
            (
                doc(&["x:", "  auth_mode: OAUTH3"]),
                "provider 'x': auth_mode: unknown variant `OAUTH3`, expected one of `OAUTH2`, `OAUTH1`, `OAUTH2_CC`, `API_KEY`, `BASIC` at line 2",
            ),
            (
                doc(&["x:", "  auth_mode: OAUTH2", "  token_url: https://a/t"]),
                "provider 'x': authorization_url is required for OAUTH2",
            ),
            (
                doc(&["x:", "  auth_mode: OAUTH2_CC"]),
                "provider 'x': token_url is required for OAUTH2_CC",
            ),
            (
                x_with(&["  api_key:", "    pattern: \"(\""]),
                "provider 'x': api_key.pattern is not a valid regular expression",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH2",
                    "  authorization_url: https://a/",
                    "  token_url: http://a/t",
                ]),
                "provider 'x': token_url must be an https URL",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH2",
                    "  authorization_url: ftp://a/",
                    "  token_url: https://a/t",
                ]),
                "provider 'x': authorization_url must be an https URL",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH2",
                    "  authorization_url: /relative",
                    "  token_url: https://a/t",
                ]),
                "provider 'x': authorization_url must be an https URL",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH2",
                    "  authorization_url: https://${a.example/",
                    "  token_url: https://a/t",
                ]),
                "provider 'x': authorization_url has an unclosed",
            ),
            (
                x_with(&["  refresh_url: http://a/r"]),
                "provider 'x': refresh_url must be an https URL",
            ),
            (
                x_with(&["  authorization_method: basic"]),
                "provider 'x': authorization_method: unknown variant `basic`",
            ),
            (
                x_with(&["  token_params:", "    a: [1]"]),
                "provider 'x': token_params.a: invalid type: sequence",
            ),
            (
                x_with(&["  token_request_headers:", "    Authorization: Bearer x"]),
                "provider 'x': token_request_headers.Authorization is not a valid header",
            ),
            (
                x_with(&["  token_request_headers:", "    \"bad header\": x"]),
                "provider 'x': token_request_headers.bad header is not a valid header",
            ),
            (
                x_with(&["  connection_config:", "    subdomain:", "      pattern: \"[a-z\""]),
                "provider 'x': connection_config.subdomain.pattern is not a valid regular expression",
            ),
            (
                x_with(&["  docs: http://a.example/docs"]),
                "provider 'x': docs must be an https URL",
            ),
            (
                x_with(&["  verified: last week"]),
                "provider 'x': verified must be a date (YYYY-MM-DD)",
            ),
            (
                x_with(&["  token_response:", "    expires_in_unit: fortnights"]),
                "provider 'x': token_response.expires_in_unit: unknown variant `fortnights`",
            ),
            (
                x_with(&["  token_params:", "    r: '${redirectUri}'"]),
                "provider 'x': token_params.r: placeholders must be ${clientId} and",
            ),
            (
                x_with(&["  authorization_params:", "    r: '${redirectUri}'"]),
                "provider 'x': authorization_params.r: placeholders must be ${nonce}, ${clientId}",
            ),
            (
                x_with(&["  refresh_params:", "    n: '${nonce}'"]),
                "provider 'x': refresh_params.n: placeholders must be ${redirectUri}, ${clientId}",
            ),
            (
                x_with(&["  metadata_request:", "    url: https://a/m", "    fields: {}"]),
                "provider 'x': metadata_request.fields: name at least one field",
            ),
            (
                x_with(&[
                    "  metadata_request:",
                    "    url: https://a/m",
                    "    headers:",
                    "      Authorization: '${apiKey}'",
                    "    fields:",
                    "      dc: dc",
                ]),
                "provider 'x': metadata_request.headers.Authorization: a header name",
            ),
            (
                x_with(&["  disable_pkce: yes"]),
                "provider 'x': disable_pkce: invalid type: string \"yes\", expected a boolean at line 5",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH1",
                    "  authorization_url: https://a/",
                    "  token_url: https://a/t",
                    "  signature_method: HMAC-SHA1",
                ]),
                "provider 'x': request_url is required for OAUTH1",
            ),
            (
                doc(&[
                    "x:",
                    "  auth_mode: OAUTH1",
                    "  authorization_url: https://a/",
                    "  token_url: https://a/t",
                    "  request_url: https://a/r",
                ]),
                "provider 'x': signature_method is required for OAUTH1",
            ),
            (
                // Merged entries lose the line number but still name provider and problem.
                doc(&[
                    "b: &b",
                    "  auth_mode: OAUTH2",
                    "  authorization_url: https://a/",
                    "  token_url: https://a/t",
                    "x:",
                    "  <<: *b",
                    "  disable_pkce: 1",
                ]),
                "provider 'x': invalid type: integer `1`, expected a boolean",
            ),
            (doc(&["x: 3"]), "provider 'x': invalid type"),
            (
                doc(&["1:", "  auth_mode: OAUTH2"]),
                "provider name 1 is not allowed",
            ),
            (
                doc(&["bad name:", "  auth_mode: OAUTH2"]),
                "provider name 'bad name' is not allowed",
            ),
            (
                doc(&["- a", "- b"]),
                "provider catalog must be a YAML map",
            ),
            (doc(&["x: ["]), "provider catalog is not valid YAML"),
        ];
        for (yaml, expected) in cases {
            let message = error(&yaml);
            assert!(message.starts_with(expected), "{yaml:?}: {message}");
        }
    }

    #[test]
    fn lenient_where_nango_was() {
        let yaml = doc(&[
            "x:",
            "  auth_mode: OAUTH1",
            "  authorization_url: https://a.example/${connectionConfig.params.tenant}/auth",
            "  token_url: https://a.example/t",
            "  request_url: https://a.example/r",
            "  signature_method: PLAINTEXT",
            "  request_http_method: GET",
            "  token_http_method: PUT",
            "  token_params:",
            "  authorization_params:",
            "    expires_days: 30",
            "    verbose: true",
            "    ratio: 1.5",
        ]);
        let catalog = Catalog::from_yaml(&yaml, false).unwrap();
        let t = template(&catalog, "x");
        assert!(t.token_params.is_empty());
        assert_eq!(
            t.authorization_params,
            params(&[
                ("expires_days", "30"),
                ("verbose", "true"),
                ("ratio", "1.5")
            ])
        );
        assert_eq!(t.signature_method, Some(SignatureMethod::Plaintext));
        assert_eq!(t.request_http_method, HttpMethod::Get);
        assert_eq!(t.token_http_method, HttpMethod::Put);
        assert_eq!(Catalog::from_yaml("", false).unwrap().len(), 0);
        assert_eq!(Catalog::from_yaml("# nothing\n", true).unwrap().len(), 0);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let entry = x_with(&[]);
        let message = error(&format!("{entry}{entry}"));
        assert!(
            message.contains("duplicate entry with key \"x\""),
            "{message}"
        );
    }

    #[test]
    fn merge_keys_share_a_base() {
        let yaml = doc(&[
            "base: &base",
            "  auth_mode: OAUTH2",
            "  authorization_url: https://a.example/auth",
            "  token_url: https://a.example/token",
            "derived:",
            "  <<: *base",
            "  disable_pkce: true",
        ]);
        let catalog = Catalog::from_yaml(&yaml, false).unwrap();
        let derived = template(&catalog, "derived");
        assert!(derived.disable_pkce);
        assert_eq!(derived.token_url, "https://a.example/token");
    }

    #[test]
    fn a_file_overrides_adds_and_may_use_http() {
        let dir = std::env::temp_dir().join(format!("nango-providers-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("providers.yaml");
        let file = doc(&[
            "github:",
            "  auth_mode: OAUTH2",
            "  authorization_url: http://127.0.0.1:9999/authorize",
            "  token_url: http://127.0.0.1:9999/token",
            "  authorization_method: header",
            "fake:",
            "  auth_mode: OAUTH2",
            "  authorization_url: http://localhost:8080/auth",
            "  token_url: https://localhost/token",
        ]);
        std::fs::write(&path, file).unwrap();

        let catalog = Catalog::load(Some(&path)).unwrap();
        assert_eq!(catalog.len(), builtin().len() + 1);
        let github = template(&catalog, "github");
        assert_eq!(github.token_url, "http://127.0.0.1:9999/token");
        // Whole-entry replacement: nothing of the built-in github entry survives.
        assert_eq!(github.authorization_method, AuthorizationMethod::Header);
        assert!(catalog.contains("fake"));
        assert_eq!(template(&catalog, "slack"), template(&builtin(), "slack"));
        let names: Vec<&str> = catalog.names().collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));

        let file = doc(&[
            "fake:",
            "  auth_mode: OAUTH2",
            "  authorization_url: ftp://localhost/auth",
            "  token_url: https://localhost/token",
        ]);
        std::fs::write(&path, file).unwrap();
        let message = Catalog::load(Some(&path)).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "provider catalog file {}: provider 'fake': authorization_url must be an https or http URL",
                path.display()
            )
        );

        std::fs::remove_dir_all(&dir).unwrap();
        let message = Catalog::load(Some(&path)).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "cannot read provider catalog file {}: ",
                path.display()
            )),
            "{message}"
        );

        assert_eq!(Catalog::load(None).unwrap().len(), builtin().len());
    }

    #[test]
    fn builtin_refuses_http() {
        let yaml = doc(&[
            "x:",
            "  auth_mode: OAUTH2",
            "  authorization_url: http://a/",
            "  token_url: https://a/t",
        ]);
        assert!(Catalog::from_yaml(&yaml, false).is_err());
        assert!(Catalog::from_yaml(&yaml, true).is_ok());
    }

    #[test]
    fn interpolates_builtin_shopify() {
        let catalog = builtin();
        let shopify = template(&catalog, "shopify");
        let mut config = serde_json::Map::new();
        config.insert(
            "connectionConfig.params.subdomain".to_string(),
            serde_json::Value::String("acme".to_string()),
        );
        assert_eq!(
            interpolate_url(&shopify.authorization_url, &config).unwrap(),
            "https://acme.myshopify.com/admin/oauth/authorize"
        );
        assert_eq!(
            interpolate_url(&shopify.token_url, &config).unwrap(),
            "https://acme.myshopify.com/admin/oauth/access_token"
        );
        let base = api_base_url(&shopify, &config, &serde_json::Map::new()).unwrap();
        assert_eq!(base.as_str(), "https://acme.myshopify.com/");
        // Shopify's Admin API takes the token in its own header, not as a Bearer token.
        assert!(mentions_access_token(&shopify.proxy));
    }

    #[test]
    fn builtin_proxy_fields() {
        let catalog = builtin();

        let github = template(&catalog, "github");
        assert_eq!(
            github.base_api_url.as_deref(),
            Some("https://api.github.com")
        );
        assert_eq!(
            github.proxy.headers.get("Accept").map(String::as_str),
            Some("application/vnd.github+json")
        );
        assert_eq!(github.proxy.retry.at.as_deref(), Some("x-ratelimit-reset"));
        assert!(!mentions_access_token(&github.proxy));

        let notion = template(&catalog, "notion");
        assert_eq!(
            notion.proxy.headers,
            params(&[("Notion-Version", "2022-06-28")])
        );
        assert_eq!(notion.proxy.retry.after.as_deref(), Some("retry-after"));
        for name in ["okta", "okta-preview"] {
            let t = template(&catalog, name);
            assert_eq!(
                t.proxy.retry.at.as_deref(),
                Some("x-rate-limit-reset"),
                "{name}"
            );
        }
        assert_eq!(
            template(&catalog, "intercom").proxy.retry.at.as_deref(),
            Some("x-ratelimit-reset")
        );
        for name in ["zendesk", "microsoft", "slack", "xero"] {
            let t = template(&catalog, name);
            assert_eq!(
                t.proxy.retry.after.as_deref(),
                Some("retry-after"),
                "{name}"
            );
        }

        let salesforce = template(&catalog, "salesforce");
        assert_eq!(
            salesforce.base_api_url.as_deref(),
            Some("${metadata.instance_url}")
        );
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "instance_url".to_string(),
            serde_json::Value::String("https://na1.salesforce.com".to_string()),
        );
        let base = api_base_url(&salesforce, &serde_json::Map::new(), &metadata).unwrap();
        assert_eq!(base.as_str(), "https://na1.salesforce.com/");

        // The OAuth1 consumer key Trello wants as `key` is no placeholder, so it has no proxy
        // query; its base URL is still known.
        let trello = template(&catalog, "trello");
        assert_eq!(
            trello.base_api_url.as_deref(),
            Some("https://api.trello.com")
        );
        assert!(trello.proxy.is_empty());
    }
}
