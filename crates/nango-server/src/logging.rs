//! Logs: text for a person, or one JSON object per line for a log collector
//! (`NANGO_LOG_FORMAT=json`). Every line logged while a request is served carries the request's
//! id. Nothing here ever formats a secret: secrets are `Secret` values, whose Debug and Display
//! print a placeholder, and request logging leaves out query strings.

use std::io::IsTerminal;

use axum::http::HeaderMap;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For a person: `2026-11-29T10:00:00Z  INFO request{id=...}: message key=value`.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields, and the request
    /// span (with its `id`) when there is one.
    Json,
}

/// Installs the process's log subscriber, writing to stderr (stdout carries the CLI's results).
/// `filter`: a level (`info`) or a tracing directive (`nango_server=debug,info`).
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    // An empty LOG_LEVEL counts as unset (as every other variable), not as "log nothing".
    let filter = match filter.trim() {
        "" => "info",
        given => given,
    };
    // The HTTP client's own debug and trace lines can hold whole request URLs, and a proxied
    // URL may carry an API key in its query: it stays at info unless named explicitly.
    let filter = if filter.contains("reqwest") {
        filter.to_string()
    } else {
        format!("{filter},reqwest=info")
    };
    let filter =
        EnvFilter::try_new(&filter).map_err(|e| format!("invalid log level {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(text_fields())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| format!("could not install the logger: {e}"))
}

/// How the text format writes the fields of events and spans: as the default formatter does
/// (`message key=value ...`), but with control characters escaped in every value. Many values
/// come from requests (a rejected `state`, a provider's `error_description`, a method), and a
/// newline or an ANSI escape in one of them could otherwise forge a whole log line or rewrite
/// the terminal. Escaping here covers every call site at once; the JSON format escapes anyway.
pub fn text_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let rendered = format!("{value:?}");
        let value = escape_control(&rendered);
        match field.name() {
            "message" => write!(writer, "{value}"),
            name => write!(
                writer,
                "{}={value}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        }
    })
    .delimited(" ")
}

/// `text` with control characters (newlines, escapes, C1 controls) and the Unicode line and
/// paragraph separators written as Rust escapes (`\n`, `\u{1b}`), everything else kept.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let forged = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(forged) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if forged(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Longest `X-Request-Id` taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// The caller's `X-Request-Id` if it is a plain token (letters, digits, `-`, `_`, `.`, at most
/// 64), so a proxy's id follows the request through our logs without letting anyone inject
/// text into them; a new random id otherwise.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// 32 hex digits: a random number drawn once per process plus a counter. Unique across
/// processes and replicas like a random UUID, without a `getrandom` system call per request
/// (which cost about 3% of the hot path's CPU).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{process:016x}{sequence:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;

    fn id_for(value: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", value.parse().unwrap());
        request_id(&headers)
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_control("plain é ✓"), "plain é ✓");
        assert_eq!(
            escape_control("\u{1b}[31mX\n2026-01-01T00:00:00Z ERROR forged\r\u{85}\u{2028}"),
            "\\u{1b}[31mX\\n2026-01-01T00:00:00Z ERROR forged\\r\\u{85}\\u{2028}"
        );
    }

    #[test]
    fn a_plain_caller_id_is_kept_anything_else_replaced() {
        assert_eq!(id_for("req-42_a.b"), "req-42_a.b");
        for hostile in ["a b", "x\"}{\"level\":\"ERROR", &"a".repeat(65), ""] {
            let id = id_for(hostile);
            assert_ne!(id, hostile);
            assert_eq!(id.len(), 32, "a new id: {id}");
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 32);
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| request_id(&HeaderMap::new())).collect();
        assert_eq!(ids.len(), 1000, "ids repeat");
    }
}
