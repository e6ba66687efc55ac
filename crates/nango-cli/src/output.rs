//! How results look on a terminal: colours, tables, masked secrets, pretty JSON.
//!
//! Text for a person is always painted here, with `anstyle` styles; whether the escape codes
//! reach the terminal is decided once per stream by `anstream` (see `main`), which strips them
//! when colours are off. Data for scripts (JSON, tokens) is never painted at all.

use anstyle::{AnsiColor, Style};
use comfy_table::{presets, Table};
use nango_client::{ConnectionSummary, ProviderConfig, ProviderSummary};
use serde_json::Value;

/// What a command prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printed {
    /// For scripts (JSON, tokens, completion scripts): written as is, never painted.
    Data(String),
    /// For a person (tables, messages): painted, stripped of its colours when they are off.
    Text(String),
}

pub const SUCCESS: Style = AnsiColor::Green.on_default();
pub const ERROR: Style = AnsiColor::Red.on_default();
pub const WARNING: Style = AnsiColor::Yellow.on_default();
/// Table headers, keys, the names of doctor's checks.
pub const HEADER: Style = Style::new().bold();
/// What was not looked at (a doctor check skipped).
pub const MUTED: Style = Style::new().dimmed();

/// `text` in `style`, reset after it.
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// A `✅ ...` line.
pub fn success(text: &str) -> Printed {
    Printed::Text(paint(SUCCESS, text))
}

/// The `✅` line of a command without data to show: plain under `--json`, which promises output
/// without colours.
pub fn done(json: bool, message: &str) -> Printed {
    if json {
        Printed::Data(message.to_string())
    } else {
        success(message)
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// The table as text, its header row in bold (and its first column too, for tables of keys and
/// values). comfy-table lays out plain text (it would count escape codes as width), so the
/// cells are painted afterwards, between the border characters, with their padding left out.
fn render(table: &Table, bold_first_column: bool) -> String {
    let mut in_header = true;
    let lines: Vec<String> = table
        .to_string()
        .lines()
        .map(|line| {
            if line.starts_with('╞') {
                in_header = false;
            }
            if !line.starts_with('│') {
                line.to_string()
            } else if in_header {
                paint_cells(line, usize::MAX)
            } else if bold_first_column {
                paint_cells(line, 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    lines.join("\n")
}

/// Paints the text of the first `cells` cells of a table row in `HEADER`.
fn paint_cells(line: &str, cells: usize) -> String {
    let is_border = |c: char| c == '│' || c == '┆';
    let mut out = String::with_capacity(line.len() + 32);
    let mut painted = 0;
    let mut rest = line;
    while let Some(at) = rest.find(is_border) {
        let (cell, tail) = rest.split_at(at);
        let border = tail.chars().next().map_or(0, char::len_utf8);
        if !cell.is_empty() && painted < cells {
            painted += 1;
            let text = cell.trim();
            let start = cell.len() - cell.trim_start().len();
            if text.is_empty() {
                out.push_str(cell);
            } else {
                out.push_str(&cell[..start]);
                out.push_str(&paint(HEADER, text));
                out.push_str(&cell[start + text.len()..]);
            }
        } else {
            out.push_str(cell);
        }
        out.push_str(&tail[..border]);
        rest = &tail[border..];
    }
    out.push_str(rest);
    out
}

/// `config:list`: the columns the 0.9 CLI showed.
pub fn configs_table(configs: &[ProviderConfig]) -> String {
    let mut t = table(&["unique_key", "provider", "created"]);
    for c in configs {
        t.add_row([&c.unique_key, &c.provider, &c.created_at]);
    }
    render(&t, false)
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
    render(&t, true)
}

/// `connection:list`. The server calls the config key `provider`; the header says what it is.
pub fn connections_table(connections: &[ConnectionSummary]) -> String {
    let mut t = table(&["connection_id", "provider_config_key", "created"]);
    for c in connections {
        t.add_row([&c.connection_id, &c.provider, &c.created]);
    }
    render(&t, false)
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
    format!("{}\n{} {noun}", render(&t, false), providers.len())
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

    fn plain(text: &str) -> String {
        anstream::adapter::strip_str(text).to_string()
    }

    #[test]
    fn headers_and_keys_are_bold_and_the_layout_is_the_plain_one() -> Result<(), serde_json::Error>
    {
        let painted = config_table(&config("whatever-secret-1234")?);
        let bold = |text: &str| paint(HEADER, text);
        assert!(painted.contains(&format!("│ {}", bold("key"))), "{painted}");
        assert!(
            painted.contains(&format!("┆ {}", bold("value"))),
            "{painted}"
        );
        assert!(
            painted.contains(&format!("│ {}", bold("unique_key"))),
            "{painted}"
        );
        // Values are not painted.
        assert!(painted.contains("┆ github-dev"), "{painted}");
        let mut t = table(&["key", "value"]);
        t.add_row(["id", "1"]);
        assert_eq!(plain(&render(&t, true)), t.to_string());

        let painted = configs_table(&[config("whatever-secret-1234")?]);
        assert!(painted.contains(&bold("provider")), "{painted}");
        assert!(!painted.contains(&bold("github-dev")), "{painted}");
        Ok(())
    }

    #[test]
    fn config_get_never_prints_the_whole_secret() -> Result<(), serde_json::Error> {
        let out = plain(&config_table(&config("s3cr3t-client-secret-9876")?));
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
        let out = plain(&configs_table(&[config("whatever-secret-1234")?]));
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
