//! `Error`: everything a call to the server can end in, with messages fit to show a person.

use std::time::Duration;

/// The `type`s the server puts in its error bodies (`{"error": "...", "type": "..."}`), for
/// comparing with [`Error::kind`] without retyping, or mistyping, them.
pub mod kinds {
    /// 400: no connection with this id for this config key. Nango's spelling, kept on the wire.
    pub const UNKNOWN_CONNECTION: &str = "unkown_connection";
    /// 400: no provider config with this key.
    pub const UNKNOWN_PROVIDER_CONFIG: &str = "unknown_provider_config";
    /// 400: `create_config` with a key that exists.
    pub const DUPLICATE_PROVIDER_CONFIG: &str = "duplicate_provider_config";
    /// 400: `create_config` with a provider that is not in the server's catalog.
    pub const UNKNOWN_PROVIDER_TEMPLATE: &str = "unknown_provider_template";
    /// 404: `get_provider` with a name that is not in the catalog.
    pub const UNKNOWN_PROVIDER: &str = "unknown_provider";
    /// 401: the server has a secret key and the client sent none.
    pub const MISSING_AUTH_HEADER: &str = "missing_auth_header";
    /// 401: the secret key is wrong.
    pub const INVALID_SECRET_KEY: &str = "invalid_secret_key";
    /// 400: a forced refresh of credentials that cannot be refreshed (no refresh token).
    pub const NOT_REFRESHABLE: &str = "not_refreshable";
    /// 400: the provider refused the refresh token; the user must connect again.
    pub const REFRESH_REJECTED: &str = "refresh_rejected";
    /// 502: the provider failed or timed out while refreshing; the stored token was kept.
    pub const REFRESH_UNAVAILABLE: &str = "refresh_unavailable";
    /// 400: a parameter the server cannot accept.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// 500: the server failed.
    pub const SERVER_ERROR: &str = "server_error";
}

/// Nango 0.9 sent no `type`; its messages map to the types this server sends with them.
const KINDS_BY_MESSAGE: &[(&str, &str)] = &[
    ("Missing request body.", "missing_body"),
    (
        "Missing param 'provider_config_key'.",
        "missing_provider_config",
    ),
    (
        "There is no Provider Configuration matching this key.",
        kinds::UNKNOWN_PROVIDER_CONFIG,
    ),
    ("Missing param 'provider'.", "missing_provider_template"),
    (
        "No Provider Template matching the 'provider' parameter.",
        kinds::UNKNOWN_PROVIDER_TEMPLATE,
    ),
    ("Missing param 'oauth_client_id'.", "missing_client_id"),
    (
        "Missing param 'oauth_client_secret'.",
        "missing_client_secret",
    ),
    ("Missing param 'oauth_scopes'.", "missing_scopes"),
    ("Missing param 'connection_id'.", "missing_connection"),
    (
        "No connection matching params 'connection_id' and 'provider_config_key'.",
        kinds::UNKNOWN_CONNECTION,
    ),
    (
        "There is already a Provider Configuration matching the param 'provider_config_key'.",
        kinds::DUPLICATE_PROVIDER_CONFIG,
    ),
    (
        "Authentication failed. The request is missing the Authorization header.",
        kinds::MISSING_AUTH_HEADER,
    ),
    (
        "Authentication failed. The provided secret key is invalid.",
        kinds::INVALID_SECRET_KEY,
    ),
    ("An unhandled error has occured.", kinds::SERVER_ERROR),
];

/// Why a call failed.
///
/// ```
/// # fn handle(error: nango_client::Error) {
/// use nango_client::{kinds, Error};
///
/// match &error {
///     Error::Api { .. } if error.kind() == Some(kinds::UNKNOWN_CONNECTION) => {
///         // the user has not connected yet
///     }
///     Error::Api { status, message, .. } => eprintln!("HTTP {status}: {message}"),
///     Error::Network { .. } | Error::Timeout { .. } => eprintln!("no answer: {error}"),
///     _ => eprintln!("{error}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host given to the client is not an `http(s)://` URL.
    #[error("Invalid URL provided for the Nango host: {host}")]
    InvalidHost { host: String },

    /// An argument cannot be sent as given (e.g. an id that a URL path cannot carry).
    #[error("{0}")]
    InvalidArgument(String),

    /// The server answered with a non-2xx status (never retried). `message` is its `error`
    /// string (or the body text when it was not the JSON envelope); `kind` is its
    /// machine-readable `type` (derived from the message for a Nango 0.9 server, which sent
    /// none).
    #[error("{message}")]
    Api {
        status: u16,
        message: String,
        kind: Option<String>,
    },

    /// No answer: the server is down, the address is wrong, or the connection broke. `request`
    /// is the method and path (`GET /config`); `attempts` counts the retries too.
    #[error("The Nango server at {host} could not be reached ({request}): {reason}{}", tries(*attempts))]
    Network {
        host: String,
        request: String,
        attempts: u32,
        reason: String,
        #[source]
        source: reqwest::Error,
    },

    /// No complete answer within the client's timeout (each attempt has the whole timeout).
    #[error("The Nango server at {host} did not answer {request} within {}{}", seconds(*timeout), tries(*attempts))]
    Timeout {
        host: String,
        request: String,
        attempts: u32,
        timeout: Duration,
        #[source]
        source: reqwest::Error,
    },

    /// The server answered 2xx with a body this client does not understand.
    #[error("Unexpected response from the Nango server: {0}")]
    Decode(String),

    /// The stored credentials are of a type this client cannot turn into a token.
    #[error("Unrecognized OAuth type '{0}' in stored credentials.")]
    UnrecognizedOAuthType(String),
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" ({attempts} attempts).")
    } else {
        ".".to_string()
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error `type` (`unkown_connection`, `invalid_secret_key`,
    /// `not_refreshable`...; see [`kinds`]), when it answered with one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => kind.as_deref(),
            _ => None,
        }
    }

    /// The server's error message, when it answered with an error.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Error::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// True when no answer came: [`Error::Network`] or [`Error::Timeout`].
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Network { .. } | Error::Timeout { .. })
    }

    /// Builds the error for a non-2xx answer. Nango's envelope is `{"error": "..."}` (this
    /// server adds `"type"`); older servers sent plain text for unhandled errors, and proxies
    /// send HTML, so anything else is kept as text rather than dropped. A redirect is not
    /// followed (the secret key goes to the configured host only): the message says where it
    /// pointed.
    pub(crate) fn from_response(
        status: u16,
        reason: Option<&str>,
        location: Option<&str>,
        body: &[u8],
    ) -> Error {
        let text = String::from_utf8_lossy(body);
        let envelope = serde_json::from_slice::<serde_json::Value>(body).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let status_text = format!(
            "HTTP {status}{}",
            reason.map(|r| format!(" {r}")).unwrap_or_default()
        );
        let message = match (field("error"), location) {
            (Some(message), _) => message,
            (None, Some(location)) => format!(
                "The Nango server answered {status_text}, a redirect to {location} (redirects are not followed: set the host to the final URL)."
            ),
            (None, None) if !text.trim().is_empty() => text.trim().chars().take(1000).collect(),
            (None, None) => {
                format!("The Nango server answered {status_text} with an empty body.")
            }
        };
        let kind = field("type").or_else(|| {
            KINDS_BY_MESSAGE
                .iter()
                .find(|(m, _)| *m == message)
                .map(|(_, kind)| kind.to_string())
        });
        Error::Api {
            status,
            message,
            kind,
        }
    }

    /// A request that got no (complete) answer. Names the cause a person can act on
    /// ("Connection refused") instead of reqwest's outer "error sending request for url (...)".
    pub(crate) fn unreachable(
        host: &str,
        request: String,
        attempts: u32,
        timeout: Duration,
        source: reqwest::Error,
    ) -> Error {
        if source.is_timeout() {
            return Error::Timeout {
                host: host.to_string(),
                request,
                attempts,
                timeout,
                source,
            };
        }
        let mut innermost: &dyn std::error::Error = &source;
        while let Some(next) = innermost.source() {
            innermost = next;
        }
        Error::Network {
            host: host.to_string(),
            request,
            attempts,
            reason: innermost.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_parts(e: Error) -> (u16, String, Option<String>) {
        match e {
            Error::Api {
                status,
                message,
                kind,
            } => (status, message, kind),
            other => panic!("not an API error: {other:?}"),
        }
    }

    #[test]
    fn the_nango_envelope_gives_message_and_type() {
        let body = br#"{"error":"There is no Provider Configuration matching this key.","type":"unknown_provider_config"}"#;
        let e = Error::from_response(400, None, None, body);
        assert_eq!(e.kind(), Some(kinds::UNKNOWN_PROVIDER_CONFIG));
        assert_eq!(
            e.server_message(),
            Some("There is no Provider Configuration matching this key.")
        );
        let (status, message, kind) = api_parts(e);
        assert_eq!(status, 400);
        assert_eq!(
            message,
            "There is no Provider Configuration matching this key."
        );
        assert_eq!(kind.as_deref(), Some("unknown_provider_config"));
    }

    #[test]
    fn a_0_9_envelope_without_type_gets_the_type_of_its_message() {
        let body = br#"{"error":"Authentication failed. The provided secret key is invalid."}"#;
        let e = Error::from_response(401, None, None, body);
        assert_eq!(
            e.to_string(),
            "Authentication failed. The provided secret key is invalid."
        );
        assert_eq!(e.status(), Some(401));
        assert_eq!(e.kind(), Some("invalid_secret_key"));

        let body = br#"{"error":"No connection matching params 'connection_id' and 'provider_config_key'."}"#;
        assert_eq!(
            Error::from_response(400, None, None, body).kind(),
            Some(kinds::UNKNOWN_CONNECTION)
        );
        let body = br#"{"error":"Something new."}"#;
        assert_eq!(Error::from_response(400, None, None, body).kind(), None);
    }

    #[test]
    fn a_non_json_body_is_kept_as_text() {
        let (_, message, kind) =
            api_parts(Error::from_response(500, None, None, b"  Cannot GET /x\n"));
        assert_eq!(message, "Cannot GET /x");
        assert_eq!(kind, None);
    }

    #[test]
    fn json_without_an_error_string_is_kept_as_text() {
        let (_, message, _) = api_parts(Error::from_response(502, None, None, br#"{"oops":1}"#));
        assert_eq!(message, r#"{"oops":1}"#);
    }

    #[test]
    fn an_empty_body_names_the_status() {
        let e = Error::from_response(503, Some("Service Unavailable"), None, b"");
        assert_eq!(
            e.to_string(),
            "The Nango server answered HTTP 503 Service Unavailable with an empty body."
        );
        assert!(!e.is_unreachable());
    }

    #[test]
    fn a_redirect_says_where_it_pointed() {
        let e = Error::from_response(
            301,
            Some("Moved Permanently"),
            Some("https://nango.example.com/config"),
            b"",
        );
        assert_eq!(
            e.to_string(),
            "The Nango server answered HTTP 301 Moved Permanently, a redirect to https://nango.example.com/config (redirects are not followed: set the host to the final URL)."
        );
    }

    #[test]
    fn attempts_and_timeouts_read_well() {
        assert_eq!(tries(1), ".");
        assert_eq!(tries(3), " (3 attempts).");
        assert_eq!(seconds(Duration::from_secs(60)), "60 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn unrecognized_oauth_type_matches_the_node_client() {
        assert_eq!(
            Error::UnrecognizedOAuthType("SAML".into()).to_string(),
            "Unrecognized OAuth type 'SAML' in stored credentials."
        );
    }
}
