//! Credentials of a connection: their stored shape, parsing a provider's token response into them,
//! and handing out fresh ones (refresh policy and single-flight refresh in `fresh`).

mod apply;
mod fresh;
pub mod policy;
pub mod proactive;
mod verify;

pub use apply::{apply_credentials, ApplyError};
pub use fresh::{fetch_client_credentials, FreshError, Freshness, Refresher};
pub use verify::{verify_credentials, VerifyError};

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::providers::TokenResponseShape;

/// Credentials as stored and as returned by `GET /connection/:id`; the JSON key order
/// (`type, access_token, refresh_token, expires_at, raw`) is the one Nango 0.9 produced.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum Credentials {
    #[serde(rename = "OAUTH2")]
    OAuth2(OAuth2Credentials),
    #[serde(rename = "OAUTH1")]
    OAuth1(OAuth1Credentials),
    #[serde(rename = "OAUTH2_CC")]
    OAuth2ClientCredentials(ClientCredentials),
    #[serde(rename = "API_KEY")]
    ApiKey(ApiKeyCredentials),
    #[serde(rename = "BASIC")]
    Basic(BasicCredentials),
}

/// A token the server obtained with the client credentials grant (`{type: "OAUTH2_CC", token,
/// expires_at, raw}`, the shape later Nango versions use).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientCredentials {
    pub token: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "iso_millis_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub raw: Value,
}

/// The end user's API key (`{type: "API_KEY", apiKey}`).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyCredentials {
    #[serde(rename = "apiKey")]
    pub api_key: String,
}

/// The end user's username and password (`{type: "BASIC", username, password}`).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BasicCredentials {
    pub username: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OAuth2Credentials {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// ISO 8601 with milliseconds; absent when the provider gave no lifetime.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "iso_millis_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The provider's token response as it came (with `expires_at` added when computed).
    #[schema(value_type = Object)]
    pub raw: Value,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OAuth1Credentials {
    pub oauth_token: String,
    pub oauth_token_secret: String,
    #[schema(value_type = Object)]
    pub raw: Value,
}

// Tokens must never reach a log line, so Debug shows only the shape.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::OAuth2(c) => f
                .debug_struct("OAuth2Credentials")
                .field("refresh_token", &c.refresh_token.as_ref().map(|_| "***"))
                .field("expires_at", &c.expires_at)
                .finish_non_exhaustive(),
            Credentials::OAuth1(_) => f.debug_struct("OAuth1Credentials").finish_non_exhaustive(),
            Credentials::OAuth2ClientCredentials(c) => f
                .debug_struct("ClientCredentials")
                .field("expires_at", &c.expires_at)
                .finish_non_exhaustive(),
            Credentials::ApiKey(_) => f.debug_struct("ApiKeyCredentials").finish_non_exhaustive(),
            Credentials::Basic(c) => f
                .debug_struct("BasicCredentials")
                .field("username", &c.username)
                .finish_non_exhaustive(),
        }
    }
}

impl Credentials {
    /// When the access token expires, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Credentials::OAuth2(c) => c.expires_at,
            Credentials::OAuth2ClientCredentials(c) => c.expires_at,
            _ => None,
        }
    }

    /// True when there is something to refresh with: an OAuth 2 refresh token, or the client
    /// credentials of an OAUTH2_CC config.
    pub fn refreshable(&self) -> bool {
        match self {
            Credentials::OAuth2(c) => c.refresh_token.is_some(),
            Credentials::OAuth2ClientCredentials(_) => true,
            _ => false,
        }
    }
}

/// Why a token response could not be turned into credentials.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenResponseError {
    #[error("the token response has no access_token")]
    MissingAccessToken,
    #[error("the token response is nested deeper than {MAX_TOKEN_RESPONSE_DEPTH} levels")]
    TooDeep,
    /// Stored as it is, the response could not be read back (see `check_storable`).
    #[error("the token response cannot be stored: {0}")]
    NotStorable(String),
}

/// The deepest nesting of a token response that is accepted (the response object is level 1).
/// Real ones have one to three levels. The bound matters because serde_json refuses to read
/// JSON nested more than 128 levels, and the stored credentials wrap `raw` in more levels: an
/// unbounded response would be stored and then never readable again.
pub const MAX_TOKEN_RESPONSE_DEPTH: usize = 32;

/// The prefix of the magic keys serde_json's `Value` reads specially (`RawValue`, arbitrary
/// precision numbers): an object with such a key does not read back as itself.
const SERDE_JSON_PRIVATE_KEY: &str = "$serde_json::private::";

/// Turns a provider's OAuth 2 token response into credentials, the way Nango 0.9 did: `expires_at`
/// (UNIX seconds, or a date string) wins over `expires_in`, and the computed expiry is written back
/// into `raw` as an ISO string so that clients reading `raw.expires_at` keep working.
pub fn parse_oauth2_response(
    mut raw: Map<String, Value>,
    now: DateTime<Utc>,
    shape: &TokenResponseShape,
) -> Result<OAuth2Credentials, TokenResponseError> {
    let access_token = match value_at(&raw, shape.access_token_path()) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenResponseError::MissingAccessToken),
    };
    let refresh_token = match value_at(&raw, shape.refresh_token_path()) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let lifetime = value_at(&raw, shape.expires_in_path())
        .and_then(parse_number)
        .filter(|n| !(shape.zero_expires_in_never_expires && *n == 0.0))
        .map(|n| shape.expires_in_unit.to_seconds(n))
        .or(shape.default_expires_in.map(|secs| secs as f64));
    let expires_at = raw
        .get("expires_at")
        .and_then(parse_expires_at)
        .or_else(|| {
            let secs = lifetime?;
            if !secs.is_finite() || secs.abs() > 1e11 {
                return None;
            }
            now.checked_add_signed(chrono::Duration::try_seconds(secs as i64)?)
        });
    if let Some(at) = expires_at {
        raw.insert("expires_at".into(), Value::String(iso_millis(at)));
    }
    let credentials = OAuth2Credentials {
        access_token,
        refresh_token,
        expires_at,
        raw: Value::Object(raw),
    };
    check_storable(&credentials)?;
    Ok(credentials)
}

/// Refuses credentials that would be stored but could not be read back (a row that answers 500
/// for ever is worse than a failed flow or refresh): a response nested too deep or holding one
/// of serde_json's magic keys, and, as a backstop, anything else whose JSON does not parse back.
fn check_storable(credentials: &OAuth2Credentials) -> Result<(), TokenResponseError> {
    // Iterative: the response may come from elsewhere than serde_json's depth-limited parser.
    let mut pending = vec![(&credentials.raw, 1usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => {
                if let Some(key) = map.keys().find(|k| k.starts_with(SERDE_JSON_PRIVATE_KEY)) {
                    return Err(TokenResponseError::NotStorable(format!(
                        "it has the reserved key {key:?}"
                    )));
                }
                Box::new(map.values())
            }
            _ => continue,
        };
        if depth > MAX_TOKEN_RESPONSE_DEPTH {
            return Err(TokenResponseError::TooDeep);
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    let stored = Credentials::OAuth2(credentials.clone());
    let text = serde_json::to_string(&stored)
        .map_err(|e| TokenResponseError::NotStorable(e.to_string()))?;
    serde_json::from_str::<Credentials>(&text)
        .map_err(|e| TokenResponseError::NotStorable(e.to_string()))?;
    Ok(())
}

/// The value at a dotted path (`authed_user.access_token`) of a JSON object; a number picks an
/// array's element (`accounts.0.base_uri`).
pub fn value_at<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = object.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn parse_expires_at(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => Utc.timestamp_opt(n.as_f64()? as i64, 0).single(),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| Utc.timestamp_opt(s.trim().parse().ok()?, 0).single()),
        _ => None,
    }
}

/// `expires_in` arrives as a number or, from some providers, a numeric string.
fn parse_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// ISO-8601 UTC with milliseconds, the timestamp format of every Nango JSON body.
pub fn iso_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Serde glue for `Option<DateTime<Utc>>` written as ISO-8601 with milliseconds.
pub mod iso_millis_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(at) => s.serialize_str(&super::iso_millis(*at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default()
    }

    fn parse_oauth2_response_default(
        raw: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<OAuth2Credentials, TokenResponseError> {
        parse_oauth2_response(raw, now, &TokenResponseShape::default())
    }

    #[test]
    fn nested_paths_units_and_default_lifetimes_follow_the_template() {
        use crate::providers::ExpiresInUnit;
        // Slack v2: the user token lives under authed_user.
        let slack = TokenResponseShape {
            access_token: Some("authed_user.access_token".into()),
            refresh_token: Some("authed_user.refresh_token".into()),
            expires_in: Some("authed_user.expires_in".into()),
            ..Default::default()
        };
        let body = json!({"ok": true, "access_token": "xoxb-bot", "authed_user":
            {"access_token": "xoxp-user", "refresh_token": "xoxe-r", "expires_in": 43200}});
        let c = parse_oauth2_response(obj(body.clone()), now(), &slack)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.access_token, "xoxp-user");
        assert_eq!(c.refresh_token.as_deref(), Some("xoxe-r"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_043_200));
        assert_eq!(
            c.raw["authed_user"], body["authed_user"],
            "raw is kept whole"
        );

        let millis = TokenResponseShape {
            expires_in_unit: ExpiresInUnit::Milliseconds,
            ..Default::default()
        };
        let c = parse_oauth2_response(
            obj(json!({"access_token": "a", "expires_in": 3_600_000})),
            now(),
            &millis,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_003_600));

        let fixed = TokenResponseShape {
            default_expires_in: Some(7200),
            ..Default::default()
        };
        let c = parse_oauth2_response(obj(json!({"access_token": "a"})), now(), &fixed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_007_200));
        // A lifetime in the response wins over the documented default.
        let c = parse_oauth2_response(
            obj(json!({"access_token": "a", "expires_in": 60})),
            now(),
            &fixed,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_000_060));

        // A path that leads nowhere is a missing token, not a panic.
        let wrong = TokenResponseShape {
            access_token: Some("data.token.value".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_oauth2_response(obj(json!({"data": "x"})), now(), &wrong).err(),
            Some(TokenResponseError::MissingAccessToken)
        );
    }

    #[test]
    fn absurd_lifetimes_are_ignored_rather_than_overflowing() {
        for expires_in in [json!(1e300), json!("NaN"), json!(-1e200)] {
            let c = parse_oauth2_response_default(
                obj(json!({"access_token": "a", "expires_in": expires_in})),
                now(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.expires_at, None);
        }
    }

    #[test]
    fn expires_in_becomes_expires_at_in_credentials_and_raw() {
        let c = parse_oauth2_response_default(
            obj(json!({"access_token":"a","refresh_token":"r","expires_in":3600})),
            now(),
        );
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.refresh_token.as_deref(), Some("r"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_003_600));
        assert_eq!(c.raw["expires_at"], json!("2023-11-14T23:13:20.000Z"));
    }

    #[test]
    fn numeric_expires_at_is_unix_seconds_and_string_expires_in_is_accepted() {
        let c = parse_oauth2_response_default(
            obj(json!({"access_token":"a","expires_at":1_700_000_100})),
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_000_100));
        let c = parse_oauth2_response_default(
            obj(json!({"access_token":"a","expires_in":"60"})),
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.expires_at.map(|t| t.timestamp()), Some(1_700_000_060));
    }

    #[test]
    fn no_expiry_and_empty_refresh_token_are_left_out() {
        let c = parse_oauth2_response_default(
            obj(json!({"access_token":"a","refresh_token":""})),
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.refresh_token, None);
        assert_eq!(c.expires_at, None);
        let s = serde_json::to_string(&Credentials::OAuth2(c)).unwrap_or_default();
        assert_eq!(
            s,
            r#"{"type":"OAUTH2","access_token":"a","raw":{"access_token":"a","refresh_token":""}}"#
        );
    }

    #[test]
    fn missing_or_empty_access_token_is_an_error() {
        for body in [
            json!({"ok":false,"error":"invalid_code"}),
            json!({"access_token":""}),
        ] {
            assert_eq!(
                parse_oauth2_response_default(obj(body), now()).err(),
                Some(TokenResponseError::MissingAccessToken)
            );
        }
    }

    /// Found by fuzzing: both were stored, and then every read of the connection failed.
    #[test]
    fn responses_that_could_not_be_read_back_are_refused() {
        let mut deep = json!("bottom");
        for _ in 0..127 {
            deep = json!({ "nested": deep });
        }
        let body = obj(json!({"access_token": "a", "refresh_token": "r", "extra": deep}));
        assert_eq!(
            parse_oauth2_response_default(body, now()).err(),
            Some(TokenResponseError::TooDeep)
        );

        // A form-encoded response (every value a string) can carry any key.
        let body = obj(json!({"access_token": "a", "$serde_json::private::RawValue": "{"}));
        assert!(matches!(
            parse_oauth2_response_default(body, now()),
            Err(TokenResponseError::NotStorable(_))
        ));
        let body =
            obj(json!({"access_token": "a", "x": [{"$serde_json::private::RawValue": "1"}]}));
        assert!(matches!(
            parse_oauth2_response_default(body, now()),
            Err(TokenResponseError::NotStorable(_))
        ));

        // Up to the limit, it is stored and reads back as it was.
        let nested = |levels: usize| {
            let mut deep = json!(["bottom"]);
            for _ in 1..levels {
                deep = json!({ "nested": deep });
            }
            let mut body = obj(deep);
            body.insert("access_token".into(), json!("a"));
            body
        };
        assert_eq!(
            parse_oauth2_response_default(nested(MAX_TOKEN_RESPONSE_DEPTH + 1), now()).err(),
            Some(TokenResponseError::TooDeep)
        );
        let c = parse_oauth2_response_default(nested(MAX_TOKEN_RESPONSE_DEPTH), now())
            .unwrap_or_else(|e| panic!("{e}"));
        let text = serde_json::to_string(&Credentials::OAuth2(c.clone())).unwrap_or_default();
        let read: Result<Credentials, _> = serde_json::from_str(&text);
        assert!(
            matches!(read, Ok(Credentials::OAuth2(r)) if r == c),
            "{text}"
        );
    }

    #[test]
    fn debug_never_shows_tokens() {
        let c = Credentials::OAuth2(OAuth2Credentials {
            access_token: "tok-123".into(),
            refresh_token: Some("ref-456".into()),
            expires_at: None,
            raw: json!({"access_token":"tok-123"}),
        });
        let d = format!("{c:?}");
        assert!(!d.contains("tok-123") && !d.contains("ref-456"), "{d}");
    }
}
