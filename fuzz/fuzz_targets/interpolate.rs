//! `interpolate_url` with arbitrary templates and connection configs. Beyond "never panics":
//! - a malformed template (unclosed `${`, empty name, `{` in a name) is refused;
//! - a template without placeholders comes back unchanged;
//! - a success is exactly the template with each placeholder replaced by its config value;
//! - when the template's host does not depend on its placeholders, the result has that host
//!   (and scheme and port);
//! - when a placeholder is in the host, the result's host still ends with the template's fixed
//!   host suffix (`https://${sub}.myshopify.com` stays on `.myshopify.com`).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nango_server::providers::interpolate_url;
use serde_json::{Map, Number, Value};
use url::Url;

/// Values a connection config may hold, biased towards host labels and known tricks.
#[derive(Arbitrary, Debug)]
enum ConfigValue {
    Str(String),
    /// A label made of letters, digits, `-`, `_` and `.` (what a subdomain looks like).
    Label(Vec<LabelByte>),
    Known(u8),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<String>),
}

#[derive(Arbitrary, Debug)]
struct LabelByte(u8);

const LABEL_BYTES: &[u8] = b"abcxyzAZ0189-_.";

const KNOWN_VALUES: &[&str] = &[
    "acme",
    "eu.acme_1",
    "evil.com",
    "evil.com.",
    "127.0.0.1",
    "0x7f",
    "0x7f.1",
    "1",
    "2130706433",
    "a@b",
    "a/b",
    "a?b",
    "a#b",
    "a:1",
    "a\\b",
    "[::1]",
    "xn--p1ai",
    "-a",
    "a-",
    "a..b",
    ".a",
    "a.",
    "localhost",
    "%2e%2e",
    "a%40b",
    "\t",
    " a",
    "A.B",
    "0",
    "00",
    "0.0.0.0",
    "1e3",
];

impl ConfigValue {
    fn into_json(self) -> Value {
        match self {
            ConfigValue::Str(s) => Value::String(s),
            ConfigValue::Label(bytes) => Value::String(
                bytes
                    .iter()
                    .map(|b| char::from(LABEL_BYTES[usize::from(b.0) % LABEL_BYTES.len()]))
                    .collect(),
            ),
            ConfigValue::Known(i) => {
                Value::String(KNOWN_VALUES[usize::from(i) % KNOWN_VALUES.len()].into())
            }
            ConfigValue::Int(i) => Value::Number(i.into()),
            ConfigValue::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            ConfigValue::Bool(b) => Value::Bool(b),
            ConfigValue::Null => Value::Null,
            ConfigValue::List(l) => Value::Array(l.into_iter().map(Value::String).collect()),
        }
    }
}

/// Templates: arbitrary text, or URL-shaped pieces (so that most inputs are URLs with
/// placeholders in the host, port, userinfo, path, query or fragment).
#[derive(Arbitrary, Debug)]
enum Template {
    Raw(String),
    Built(Vec<Piece>),
}

#[derive(Arbitrary, Debug)]
enum Piece {
    Text(String),
    Token(u8),
    Hole(u8),
}

const TOKENS: &[&str] = &[
    "https://",
    "http://",
    "ftp://",
    "javascript:",
    "https:",
    "//",
    "://",
    ".",
    "/",
    "?",
    "#",
    "@",
    ":",
    "\\",
    "[",
    "]",
    "%",
    "=",
    "&",
    "-",
    "${",
    "}",
    "{",
    "$",
    "example",
    "com",
    "myshopify",
    "api",
    "login",
    ".example.com",
    ".myshopify.com",
    "/oauth/token",
    ":8443",
    "user:pw@",
    "127.0.0.1",
    "0x7f",
    "1",
    "xn--",
    "\t",
    "\n",
    " ",
];
const NAMES: &[&str] = &[
    "subdomain",
    "connectionConfig.params.subdomain",
    "region",
    "a b",
    "x/y",
    "$",
    "p",
];

impl Template {
    fn render(self) -> String {
        match self {
            Template::Raw(s) => s,
            Template::Built(pieces) => pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(s) => s,
                    Piece::Token(i) => TOKENS[usize::from(i) % TOKENS.len()].to_string(),
                    Piece::Hole(i) => format!("${{{}}}", NAMES[usize::from(i) % NAMES.len()]),
                })
                .collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    template: Template,
    /// Values given to the template's placeholders in order, so that most inputs fill them.
    values: Vec<ConfigValue>,
    /// More entries under arbitrary names (they may also hit a placeholder).
    extra: Vec<(String, ConfigValue)>,
}

/// One `${name}` of a template: its byte range and name.
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
}

/// The placeholders of a well-formed template; `None` when a `${` is never closed or a name is
/// empty or holds a `{` (the documented rule, written independently of the server's code).
fn placeholders(template: &str) -> Option<Vec<Placeholder<'_>>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = template[from..].find("${") {
        let start = from + i;
        let close = template[start + 2..].find('}')?;
        let name = &template[start + 2..start + 2 + close];
        if name.is_empty() || name.contains('{') {
            return None;
        }
        let end = start + 2 + close + 1;
        out.push(Placeholder { start, end, name });
        from = end;
    }
    Some(out)
}

/// The template with every placeholder replaced by `fill(i)`.
fn substitute(template: &str, holes: &[Placeholder<'_>], fill: impl Fn(usize) -> String) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (i, hole) in holes.iter().enumerate() {
        out.push_str(&template[at..hole.start]);
        out.push_str(&fill(i));
        at = hole.end;
    }
    out.push_str(&template[at..]);
    out
}

/// Scheme, host and port as the URL parser sees them.
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let url = Url::parse(url).ok()?;
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_string(),
        url.port_or_known_default(),
    ))
}

const MARKER: &str = "zqxmarkerzq";

fuzz_target!(|input: Input| {
    let template = input.template.render();
    let holes = placeholders(&template);
    let mut config = Map::new();
    if let Some(holes) = &holes {
        for (hole, value) in holes.iter().zip(input.values) {
            config.insert(hole.name.to_string(), value.into_json());
        }
    }
    for (name, value) in input.extra {
        config.insert(name, value.into_json());
    }

    let result = interpolate_url(&template, &config);

    let Some(holes) = holes else {
        assert!(
            result.is_err(),
            "malformed template {template:?} accepted: {result:?}"
        );
        return;
    };
    let Ok(out) = result else { return };
    if holes.is_empty() {
        assert_eq!(
            out, template,
            "a template without placeholders must come back unchanged"
        );
        return;
    }

    // Exactly the template with the values in place.
    let value_of = |i: usize| match config.get(holes[i].name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        other => panic!("placeholder {:?} filled from {other:?}", holes[i].name),
    };
    assert_eq!(
        out,
        substitute(&template, &holes, value_of),
        "template {template:?}"
    );

    let Some(out_origin) = origin(&out) else {
        return;
    };
    // A host that the placeholders do not change (same with any filler) is the result's host.
    let fillers = ["a", "b", "c-1.d"];
    let filled: Vec<_> = fillers
        .iter()
        .map(|f| origin(&substitute(&template, &holes, |_| (*f).to_string())))
        .collect();
    if let Some(Some(first)) = filled.first() {
        if filled.iter().all(|o| o.as_ref() == Some(first)) {
            assert_eq!(
                &out_origin, first,
                "template {template:?} moved to another host: {out:?}"
            );
        }
    }
    // A placeholder in the host: the fixed text after the last one is still the host's suffix.
    if !template.contains(MARKER) {
        if let Some((_, marked_host, _)) = origin(&substitute(&template, &holes, |_| MARKER.into()))
        {
            if let Some(i) = marked_host.rfind(MARKER) {
                let suffix = &marked_host[i + MARKER.len()..];
                if suffix.starts_with('.') && suffix.len() > 1 {
                    assert!(
                        out_origin.1.ends_with(suffix),
                        "template {template:?}: host {:?} lost the suffix {suffix:?}",
                        out_origin.1
                    );
                }
            }
        }
    }
});
