//! How results look on a terminal: tables, masked secrets, pretty JSON.

use comfy_table::{presets, Table};
use nango_client::{ConnectionSummary, ProviderConfig, ProviderSummary};
use serde_json::Value;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// `config:list`: the columns the 0.9 CLI showed.
pub fn configs_table(configs: &[ProviderConfig]) -> String {
    let mut t = table(&["unique_key", "provider", "created"]);
    for c in configs {
        t.add_row([&c.unique_key, &c.provider, &c.created_at]);
    }
    t.to_string()
}

/// `config:get`: one row per field, the client secret masked.
pub fn config_table(c: &ProviderConfig) -> String {
    let mut t = table(&["key", "value"]);
    let rows = [
        ("id", c.id.to_string()),
        ("unique_key", c.unique_key.clone()),
        ("provider", c.provider.clone()),
        ("oauth_client_id", c.oauth_client_id.clone()),
        ("oauth_client_secret", mask(c.oauth_client_secret.expose())),
        ("oauth_scopes", c.oauth_scopes.clone()),
        (
            "account_id",
            c.account_id.map(|id| id.to_string()).unwrap_or_default(),
        ),
        ("created_at", c.created_at.clone()),
        ("updated_at", c.updated_at.clone()),
    ];
    for (key, value) in rows {
        t.add_row([key.to_string(), value]);
    }
    t.to_string()
}

/// `connection:list`. The server calls the config key `provider`; the header says what it is.
pub fn connections_table(connections: &[ConnectionSummary]) -> String {
    let mut t = table(&["connection_id", "provider_config_key", "created"]);
    for c in connections {
        t.add_row([&c.connection_id, &c.provider, &c.created]);
    }
    t.to_string()
}

/// `providers:list`: one row per catalog entry, with a count under the table.
pub fn providers_table(providers: &[ProviderSummary]) -> String {
    let mut t = table(&["name", "display_name", "auth_mode", "categories"]);
    for p in providers {
        t.add_row([
            p.name.clone(),
            p.display_name.clone().unwrap_or_default(),
            p.auth_mode.clone(),
            p.categories.join(", "),
        ]);
    }
    let noun = if providers.len() == 1 {
        "provider"
    } else {
        "providers"
    };
    format!(
        "{t}
{} {noun}",
        providers.len()
    )
}

/// Shows the last four characters, enough to tell two secrets apart, and only when the secret
/// is long enough that four characters give little of it away. The stars are a fixed count so
/// the length does not show either.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "********".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("********{tail}")
}

/// Pretty JSON for `--json` and `connection:get`.
pub fn pretty(body: &Value) -> String {
    serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secret: &str) -> Result<ProviderConfig, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "id": 1, "created_at": "2023-02-28T10:00:00.000Z", "updated_at": "2023-02-28T10:00:00.000Z",
            "unique_key": "github-dev", "provider": "github", "oauth_client_id": "Iv1.abc",
            "oauth_client_secret": secret, "oauth_scopes": "repo,user", "account_id": 0
        }))
    }

    #[test]
    fn secrets_are_masked_but_the_last_four_of_long_ones() {
        assert_eq!(mask("0123456789abcdef"), "********cdef");
        assert_eq!(mask("short"), "********");
        assert_eq!(mask(""), "********");
        assert_eq!(mask("ééééééééééé€€€€"), "********€€€€");
    }

    #[test]
    fn config_get_never_prints_the_whole_secret() -> Result<(), serde_json::Error> {
        let out = config_table(&config("s3cr3t-client-secret-9876")?);
        assert!(!out.contains("s3cr3t-client-secret-9876"), "{out}");
        assert!(out.contains("********9876"), "{out}");
        assert!(
            out.contains("github-dev") && out.contains("repo,user"),
            "{out}"
        );
        Ok(())
    }

    #[test]
    fn config_list_shows_key_provider_and_date() -> Result<(), serde_json::Error> {
        let out = configs_table(&[config("whatever-secret-1234")?]);
        for needle in [
            "unique_key",
            "provider",
            "created",
            "github-dev",
            "2023-02-28T10:00:00.000Z",
        ] {
            assert!(out.contains(needle), "{needle} missing in\n{out}");
        }
        assert!(!out.contains("whatever-secret"), "{out}");
        Ok(())
    }
}
