//! The JSON shapes of the REST API (Nango 0.9), typed. Unknown keys are ignored and keys that
//! older servers lacked are optional, so the client works against any server of the era.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;

/// A provider configuration as stored by the server (`GET /config`, `GET /config/:key`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
}

/// What goes on the wire for a [`NewConfig`]: the secret leaves its box only here.
#[derive(Serialize)]
pub(crate) struct NewConfigBody<'a> {
    provider_config_key: &'a str,
    provider: &'a str,
    oauth_client_id: &'a str,
    oauth_client_secret: &'a str,
    oauth_scopes: &'a str,
}

impl<'a> From<&'a NewConfig> for NewConfigBody<'a> {
    fn from(c: &'a NewConfig) -> Self {
        NewConfigBody {
            provider_config_key: &c.provider_config_key,
            provider: &c.provider,
            oauth_client_id: &c.oauth_client_id,
            oauth_client_secret: c.oauth_client_secret.expose(),
            oauth_scopes: &c.oauth_scopes,
        }
    }
}

/// A connection with its (fresh) credentials (`GET /connection/:id`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Connection {
    pub id: i64,
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
}

/// Stored credentials, by their `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    OAuth2 {
        access_token: Secret,
        refresh_token: Option<Secret>,
        /// ISO-8601 UTC.
        expires_at: Option<String>,
        /// The provider's token response.
        raw: Value,
    },
    OAuth1 {
        oauth_token: Secret,
        oauth_token_secret: Secret,
        raw: Value,
    },
    /// A `type` this client does not know; the whole object is kept.
    Other {
        kind: String,
        fields: Map<String, Value>,
    },
}

impl Credentials {
    /// The `type` string as sent by the server.
    pub fn kind(&self) -> &str {
        match self {
            Credentials::OAuth2 { .. } => "OAUTH2",
            Credentials::OAuth1 { .. } => "OAUTH1",
            Credentials::Other { kind, .. } => kind,
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
    raw: Value,
}

#[derive(Deserialize)]
struct OAuth1Wire {
    oauth_token: Secret,
    oauth_token_secret: Secret,
    #[serde(default)]
    raw: Value,
}

// Hand-written because serde's internally tagged enums cannot keep the data of an unknown tag.
impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Credentials, D::Error> {
        use serde::de::Error as _;
        let fields = Map::<String, Value>::deserialize(deserializer)?;
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(other) => other.to_string(),
            None => return Err(D::Error::missing_field("type")),
        };
        let object = Value::Object(fields);
        match kind.as_str() {
            "OAUTH2" => {
                let w = OAuth2Wire::deserialize(object).map_err(D::Error::custom)?;
                Ok(Credentials::OAuth2 {
                    access_token: w.access_token,
                    refresh_token: w.refresh_token,
                    expires_at: w.expires_at,
                    raw: w.raw,
                })
            }
            "OAUTH1" => {
                let w = OAuth1Wire::deserialize(object).map_err(D::Error::custom)?;
                Ok(Credentials::OAuth1 {
                    oauth_token: w.oauth_token,
                    oauth_token_secret: w.oauth_token_secret,
                    raw: w.raw,
                })
            }
            _ => match object {
                Value::Object(fields) => Ok(Credentials::Other { kind, fields }),
                _ => Err(D::Error::custom("credentials must be an object")),
            },
        }
    }
}

/// One entry of `GET /connection` (no credentials).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConnectionSummary {
    /// Nango 0.7.8 to 0.8.3 spelt the key `conection_id`.
    #[serde(alias = "conection_id")]
    pub connection_id: String,
    /// The provider config key (not the template name, despite the key).
    pub provider: String,
    /// ISO-8601 UTC.
    pub created: String,
}

/// The access token of a connection, what `token:get` prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    OAuth2(Secret),
    OAuth1 {
        oauth_token: Secret,
        oauth_token_secret: Secret,
    },
}

impl TryFrom<Credentials> for Token {
    type Error = crate::Error;

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
            Credentials::Other { kind, .. } => Err(crate::Error::UnrecognizedOAuthType(kind)),
        }
    }
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
            refresh_token.map(|t| t.expose().to_string()).as_deref(),
            Some("ghr_x")
        );
        assert_eq!(expires_at.as_deref(), Some("2023-02-28T18:00:00.000Z"));
        assert_eq!(raw["token_type"], "bearer");

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
    fn oauth1_and_unknown_types_become_tokens_or_errors() -> Result<(), serde_json::Error> {
        let c = connection(json!({
            "type": "OAUTH1", "oauth_token": "tok", "oauth_token_secret": "sec", "raw": {}
        }))?;
        match Token::try_from(c.credentials) {
            Ok(Token::OAuth1 {
                oauth_token,
                oauth_token_secret,
            }) => {
                assert_eq!(oauth_token.expose(), "tok");
                assert_eq!(oauth_token_secret.expose(), "sec");
            }
            other => panic!("expected an OAuth1 token, got {other:?}"),
        }

        let c = connection(json!({"type": "API_KEY", "api_key": "k"}))?;
        assert_eq!(c.credentials.kind(), "API_KEY");
        let err = Token::try_from(c.credentials).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Unrecognized OAuth type 'API_KEY' in stored credentials.")
        );
        Ok(())
    }

    #[test]
    fn credentials_without_a_type_are_refused() {
        assert!(connection(json!({"access_token": "t"})).is_err());
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
        let c = NewConfig {
            provider_config_key: "gh".into(),
            provider: "github".into(),
            oauth_client_id: "id".into(),
            oauth_client_secret: "shh".into(),
            oauth_scopes: "repo".into(),
        };
        assert!(!format!("{c:?}").contains("shh"));
        let body = serde_json::to_value(NewConfigBody::from(&c))?;
        assert_eq!(
            body,
            json!({"provider_config_key": "gh", "provider": "github", "oauth_client_id": "id",
                   "oauth_client_secret": "shh", "oauth_scopes": "repo"})
        );
        Ok(())
    }
}
