//! `${name}` placeholders in template URLs, filled from a connection config without letting a
//! value change where the request goes.

use serde_json::{Map, Value};
use url::Url;

/// Why a template URL could not be filled in.
#[derive(Debug, thiserror::Error)]
pub enum InterpolationError {
    /// Nango's wording; the caller appends the connection config it was given.
    #[error("Missing Connection Config param(s) in Auth request to interpolate url {url}.")]
    MissingParams { url: String },
    /// Values go into the URL unencoded (as in Nango), so anything but a host name or label could
    /// move the request to another host or path.
    #[error(
        "Connection Config param '{name}' is not a host name or label and cannot be put in a URL"
    )]
    UnsafeValue { name: String },
}

/// A template URL cut at its placeholders.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits `template` at its `${name}` placeholders. `None` when a `${` is never closed or a name is
/// empty or holds a `{`: Nango's pattern (`\$\{([^{}]*)\}`) skipped such text and sent it to the
/// provider as is, which can only be a mistake in the template.
pub(super) fn pieces(template: &str) -> Option<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        if name.is_empty() || name.contains('{') {
            return None;
        }
        out.push(Piece::Placeholder(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Some(out)
}

/// Replaces every `${name}` placeholder in `template_url` with the value of
/// `connection_config[name]` (name is the full text in the braces, e.g.
/// `connectionConfig.params.subdomain`; only string and number values count).
///
/// Values are inserted without percent-encoding, as Nango did, so each must be a host name or label
/// (letters, digits, `-`, `_`, dot-separated, at most 253 characters); when the placeholder is in
/// the host, the result's host must still be the template's host with the value in place (so
/// `https://${..}.myshopify.com/` always ends up on `.myshopify.com`).
pub fn interpolate_url(
    template_url: &str,
    connection_config: &Map<String, Value>,
) -> Result<String, InterpolationError> {
    let missing = || InterpolationError::MissingParams {
        url: template_url.to_string(),
    };
    let pieces = pieces(template_url).ok_or_else(missing)?;
    if !pieces.iter().any(|p| matches!(p, Piece::Placeholder(_))) {
        return Ok(template_url.to_string());
    }

    // All values are looked up before any is judged: Nango reported missing params first, and the
    // unsafe-value refusal is ours.
    let mut values = Vec::new();
    for piece in &pieces {
        if let Piece::Placeholder(name) = piece {
            let value = match connection_config.get(*name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(missing()),
            };
            values.push((*name, value));
        }
    }
    if let Some((name, _)) = values.iter().find(|(_, value)| !is_safe_value(value)) {
        return Err(InterpolationError::UnsafeValue {
            name: (*name).to_string(),
        });
    }

    let mut result = String::with_capacity(template_url.len() + 32);
    // Byte ranges of the inserted values in `result`, to find those that landed in the host.
    let mut inserted = Vec::with_capacity(values.len());
    let mut values = values.into_iter();
    for piece in &pieces {
        match piece {
            Piece::Text(text) => result.push_str(text),
            Piece::Placeholder(_) => {
                if let Some((name, value)) = values.next() {
                    let start = result.len();
                    result.push_str(&value);
                    inserted.push((name, start..result.len()));
                }
            }
        }
    }

    check_structure(&result, &inserted)?;
    Ok(result)
}

/// A host name, or a single label of one: what a subdomain-style connection config param holds.
fn is_safe_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            let bytes = label.as_bytes();
            let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
            bytes.len() <= 63
                && edge_ok(bytes.first())
                && edge_ok(bytes.last())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        })
}

/// Safe values hold no `:`, `/`, `?`, `#` or `@`, so the result's authority is the template's with
/// the values in place; this makes sure the URL parser sees that same host (no IPv4 shorthand or
/// other normalisation turning it into something else), which also means the host still ends with
/// the template's fixed suffix.
fn check_structure(
    result: &str,
    inserted: &[(&str, std::ops::Range<usize>)],
) -> Result<(), InterpolationError> {
    let unsafe_value = |name: &str| InterpolationError::UnsafeValue {
        name: name.to_string(),
    };
    let first_name = inserted.first().map_or("", |(name, _)| *name);

    let url = Url::parse(result).map_err(|_| unsafe_value(first_name))?;
    let Some(host) = url.host_str() else {
        return Err(unsafe_value(first_name));
    };
    if !matches!(url.scheme(), "https" | "http") {
        return Err(unsafe_value(first_name));
    }

    let Some(authority_start) = result.find("://").map(|i| i + 3) else {
        return Err(unsafe_value(first_name));
    };
    let authority_end = result[authority_start..]
        .find(['/', '?', '#'])
        .map_or(result.len(), |i| authority_start + i);
    let Some((host_name, _)) = inserted
        .iter()
        .find(|(_, range)| range.start >= authority_start && range.end <= authority_end)
    else {
        return Ok(());
    };
    let authority = &result[authority_start..authority_end];
    // Userinfo and IPv6 literals next to a placeholder make the host boundary ambiguous; no
    // provider template needs them.
    if authority.contains(['@', '[']) {
        return Err(unsafe_value(host_name));
    }
    let host_text = authority.split(':').next().unwrap_or(authority);
    if !host.eq_ignore_ascii_case(host_text) {
        return Err(unsafe_value(host_name));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use serde_json::json;

    const SUBDOMAIN: &str = "connectionConfig.params.subdomain";
    const SHOPIFY: &str =
        "https://${connectionConfig.params.subdomain}.myshopify.com/admin/oauth/authorize";

    fn config(value: Value) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(SUBDOMAIN.to_string(), value);
        map
    }

    #[test]
    fn fills_a_subdomain() {
        let url = interpolate_url(SHOPIFY, &config(json!("acme-shop"))).unwrap();
        assert_eq!(url, "https://acme-shop.myshopify.com/admin/oauth/authorize");
        let url = interpolate_url(SHOPIFY, &config(json!("eu.acme_1"))).unwrap();
        assert_eq!(url, "https://eu.acme_1.myshopify.com/admin/oauth/authorize");
    }

    #[test]
    fn numbers_count_as_values() {
        let url = interpolate_url(SHOPIFY, &config(json!(42))).unwrap();
        assert_eq!(url, "https://42.myshopify.com/admin/oauth/authorize");
    }

    #[test]
    fn a_template_without_placeholders_is_returned_as_is() {
        let url = "https://github.com/login/oauth/authorize";
        assert_eq!(interpolate_url(url, &Map::new()).unwrap(), url);
    }

    #[test]
    fn an_unclosed_placeholder_is_reported_as_missing() {
        assert!(matches!(
            interpolate_url("https://${a.example.com/", &Map::new()),
            Err(InterpolationError::MissingParams { .. })
        ));
    }

    #[test]
    fn placeholders_in_the_path_and_port_are_filled() {
        let mut cfg = Map::new();
        cfg.insert("tenant".into(), json!("common"));
        cfg.insert("port".into(), json!(8080));
        let url = interpolate_url("http://localhost:${port}/${tenant}/token", &cfg).unwrap();
        assert_eq!(url, "http://localhost:8080/common/token");
    }

    #[test]
    fn a_missing_param_names_the_template() {
        let err = interpolate_url(SHOPIFY, &Map::new()).unwrap_err();
        assert!(
            matches!(&err, InterpolationError::MissingParams { url } if url == SHOPIFY),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "Missing Connection Config param(s) in Auth request to interpolate url {SHOPIFY}."
            )
        );
        // The key must match the full placeholder text.
        let mut cfg = Map::new();
        cfg.insert("subdomain".into(), json!("acme"));
        assert!(matches!(
            interpolate_url(SHOPIFY, &cfg),
            Err(InterpolationError::MissingParams { .. })
        ));
    }

    #[test]
    fn values_other_than_strings_and_numbers_are_missing() {
        for value in [json!(null), json!(true), json!(["acme"]), json!({"a": "b"})] {
            assert!(
                matches!(
                    interpolate_url(SHOPIFY, &config(value.clone())),
                    Err(InterpolationError::MissingParams { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn missing_wins_over_unsafe() {
        let template = "https://${a}.example.com/${b}";
        let mut cfg = Map::new();
        cfg.insert("a".into(), json!("evil.com/x"));
        assert!(matches!(
            interpolate_url(template, &cfg),
            Err(InterpolationError::MissingParams { .. })
        ));
    }

    #[test]
    fn unsafe_values_are_refused() {
        let too_long = "a".repeat(254);
        let long_label = "a".repeat(64);
        for value in [
            "evil.com/x",
            "a@b",
            "x?y",
            "x#",
            "a b",
            "",
            "../",
            "..",
            ".",
            "a..b",
            ".acme",
            "acme.",
            "-acme",
            "acme-",
            "a:443",
            "a%2fb",
            "a\\b",
            "a\tb",
            "a\nb",
            "évil",
            too_long.as_str(),
            long_label.as_str(),
        ] {
            let err = interpolate_url(SHOPIFY, &config(json!(value))).unwrap_err();
            assert!(
                matches!(&err, InterpolationError::UnsafeValue { name } if name == SUBDOMAIN),
                "{value:?}: {err:?}"
            );
        }
        assert!(matches!(
            interpolate_url(SHOPIFY, &config(json!(-1))),
            Err(InterpolationError::UnsafeValue { .. })
        ));
    }

    #[test]
    fn a_whole_host_placeholder_cannot_become_another_address_form() {
        let mut cfg = Map::new();
        cfg.insert("host".into(), json!("0x7f"));
        // The WHATWG parser would read `0x7f` as the IPv4 address 0.0.0.127.
        assert!(matches!(
            interpolate_url("https://${host}/token", &cfg),
            Err(InterpolationError::UnsafeValue { .. })
        ));
        cfg.insert("host".into(), json!("auth.example.org"));
        assert_eq!(
            interpolate_url("https://${host}/token", &cfg).unwrap(),
            "https://auth.example.org/token"
        );
    }

    #[test]
    fn the_host_keeps_its_fixed_suffix() {
        let url = interpolate_url(SHOPIFY, &config(json!("evil.com.x"))).unwrap();
        let parsed = Url::parse(&url).unwrap();
        assert!(parsed.host_str().unwrap().ends_with(".myshopify.com"));
    }

    #[test]
    fn pieces_split_at_placeholders() {
        assert_eq!(
            pieces("https://${a}.x.com/${b.c}").unwrap(),
            vec![
                Piece::Text("https://"),
                Piece::Placeholder("a"),
                Piece::Text(".x.com/"),
                Piece::Placeholder("b.c"),
            ]
        );
        assert!(pieces("https://${}.x.com").is_none());
        assert!(pieces("https://${a{b}.x.com").is_none());
        assert!(pieces("https://${a.x.com").is_none());
        assert_eq!(
            pieces("https://$x{y}").unwrap(),
            vec![Piece::Text("https://$x{y}")]
        );
    }
}
