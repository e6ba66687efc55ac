//! Checking an API key or a username and password when it is saved: the template's
//! `verification` call, made with the credential the way the proxy would send it, so a wrong key
//! is refused at connect time instead of at the first proxied call.

use axum::http::{header, HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};

use super::{apply_credentials, Credentials};
use crate::providers::{self, ProviderTemplate, VerificationMethod};
use crate::store::ProviderConfig;
use crate::AppState;

/// Why a credential was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The provider answered the verification call with a refusal (4xx): the credential (or the
    /// account it names) is wrong.
    #[error("the provider refused the credentials (HTTP {status})")]
    Refused { status: u16 },
    /// Timeout, connection failure, rate limit or 5xx: nothing is known about the credential.
    #[error("the provider could not verify the credentials: {0}")]
    Unavailable(String),
    /// The verification call could not be formed (a connection config value missing, a template
    /// value that cannot be sent).
    #[error("the verification call could not be made: {0}")]
    Unusable(String),
}

/// Makes the template's verification call with `credentials` and the connection's `values`
/// (already settled with the provider config's: `settle_connection_config`); `Ok` when the
/// template has none or the provider answered 2xx.
pub async fn verify_credentials(
    state: &AppState,
    config: &ProviderConfig,
    template: &ProviderTemplate,
    credentials: &Credentials,
    values: &Map<String, Value>,
) -> Result<(), VerifyError> {
    let Some(verification) = &template.verification else {
        return Ok(());
    };
    let target = providers::api_target(template, values, &Map::new())
        .map_err(|e| VerifyError::Unusable(e.to_string()))?;
    // Validated at load: the path starts with one `/` and has no `..`, so it stays under the base.
    let joined = format!(
        "{}{}",
        target.url.as_str().trim_end_matches('/'),
        verification.path
    );
    let url = url::Url::parse(&joined).map_err(|e| VerifyError::Unusable(e.to_string()))?;
    let method = match verification.method {
        VerificationMethod::Get => Method::GET,
        VerificationMethod::Post => Method::POST,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let url = apply_credentials(
        template,
        config,
        credentials,
        values,
        &method,
        &url,
        &[],
        &mut headers,
    )
    .map_err(|e| VerifyError::Unusable(e.to_string()))?;
    let mut request = state
        .http_for(target.public_only)
        .request(method.clone(), url)
        .headers(headers)
        .timeout(state.settings.provider_timeout);
    if method == Method::POST {
        request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}");
    }
    let response = request.send().await.map_err(|e| {
        VerifyError::Unavailable(if e.is_timeout() {
            "the provider did not answer in time".into()
        } else {
            "the provider could not be reached".into()
        })
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let momentary = crate::outbound::is_momentary_failure(status);
    if momentary {
        return Err(VerifyError::Unavailable(format!(
            "HTTP {}",
            status.as_u16()
        )));
    }
    Err(VerifyError::Refused {
        status: status.as_u16(),
    })
}
