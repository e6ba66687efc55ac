//! `Error`: everything a call to the server can end in, with messages fit to show a person.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host given to the client is not an `http(s)://` URL.
    #[error("Invalid URL provided for the Nango host: {host}")]
    InvalidHost { host: String },

    /// An argument cannot be sent as given (e.g. an id that a URL path cannot carry).
    #[error("{0}")]
    InvalidArgument(String),

    /// The server answered with a non-2xx status. `message` is its `error` string (or the body
    /// text when it was not the JSON envelope); `kind` is its machine-readable `type`, if any.
    #[error("{message}")]
    Api {
        status: u16,
        message: String,
        kind: Option<String>,
    },

    /// No answer: the server is down, the address is wrong, or it timed out.
    #[error("The Nango server at {host} could not be reached: {reason}")]
    Network {
        host: String,
        reason: String,
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

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Builds the error for a non-2xx answer. Nango's envelope is `{"error": "..."}` (we may add
    /// `"type"`); older servers sent plain text for unhandled errors, and proxies send HTML, so
    /// anything else is kept as text rather than dropped.
    pub(crate) fn from_response(status: u16, reason: Option<&str>, body: &[u8]) -> Error {
        let text = String::from_utf8_lossy(body);
        let envelope = serde_json::from_slice::<serde_json::Value>(body).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let message = match field("error") {
            Some(message) => message,
            None if !text.trim().is_empty() => text.trim().chars().take(1000).collect(),
            None => format!(
                "The Nango server answered HTTP {status}{} with an empty body.",
                reason.map(|r| format!(" {r}")).unwrap_or_default()
            ),
        };
        Error::Api {
            status,
            message,
            kind: field("type"),
        }
    }

    /// Names the cause a person can act on ("Connection refused", "timed out") instead of
    /// reqwest's outer "error sending request for url (...)".
    pub(crate) fn network(host: &str, source: reqwest::Error) -> Error {
        let reason = if source.is_timeout() {
            "the request timed out".to_string()
        } else {
            let mut innermost: &dyn std::error::Error = &source;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            innermost.to_string()
        };
        Error::Network {
            host: host.to_string(),
            reason,
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
        let (status, message, kind) = api_parts(Error::from_response(400, None, body));
        assert_eq!(status, 400);
        assert_eq!(
            message,
            "There is no Provider Configuration matching this key."
        );
        assert_eq!(kind.as_deref(), Some("unknown_provider_config"));
    }

    #[test]
    fn an_envelope_without_type_has_no_kind() {
        let body = br#"{"error":"Authentication failed. The provided secret key is invalid."}"#;
        let e = Error::from_response(401, None, body);
        assert_eq!(
            e.to_string(),
            "Authentication failed. The provided secret key is invalid."
        );
        assert_eq!(e.status(), Some(401));
        assert_eq!(api_parts(e).2, None);
    }

    #[test]
    fn a_non_json_body_is_kept_as_text() {
        let (_, message, kind) = api_parts(Error::from_response(500, None, b"  Cannot GET /x\n"));
        assert_eq!(message, "Cannot GET /x");
        assert_eq!(kind, None);
    }

    #[test]
    fn json_without_an_error_string_is_kept_as_text() {
        let (_, message, _) = api_parts(Error::from_response(502, None, br#"{"oops":1}"#));
        assert_eq!(message, r#"{"oops":1}"#);
    }

    #[test]
    fn an_empty_body_names_the_status() {
        let e = Error::from_response(503, Some("Service Unavailable"), b"");
        assert_eq!(
            e.to_string(),
            "The Nango server answered HTTP 503 Service Unavailable with an empty body."
        );
    }

    #[test]
    fn unrecognized_oauth_type_matches_the_node_client() {
        assert_eq!(
            Error::UnrecognizedOAuthType("API_KEY".into()).to_string(),
            "Unrecognized OAuth type 'API_KEY' in stored credentials."
        );
    }
}
