//! The JSON shapes of the REST API (Nango 0.9), typed. Unknown keys are ignored and keys that
//! older servers lacked are optional, so the client works against any server of the era.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;

/// A provider configuration as stored by the server (`GET /config`, `GET /config/:key`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ProviderConfig {
    pub id: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The provider config key.
    pub unique_key: String,
    /// The provider template name (`github`, `google`, ...).
    pub provider: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: Secret,
    /// Comma-separated.
    pub oauth_scopes: String,
    /// Absent before Nango 0.8.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// The operator's values for the template's placeholders (`{"hostname": "ghe.example.com"}`);
    /// empty when none are set, or from servers without them.
    #[serde(default)]
    pub connection_config: Map<String, Value>,
}

/// The body of `POST /config` and `PUT /config`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConfig {
    pub provider_config_key: String,
    pub provider: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: Secret,
    /// Comma- or space-separated; the server normalises on create.
    pub oauth_scopes: String,
    /// The operator's values for the template's placeholders, by name (`hostname` ->
    /// `ghe.example.com`): the only source of a template's host. `None` sends nothing, which on
    /// edit keeps the stored values.
    pub connection_config: Option<BTreeMap<String, String>>,
}

impl NewConfig {
    /// The five fields, in the order of the 0.9 CLI's `config:create`.
    pub fn new(
        provider_config_key: impl Into<String>,
        provider: impl Into<String>,
        oauth_client_id: impl Into<String>,
        oauth_client_secret: impl Into<String>,
        oauth_scopes: impl Into<String>,
    ) -> NewConfig {
        NewConfig {
            provider_config_key: provider_config_key.into(),
            provider: provider.into(),
            oauth_client_id: oauth_client_id.into(),
            oauth_client_secret: Secret::new(oauth_client_secret),
            oauth_scopes: oauth_scopes.into(),
            connection_config: None,
        }
    }

    /// Sets the template's placeholder values (e.g. `hostname` for `github-enterprise`).
    pub fn with_connection_config(
        mut self,
        values: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> NewConfig {
        self.connection_config = Some(
            values
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }
}

/// What goes on the wire for a [`NewConfig`]: the secret leaves its box only here.
#[derive(Serialize)]
pub(crate) struct NewConfigBody<'a> {
    provider_config_key: &'a str,
    provider: &'a str,
    oauth_client_id: &'a str,
    oauth_client_secret: &'a str,
    oauth_scopes: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_config: Option<&'a BTreeMap<String, String>>,
}

impl<'a> From<&'a NewConfig> for NewConfigBody<'a> {
    fn from(c: &'a NewConfig) -> Self {
        NewConfigBody {
            provider_config_key: &c.provider_config_key,
            provider: &c.provider,
            oauth_client_id: &c.oauth_client_id,
            oauth_client_secret: c.oauth_client_secret.expose(),
            oauth_scopes: &c.oauth_scopes,
            connection_config: c.connection_config.as_ref(),
        }
    }
}

/// How [`Client::get_connection_with`](crate::Client::get_connection_with),
/// [`get_token_with`](crate::Client::get_token_with) and
/// [`get_raw_token_response_with`](crate::Client::get_raw_token_response_with) ask for the
/// connection. The default is what the plain methods do: the server refreshes an OAuth token only
/// when it expires within its margin (15 minutes).
///
/// ```
/// use nango_client::GetOptions;
///
/// let options = GetOptions::new().force_refresh(true);
/// assert!(options.force_refresh);
/// assert_eq!(GetOptions::default(), GetOptions::new());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetOptions {
    /// Refresh the credentials now, whatever their expiry (`&force_refresh=true`): an OAuth 2
    /// refresh with the stored refresh token, or a new client credentials token. Credentials
    /// that cannot be refreshed (no refresh token, API key, basic) fail with a 400 whose
    /// [`kind`](crate::Error::kind) is `not_refreshable`, and are left as they were.
    pub force_refresh: bool,
}

impl GetOptions {
    /// The defaults: no forced refresh.
    pub fn new() -> GetOptions {
        GetOptions::default()
    }

    /// Sets [`GetOptions::force_refresh`].
    pub fn force_refresh(mut self, force_refresh: bool) -> GetOptions {
        self.force_refresh = force_refresh;
        self
    }
}

/// A connection with its (fresh) credentials (`GET /connection/:id`). Its `Debug` output shows
/// no token: they are all [`Secret`]s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Connection {
    pub id: i64,
    /// ISO-8601 UTC.
    pub created_at: String,
    pub updated_at: String,
    pub provider_config_key: String,
    pub connection_id: String,
    pub credentials: Credentials,
    /// Flattened, prefixed keys, e.g. `connectionConfig.params.subdomain`.
    #[serde(default)]
    pub connection_config: Map<String, Value>,
    #[serde(default)]
    pub account_id: Option<i64>,
    /// `null` for rows older than Nango 0.8.7.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Present only after a failed refresh (this server's addition; absent from Nango 0.9).
    #[serde(default)]
    pub refresh: Option<RefreshStatus>,
}

/// What went wrong with a connection's refreshes (the server's `refresh` key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// `needs_reauthorization` (the provider refused the refresh token: the user must connect
    /// again) or `retrying` (the provider failed; automatic refreshes back off).
    pub status: String,
    /// The provider's error.
    #[serde(default)]
    pub error: Option<String>,
    /// Failures since the last success.
    #[serde(default)]
    pub failures: i64,
    /// ISO-8601 UTC: when the server tries again on its own.
    #[serde(default)]
    pub retry_after: Option<String>,
}

/// Stored credentials, by their `type`. Every token, secret and password is a [`Secret`], and so
/// is the provider's raw token response (it holds the tokens too).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Credentials {
    /// `type: "OAUTH2"`, from the browser flow.
    OAuth2 {
        access_token: Secret,
        refresh_token: Option<Secret>,
        /// ISO-8601 UTC; `None` when the provider gave no lifetime.
        expires_at: Option<String>,
        /// The provider's token response.
        raw: Secret<Value>,
    },
    /// `type: "OAUTH1"`, from the browser flow.
    OAuth1 {
        oauth_token: Secret,
        oauth_token_secret: Secret,
        /// The fields of the provider's access-token response.
        raw: Secret<Value>,
    },
    /// `type: "OAUTH2_CC"`: a token the server obtained with the client credentials grant.
    OAuth2ClientCredentials {
        token: Secret,
        expires_at: Option<String>,
        raw: Secret<Value>,
    },
    /// `type: "API_KEY"`: the end user's API key.
    ApiKey { api_key: Secret },
    /// `type: "BASIC"`: the end user's username and password.
    Basic { username: String, password: Secret },
    /// A `type` this client does not know (from a newer server); the whole object is kept.
    /// Its `Debug` output shows only the type.
    Unknown(Value),
}

impl Credentials {
    /// The `type` string as sent by the server (`OAUTH2`, `OAUTH1`, `OAUTH2_CC`, `API_KEY`,
    /// `BASIC`, or the unknown one).
    pub fn kind(&self) -> &str {
        match self {
            Credentials::OAuth2 { .. } => "OAUTH2",
            Credentials::OAuth1 { .. } => "OAUTH1",
            Credentials::OAuth2ClientCredentials { .. } => "OAUTH2_CC",
            Credentials::ApiKey { .. } => "API_KEY",
            Credentials::Basic { .. } => "BASIC",
            Credentials::Unknown(value) => value.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The provider's token response, for the types that have one (what the Node SDK's
    /// `getRawTokenResponse` returns).
    pub fn raw(&self) -> Option<&Secret<Value>> {
        match self {
            Credentials::OAuth2 { raw, .. }
            | Credentials::OAuth1 { raw, .. }
            | Credentials::OAuth2ClientCredentials { raw, .. } => Some(raw),
            _ => None,
        }
    }

    /// When the token expires (ISO-8601 UTC), if it does.
    pub fn expires_at(&self) -> Option<&str> {
        match self {
            Credentials::OAuth2 { expires_at, .. }
            | Credentials::OAuth2ClientCredentials { expires_at, .. } => expires_at.as_deref(),
            _ => None,
        }
    }
}

// By hand for `Unknown`, whose JSON may hold anything; the other variants hold `Secret`s.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::OAuth2 {
                access_token,
                refresh_token,
                expires_at,
                raw,
            } => f
                .debug_struct("OAuth2")
                .field("access_token", access_token)
                .field("refresh_token", refresh_token)
                .field("expires_at", expires_at)
                .field("raw", raw)
                .finish(),
            Credentials::OAuth1 {
                oauth_token,
                oauth_token_secret,
                raw,
            } => f
                .debug_struct("OAuth1")
                .field("oauth_token", oauth_token)
                .field("oauth_token_secret", oauth_token_secret)
                .field("raw", raw)
                .finish(),
            Credentials::OAuth2ClientCredentials {
                token,
                expires_at,
                raw,
            } => f
                .debug_struct("OAuth2ClientCredentials")
                .field("token", token)
                .field("expires_at", expires_at)
                .field("raw", raw)
                .finish(),
            Credentials::ApiKey { api_key } => {
                f.debug_struct("ApiKey").field("api_key", api_key).finish()
            }
            Credentials::Basic { username, password } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", password)
                .finish(),
            Credentials::Unknown(_) => f
                .debug_struct("Unknown")
                .field("type", &self.kind())
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Deserialize)]
struct OAuth2Wire {
    access_token: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    raw: Secret<Value>,
}

#[derive(Deserialize)]
struct OAuth1Wire {
    oauth_token: Secret,
    oauth_token_secret: Secret,
    #[serde(default)]
    raw: Secret<Value>,
}

#[derive(Deserialize)]
struct ClientCredentialsWire {
    // Later Nango versions say `token`; accept `access_token` from a server that copies OAUTH2.
    #[serde(alias = "access_token")]
    token: Secret,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    raw: Secret<Value>,
}

#[derive(Deserialize)]
struct ApiKeyWire {
    #[serde(rename = "apiKey", alias = "api_key")]
    api_key: Secret,
}

#[derive(Deserialize)]
struct BasicWire {
    username: String,
    #[serde(default)]
    password: Secret,
}

// Hand-written because serde's internally tagged enums cannot keep the data of an unknown tag.
impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Credentials, D::Error> {
        use serde::de::Error as _;
        let fields = Map::<String, Value>::deserialize(deserializer)?;
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err(D::Error::custom("credentials `type` must be a string")),
            None => return Err(D::Error::missing_field("type")),
        };
        let object = Value::Object(fields);
        let parsed = match kind.as_str() {
            "OAUTH2" => OAuth2Wire::deserialize(object).map(|w| Credentials::OAuth2 {
                access_token: w.access_token,
                refresh_token: w.refresh_token,
                expires_at: w.expires_at,
                raw: w.raw,
            }),
            "OAUTH1" => OAuth1Wire::deserialize(object).map(|w| Credentials::OAuth1 {
                oauth_token: w.oauth_token,
                oauth_token_secret: w.oauth_token_secret,
                raw: w.raw,
            }),
            "OAUTH2_CC" => ClientCredentialsWire::deserialize(object).map(|w| {
                Credentials::OAuth2ClientCredentials {
                    token: w.token,
                    expires_at: w.expires_at,
                    raw: w.raw,
                }
            }),
            "API_KEY" => {
                ApiKeyWire::deserialize(object).map(|w| Credentials::ApiKey { api_key: w.api_key })
            }
            "BASIC" => BasicWire::deserialize(object).map(|w| Credentials::Basic {
                username: w.username,
                password: w.password,
            }),
            _ => return Ok(Credentials::Unknown(object)),
        };
        // serde_json's messages name the missing field, never a value.
        parsed.map_err(|e| D::Error::custom(format!("{kind} credentials: {e}")))
    }
}

/// One entry of `GET /connection` (no credentials).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ConnectionSummary {
    /// Nango 0.7.8 to 0.8.3 spelt the key `conection_id`.
    #[serde(alias = "conection_id")]
    pub connection_id: String,
    /// The provider config key (not the template name, despite the key).
    pub provider: String,
    /// ISO-8601 UTC.
    pub created: String,
    /// Present only after a failed refresh (this server's addition).
    #[serde(default)]
    pub refresh: Option<RefreshStatus>,
}

/// What [`Client::get_token`](crate::Client::get_token) returns: the credential to call the
/// provider's API with, by credentials type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Token {
    /// `OAUTH2`: the access token.
    OAuth2(Secret),
    /// `OAUTH1`: the token and its secret (both sign requests).
    OAuth1 {
        oauth_token: Secret,
        oauth_token_secret: Secret,
    },
    /// `OAUTH2_CC`: the client credentials token.
    OAuth2ClientCredentials(Secret),
    /// `API_KEY`: the end user's key.
    ApiKey(Secret),
    /// `BASIC`: the end user's username and password.
    Basic { username: String, password: Secret },
}

impl Token {
    /// The token as one string, for the types that are one string (OAuth2 access token, client
    /// credentials token, API key); `None` for OAuth1 and Basic.
    pub fn expose(&self) -> Option<&str> {
        match self {
            Token::OAuth2(token) | Token::OAuth2ClientCredentials(token) | Token::ApiKey(token) => {
                Some(token.expose())
            }
            Token::OAuth1 { .. } | Token::Basic { .. } => None,
        }
    }
}

impl TryFrom<Credentials> for Token {
    type Error = crate::Error;

    /// Fails with [`Error::UnrecognizedOAuthType`](crate::Error::UnrecognizedOAuthType) for
    /// [`Credentials::Unknown`], as the Node clients throw.
    fn try_from(credentials: Credentials) -> Result<Token, crate::Error> {
        match credentials {
            Credentials::OAuth2 { access_token, .. } => Ok(Token::OAuth2(access_token)),
            Credentials::OAuth1 {
                oauth_token,
                oauth_token_secret,
                ..
            } => Ok(Token::OAuth1 {
                oauth_token,
                oauth_token_secret,
            }),
            Credentials::OAuth2ClientCredentials { token, .. } => {
                Ok(Token::OAuth2ClientCredentials(token))
            }
            Credentials::ApiKey { api_key } => Ok(Token::ApiKey(api_key)),
            Credentials::Basic { username, password } => Ok(Token::Basic { username, password }),
            unknown @ Credentials::Unknown(_) => Err(crate::Error::UnrecognizedOAuthType(
                unknown.kind().to_string(),
            )),
        }
    }
}

/// The credentials of a connection made without a browser
/// ([`Client::create_connection`](crate::Client::create_connection)); which one depends on the
/// provider's auth mode.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NewCredentials {
    /// An `API_KEY` provider: the end user's key.
    ApiKey(Secret),
    /// A `BASIC` provider: the end user's username and password.
    Basic { username: String, password: Secret },
    /// An `OAUTH2_CC` provider: nothing to give, the server fetches a token with the config's
    /// client id and secret (and fetches a new one before it expires).
    ClientCredentials,
}

/// What goes on the wire for `POST /connection`: the secrets leave their box only here.
#[derive(Serialize)]
pub(crate) struct NewConnectionBody<'a> {
    provider_config_key: &'a str,
    connection_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
}

impl<'a> NewConnectionBody<'a> {
    pub(crate) fn new(
        provider_config_key: &'a str,
        connection_id: &'a str,
        credentials: &'a NewCredentials,
    ) -> NewConnectionBody<'a> {
        let mut body = NewConnectionBody {
            provider_config_key,
            connection_id,
            api_key: None,
            username: None,
            password: None,
        };
        match credentials {
            NewCredentials::ApiKey(key) => body.api_key = Some(key.expose()),
            NewCredentials::Basic { username, password } => {
                body.username = Some(username);
                body.password = Some(password.expose());
            }
            NewCredentials::ClientCredentials => {}
        }
        body
    }
}

/// One provider of the server's catalog (`GET /providers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderSummary {
    /// What a provider config's `provider` field names.
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `OAUTH2`, `OAUTH1`, `OAUTH2_CC`, `API_KEY` or `BASIC`.
    pub auth_mode: String,
    #[serde(default)]
    pub categories: Vec<String>,
    /// The provider's own OAuth documentation.
    #[serde(default)]
    pub docs: Option<String>,
    /// For a name that stands for another provider (e.g. Nango's name for it), that provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
}

/// A whole provider template (`GET /providers/:name`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ProviderDetail {
    pub name: String,
    /// For a name that stands for another provider, that provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
    /// URLs, parameters, quirks, the `connection_config` fields it needs... (no secrets).
    pub template: Value,
}

#[derive(Deserialize)]
pub(crate) struct ConfigList {
    pub configs: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
pub(crate) struct ConfigEnvelope {
    pub config: ProviderConfig,
}

#[derive(Deserialize)]
pub(crate) struct ConfigCreated {
    pub config_id: i64,
}

#[derive(Deserialize)]
pub(crate) struct ConnectionList {
    pub connections: Vec<ConnectionSummary>,
}

#[derive(Deserialize)]
pub(crate) struct ProviderList {
    pub providers: Vec<ProviderSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(credentials: Value) -> Result<Connection, serde_json::Error> {
        serde_json::from_value(json!({
            "id": 3,
            "created_at": "2023-02-28T10:00:00.000Z",
            "updated_at": "2023-02-28T10:00:00.000Z",
            "provider_config_key": "github-dev",
            "connection_id": "1",
            "credentials": credentials,
            "connection_config": {},
            "account_id": 0,
            "metadata": {},
            "a_key_from_the_future": true
        }))
    }

    #[test]
    fn oauth2_credentials_parse_with_optional_fields() -> Result<(), serde_json::Error> {
        let c = connection(json!({
            "type": "OAUTH2", "access_token": "gho_x", "refresh_token": "ghr_x",
            "expires_at": "2023-02-28T18:00:00.000Z", "raw": {"token_type": "bearer"}
        }))?;
        assert_eq!(c.credentials.kind(), "OAUTH2");
        assert_eq!(c.credentials.expires_at(), Some("2023-02-28T18:00:00.000Z"));
        let Credentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            raw,
        } = c.credentials
        else {
            panic!("not OAuth2: {:?}", c.credentials);
        };
        assert_eq!(access_token.expose(), "gho_x");
        assert_eq!(
            refresh_token.map(Secret::into_exposed).as_deref(),
            Some("ghr_x")
        );
        assert_eq!(expires_at.as_deref(), Some("2023-02-28T18:00:00.000Z"));
        assert_eq!(raw.expose()["token_type"], "bearer");
        assert_eq!(c.refresh, None);

        let c = connection(json!({"type": "OAUTH2", "access_token": "t", "raw": {}}))?;
        assert!(matches!(
            c.credentials,
            Credentials::OAuth2 {
                refresh_token: None,
                expires_at: None,
                ..
            }
        ));
        Ok(())
    }

    #[test]
    fn every_credentials_type_becomes_its_token() -> Result<(), serde_json::Error> {
        let token = |credentials: Value| -> Result<Token, String> {
            let c = connection(credentials).map_err(|e| e.to_string())?;
            Token::try_from(c.credentials).map_err(|e| e.to_string())
        };
        let oauth1 = token(json!({
            "type": "OAUTH1", "oauth_token": "tok", "oauth_token_secret": "sec", "raw": {"a": 1}
        }));
        match oauth1 {
            Ok(Token::OAuth1 {
                oauth_token,
                oauth_token_secret,
            }) => {
                assert_eq!(oauth_token.expose(), "tok");
                assert_eq!(oauth_token_secret.expose(), "sec");
            }
            other => panic!("expected an OAuth1 token, got {other:?}"),
        }

        let cc = token(json!({
            "type": "OAUTH2_CC", "token": "cc-tok", "expires_at": "2030-01-01T00:00:00.000Z",
            "raw": {"access_token": "cc-tok", "expires_in": 3600}
        }));
        assert!(
            matches!(&cc, Ok(Token::OAuth2ClientCredentials(t)) if t.expose() == "cc-tok"),
            "{cc:?}"
        );
        assert_eq!(cc.ok().as_ref().and_then(Token::expose), Some("cc-tok"));
        // A server that names the field like OAUTH2's.
        let cc = token(json!({"type": "OAUTH2_CC", "access_token": "cc2", "raw": {}}));
        assert_eq!(cc.ok().as_ref().and_then(Token::expose), Some("cc2"));

        let key = token(json!({"type": "API_KEY", "apiKey": "sk-123"}));
        assert!(
            matches!(&key, Ok(Token::ApiKey(k)) if k.expose() == "sk-123"),
            "{key:?}"
        );

        let basic = token(json!({"type": "BASIC", "username": "ann", "password": "pw"}));
        match basic {
            Ok(Token::Basic { username, password }) => {
                assert_eq!(username, "ann");
                assert_eq!(password.expose(), "pw");
            }
            other => panic!("expected a basic token, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn an_unknown_type_parses_and_fails_only_as_a_token() -> Result<(), serde_json::Error> {
        let c = connection(json!({"type": "SAML", "assertion": "secret-assertion"}))?;
        assert_eq!(c.credentials.kind(), "SAML");
        assert_eq!(c.credentials.raw(), None);
        assert!(
            matches!(&c.credentials, Credentials::Unknown(v) if v["assertion"] == "secret-assertion")
        );
        let debug = format!("{c:?}");
        assert!(debug.contains("SAML"), "{debug}");
        assert!(!debug.contains("secret-assertion"), "{debug}");
        let err = Token::try_from(c.credentials).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Unrecognized OAuth type 'SAML' in stored credentials.")
        );
        Ok(())
    }

    #[test]
    fn a_known_type_without_its_token_is_an_error_naming_the_field() {
        let err = connection(json!({"type": "OAUTH2", "raw": {}}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("OAUTH2 credentials: missing field `access_token`"),
            "{err}"
        );
    }

    #[test]
    fn debug_of_a_connection_shows_no_token_secret_or_password() -> Result<(), serde_json::Error> {
        for credentials in [
            json!({"type": "OAUTH2", "access_token": "tok-A", "refresh_token": "tok-R",
                   "expires_at": "2023-02-28T18:00:00.000Z",
                   "raw": {"access_token": "tok-A", "refresh_token": "tok-R", "id_token": "tok-I"}}),
            json!({"type": "OAUTH1", "oauth_token": "tok-A", "oauth_token_secret": "tok-S",
                   "raw": {"oauth_token": "tok-A", "oauth_token_secret": "tok-S"}}),
            json!({"type": "OAUTH2_CC", "token": "tok-A", "raw": {"access_token": "tok-A"}}),
            json!({"type": "API_KEY", "apiKey": "tok-K"}),
            json!({"type": "BASIC", "username": "ann", "password": "tok-P"}),
            json!({"type": "FUTURE", "secret": "tok-F"}),
        ] {
            let c = connection(credentials)?;
            for debug in [format!("{c:?}"), format!("{c:#?}")] {
                assert!(!debug.contains("tok-"), "{debug}");
            }
            if let Ok(token) = Token::try_from(c.credentials.clone()) {
                let debug = format!("{token:?}");
                assert!(!debug.contains("tok-"), "{debug}");
            }
        }
        Ok(())
    }

    #[test]
    fn credentials_without_a_type_are_refused() {
        assert!(connection(json!({"access_token": "t"})).is_err());
        assert!(connection(json!({"type": 2, "access_token": "t"})).is_err());
    }

    #[test]
    fn the_refresh_status_of_a_failing_connection_is_read() -> Result<(), serde_json::Error> {
        let mut body = serde_json::to_value(json!({
            "id": 3, "created_at": "c", "updated_at": "u", "provider_config_key": "k",
            "connection_id": "1", "credentials": {"type": "OAUTH2", "access_token": "t", "raw": {}},
            "refresh": {"status": "needs_reauthorization", "error": "invalid_grant", "failures": 2,
                        "retry_after": null}
        }))?;
        let c: Connection = serde_json::from_value(body.clone())?;
        let refresh = c.refresh.as_ref().map(|r| (r.status.as_str(), r.failures));
        assert_eq!(refresh, Some(("needs_reauthorization", 2)));
        assert_eq!(c.account_id, None);
        body["metadata"] = Value::Null;
        let c: Connection = serde_json::from_value(body)?;
        assert_eq!(c.metadata, None);
        Ok(())
    }

    #[test]
    fn configs_from_0_7_lack_account_id_and_secrets_stay_hidden() -> Result<(), serde_json::Error> {
        let c: ProviderConfig = serde_json::from_value(json!({
            "id": 1, "created_at": "c", "updated_at": "u", "unique_key": "github",
            "provider": "github", "oauth_client_id": "id", "oauth_client_secret": "shh",
            "oauth_scopes": "repo,user"
        }))?;
        assert_eq!(c.account_id, None);
        assert!(!format!("{c:?}").contains("shh"));
        Ok(())
    }

    #[test]
    fn connection_list_accepts_the_0_7_typo() -> Result<(), serde_json::Error> {
        let l: ConnectionList = serde_json::from_value(json!({"connections": [
            {"conection_id": "a", "provider": "k", "created": "t"},
            {"connection_id": "b", "provider": "k", "created": "t"}
        ]}))?;
        let ids: Vec<_> = l
            .connections
            .iter()
            .map(|c| c.connection_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        Ok(())
    }

    #[test]
    fn new_config_serialises_the_secret_in_clear_only_on_the_wire() -> Result<(), serde_json::Error>
    {
        let c = NewConfig::new("gh", "github", "id", "shh", "repo");
        assert!(!format!("{c:?}").contains("shh"));
        let body = serde_json::to_value(NewConfigBody::from(&c))?;
        assert_eq!(
            body,
            json!({"provider_config_key": "gh", "provider": "github", "oauth_client_id": "id",
                   "oauth_client_secret": "shh", "oauth_scopes": "repo"})
        );
        // The operator's placeholder values, only when given.
        let c = c.with_connection_config([("hostname", "ghe.example.com")]);
        let body = serde_json::to_value(NewConfigBody::from(&c))?;
        assert_eq!(
            body["connection_config"],
            json!({"hostname": "ghe.example.com"})
        );
        let read: ProviderConfig = serde_json::from_value(json!({
            "id": 1, "created_at": "c", "updated_at": "u", "unique_key": "ghe",
            "provider": "github-enterprise", "oauth_client_id": "id", "oauth_client_secret": "shh",
            "oauth_scopes": "repo", "connection_config": {"hostname": "ghe.example.com"}
        }))?;
        assert_eq!(read.connection_config["hostname"], "ghe.example.com");
        Ok(())
    }

    #[test]
    fn new_connection_bodies_carry_only_their_auth_mode_s_fields() -> Result<(), serde_json::Error>
    {
        let body = |c: &NewCredentials| serde_json::to_value(NewConnectionBody::new("k", "u/1", c));
        assert_eq!(
            body(&NewCredentials::ApiKey("sk".into()))?,
            json!({"provider_config_key": "k", "connection_id": "u/1", "api_key": "sk"})
        );
        let basic = NewCredentials::Basic {
            username: "ann".into(),
            password: "pw".into(),
        };
        assert!(!format!("{basic:?}").contains("pw"));
        assert_eq!(
            body(&basic)?,
            json!({"provider_config_key": "k", "connection_id": "u/1", "username": "ann", "password": "pw"})
        );
        assert_eq!(
            body(&NewCredentials::ClientCredentials)?,
            json!({"provider_config_key": "k", "connection_id": "u/1"})
        );
        Ok(())
    }
}
