//! Current Nango's providers.yaml as an operator file: recognised by field names only Nango's
//! format has, and translated entry by entry into this catalog's format, so a team's custom
//! Nango providers work unchanged. An entry that needs something this server does not do (an
//! auth mode it lacks, a flow-changing field it cannot honour) is left out with the reason; a
//! field neither format knows is an error naming the entry and its line, as in this format.

use serde_norway::{Mapping, Value};

use super::interpolate::{pieces, Piece};
use super::{CatalogError, SkippedEntry};

/// Fields only current Nango's format has: one of them anywhere marks the file as Nango's.
const NANGO_ONLY_FIELDS: &[&str] = &[
    "connection_configuration",
    "credentials",
    "docs_connect",
    "setup_guide_url",
    "token_request_auth_method",
    "webhook_routing_script",
    "webhook_user_defined_secret",
    "post_connection_script",
    "expires_in_unit",
];

/// Nango fields about its dashboard, docs or webhooks: nothing here reads them.
const IGNORED_FIELDS: &[&str] = &[
    "connection_configuration",
    "docs_connect",
    "setup_guide_url",
    "webhook_routing_script",
    "webhook_user_defined_secret",
    "post_connection_script",
    "pre_connection_deletion_script",
    "is_hidden",
    "display_description",
];

/// Nango fields that change the flow in ways this server does not: an entry using one is left
/// out rather than half working.
const UNSUPPORTED_FIELDS: &[&str] = &[
    "authorization_url_fragment",
    "authorization_url_replacements",
    "authorization_url_skip_encode",
    "authorization_url_skip_empty",
    "token_url_encode",
    "token_url_skip_encode",
    "authorization_code_param_in_body",
    "require_client_certificate",
    "installation",
    "app_store_url",
    "token_params_in_query",
];

/// Fields with the same name and meaning in both formats.
const SHARED_FIELDS: &[&str] = &[
    "auth_mode",
    "authorization_url",
    "token_url",
    "refresh_url",
    "authorization_params",
    "token_params",
    "refresh_params",
    "scope_separator",
    "default_scopes",
    "authorization_method",
    "body_format",
    "disable_pkce",
    "token_response_metadata",
    "redirect_uri_metadata",
    "request_url",
    "request_params",
    "request_http_method",
    "token_http_method",
    "signature_method",
    "display_name",
    "docs",
    "auth",
    "alias",
];

const SUPPORTED_MODES: &[&str] = &["OAUTH2", "OAUTH1", "OAUTH2_CC", "API_KEY", "BASIC"];

/// Nango's auth modes this server does not have (a mode in neither list is a typo: an error).
const NANGO_ONLY_MODES: &[&str] = &[
    "APP",
    "APP_STORE",
    "BILL",
    "CUSTOM",
    "INSTALL_PLUGIN",
    "JWT",
    "MCP_OAUTH2",
    "MCP_OAUTH2_GENERIC",
    "NONE",
    "SIGNATURE",
    "TABLEAU",
    "TBA",
    "TWO_STEP",
];

/// This catalog's own fields that Nango's format lacks: a file mixing both keeps them as they are.
const OWN_FIELDS: &[&str] = &[
    "base_api_url",
    "metadata_url_hosts",
    "api_key",
    "basic",
    "token_response",
    "refresh_margin",
    "token_request_headers",
    "verification",
    "omit_empty_params",
    "param_names",
    "callback_code_param",
    "long_lived_token",
    "access_token_refresh",
    "metadata_request",
    "verified",
];

/// Nango's category values, in this catalog's vocabulary (others become `other`).
const CATEGORIES: &[(&str, &str)] = &[
    ("dev-tools", "developer-tools"),
    ("e-commerce", "ecommerce"),
    ("payment", "payments"),
    ("banking", "payments"),
    ("invoicing", "accounting"),
    ("erp", "accounting"),
    ("ticketing", "support"),
    ("ats", "hr"),
    ("surveys", "marketing"),
];

/// Whether these entries are written in current Nango's format.
pub fn detect(entries: &[(String, Value)]) -> bool {
    entries.iter().any(|(_, value)| {
        let Some(entry) = value.as_mapping() else {
            return false;
        };
        let nango_field = NANGO_ONLY_FIELDS.iter().any(|f| entry.contains_key(*f));
        let nango_proxy = entry
            .get("proxy")
            .and_then(Value::as_mapping)
            .is_some_and(|p| p.contains_key("base_url") || p.contains_key("verification"));
        let nango_mode = entry
            .get("auth_mode")
            .and_then(Value::as_str)
            .is_some_and(|mode| NANGO_ONLY_MODES.contains(&mode));
        nango_field || nango_proxy || nango_mode || mentions_short_placeholder(value)
    })
}

/// `${connectionConfig.<name>}` without `params.`: how current Nango writes placeholders.
fn mentions_short_placeholder(value: &Value) -> bool {
    match value {
        Value::String(text) => text
            .match_indices("${connectionConfig.")
            .any(|(at, found)| !text[at + found.len()..].starts_with("params.")),
        Value::Mapping(map) => map.values().any(mentions_short_placeholder),
        Value::Sequence(items) => items.iter().any(mentions_short_placeholder),
        _ => false,
    }
}

/// The translated entries and the ones left out.
pub struct Translated {
    pub entries: Vec<(String, Value)>,
    pub skipped: Vec<SkippedEntry>,
}

/// Translates every entry; `yaml` is the file's text, for line numbers in errors.
pub fn translate(entries: Vec<(String, Value)>, yaml: &str) -> Result<Translated, CatalogError> {
    let mut translated = Translated {
        entries: Vec::with_capacity(entries.len()),
        skipped: Vec::new(),
    };
    for (name, value) in entries {
        match translate_entry(value) {
            Ok(Outcome::Entry(entry)) => translated.entries.push((name, entry)),
            Ok(Outcome::Skip(reason)) => translated.skipped.push(SkippedEntry {
                provider: name,
                reason,
            }),
            Err(message) => {
                return Err(CatalogError::Template {
                    message: located(yaml, &name, &message).unwrap_or(message),
                    provider: name,
                })
            }
        }
    }
    Ok(translated)
}

/// `message` with the line of `provider`'s entry in `yaml`.
pub fn located(yaml: &str, provider: &str, message: &str) -> Option<String> {
    let key = format!("{provider}:");
    let line = yaml
        .lines()
        .position(|line| line.trim_end() == key || line.starts_with(&format!("{key} ")))?;
    Some(format!("line {}: {message}", line + 1))
}

enum Outcome {
    Entry(Value),
    Skip(String),
}

fn translate_entry(value: Value) -> Result<Outcome, String> {
    let Value::Mapping(entry) = value else {
        return Err("a provider entry must be a map of fields".into());
    };
    let mode = entry
        .get("auth_mode")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(mode) = &mode {
        if NANGO_ONLY_MODES.contains(&mode.as_str()) {
            return Ok(Outcome::Skip(format!("auth mode {mode} is not supported")));
        }
        if !SUPPORTED_MODES.contains(&mode.as_str()) {
            return Err(format!("unknown auth_mode {mode}"));
        }
    }
    let token_metadata: Vec<String> = entry
        .get("token_response_metadata")
        .and_then(Value::as_sequence)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Mapping::new();
    let mut put = |key: &str, value: Value| {
        out.insert(Value::String(key.to_string()), value);
    };
    for (key, value) in entry {
        let Some(key) = key.as_str().map(str::to_string) else {
            return Err("field names must be text".into());
        };
        let key = key.as_str();
        if IGNORED_FIELDS.contains(&key) {
            continue;
        }
        if UNSUPPORTED_FIELDS.contains(&key) {
            return Ok(Outcome::Skip(format!(
                "uses {key}, which this server does not support"
            )));
        }
        if let Some(placeholder) = unsupported_placeholder(&value) {
            return Ok(Outcome::Skip(format!(
                "{key} uses the placeholder ${{{placeholder}}}, which this server does not fill"
            )));
        }
        let value = long_placeholders(value);
        match key {
            _ if SHARED_FIELDS.contains(&key) || OWN_FIELDS.contains(&key) => put(key, value),
            "categories" => put(key, categories(value)),
            "token_request_auth_method" => match value.as_str() {
                Some("basic") => put("authorization_method", Value::from("header")),
                Some(other) => {
                    return Ok(Outcome::Skip(format!(
                        "token_request_auth_method {other} is not supported"
                    )))
                }
                None => return Err("token_request_auth_method must be text".into()),
            },
            "expires_in_unit" => {
                let mut shape = Mapping::new();
                shape.insert(Value::from("expires_in_unit"), value);
                put("token_response", Value::Mapping(shape));
            }
            "token_expiration_buffer" => put("refresh_margin", value),
            "proxy" => {
                let Value::Mapping(proxy) = value else {
                    return Err("proxy must be a map".into());
                };
                match translate_proxy(proxy, mode.as_deref(), &token_metadata)? {
                    Ok(fields) => {
                        for (key, value) in fields {
                            put(&key, value);
                        }
                    }
                    Err(reason) => return Ok(Outcome::Skip(reason)),
                }
            }
            "connection_config" => put(key, connection_config(value)?),
            "credentials" => {
                for (key, value) in credentials(value, mode.as_deref())? {
                    put(&key, value);
                }
            }
            other => {
                return Err(format!(
                    "unknown field `{other}` (neither this catalog's format nor Nango's)"
                ))
            }
        }
    }
    Ok(Outcome::Entry(Value::Mapping(out)))
}

/// The first placeholder no translation can give a meaning here, if any (a malformed one is left
/// to the template's own checks, which name it).
fn unsupported_placeholder(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => pieces(text)?.into_iter().find_map(|piece| match piece {
            Piece::Placeholder(name)
                if !matches!(name, "apiKey" | "accessToken")
                    && !name.starts_with("connectionConfig.")
                    && !name.starts_with("metadata.") =>
            {
                Some(name.to_string())
            }
            _ => None,
        }),
        Value::Mapping(map) => map.values().find_map(unsupported_placeholder),
        Value::Sequence(items) => items.iter().find_map(unsupported_placeholder),
        _ => None,
    }
}

/// `${connectionConfig.<name>}` written as this catalog's `${connectionConfig.params.<name>}`.
fn long_placeholders(value: Value) -> Value {
    match value {
        Value::String(text) => {
            let mut out = String::with_capacity(text.len() + 16);
            let mut rest = text.as_str();
            const SHORT: &str = "${connectionConfig.";
            while let Some(at) = rest.find(SHORT) {
                out.push_str(&rest[..at + SHORT.len()]);
                rest = &rest[at + SHORT.len()..];
                if !rest.starts_with("params.") {
                    out.push_str("params.");
                }
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (k, long_placeholders(v)))
                .collect(),
        ),
        Value::Sequence(items) => {
            Value::Sequence(items.into_iter().map(long_placeholders).collect())
        }
        other => other,
    }
}

fn categories(value: Value) -> Value {
    let Value::Sequence(items) = value else {
        return value;
    };
    let mut mapped: Vec<Value> = Vec::new();
    for item in items {
        let Some(category) = item.as_str() else {
            continue;
        };
        if matches!(category, "popular" | "mcp") {
            continue;
        }
        let ours = CATEGORIES
            .iter()
            .find(|(nango, _)| *nango == category)
            .map_or(category, |(_, ours)| ours);
        let ours = Value::from(ours);
        if !mapped.contains(&ours) {
            mapped.push(ours);
        }
    }
    Value::Sequence(mapped)
}

/// Nango's `proxy` block as this catalog's fields (`base_api_url`, `proxy`, `verification`), or
/// the reason the entry cannot be used.
fn translate_proxy(
    proxy: Mapping,
    mode: Option<&str>,
    token_metadata: &[String],
) -> Result<Result<Vec<(String, Value)>, String>, String> {
    let mut fields = Vec::new();
    let mut ours = Mapping::new();
    for (key, value) in proxy {
        match key.as_str().unwrap_or_default() {
            "base_url" => {
                // Here a base URL from metadata is a whole token-response field, nothing else.
                let text = value.as_str().unwrap_or_default();
                if text.contains("${metadata.") {
                    let whole = text
                        .strip_prefix("${metadata.")
                        .and_then(|rest| rest.strip_suffix('}'))
                        .filter(|field| token_metadata.iter().any(|f| f == field));
                    if whole.is_none() {
                        return Ok(Err(
                            "proxy.base_url is built from connection metadata, which this server only takes whole from a token_response_metadata field".into(),
                        ));
                    }
                }
                fields.push(("base_api_url".to_string(), value));
            }
            "headers" | "query" => {
                ours.insert(key, value);
            }
            "retry" => {
                let mut retry = Mapping::new();
                if let Value::Mapping(given) = value {
                    for (k, v) in given {
                        if matches!(k.as_str(), Some("at" | "after")) {
                            retry.insert(k, v);
                        }
                    }
                }
                ours.insert(Value::from("retry"), Value::Mapping(retry));
            }
            "verification" => {
                if !matches!(mode, Some("API_KEY" | "BASIC")) {
                    continue; // only key and password connections are verified here
                }
                let Value::Mapping(check) = value else {
                    return Err("proxy.verification must be a map".into());
                };
                if check.contains_key("base_url_override") || check.contains_key("headers") {
                    return Ok(Err(
                        "proxy.verification uses base_url_override or headers, which this server does not support"
                            .into(),
                    ));
                }
                let path = check
                    .get("endpoints")
                    .and_then(Value::as_sequence)
                    .and_then(|endpoints| endpoints.first())
                    .or_else(|| check.get("endpoint"))
                    .and_then(Value::as_str)
                    .ok_or("proxy.verification needs an endpoint")?;
                let path = if path.starts_with('/') {
                    path.to_string()
                } else {
                    format!("/{path}")
                };
                let mut verification = Mapping::new();
                if let Some(method) = check.get("method") {
                    verification.insert(Value::from("method"), method.clone());
                }
                verification.insert(Value::from("path"), Value::from(path));
                fields.push(("verification".to_string(), Value::Mapping(verification)));
            }
            // How Nango paginates or decompresses: the proxy here passes responses through.
            _ => {}
        }
    }
    if !ours.is_empty() {
        fields.push(("proxy".to_string(), Value::Mapping(ours)));
    }
    Ok(Ok(fields))
}

/// Nango's `connection_config` fields (type, title, description, pattern, example,
/// default_value, ...) as this catalog's {description, pattern, example, default}.
fn connection_config(value: Value) -> Result<Value, String> {
    let Value::Mapping(fields) = value else {
        return Err("connection_config must be a map".into());
    };
    let mut out = Mapping::new();
    for (name, spec) in fields {
        let Value::Mapping(spec) = spec else {
            return Err("each connection_config field must be a map".into());
        };
        let text = |key: &str| spec.get(key).and_then(Value::as_str).map(Value::from);
        let mut ours = Mapping::new();
        if let Some(description) = text("description").or_else(|| text("title")) {
            ours.insert(Value::from("description"), description);
        }
        if let Some(pattern) = text("pattern") {
            ours.insert(Value::from("pattern"), pattern);
        }
        if let Some(example) = text("example") {
            ours.insert(Value::from("example"), example);
        }
        if let Some(default) = text("default_value").or_else(|| text("default")) {
            ours.insert(Value::from("default"), default);
        }
        if let Some(choices) = spec.get("choices") {
            ours.insert(Value::from("choices"), choices.clone());
        }
        out.insert(name, Value::Mapping(ours));
    }
    Ok(Value::Mapping(out))
}

/// Nango's `credentials` block (what the user types) as `api_key` or `basic`.
fn credentials(value: Value, mode: Option<&str>) -> Result<Vec<(String, Value)>, String> {
    let Value::Mapping(fields) = value else {
        return Err("credentials must be a map".into());
    };
    let spec = |name: &str| fields.get(name).and_then(Value::as_mapping);
    let text = |spec: Option<&Mapping>, key: &str| {
        spec.and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .map(Value::from)
    };
    let mut out = Mapping::new();
    match mode {
        Some("API_KEY") => {
            let key = spec("apiKey");
            if let Some(pattern) = text(key, "pattern") {
                out.insert(Value::from("pattern"), pattern);
            }
            if let Some(description) = text(key, "description").or_else(|| text(key, "title")) {
                out.insert(Value::from("description"), description);
            }
            Ok(vec![("api_key".into(), Value::Mapping(out))])
        }
        Some("BASIC") => {
            let username = spec("username");
            if let Some(pattern) = text(username, "pattern") {
                out.insert(Value::from("username_pattern"), pattern);
            }
            if let Some(description) =
                text(username, "description").or_else(|| text(username, "title"))
            {
                out.insert(Value::from("description"), description);
            }
            let password_optional = spec("password")
                .and_then(|p| p.get("optional"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if password_optional {
                out.insert(Value::from("password_required"), Value::from(false));
            }
            Ok(vec![("basic".into(), Value::Mapping(out))])
        }
        // What an OAuth app's client id and secret look like: the provider config holds them.
        _ => Ok(Vec::new()),
    }
}
