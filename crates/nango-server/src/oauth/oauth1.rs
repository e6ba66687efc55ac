//! OAuth 1.0a (RFC 5849) on the wire: signing requests (HMAC-SHA1, HMAC-SHA256, RSA-SHA1,
//! PLAINTEXT), the request-token and access-token calls, and the authorize redirect URL.
//!
//! The signing is ours, on the `hmac`/`sha1`/`sha2`/`rsa` primitives, rather than the
//! `oauth1-request` crate's: that crate has no HMAC-SHA256 and wants the request parameters as a
//! Rust type, while ours come from a template at run time. What it would have saved is the
//! signature base string (§3.4.1), which is small and tested below against the RFC's examples.

use std::fmt;
use std::time::Duration;

use axum::http::header;
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use url::Url;

use crate::providers::{HttpMethod, SignatureMethod};
use crate::secret::Secret;

/// RFC 5849 §3.6: everything but the unreserved characters `ALPHA DIGIT - . _ ~` is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encoding of RFC 5849 §3.6 (uppercase hex, space as `%20`).
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, RFC3986).to_string()
}

/// Why an OAuth 1 call failed; the `Display` text is a sentence that may be shown to the user (it
/// holds the provider's reason, never a secret of ours).
#[derive(Debug, thiserror::Error)]
pub enum OAuth1Error {
    /// The consumer secret cannot sign with the template's method (RSA-SHA1 needs a PEM private
    /// key); no request was sent.
    #[error("{0}")]
    Key(String),
    /// The provider answered and refused (a 3xx or 4xx): retrying the same request will not help.
    #[error("The {endpoint} refused the request ({reason}).")]
    Rejected {
        endpoint: &'static str,
        reason: String,
    },
    /// Timeout, connection failure or 5xx.
    #[error("{0}")]
    Unavailable(String),
    /// A 2xx answer without the tokens it must carry, or an unusable URL.
    #[error("{0}")]
    InvalidResponse(String),
}

/// Signs requests for one consumer with one signature method. The consumer secret (or RSA key)
/// never leaves it, and `Debug` does not show it.
pub struct Signer {
    method: SignatureMethod,
    consumer_key: String,
    key: SigningKey,
}

enum SigningKey {
    /// HMAC-* and PLAINTEXT: the consumer secret.
    Shared(Secret<String>),
    /// RSA-SHA1: the consumer's private key (the config's client secret, as PEM).
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha1::Sha1>>),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("method", &self.method)
            .field("consumer_key", &self.consumer_key)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `consumer_key`; for RSA-SHA1 `consumer_secret` must be an RSA private key in
    /// PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`).
    pub fn new(
        method: SignatureMethod,
        consumer_key: &str,
        consumer_secret: &str,
    ) -> Result<Signer, OAuth1Error> {
        let key = match method {
            SignatureMethod::RsaSha1 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                let pem = consumer_secret.trim();
                // The parse errors are not shown: they could quote the key.
                let private_key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                    .map_err(|_| {
                        OAuth1Error::Key(
                            "RSA-SHA1 needs the client secret to be an RSA private key in PEM \
                             (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY), and it is not."
                                .into(),
                        )
                    })?;
                SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(private_key)))
            }
            _ => SigningKey::Shared(Secret::new(consumer_secret.to_string())),
        };
        Ok(Signer {
            method,
            consumer_key: consumer_key.to_string(),
            key,
        })
    }

    /// The `oauth_signature_method` value.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::RsaSha1 => "RSA-SHA1",
            SignatureMethod::Plaintext => "PLAINTEXT",
        }
    }

    /// `oauth_signature` for a signature base string (§3.4): the token secret is empty before a
    /// token exists (the request-token call).
    pub fn sign(&self, base_string: &str, token_secret: &str) -> Result<String, OAuth1Error> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match (&self.key, self.method) {
            (SigningKey::Rsa(key), _) => {
                use rsa::signature::{SignatureEncoding, Signer as _};
                let signature = key.try_sign(base_string.as_bytes()).map_err(|_| {
                    OAuth1Error::Key("The RSA-SHA1 signature could not be computed.".into())
                })?;
                Ok(b64(&signature.to_bytes()))
            }
            (SigningKey::Shared(secret), method) => {
                // §3.4.2: the key is enc(consumer secret) & enc(token secret), `&` even when the
                // token secret is empty; PLAINTEXT (§3.4.4) sends that key itself.
                let key = format!(
                    "{}&{}",
                    percent_encode(secret.expose()),
                    percent_encode(token_secret)
                );
                match method {
                    SignatureMethod::Plaintext => Ok(key),
                    SignatureMethod::HmacSha256 => {
                        Ok(b64(&hmac_sha256(key.as_bytes(), base_string.as_bytes())?))
                    }
                    _ => Ok(b64(&hmac_sha1(key.as_bytes(), base_string.as_bytes())?)),
                }
            }
        }
    }
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Result<Vec<u8>, OAuth1Error> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).map_err(|_| hmac_key_refused())?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<Vec<u8>, OAuth1Error> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|_| hmac_key_refused())?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

// HMAC takes keys of any length; kept as an error rather than a panic all the same.
fn hmac_key_refused() -> OAuth1Error {
    OAuth1Error::Key("The HMAC key was refused.".into())
}

/// §3.4.1.2: scheme and host in lowercase, the port only when it is not the scheme's default,
/// the path; no query, no fragment.
pub fn base_string_uri(url: &Url) -> String {
    let mut uri = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        uri.push_str(&format!(":{port}"));
    }
    uri.push_str(url.path());
    uri
}

/// §3.4.1.3.2: every parameter encoded, sorted by name then value, `name=value` joined by `&`.
pub fn normalized_parameters(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// §3.4.1: `METHOD&enc(base string URI)&enc(normalized parameters)`, where the parameters are the
/// URL's query, the form body and the `oauth_*` protocol parameters (without `oauth_signature`
/// and `realm`), all decoded.
pub fn signature_base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    let mut all: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    all.extend(
        params
            .iter()
            .filter(|(k, _)| k != "oauth_signature" && k != "realm")
            .cloned(),
    );
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(&base_string_uri(url)),
        percent_encode(&normalized_parameters(&all))
    )
}

/// A signed request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: HttpMethod,
    pub url: Url,
    /// The `Authorization: OAuth ...` header value.
    pub authorization: String,
    /// The form body (POST and PUT), without the `oauth_*` parameters.
    pub body: Option<String>,
}

/// What one call adds to the common protocol parameters, and what it sends besides them.
pub struct Call<'a> {
    pub method: HttpMethod,
    pub url: &'a str,
    /// `oauth_callback`, or `oauth_token` + `oauth_verifier`.
    pub protocol: Vec<(&'static str, String)>,
    /// The template's `request_params` / `token_params`: in the body for POST and PUT, in the
    /// query for GET; signed either way.
    pub params: Vec<(String, String)>,
    /// Empty for the request-token call, the request-token secret for the access-token call.
    pub token_secret: &'a str,
}

fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
    }
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Signer {
    /// Signs `call` with the given nonce and timestamp (fixed in tests, random and now in
    /// [`send`]).
    pub fn sign_request(
        &self,
        call: &Call<'_>,
        nonce: &str,
        timestamp: &str,
    ) -> Result<SignedRequest, OAuth1Error> {
        let mut url = Url::parse(call.url).map_err(|e| {
            OAuth1Error::InvalidResponse(format!("The URL {} is not valid: {e}.", call.url))
        })?;
        url.set_fragment(None);
        // The query is rebuilt with the same encoding the signature uses, so what the provider
        // decodes is exactly what was signed.
        let mut query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let body = match call.method {
            HttpMethod::Get => {
                query.extend(call.params.iter().cloned());
                None
            }
            HttpMethod::Post | HttpMethod::Put => Some(encode_pairs(&call.params)),
        };
        url.set_query(None);
        let bare = url.clone();
        if !query.is_empty() {
            url.set_query(Some(&encode_pairs(&query)));
        }

        let mut signed: Vec<(String, String)> = query;
        if body.is_some() {
            signed.extend(call.params.iter().cloned());
        }
        let protocol = call
            .protocol
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()));
        let authorization = self.authorization(
            method_name(call.method),
            &bare,
            signed,
            protocol,
            call.token_secret,
            nonce,
            timestamp,
        )?;
        Ok(SignedRequest {
            method: call.method,
            url,
            authorization,
            body,
        })
    }
}

impl Signer {
    /// The `Authorization: OAuth ...` value of a request: the common protocol parameters plus
    /// `protocol`, signed over `method`, `url` (whose query, if any, is signed too) and the other
    /// decoded `params` (query and form body).
    #[allow(clippy::too_many_arguments)]
    fn authorization(
        &self,
        method: &str,
        url: &Url,
        mut params: Vec<(String, String)>,
        extra: impl IntoIterator<Item = (String, String)>,
        token_secret: &str,
        nonce: &str,
        timestamp: &str,
    ) -> Result<String, OAuth1Error> {
        let mut protocol: Vec<(String, String)> = vec![
            ("oauth_consumer_key".into(), self.consumer_key.clone()),
            ("oauth_nonce".into(), nonce.into()),
            ("oauth_signature_method".into(), self.method_name().into()),
            ("oauth_timestamp".into(), timestamp.into()),
            // RFC 5849 says "1.0"; Nango's client sent "1.0A", which strict servers (oauthlib)
            // refuse.
            ("oauth_version".into(), "1.0".into()),
        ];
        protocol.extend(extra);
        protocol.sort();
        params.extend(protocol.iter().cloned());
        let base = signature_base_string(method, url, &params);
        let signature = self.sign(&base, token_secret)?;
        protocol.push(("oauth_signature".into(), signature));
        Ok(format!(
            "OAuth {}",
            protocol
                .iter()
                .map(|(k, v)| format!("{}=\"{}\"", percent_encode(k), percent_encode(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The `Authorization` value of a call to the provider's API with the user's token
    /// (RFC 5849 §3.1): signs the method, the URL with its query and, for a form-encoded body,
    /// its decoded parameters.
    pub fn authorize_api_call(
        &self,
        method: &str,
        url: &Url,
        form_params: Vec<(String, String)>,
        token: &str,
        token_secret: &str,
    ) -> Result<String, OAuth1Error> {
        let mut bare = url.clone();
        bare.set_fragment(None);
        self.authorization(
            method,
            &bare,
            form_params,
            [("oauth_token".to_string(), token.to_string())],
            token_secret,
            &new_nonce()?,
            &Utc::now().timestamp().to_string(),
        )
    }
}

/// 24 random letters and digits (about 143 bits): unique per request (§3.3) and inside the
/// 20-30 characters strict servers such as oauthlib accept.
fn new_nonce() -> Result<String, OAuth1Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = super::pkce::random_bytes::<24>()
        .map_err(|_| OAuth1Error::Unavailable("No randomness for the OAuth nonce.".into()))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// Signs and sends `call`; returns the provider's form-encoded answer, which must hold
/// `oauth_token` and `oauth_token_secret`.
pub async fn send(
    http: &reqwest::Client,
    signer: &Signer,
    call: &Call<'_>,
    endpoint: &'static str,
    timeout: Duration,
) -> Result<Map<String, Value>, OAuth1Error> {
    let signed = signer.sign_request(call, &new_nonce()?, &Utc::now().timestamp().to_string())?;
    let method = match signed.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
    };
    let mut request = http
        .request(method, signed.url)
        .timeout(timeout)
        .header(header::AUTHORIZATION, signed.authorization)
        .header(header::USER_AGENT, "Nango");
    if let Some(body) = signed.body {
        request = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
    }
    let response = request.send().await.map_err(|e| {
        OAuth1Error::Unavailable(if e.is_timeout() {
            format!("The {endpoint} timed out.")
        } else {
            format!("The {endpoint} could not be reached.")
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
            super::answer::AnswerError::TooLarge => OAuth1Error::InvalidResponse(format!(
                "The {endpoint} answered with more than 1 MiB."
            )),
            super::answer::AnswerError::CutShort => {
                OAuth1Error::Unavailable(format!("The {endpoint} response was cut short."))
            }
        })?;
    if !status.is_success() {
        let reason = match provider_reason(&content_type, &body) {
            Some(detail) => format!("HTTP {}: {detail}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        };
        return Err(if status.is_server_error() {
            OAuth1Error::Unavailable(format!("The {endpoint} failed ({reason})."))
        } else {
            OAuth1Error::Rejected { endpoint, reason }
        });
    }
    let answer = parse_answer(&body).ok_or_else(|| {
        OAuth1Error::InvalidResponse(format!(
            "The {endpoint} answered without oauth_token and oauth_token_secret."
        ))
    })?;
    Ok(answer)
}

/// A 2xx answer: form-encoded (whatever the content type says: Twitter sends `text/html`), or a
/// JSON object; `None` unless it has a non-empty `oauth_token` and an `oauth_token_secret`.
fn parse_answer(body: &[u8]) -> Option<Map<String, Value>> {
    let map: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => obj
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, Value::String(s)),
                other => (k, Value::String(other.to_string())),
            })
            .collect(),
        _ => {
            let text = std::str::from_utf8(body).ok()?.trim();
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect()
        }
    };
    let token_ok = map
        .get("oauth_token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let secret_ok = map.get("oauth_token_secret").is_some_and(Value::is_string);
    (token_ok && secret_ok).then_some(map)
}

/// What the provider said when it refused, as one short line: the OAuth Problem Reporting
/// `oauth_problem` / `oauth_problem_advice`, an OAuth 2-style `error` / `error_description`,
/// Twitter's JSON `errors[0].message`, or a short plain-text body. HTML pages say nothing.
fn provider_reason(content_type: &str, body: &[u8]) -> Option<String> {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(max)
            .collect::<String>()
            .trim()
            .to_string()
    };
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let pick = |code: Option<&str>, detail: Option<&str>| -> Option<String> {
        match (
            code.filter(|c| !c.is_empty()),
            detail.filter(|d| !d.is_empty()),
        ) {
            (Some(c), Some(d)) => Some(format!("{}: {}", clean(c, 100), clean(d, 300))),
            (Some(c), None) => Some(clean(c, 100)),
            (None, Some(d)) => Some(clean(d, 300)),
            (None, None) => None,
        }
    };
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let first_error = obj
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first());
        let message = s(first_error.and_then(|e| e.get("message")))
            .or_else(|| s(obj.get("error_description")))
            .or_else(|| s(obj.get("message")));
        return pick(s(obj.get("error")).as_deref(), message.as_deref());
    }
    if (text.contains('=') && !text.contains(' ')) || content_type.contains("x-www-form-urlencoded")
    {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(reason) = pick(get("oauth_problem"), get("oauth_problem_advice"))
            .or_else(|| pick(get("error"), get("error_description")))
        {
            return Some(reason);
        }
    }
    if content_type.is_empty() || content_type.starts_with("text/plain") {
        return Some(clean(text, 200)).filter(|s| !s.is_empty());
    }
    None
}

/// The temporary credentials of the request-token step (§2.1).
pub struct TemporaryCredentials {
    pub token: String,
    pub secret: Secret<String>,
}

/// The request-token call (§2.1), signed with the consumer secret alone; `callback` is where the
/// provider sends the user back (our callback URL, carrying the flow's state).
pub async fn request_token(
    http: &reqwest::Client,
    signer: &Signer,
    method: HttpMethod,
    request_url: &str,
    callback: &str,
    params: Vec<(String, String)>,
    timeout: Duration,
) -> Result<TemporaryCredentials, OAuth1Error> {
    let call = Call {
        method,
        url: request_url,
        protocol: vec![("oauth_callback", callback.to_string())],
        params,
        token_secret: "",
    };
    let answer = send(http, signer, &call, "request token endpoint", timeout).await?;
    // 1.0a providers confirm the callback; one that says anything but "true" ignored it.
    if let Some(confirmed) = answer
        .get("oauth_callback_confirmed")
        .and_then(Value::as_str)
    {
        if confirmed != "true" {
            return Err(OAuth1Error::InvalidResponse(
                "The request token endpoint did not confirm the callback URL.".into(),
            ));
        }
    }
    let text = |name: &str| {
        answer
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(TemporaryCredentials {
        token: text("oauth_token"),
        secret: Secret::new(text("oauth_token_secret")),
    })
}

/// The token credentials of the access-token step (§2.3), with the whole answer as `raw`.
pub struct TokenCredentials {
    pub token: String,
    pub secret: String,
    pub raw: Map<String, Value>,
}

impl fmt::Debug for TokenCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredentials").finish_non_exhaustive()
    }
}

/// The access-token call (§2.3), signed with the consumer secret and the request-token secret.
#[allow(clippy::too_many_arguments)]
pub async fn access_token(
    http: &reqwest::Client,
    signer: &Signer,
    method: HttpMethod,
    token_url: &str,
    request_token: &str,
    request_token_secret: &str,
    verifier: &str,
    params: Vec<(String, String)>,
    timeout: Duration,
) -> Result<TokenCredentials, OAuth1Error> {
    let call = Call {
        method,
        url: token_url,
        protocol: vec![
            ("oauth_token", request_token.to_string()),
            ("oauth_verifier", verifier.to_string()),
        ],
        params,
        token_secret: request_token_secret,
    };
    let raw = send(http, signer, &call, "access token endpoint", timeout).await?;
    let text = |name: &str| {
        raw.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(TokenCredentials {
        token: text("oauth_token"),
        secret: text("oauth_token_secret"),
        raw,
    })
}

/// The authorize redirect (§2.2): the template URL (its own query kept) with `oauth_token`, then
/// `scope` (always, possibly empty, as Nango sent it), then the template's
/// `authorization_params`; a later parameter with the same name replaces an earlier one in place.
pub fn authorization_url(
    interpolated_authorization_url: &str,
    request_token: &str,
    scope: &str,
    authorization_params: impl IntoIterator<Item = (String, String)>,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(interpolated_authorization_url)?;
    url.set_fragment(None);
    let mut params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let ours = [
        ("oauth_token".to_string(), request_token.to_string()),
        ("scope".to_string(), scope.to_string()),
    ];
    for (k, v) in ours.into_iter().chain(authorization_params) {
        match params.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => params.push((k, v)),
        }
    }
    url.set_query(None);
    url.query_pairs_mut().extend_pairs(params);
    Ok(url.into())
}

/// The `oauth_callback` of a flow: our callback URL with `state=<session>` added, which is how
/// Nango found the flow again (the provider keeps the query and adds `oauth_token` and
/// `oauth_verifier`, RFC 5849 §2.2).
pub fn callback_with_state(callback_url: &str, state: &str) -> Result<String, url::ParseError> {
    let mut url = Url::parse(callback_url)?;
    url.query_pairs_mut().append_pair("state", state);
    Ok(url.into())
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

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn signer(method: SignatureMethod, secret: &str) -> Signer {
        Signer::new(method, "dpf43f3p2l4k3l03", secret).unwrap_or_else(|e| panic!("signer: {e}"))
    }

    /// The key of tests/oauth1 (a throwaway test key, also used by the Python provider).
    const TEST_RSA_KEY: &str = include_str!("../../../../tests/oauth1/test_rsa_private_key.pem");

    #[test]
    fn percent_encoding_follows_rfc_5849_section_3_6() {
        assert_eq!(
            percent_encode("Ladies + Gentlemen"),
            "Ladies%20%2B%20Gentlemen"
        );
        assert_eq!(
            percent_encode("An encoded string!"),
            "An%20encoded%20string%21"
        );
        assert_eq!(
            percent_encode("Dogs, Cats & Mice"),
            "Dogs%2C%20Cats%20%26%20Mice"
        );
        assert_eq!(percent_encode("☃"), "%E2%98%83");
        assert_eq!(percent_encode("-._~azAZ09"), "-._~azAZ09");
    }

    #[test]
    fn base_string_uri_drops_default_ports_query_and_fragment() {
        assert_eq!(
            base_string_uri(&url("HTTP://EXAMPLE.COM:80/r%20v/X?id=123")),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_string_uri(&url("https://www.example.net:8080/?q=1")),
            "https://www.example.net:8080/"
        );
        assert_eq!(
            base_string_uri(&url("https://www.example.net:443/a#frag")),
            "https://www.example.net/a"
        );
    }

    /// RFC 5849 §3.4.1.1 and §3.4.1.3.2: the example request with parameters in the query, the
    /// body and the Authorization header.
    #[test]
    fn signature_base_string_matches_rfc_5849_section_3_4_1_1() {
        let mut params: Vec<(String, String)> = url::form_urlencoded::parse(b"c2&a3=2+q")
            .into_owned()
            .collect();
        params.extend(pairs(&[
            ("realm", "Example"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("oauth_signature", "djosJKDKJSD8743243%2Fjdk33klY%3D"),
        ]));
        let base = signature_base_string(
            "post",
            &url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"),
            &params,
        );
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    /// RFC 5849 §1.2: the three signed requests of the example flow (photos.example.net).
    #[test]
    fn hmac_sha1_signatures_match_the_rfc_5849_section_1_2_example() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::HmacSha1, "kd94hf93k423kf44");
        let base = signature_base_string(
            "POST",
            &url("https://photos.example.net/initiate"),
            &pairs(&[
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131200"),
                ("oauth_nonce", "wIjqoS"),
                ("oauth_callback", "http://printer.example.com/ready"),
            ]),
        );
        assert_eq!(s.sign(&base, "")?, "74KNZJeDHnMBp0EMJ9ZHt/XKycU=");

        let base = signature_base_string(
            "POST",
            &url("https://photos.example.net/token"),
            &pairs(&[
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "hh5s93j4hdidpola"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131201"),
                ("oauth_nonce", "walatlh"),
                ("oauth_verifier", "hfdp7dh39dks9884"),
            ]),
        );
        assert_eq!(
            s.sign(&base, "hdhd0244k9j7ao03")?,
            "gKgrFCywp7rO0OXSjdot/IHF7IU="
        );

        assert_eq!(
            s.sign(&photos_base_string("HMAC-SHA1"), "pfkkdhi9sl3r4s00")?,
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );
        Ok(())
    }

    /// The protected-resource request of RFC 5849 §1.2, for another signature method.
    fn photos_base_string(method: &str) -> String {
        signature_base_string(
            "GET",
            &url("http://photos.example.net/photos?file=vacation.jpg&size=original"),
            &pairs(&[
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "nnch734d00sl2jdk"),
                ("oauth_signature_method", method),
                ("oauth_timestamp", "137131202"),
                ("oauth_nonce", "chapoH"),
            ]),
        )
    }

    /// HMAC-SHA256 is not in RFC 5849; the expected value was computed with oauthlib 3.3.1's
    /// `signature.sign_hmac_sha256(base_string, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")`.
    #[test]
    fn hmac_sha256_signature_matches_oauthlib() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::HmacSha256, "kd94hf93k423kf44");
        assert_eq!(
            s.sign(&photos_base_string("HMAC-SHA256"), "pfkkdhi9sl3r4s00")?,
            HMAC_SHA256_EXPECTED
        );
        Ok(())
    }

    /// §3.4.4: the key itself, encoded parts joined by `&` (the token secret may be empty).
    #[test]
    fn plaintext_signature_is_the_encoded_key() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::Plaintext, "kd94hf93k423kf44");
        assert_eq!(
            s.sign("ignored", "pfkkdhi9sl3r4s00")?,
            "kd94hf93k423kf44&pfkkdhi9sl3r4s00"
        );
        assert_eq!(s.sign("ignored", "")?, "kd94hf93k423kf44&");
        let s = signer(SignatureMethod::Plaintext, "a b&c");
        assert_eq!(s.sign("ignored", "d=e")?, "a%20b%26c&d%3De");
        Ok(())
    }

    /// RSA-SHA1 (PKCS#1 v1.5, deterministic); the expected value was computed with oauthlib
    /// 3.3.1's `signature.sign_rsa_sha1(base_string, <tests/oauth1/test_rsa_private_key.pem>)`.
    #[test]
    fn rsa_sha1_signature_matches_oauthlib() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::RsaSha1, TEST_RSA_KEY);
        assert_eq!(
            s.sign(&photos_base_string("RSA-SHA1"), "ignored")?,
            RSA_SHA1_EXPECTED
        );
        Ok(())
    }

    #[test]
    fn rsa_sha1_refuses_a_secret_that_is_not_a_private_key() {
        let err = Signer::new(SignatureMethod::RsaSha1, "k", "not a key").map(|_| ());
        assert!(matches!(err, Err(OAuth1Error::Key(_))), "{err:?}");
    }

    #[test]
    fn signed_post_puts_params_in_the_body_and_oauth_in_the_header() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::HmacSha1, "kd94hf93k423kf44");
        let call = Call {
            method: HttpMethod::Post,
            url: "https://photos.example.net/initiate?z=1#f",
            protocol: vec![(
                "oauth_callback",
                "http://printer.example.com/ready?state=s 1".into(),
            )],
            params: pairs(&[("x_auth_access_type", "write"), ("b", "a b")]),
            token_secret: "",
        };
        let signed = s.sign_request(&call, "nonce123", "137131200")?;
        assert_eq!(
            signed.url.as_str(),
            "https://photos.example.net/initiate?z=1"
        );
        assert_eq!(
            signed.body.as_deref(),
            Some("x_auth_access_type=write&b=a%20b")
        );
        let header = signed.authorization;
        assert!(header.starts_with(
            "OAuth oauth_callback=\"http%3A%2F%2Fprinter.example.com%2Fready%3Fstate%3Ds%201\", \
             oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_nonce=\"nonce123\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131200\", \
             oauth_version=\"1.0\", oauth_signature=\""
        ), "{header}");

        // The signature covers the query, the body and the protocol parameters.
        let base = signature_base_string(
            "POST",
            &url("https://photos.example.net/initiate?z=1"),
            &pairs(&[
                ("x_auth_access_type", "write"),
                ("b", "a b"),
                (
                    "oauth_callback",
                    "http://printer.example.com/ready?state=s 1",
                ),
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_nonce", "nonce123"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131200"),
                ("oauth_version", "1.0"),
            ]),
        );
        let expected = format!(
            "oauth_signature=\"{}\"",
            percent_encode(&s.sign(&base, "")?)
        );
        assert!(header.ends_with(&expected), "{header}");
        Ok(())
    }

    #[test]
    fn signed_get_puts_params_in_the_query() -> Result<(), OAuth1Error> {
        let s = signer(SignatureMethod::Plaintext, "cs");
        let call = Call {
            method: HttpMethod::Get,
            url: "http://127.0.0.1:8080/access?a=1+2",
            protocol: vec![("oauth_token", "t".into()), ("oauth_verifier", "v".into())],
            params: pairs(&[("extra", "x/y")]),
            token_secret: "ts",
        };
        let signed = s.sign_request(&call, "n", "1")?;
        assert_eq!(
            signed.url.as_str(),
            "http://127.0.0.1:8080/access?a=1%202&extra=x%2Fy"
        );
        assert_eq!(signed.body, None);
        assert!(signed
            .authorization
            .contains("oauth_token=\"t\", oauth_verifier=\"v\""));
        assert!(signed
            .authorization
            .ends_with("oauth_signature=\"cs%26ts\""));
        Ok(())
    }

    #[test]
    fn nonces_are_24_alphanumerics_and_differ() -> Result<(), OAuth1Error> {
        let (a, b) = (new_nonce()?, new_nonce()?);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn answers_are_form_or_json_and_need_both_tokens() {
        let form = parse_answer(b"oauth_token=t&oauth_token_secret=s&user_id=42");
        assert_eq!(
            form.map(|m| Value::Object(m).to_string()).as_deref(),
            Some(r#"{"oauth_token":"t","oauth_token_secret":"s","user_id":"42"}"#)
        );
        let json = parse_answer(br#"{"oauth_token":"t","oauth_token_secret":"","n":1}"#);
        assert_eq!(
            json.map(|m| Value::Object(m).to_string()).as_deref(),
            Some(r#"{"oauth_token":"t","oauth_token_secret":"","n":"1"}"#)
        );
        assert!(parse_answer(b"oauth_token=t").is_none());
        assert!(parse_answer(b"oauth_token=&oauth_token_secret=s").is_none());
        assert!(parse_answer(b"<html>hi</html>").is_none());
    }

    #[test]
    fn provider_reasons_are_one_short_line() {
        let form = "application/x-www-form-urlencoded";
        assert_eq!(
            provider_reason(
                form,
                b"oauth_problem=signature_invalid&oauth_problem_advice=bad+sig"
            )
            .as_deref(),
            Some("signature_invalid: bad sig")
        );
        assert_eq!(
            provider_reason(
                form,
                b"error=invalid_request&error_description=Invalid+OAuth+version."
            )
            .as_deref(),
            Some("invalid_request: Invalid OAuth version.")
        );
        assert_eq!(
            provider_reason(
                "application/json",
                br#"{"errors":[{"code":32,"message":"Could not authenticate you."}]}"#
            )
            .as_deref(),
            Some("Could not authenticate you.")
        );
        assert_eq!(
            provider_reason("text/plain; charset=utf-8", b"invalid signature\n").as_deref(),
            Some("invalid signature")
        );
        assert_eq!(provider_reason("text/html", b"<html>nope</html>"), None);
        assert_eq!(provider_reason(form, b""), None);
    }

    #[test]
    fn authorization_url_adds_token_scope_and_template_params() -> Result<(), url::ParseError> {
        let url = authorization_url(
            "https://trello.com/1/OAuthAuthorizeToken?name=app#x",
            "tok en",
            "read,write",
            pairs(&[("expiration", "never"), ("scope", "account")]),
        )?;
        assert_eq!(
            url,
            "https://trello.com/1/OAuthAuthorizeToken?name=app&oauth_token=tok+en&scope=account&expiration=never"
        );
        let url = authorization_url("https://api.twitter.com/oauth/authorize", "t", "", [])?;
        assert_eq!(
            url,
            "https://api.twitter.com/oauth/authorize?oauth_token=t&scope="
        );
        Ok(())
    }

    #[test]
    fn the_callback_carries_the_state() -> Result<(), url::ParseError> {
        assert_eq!(
            callback_with_state("http://localhost:3003/oauth/callback", "abc")?,
            "http://localhost:3003/oauth/callback?state=abc"
        );
        assert_eq!(
            callback_with_state("https://x.example/cb?a=1", "abc")?,
            "https://x.example/cb?a=1&state=abc"
        );
        Ok(())
    }

    const HMAC_SHA256_EXPECTED: &str = "HtMwoX2zenlFjgGg/SNEoKEQmL7CzxYFEKzs7er044Y=";
    const RSA_SHA1_EXPECTED: &str = "m2WPwu7+fgMFUBvREKRyF3cfFdNz/sC7f35vvJfcslK4LfKjSCeAokYHKWQ9DTHNQZaa1B7kthUVCd4Gw3M46D9m93+OZdn7ucqWUuodXj1ndLfE9V8t2Ilx6ZFy58v086m73fsJL2om6gtUufUvFV7AcoRGi8Bkn0C+rhYAicQzTTUcbLcZXVFk8XZ2bzXnLUGaBgTBSH0qE+wyKuOYB0ViGm8mI51ZHtVnAVrmhdkinIxlkYFySuRfRi5AzI70VPLAQ7I8wvGL4KgJdxKWUiulfWf4fnMvdHq8+lGOskRK+1WVc8eF6seIJtCigG+8zRupjO9KGyQYD5HPRni/kw==";
}
