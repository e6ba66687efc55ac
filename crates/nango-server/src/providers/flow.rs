//! Template features of the OAuth 2 flow beyond RFC 6749's shape: renamed standard parameters,
//! the code under another callback parameter, placeholders (and a per-flow nonce) in extra
//! parameters, empty parameters left out, connection config defaults and closed choices, and a
//! post-authorization exchange for a long-lived token.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::interpolate::{pieces, Piece};
use super::proxy::ACCESS_TOKEN;
use super::{
    fill_proxy_value, CatalogError, ProviderTemplate, ProxyValueError, CLIENT_ID_PLACEHOLDER,
    EXCHANGE_PLACEHOLDERS, NONCE_PLACEHOLDER, PARAMS_PREFIX, REDIRECT_URI_PLACEHOLDER,
    RENAMABLE_PARAMS,
};

/// A parameter name a template may give: what a query string or form body can carry unescaped
/// and a person can read.
fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

impl ProviderTemplate {
    /// The name this provider gives the standard parameter `standard` (`client_id` is TikTok's
    /// `client_key`).
    pub fn wire_name<'a>(&'a self, standard: &'a str) -> &'a str {
        self.param_names
            .get(standard)
            .map_or(standard, String::as_str)
    }

    /// `params` with the standard names this provider renames replaced by its own.
    pub fn rename_params(&self, params: Vec<(String, String)>) -> Vec<(String, String)> {
        if self.param_names.is_empty() {
            return params;
        }
        params
            .into_iter()
            .map(|(name, value)| match self.param_names.get(&name) {
                Some(renamed) => (renamed.clone(), value),
                None => (name, value),
            })
            .collect()
    }

    /// The callback query parameter that carries the authorization code.
    pub fn code_param(&self) -> &str {
        self.callback_code_param.as_deref().unwrap_or("code")
    }

    /// Whether any `authorization_params` value asks for a per-flow nonce.
    pub fn wants_nonce(&self) -> bool {
        self.authorization_params
            .values()
            .any(|value| placeholder_names(value).any(|name| name == NONCE_PLACEHOLDER))
    }

    pub(super) fn check_flow_features(
        &self,
        provider: &str,
        allow_http: bool,
    ) -> Result<(), CatalogError> {
        let invalid = |message: String| CatalogError::Template {
            provider: provider.to_string(),
            message,
        };
        for (standard, renamed) in &self.param_names {
            if !RENAMABLE_PARAMS.contains(&standard.as_str()) {
                return Err(invalid(format!(
                    "param_names.{standard}: only {} can be renamed",
                    RENAMABLE_PARAMS.join(", ")
                )));
            }
            if !is_param_name(renamed) {
                return Err(invalid(format!(
                    "param_names.{standard}: {renamed:?} is not a parameter name"
                )));
            }
        }
        if let Some(name) = &self.callback_code_param {
            if !is_param_name(name) {
                return Err(invalid(format!(
                    "callback_code_param: {name:?} is not a parameter name"
                )));
            }
        }
        // Each map's own placeholder besides ${clientId} and the connection's values: a nonce
        // in the authorize step, the callback URL in a refresh (the code exchange sends it
        // anyway).
        let maps = [
            (
                "authorization_params",
                &self.authorization_params,
                Some(NONCE_PLACEHOLDER),
            ),
            ("token_params", &self.token_params, None),
            (
                "refresh_params",
                &self.refresh_params,
                Some(REDIRECT_URI_PLACEHOLDER),
            ),
        ];
        for (field, map, own) in maps {
            for (name, value) in map {
                let known = |placeholder: &str| {
                    own == Some(placeholder)
                        || placeholder == CLIENT_ID_PLACEHOLDER
                        || placeholder
                            .strip_prefix(PARAMS_PREFIX)
                            .is_some_and(|param| !param.is_empty())
                };
                if !uses_only(value, known) {
                    let allowed = match own {
                        Some(own) => format!(
                            "${{{own}}}, ${{clientId}} and ${{connectionConfig.params.<name>}}"
                        ),
                        None => "${clientId} and ${connectionConfig.params.<name>}".to_string(),
                    };
                    return Err(invalid(format!(
                        "{field}.{name}: placeholders must be {allowed}"
                    )));
                }
            }
        }
        let exchanges = [
            (
                "long_lived_token",
                "long_lived_token.url",
                &self.long_lived_token,
            ),
            (
                "access_token_refresh",
                "access_token_refresh.url",
                &self.access_token_refresh,
            ),
        ];
        for (field, url_field, exchange) in exchanges {
            let Some(exchange) = exchange else { continue };
            super::check_url(provider, url_field, &exchange.url, allow_http)?;
            for (name, value) in &exchange.params {
                if !uses_only(value, |p| EXCHANGE_PLACEHOLDERS.contains(&p)) {
                    return Err(invalid(format!(
                        "{field}.params.{name}: placeholders must be ${{accessToken}}, ${{clientId}} or ${{clientSecret}}"
                    )));
                }
            }
        }
        if let Some(request) = &self.metadata_request {
            super::check_url(provider, "metadata_request.url", &request.url, allow_http)?;
            for (name, value) in &request.headers {
                let valid = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && !value.contains(['\r', '\n', '\0'])
                    && uses_only(value, |p| p == ACCESS_TOKEN);
                if !valid {
                    return Err(invalid(format!(
                        "metadata_request.headers.{name}: a header name, and a one-line value whose only placeholder is ${{accessToken}}"
                    )));
                }
            }
            if request.fields.is_empty() {
                return Err(invalid(
                    "metadata_request.fields: name at least one field".into(),
                ));
            }
            for (name, path) in &request.fields {
                if !is_param_name(name) || path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(invalid(format!(
                        "metadata_request.fields.{name}: a field name and a dotted path such as accounts.0.base_uri"
                    )));
                }
            }
        }
        for (name, field) in &self.connection_config {
            for choice in &field.choices {
                if !field.matches_pattern(choice) || !is_host_text(choice) {
                    return Err(invalid(format!(
                        "connection_config.{name}.choices: {choice:?} must be letters, digits, '.', '-' and match the pattern"
                    )));
                }
            }
            if let Some(default) = &field.default {
                if !field.accepts(default) {
                    return Err(invalid(format!(
                        "connection_config.{name}.default: {default:?} is not one of the accepted values"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks each connection config value against its field's choices and pattern before any is
    /// put in a URL or a parameter: a subdomain like `evil.com` or `a/b` is refused with the
    /// field's description, not used. A missing value is reported where it is needed.
    pub fn check_connection_values(&self, values: &Map<String, Value>) -> Result<(), String> {
        for (name, field) in &self.connection_config {
            let Some(value) = values.get(&format!("{PARAMS_PREFIX}{name}")) else {
                continue;
            };
            let value = value.as_str().unwrap_or_default();
            if !field.accepts(value) {
                let what = field.description.as_deref().unwrap_or(name.as_str());
                let rule = if field.choices.is_empty() {
                    format!(
                        "it must match {}",
                        field.pattern.as_deref().unwrap_or_default()
                    )
                } else {
                    format!("it must be one of: {}", field.choices.join(", "))
                };
                return Err(format!(
                    "Connection Config param '{name}' is not valid ({what}): {rule}."
                ));
            }
        }
        Ok(())
    }

    /// `values` (a settled connection config, `connectionConfig.params.<name>` keys) with each
    /// declared default filled in where no value is given.
    pub fn with_defaults(&self, mut values: Map<String, Value>) -> Map<String, Value> {
        for (name, field) in &self.connection_config {
            if let Some(default) = &field.default {
                values
                    .entry(format!("{PARAMS_PREFIX}{name}"))
                    .or_insert_with(|| Value::String(default.clone()));
            }
        }
        values
    }
}

/// Whether `value` is well formed and every placeholder in it is one `known` admits.
fn uses_only(value: &str, known: impl Fn(&str) -> bool) -> bool {
    pieces(value).is_some_and(|pieces| {
        pieces.iter().all(|piece| match piece {
            Piece::Text(_) => true,
            Piece::Placeholder(placeholder) => known(placeholder),
        })
    })
}

/// A host placeholder's choice is put in a host name: letters, digits, `.` and `-` only.
fn is_host_text(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// Names of the `${...}` placeholders in `value`.
fn placeholder_names(value: &str) -> impl Iterator<Item = &str> {
    pieces(value)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
}

/// What a flow step knows besides the connection config: the app's client id (public: it is in
/// every authorize URL) and, when the authorization redirect is being built, the flow's nonce.
#[derive(Debug, Clone, Copy)]
pub struct FlowValues<'a> {
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    /// The server's callback URL, for `${redirectUri}` in refresh parameters.
    pub redirect_uri: Option<&'a str>,
}

/// A template's extra parameters with their placeholders filled:
/// `${connectionConfig.params.x}` from `values` (a settled connection config), `${clientId}`,
/// `${nonce}` and `${redirectUri}` from `flow`.
pub fn fill_params(
    params: &IndexMap<String, String>,
    values: &Map<String, Value>,
    flow: FlowValues<'_>,
) -> Result<Vec<(String, String)>, ProxyValueError> {
    fill_each(params, |placeholder| match placeholder {
        NONCE_PLACEHOLDER => flow.nonce.map(str::to_string),
        REDIRECT_URI_PLACEHOLDER => flow.redirect_uri.map(str::to_string),
        CLIENT_ID_PLACEHOLDER => Some(flow.client_id.to_string()),
        _ => match values.get(placeholder)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
    })
}

/// The exchange's parameters with the short-lived token and the client's credentials filled in.
pub fn fill_exchange_params(
    params: &IndexMap<String, String>,
    access_token: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<Vec<(String, String)>, ProxyValueError> {
    fill_each(params, |placeholder| match placeholder {
        ACCESS_TOKEN => Some(access_token.to_string()),
        CLIENT_ID_PLACEHOLDER => Some(client_id.to_string()),
        "clientSecret" => Some(client_secret.to_string()),
        _ => None,
    })
}

/// The headers of a `metadata_request`, `${accessToken}` filled.
pub fn fill_metadata_headers(
    headers: &IndexMap<String, String>,
    access_token: &str,
) -> Result<Vec<(String, String)>, ProxyValueError> {
    fill_each(headers, |placeholder| {
        (placeholder == ACCESS_TOKEN).then(|| access_token.to_string())
    })
}

/// Every value of `params` with its placeholders filled by `lookup`, in order.
fn fill_each(
    params: &IndexMap<String, String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ProxyValueError> {
    params
        .iter()
        .map(|(name, value)| Ok((name.clone(), fill_proxy_value(value, &lookup)?)))
        .collect()
}
