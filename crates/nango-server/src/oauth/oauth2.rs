//! OAuth 2 on the wire: the authorization redirect URL and calls to a provider's token endpoint
//! (code exchange and refresh), with the template's client-auth method and body format.
//!
//! We own this instead of using the `oauth2` crate because the quirks (client auth in the body by
//! default, JSON bodies, 200-with-`error` responses, form-encoded responses, the raw response kept
//! verbatim) are exactly what a generic client normalises away.

use std::time::Duration;

use axum::http::header;
use serde_json::{Map, Value};
use url::Url;

use chrono::Utc;

use crate::credentials::{parse_oauth2_response, value_at, OAuth2Credentials};
use crate::providers::{
    fill_exchange_params, fill_metadata_headers, BodyFormat, HttpMethod, MetadataRequest,
    ProviderTemplate, TokenExchange,
};

/// Builds the provider's authorize URL: origin and path of the template URL (its query is
/// dropped, as Nango did), then our parameters in Nango's order. A later parameter with the same
/// name replaces the earlier one in place.
pub fn authorization_url(
    interpolated_authorization_url: &str,
    params: Vec<(String, String)>,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(interpolated_authorization_url)?;
    url.set_query(None);
    url.set_fragment(None);
    let mut merged: Vec<(String, String)> = Vec::with_capacity(params.len());
    for (k, v) in params {
        match merged.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => merged.push((k, v)),
        }
    }
    url.query_pairs_mut().extend_pairs(merged);
    Ok(url.into())
}

/// Why a token endpoint call failed, split by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum TokenEndpointError {
    /// The provider answered and refused (4xx, or 200 with an `error` field): retrying the same
    /// request will not help. Holds the provider's `error` code and description, if any.
    #[error("{0}")]
    Rejected(String),
    /// Timeout, connection failure or 5xx: worth retrying later.
    #[error("{0}")]
    Unavailable(String),
    /// A 2xx body that is neither JSON nor form-encoded, or not an object.
    #[error("{0}")]
    InvalidResponse(String),
}

/// One call to a token endpoint.
pub struct TokenCall<'a> {
    pub template: &'a ProviderTemplate,
    /// `token_url` after interpolation.
    pub token_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Grant parameters (grant_type, code/refresh_token, ...) in the order they are sent.
    pub params: Vec<(String, String)>,
    pub timeout: Duration,
}

impl TokenCall<'_> {
    /// Sends the request and returns the provider's response object (JSON, or a form-encoded body
    /// turned into string values).
    pub async fn send(
        self,
        http: &reqwest::Client,
    ) -> Result<Map<String, Value>, TokenEndpointError> {
        let mut url = Url::parse(self.token_url)
            .map_err(|e| TokenEndpointError::InvalidResponse(format!("bad token URL: {e}")))?;
        url.set_query(None);
        url.set_fragment(None);

        let mut params = self.params;
        let method = self.template.authorization_method;
        if method.sends_body() {
            params.push(("client_id".into(), self.client_id.into()));
            params.push(("client_secret".into(), self.client_secret.into()));
        }
        let params = self.template.rename_params(params);
        let mut request = to_provider(http.post(url), self.timeout);
        // Validated when the catalog loaded: never Authorization or Content-Type.
        for (name, value) in &self.template.token_request_headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if method.sends_basic() {
            request = request.header(
                header::AUTHORIZATION,
                basic_client_auth(self.client_id, self.client_secret),
            );
        }
        request = match self.template.body_format {
            BodyFormat::Form => request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_encode(&params)),
            BodyFormat::Json => {
                let body: Map<String, Value> = params
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Value::Object(body).to_string())
            }
        };

        let response = request.send().await;
        read_answer(response).await
    }
}

/// One of the template's token exchanges (`long_lived_token` right after the code exchange,
/// `access_token_refresh` in place of a refresh): the token in hand and the client's credentials
/// go in the exchange's parameters, not in client authentication.
pub struct ExchangeCall<'a> {
    pub template: &'a ProviderTemplate,
    pub exchange: &'a TokenExchange,
    /// The exchange URL after interpolation.
    pub url: &'a str,
    /// The credentials whose access token is exchanged.
    pub token: &'a OAuth2Credentials,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub timeout: Duration,
}

impl ExchangeCall<'_> {
    /// Sends the exchange and reads its answer like a token response; the token's refresh token
    /// is kept when the answer gives none.
    pub async fn send(
        self,
        http: &reqwest::Client,
    ) -> Result<OAuth2Credentials, TokenEndpointError> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            TokenEndpointError::InvalidResponse(format!("{what}: {e}"))
        };
        let params = fill_exchange_params(
            &self.exchange.params,
            &self.token.access_token,
            self.client_id,
            self.client_secret,
        )
        .map_err(|e| invalid("exchange parameters", &e))?;
        let mut url = Url::parse(self.url).map_err(|e| invalid("bad exchange URL", &e))?;
        url.set_fragment(None);
        let method = match self.exchange.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
        };
        let mut request = if method == reqwest::Method::GET {
            url.query_pairs_mut().extend_pairs(&params);
            http.get(url)
        } else {
            http.request(method, url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_encode(&params))
        };
        request = to_provider(request, self.timeout);
        for (name, value) in &self.template.token_request_headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let raw = read_answer(request.send().await).await?;
        let mut exchanged = parse_oauth2_response(raw, Utc::now(), &self.template.token_response)
            .map_err(|e| invalid("the exchange answer was unusable", &e))?;
        if exchanged.refresh_token.is_none() {
            exchanged.refresh_token = self.token.refresh_token.clone();
        }
        Ok(exchanged)
    }
}

/// A `metadata_request`: a GET with the new token, whose JSON answer gives connection metadata.
pub struct MetadataCall<'a> {
    pub request: &'a MetadataRequest,
    /// The request URL after interpolation.
    pub url: &'a str,
    pub access_token: &'a str,
    pub timeout: Duration,
}

impl MetadataCall<'_> {
    /// Sends the request and returns each of the request's fields as found in the answer; a field
    /// the answer lacks is an error (the metadata is what the template's API URL is built from).
    pub async fn send(
        self,
        http: &reqwest::Client,
    ) -> Result<Map<String, Value>, TokenEndpointError> {
        let invalid = |message: String| TokenEndpointError::InvalidResponse(message);
        let url = Url::parse(self.url).map_err(|e| invalid(format!("bad metadata URL: {e}")))?;
        let mut request = to_provider(http.get(url), self.timeout);
        if self.request.headers.is_empty() {
            request = request.bearer_auth(self.access_token);
        }
        let headers = fill_metadata_headers(&self.request.headers, self.access_token)
            .map_err(|e| invalid(format!("metadata request headers: {e}")))?;
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = read_answer(request.send().await).await?;
        self.request
            .fields
            .iter()
            .map(|(name, path)| {
                let value = value_at(&answer, path)
                    .ok_or_else(|| invalid(format!("the metadata answer has no {path}")))?;
                Ok((name.clone(), value.clone()))
            })
            .collect()
    }
}

/// What every call to a provider's auth endpoints carries: a deadline, and asks for JSON as
/// Nango's client does.
fn to_provider(request: reqwest::RequestBuilder, timeout: Duration) -> reqwest::RequestBuilder {
    request
        .timeout(timeout)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "Nango")
}

/// Reads a token endpoint's answer: the response object, or why there is none (a refusal, an
/// outage, an unreadable body).
async fn read_answer(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<Map<String, Value>, TokenEndpointError> {
    let response = response.map_err(|e| {
        TokenEndpointError::Unavailable(if e.is_timeout() {
            "the token endpoint timed out".into()
        } else {
            "the token endpoint could not be reached".into()
        })
    })?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = super::answer::read_token_answer(response)
        .await
        .map_err(|e| match e {
            // The provider's fault, like an unreadable answer: a refresh keeps the stored
            // credentials and is tried again later.
            super::answer::AnswerError::TooLarge => {
                TokenEndpointError::InvalidResponse(super::answer::TOO_LARGE.into())
            }
            super::answer::AnswerError::CutShort => {
                TokenEndpointError::Unavailable("the token endpoint response was cut short".into())
            }
        })?;
    let parsed = parse_token_body(&content_type, &body);

    // A rate limit or a request timeout is the provider's momentary state, not a verdict on
    // the grant: retried later like a 5xx, never taken as a refusal.
    let momentary = crate::outbound::is_momentary_failure(status);
    if momentary {
        return Err(TokenEndpointError::Unavailable(format!(
            "HTTP {}{}",
            status.as_u16(),
            parsed
                .as_ref()
                .map(provider_error_suffix)
                .unwrap_or_default()
        )));
    }
    if !status.is_success() {
        return Err(TokenEndpointError::Rejected(match &parsed {
            Some(obj) => provider_error(obj).unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            None => format!("HTTP {}", status.as_u16()),
        }));
    }
    let obj = parsed.ok_or_else(|| {
        TokenEndpointError::InvalidResponse(format!(
            "the token endpoint answered with an unreadable body (content type {content_type:?})"
        ))
    })?;
    // GitHub and Slack answer 200 with an error object.
    if !obj.contains_key("access_token") {
        if let Some(error) = provider_error(&obj) {
            return Err(TokenEndpointError::Rejected(error));
        }
    }
    Ok(obj)
}

/// `error` and `error_description` of an RFC 6749 §5.2 error response, as one line.
fn provider_error(obj: &Map<String, Value>) -> Option<String> {
    let code = obj.get("error").and_then(Value::as_str)?;
    let code: String = code.chars().take(100).collect();
    Some(match obj.get("error_description").and_then(Value::as_str) {
        Some(desc) => format!("{code}: {}", desc.chars().take(300).collect::<String>()),
        None => code,
    })
}

fn provider_error_suffix(obj: &Map<String, Value>) -> String {
    provider_error(obj)
        .map(|e| format!(", {e}"))
        .unwrap_or_default()
}

/// Reads a token response by its content type, sniffing when the type is missing or generic:
/// GitHub answers `application/x-www-form-urlencoded` unless asked for JSON, others `text/plain`.
fn parse_token_body(content_type: &str, body: &[u8]) -> Option<Map<String, Value>> {
    let as_json = || match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let as_form = || {
        let text = std::str::from_utf8(body).ok()?.trim();
        if text.is_empty() || !text.contains('=') || text.starts_with('<') {
            return None;
        }
        Some(
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    };
    if content_type.contains("json") {
        as_json()
    } else if content_type.contains("x-www-form-urlencoded") {
        as_form()
    } else {
        as_json().or_else(as_form)
    }
}

/// `application/x-www-form-urlencoded` body, in the given order.
pub fn form_encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before being joined and base64-encoded.
fn basic_client_auth(client_id: &str, client_secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('*', "%2A")
    };
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(client_secret)
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn authorization_url_drops_template_query_and_replaces_in_place() -> Result<(), url::ParseError>
    {
        let url = authorization_url(
            "https://example.com/auth?x=1#f",
            pairs(&[
                ("response_type", "code"),
                ("scope", "a b"),
                ("state", "s"),
                ("response_type", "token"),
                ("redirect", "http://localhost:3003/oauth/callback"),
            ]),
        )?;
        assert_eq!(
            url,
            "https://example.com/auth?response_type=token&scope=a+b&state=s&redirect=http%3A%2F%2Flocalhost%3A3003%2Foauth%2Fcallback"
        );
        Ok(())
    }

    #[test]
    fn token_bodies_are_read_as_json_or_form() {
        let json = parse_token_body("application/json", br#"{"access_token":"a"}"#);
        assert_eq!(
            json.and_then(|m| m.get("access_token").cloned()),
            Some("a".into())
        );
        let form = parse_token_body(
            "application/x-www-form-urlencoded",
            b"access_token=a%20b&scope=repo&token_type=bearer",
        );
        assert_eq!(
            form.and_then(|m| m.get("access_token").cloned()),
            Some("a b".into())
        );
        let sniffed = parse_token_body("text/plain", b"access_token=x&token_type=bearer");
        assert_eq!(
            sniffed.and_then(|m| m.get("access_token").cloned()),
            Some("x".into())
        );
        assert_eq!(parse_token_body("text/html", b"<html>oops</html>"), None);
    }

    #[test]
    fn basic_client_auth_form_encodes_before_base64() {
        // base64("a%2Bb:s+e%2A") for id "a+b" and secret "s e*".
        assert_eq!(basic_client_auth("a+b", "s e*"), "Basic YSUyQmI6cytlJTJB");
    }

    #[test]
    fn provider_errors_are_one_line() {
        let obj: Map<String, Value> = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"Token expired"}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            provider_error(&obj).as_deref(),
            Some("invalid_grant: Token expired")
        );
    }
}
