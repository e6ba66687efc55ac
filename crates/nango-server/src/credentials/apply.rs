//! Putting a connection's credentials on a request to the provider's API: the template's extra
//! headers and query parameters, then the auth mode's own header, query parameter or signature.
//! Used by the proxy for every call and when a saved API key or password is verified.

use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};
use url::Url;

use super::Credentials;
use crate::oauth::oauth1::Signer;
use crate::providers::{self, ProviderTemplate};
use crate::store::ProviderConfig;

/// Why the credentials could not be put on the request (a template or stored value that cannot
/// be sent); the message names no secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// Puts the connection's credentials into the request: the template's extra headers and query
/// parameters, then the auth mode's own header, query parameter or signature. Returns the URL to
/// call (with any added query).
#[allow(clippy::too_many_arguments)] // each is one part of the request being authorized
pub fn apply_credentials(
    template: &ProviderTemplate,
    config: &ProviderConfig,
    credentials: &Credentials,
    connection_config: &Map<String, Value>,
    method: &Method,
    url: &Url,
    form_params: &[(String, String)],
    headers: &mut HeaderMap,
) -> Result<Url, ApplyError> {
    let access_token = match credentials {
        Credentials::OAuth2(c) => Some(c.access_token.as_str()),
        Credentials::OAuth2ClientCredentials(c) => Some(c.token.as_str()),
        _ => None,
    };
    let api_key = match credentials {
        Credentials::ApiKey(c) => Some(c.api_key.as_str()),
        _ => None,
    };
    let lookup = |name: &str| -> Option<String> {
        match name {
            "accessToken" => access_token.map(str::to_string),
            "apiKey" => api_key.map(str::to_string),
            other => match connection_config.get(other)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
        }
    };
    let unfilled = |e: providers::ProxyValueError| ApplyError(e.to_string());
    let mut url = url.clone();
    for (name, value) in &template.proxy.query {
        let value = providers::fill_proxy_value(value, lookup).map_err(unfilled)?;
        url.query_pairs_mut().append_pair(name, &value);
    }
    for (name, value) in &template.proxy.headers {
        let value = providers::fill_proxy_value(value, lookup).map_err(unfilled)?;
        headers.insert(header_name(name)?, sensitive(&value)?);
    }
    let authorization = axum::http::header::AUTHORIZATION;
    match credentials {
        Credentials::OAuth2(_) | Credentials::OAuth2ClientCredentials(_) => {
            if !providers::mentions_access_token(&template.proxy) {
                let token = access_token.unwrap_or_default();
                headers.insert(authorization, sensitive(&format!("Bearer {token}"))?);
            }
        }
        Credentials::ApiKey(c) => {
            let scheme = template.api_key.clone().unwrap_or_default();
            match (&scheme.query, &scheme.header) {
                (Some(parameter), _) => {
                    url.query_pairs_mut().append_pair(parameter, &c.api_key);
                }
                (None, Some(header)) => {
                    let prefix = scheme.prefix.as_deref().unwrap_or_default();
                    headers.insert(
                        header_name(header)?,
                        sensitive(&format!("{prefix}{}", c.api_key))?,
                    );
                }
                (None, None) if !providers::mentions_api_key(&template.proxy) => {
                    headers.insert(authorization, sensitive(&format!("Bearer {}", c.api_key))?);
                }
                (None, None) => {}
            }
        }
        Credentials::Basic(c) => {
            use base64::Engine;
            let pair = format!("{}:{}", c.username, c.password);
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            headers.insert(authorization, sensitive(&format!("Basic {encoded}"))?);
        }
        Credentials::OAuth1(c) => {
            let method_name = template.signature_method.ok_or_else(|| {
                ApplyError("The provider's template has no signature_method.".into())
            })?;
            let signer = Signer::new(
                method_name,
                &config.oauth_client_id,
                config.oauth_client_secret.expose(),
            )
            .map_err(|e| ApplyError(e.to_string()))?;
            let value = signer
                .authorize_api_call(
                    method.as_str(),
                    &url,
                    form_params.to_vec(),
                    &c.oauth_token,
                    &c.oauth_token_secret,
                )
                .map_err(|e| ApplyError(e.to_string()))?;
            headers.insert(authorization, sensitive(&value)?);
        }
    }
    Ok(url)
}

fn header_name(name: &str) -> Result<axum::http::HeaderName, ApplyError> {
    axum::http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ApplyError(format!("The template's header name {name:?} is not valid.")))
}

/// A header value that may hold a secret: refused if it cannot be sent (never quoted), and
/// marked so that HTTP/2 does not index it.
fn sensitive(value: &str) -> Result<HeaderValue, ApplyError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        ApplyError("A credential or template value cannot be sent in an HTTP header.".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}
