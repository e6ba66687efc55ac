//! The documentation in `docs/` and the Docker files, checked against the code: the REST
//! reference is rendered from the OpenAPI document, the configuration page names every setting
//! the code reads, and the compose file and Dockerfile run the server as docs/deployment.md says.
//!
//! `UPDATE_DOCS=1 cargo test -p nango-server --test api docs` rewrites the generated pages.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

const UPDATE_COMMAND: &str = "UPDATE_DOCS=1 cargo test -p nango-server --test api docs";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Rewrites `relative` with `generated` under `UPDATE_DOCS=1`; fails when the committed file
/// differs from what the code generates.
fn check_generated(relative: &str, generated: &str) {
    let path = repo_root().join(relative);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "{relative} is not what the code generates (first difference at line {line}): \
             run `{UPDATE_COMMAND}` and commit it"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// docs/rest.md, rendered from docs/openapi.json
// ------------------------------------------------------------------------------------------------

#[test]
fn the_rest_reference_is_rendered_from_the_openapi_document() {
    let document: Value = serde_json::from_str(&read("docs/openapi.json")).unwrap();
    let rendered = render_rest(&document);
    // Every operation and schema of the document has its section.
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let heading = format!("### `{} {path}`", method.to_uppercase());
            assert!(rendered.contains(&heading), "{heading}");
        }
    }
    for name in document["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(rendered.contains(&format!("### `{name}`")), "{name}");
    }
    check_generated("docs/rest.md", &rendered);
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Inline code, whatever the text holds.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Text fit for one table cell.
fn cell(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Doc-comment text as Markdown paragraphs (single line breaks are wrapping).
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|p| {
            p.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

fn schema_link(name: &str) -> String {
    format!("[`{name}`](#{})", slug(&format!("`{name}`")))
}

fn json_literal(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A schema's type, in words, with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(name) = ref_name(schema) {
        return schema_link(name);
    }
    for (key, joiner) in [("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")] {
        if let Some(variants) = schema[key].as_array() {
            return variants
                .iter()
                .map(type_of)
                .collect::<Vec<_>>()
                .join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| code(&json_literal(v)))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return "any".into(),
    };
    types
        .into_iter()
        .map(|t| match t {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "object" => {
                if let Some(properties) = schema["properties"].as_object() {
                    let fields: Vec<String> = properties
                        .iter()
                        .map(|(name, p)| format!("{name}: {}", type_of(p)))
                        .collect();
                    format!("object {{{}}}", fields.join(", "))
                } else if schema["additionalProperties"].is_object() {
                    format!(
                        "map of string to {}",
                        type_of(&schema["additionalProperties"])
                    )
                } else {
                    "object".into()
                }
            }
            other => match schema["format"].as_str() {
                Some(format) => format!("{other} ({format})"),
                None => other.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Limits, pattern, default and example of a schema, in words.
fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match (schema["minLength"].as_u64(), schema["maxLength"].as_u64()) {
        (Some(min), Some(max)) => out.push(format!("{min} to {max} characters")),
        (Some(min), None) => out.push(format!("at least {min} characters")),
        (None, Some(max)) => out.push(format!("at most {max} characters")),
        (None, None) => {}
    }
    if let Some(min) = schema.get("minimum") {
        out.push(format!("at least {min}"));
    }
    if let Some(max) = schema.get("maximum") {
        out.push(format!("at most {max}"));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        out.push(format!("pattern {}", code(pattern)));
    }
    if let Some(default) = schema.get("default") {
        out.push(format!("default {}", code(&json_literal(default))));
    }
    if let Some(example) = schema.get("example") {
        out.push(format!("example {}", code(&json_literal(example))));
    }
    out
}

/// A description cell: the description, then the limits as one sentence.
fn notes(description: &str, limits: &[String]) -> String {
    let mut text = cell(description);
    if !limits.is_empty() {
        if !text.is_empty() && !text.ends_with('.') {
            text.push('.');
        }
        if !text.is_empty() {
            text.push(' ');
        }
        let sentence = cell(&limits.join(", "));
        let mut chars = sentence.chars();
        if let Some(first) = chars.next() {
            text.extend(first.to_uppercase());
            text.push_str(chars.as_str());
        }
        text.push('.');
    }
    text
}

/// A schema's description, or that of its first variant that has one.
fn description_of(schema: &Value) -> String {
    if let Some(d) = schema["description"].as_str() {
        return d.to_string();
    }
    ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|key| schema[*key].as_array())
        .flatten()
        .find_map(|v| v["description"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn is_secured(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
}

fn security_text(operation: &Value) -> String {
    let names: Vec<String> = operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|o| o.keys().map(|k| code(k)))
        .collect();
    if names.is_empty() {
        "none.".into()
    } else {
        format!("the secret key ({}).", names.join(" or "))
    }
}

fn render_operation(out: &mut String, method: &str, path: &str, operation: &Value) {
    let w = "writing to a String cannot fail";
    writeln!(out, "### `{} {path}`\n", method.to_uppercase()).expect(w);
    for key in ["summary", "description"] {
        if let Some(text) = operation[key].as_str() {
            let text = paragraphs(text);
            if !text.is_empty() {
                writeln!(out, "{text}\n").expect(w);
            }
        }
    }
    writeln!(out, "Authentication: {}\n", security_text(operation)).expect(w);

    if let Some(parameters) = operation["parameters"].as_array().filter(|p| !p.is_empty()) {
        writeln!(out, "Parameters:\n").expect(w);
        writeln!(out, "| Name | In | Required | Type | Description |").expect(w);
        writeln!(out, "|---|---|---|---|---|").expect(w);
        for parameter in parameters {
            let schema = &parameter["schema"];
            let mut limits = constraints(schema);
            if let Some(example) = parameter.get("example") {
                limits.push(format!("example {}", code(&json_literal(example))));
            }
            let notes = notes(&description_of(parameter), &limits);
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                code(parameter["name"].as_str().unwrap_or_default()),
                parameter["in"].as_str().unwrap_or_default(),
                if parameter["required"] == true {
                    "yes"
                } else {
                    "no"
                },
                cell(&type_of(schema)),
                notes
            )
            .expect(w);
        }
        out.push('\n');
    }

    if let Some(body) = operation["requestBody"].as_object() {
        let required = if body.get("required") == Some(&Value::Bool(true)) {
            "required"
        } else {
            "optional"
        };
        for (content_type, content) in body["content"].as_object().into_iter().flatten() {
            writeln!(
                out,
                "Request body ({}, {required}): {}.\n",
                code(content_type),
                type_of(&content["schema"])
            )
            .expect(w);
        }
        if let Some(d) = body.get("description").and_then(Value::as_str) {
            writeln!(out, "{}\n", paragraphs(d)).expect(w);
        }
    }

    writeln!(out, "Responses:\n").expect(w);
    writeln!(out, "| Status | Body | Description |").expect(w);
    writeln!(out, "|---|---|---|").expect(w);
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(content_type, content)| {
                format!("{}: {}", code(content_type), type_of(&content["schema"]))
            })
            .collect();
        let mut description = cell(response["description"].as_str().unwrap_or_default());
        if let Some(headers) = response["headers"].as_object().filter(|h| !h.is_empty()) {
            let names: Vec<String> = headers.keys().map(|h| code(h)).collect();
            if !description.is_empty() {
                description.push(' ');
            }
            description.push_str(&format!("Headers: {}.", names.join(", ")));
        }
        let bodies = if bodies.is_empty() {
            "none".to_string()
        } else {
            cell(&bodies.join("; "))
        };
        writeln!(out, "| {status} | {bodies} | {description} |").expect(w);
    }
    out.push('\n');
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let w = "writing to a String cannot fail";
    writeln!(out, "### `{name}`\n").expect(w);
    let description = paragraphs(schema["description"].as_str().unwrap_or_default());
    if !description.is_empty() {
        writeln!(out, "{description}\n").expect(w);
    }
    if let Some(properties) = schema["properties"].as_object() {
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        writeln!(out, "| Field | Type | Required | Description |").expect(w);
        writeln!(out, "|---|---|---|---|").expect(w);
        for (field, property) in properties {
            let notes = notes(&description_of(property), &constraints(property));
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                code(field),
                cell(&type_of(property)),
                if required.contains(field.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                notes
            )
            .expect(w);
        }
        out.push('\n');
    } else if let Some(variants) = schema["oneOf"]
        .as_array()
        .or_else(|| schema["anyOf"].as_array())
    {
        writeln!(out, "One of:\n").expect(w);
        for variant in variants {
            writeln!(out, "- {}", type_of(variant)).expect(w);
        }
        out.push('\n');
    } else {
        writeln!(out, "Type: {}.\n", type_of(schema)).expect(w);
    }
}

/// `docs/rest.md`: every operation (by tag, in the document's order) and every schema.
fn render_rest(document: &Value) -> String {
    let w = "writing to a String cannot fail";
    let mut out = String::new();
    let info = &document["info"];
    writeln!(out, "# REST API reference\n").expect(w);
    writeln!(
        out,
        "<!-- Generated from docs/openapi.json by crates/nango-server/tests/api/docs.rs: do not edit.\n     `{UPDATE_COMMAND}` rewrites it. -->\n"
    )
    .expect(w);
    writeln!(
        out,
        "{} {}, OpenAPI {}. The document itself is served at `GET /openapi.json` and kept in\n[openapi.json](openapi.json).\n",
        info["title"].as_str().unwrap_or_default(),
        info["version"].as_str().unwrap_or_default(),
        document["openapi"].as_str().unwrap_or_default()
    )
    .expect(w);
    if let Some(description) = info["description"].as_str() {
        writeln!(out, "{}\n", paragraphs(description)).expect(w);
    }

    writeln!(out, "## Authentication\n").expect(w);
    writeln!(
        out,
        "Operations marked with the secret key need the server's `NANGO_SECRET_KEY` (when one is set), in\none of these forms:\n"
    )
    .expect(w);
    for (name, scheme) in document["components"]["securitySchemes"]
        .as_object()
        .into_iter()
        .flatten()
    {
        writeln!(
            out,
            "- {}: HTTP {} authentication. {}",
            code(name),
            scheme["scheme"].as_str().unwrap_or_default(),
            scheme["description"].as_str().unwrap_or_default()
        )
        .expect(w);
    }
    out.push('\n');

    // (method, path, operation) by tag, tags in the document's order, untagged last.
    let mut operations: Vec<(String, &str, &Value)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((method.to_uppercase(), path, operation));
        }
    }
    let tags: Vec<(String, String)> = document["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                t["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let tag_of = |operation: &Value| -> Option<String> {
        operation["tags"][0]
            .as_str()
            .map(str::to_string)
            .filter(|t| tags.iter().any(|(name, _)| name == t))
    };

    writeln!(out, "## Operations\n").expect(w);
    writeln!(out, "| Method | Path | Summary | Secret key |").expect(w);
    writeln!(out, "|---|---|---|---|").expect(w);
    let mut groups: Vec<(String, String)> = tags.clone();
    groups.push((String::new(), String::new()));
    for (tag, _) in &groups {
        for (method, path, operation) in &operations {
            if tag_of(operation).unwrap_or_default() != *tag {
                continue;
            }
            let heading = format!("`{method} {path}`");
            let summary = paragraphs(operation["summary"].as_str().unwrap_or_default());
            let first_sentence = summary
                .split_inclusive(". ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            writeln!(
                out,
                "| {method} | [`{path}`](#{}) | {} | {} |",
                slug(&heading),
                cell(&first_sentence),
                if is_secured(operation) { "yes" } else { "no" }
            )
            .expect(w);
        }
    }
    out.push('\n');

    for (tag, description) in &groups {
        let members: Vec<&(String, &str, &Value)> = operations
            .iter()
            .filter(|(_, _, operation)| tag_of(operation).unwrap_or_default() == *tag)
            .collect();
        if members.is_empty() {
            continue;
        }
        if tag.is_empty() {
            writeln!(out, "## Other operations\n").expect(w);
        } else {
            writeln!(out, "## {}\n", code(tag)).expect(w);
            if !description.is_empty() {
                writeln!(out, "{}\n", paragraphs(description)).expect(w);
            }
        }
        for (method, path, operation) in members {
            render_operation(&mut out, method, path, operation);
        }
    }

    writeln!(out, "## Schemas\n").expect(w);
    for (name, schema) in document["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        render_schema(&mut out, name, schema);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[test]
fn the_renderer_describes_types_limits_and_links() {
    let schema: Value = serde_json::json!({
        "type": ["string", "null"], "minLength": 1, "maxLength": 255, "pattern": "^a|b$"
    });
    assert_eq!(type_of(&schema), "string or null");
    assert_eq!(
        constraints(&schema),
        ["1 to 255 characters", "pattern `^a|b$`"]
    );
    assert_eq!(cell("pattern `^a|b$`"), "pattern `^a\\|b$`");
    let reference = serde_json::json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/RefreshProblem"}]});
    assert_eq!(
        type_of(&reference),
        "null or [`RefreshProblem`](#refreshproblem)"
    );
    let array =
        serde_json::json!({"type": "array", "items": {"type": "integer", "format": "int64"}});
    assert_eq!(type_of(&array), "array of integer (int64)");
    assert_eq!(
        slug("`GET /connection/{connection_id}`"),
        "get-connectionconnection_id"
    );
    assert_eq!(paragraphs("a\nb\n\nc"), "a b\n\nc");
}

// ------------------------------------------------------------------------------------------------
// docs/configuration.md names every setting
// ------------------------------------------------------------------------------------------------

/// Rust files under `dir` (relative to the repository), without their unit-test modules.
fn rust_sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            (path, code)
        })
        .collect()
}

/// Environment variables the server and the CLI read, found in their sources: clap's `env =
/// "..."`, the Nango-era variables `Settings::resolve` reads (`env("...")`), and
/// `std::env::var("...")`.
fn variables_in_sources() -> BTreeSet<String> {
    let patterns = [
        r#"env\s*=\s*"([A-Z][A-Z0-9_]*)""#,
        r#"\benv\(\s*"([A-Z][A-Z0-9_]*)"\s*\)"#,
        r#"env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)"\s*\)"#,
    ]
    .map(|p| regex::Regex::new(p).unwrap());
    let mut names = BTreeSet::new();
    for dir in ["crates/nango-server/src", "crates/nango-cli/src"] {
        for (_, code) in rust_sources(dir) {
            for pattern in &patterns {
                for capture in pattern.captures_iter(&code) {
                    names.insert(capture[1].to_string());
                }
            }
        }
    }
    names
}

#[test]
fn the_configuration_page_names_every_variable_and_flag_the_code_reads() {
    let page = read("docs/configuration.md");
    let mut missing = Vec::new();

    let variables = variables_in_sources();
    for expected in [
        "SERVER_PORT",
        "PORT",
        "NANGO_DB_HOST",
        "NANGO_DB_PORT",
        "NANGO_DB_USER",
        "NANGO_DB_PASSWORD",
        "NANGO_DB_NAME",
        "NANGO_DB_SSL",
        "NANGO_SECRET_KEY",
        "NANGO_HOSTPORT",
    ] {
        assert!(
            variables.contains(expected),
            "{expected} not found in the sources: the scan is broken ({variables:?})"
        );
    }
    for name in &variables {
        if !page.contains(&format!("`{name}`")) {
            missing.push(name.clone());
        }
    }

    // `nango serve`'s flags and variables as clap sees them (what `--help` prints).
    let command =
        <nango_server::ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long() {
            if !page.contains(&format!("`--{long}`")) {
                missing.push(format!("--{long}"));
            }
        }
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            if !page.contains(&format!("`{env}`")) {
                missing.push(env.into_owned());
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?} (write each name in backticks)"
    );
}

#[test]
fn env_example_and_compose_variables_are_documented() {
    let page = read("docs/configuration.md");
    let example = read(".env.example");
    let assignment = regex::Regex::new(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=").unwrap();
    let in_example: BTreeSet<String> = assignment
        .captures_iter(&example)
        .map(|c| c[1].to_string())
        .collect();
    assert!(in_example.contains("NANGO_SECRET_KEY"), "{in_example:?}");
    for name in &in_example {
        assert!(
            page.contains(&format!("`{name}`")),
            ".env.example sets {name}, which docs/configuration.md does not document"
        );
    }
    // Every variable docker-compose.yaml interpolates can be set in .env, so .env.example
    // shows it.
    let interpolated = regex::Regex::new(r"\$\{([A-Z][A-Z0-9_]*)").unwrap();
    for capture in interpolated.captures_iter(&read("docker-compose.yaml")) {
        assert!(
            in_example.contains(&capture[1]),
            "docker-compose.yaml reads {}, which .env.example does not show",
            &capture[1]
        );
    }
}

// ------------------------------------------------------------------------------------------------
// docs/ links
// ------------------------------------------------------------------------------------------------

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

#[test]
fn every_page_is_in_the_index_and_relative_links_resolve() {
    let docs = repo_root().join("docs");
    let mut pages = Vec::new();
    markdown_files(&docs, &mut pages);
    pages.sort();
    let index = read("docs/README.md");
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    for page in &pages {
        let relative = page
            .strip_prefix(&docs)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative != "README.md" {
            assert!(
                index.contains(&format!("]({relative})")),
                "docs/README.md does not link {relative}"
            );
        }
        let text = std::fs::read_to_string(page).unwrap();
        for capture in link.captures_iter(&text) {
            let target = capture[1].trim_start_matches('<').trim_end_matches('>');
            if target.starts_with('#') || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            let resolved = page.parent().unwrap().join(file);
            assert!(
                resolved.exists(),
                "docs/{relative} links {target}, which does not exist"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Docker
// ------------------------------------------------------------------------------------------------

/// `KEY=VALUE` list or map, as a map.
fn environment(service: &Value) -> Map<String, Value> {
    match &service["environment"] {
        Value::Object(map) => map.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|item| item.split_once('='))
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
        _ => Map::new(),
    }
}

#[test]
fn docker_compose_runs_the_server_on_a_healthy_postgres() {
    let compose: Value = serde_norway::from_str(&read("docker-compose.yaml")).unwrap();
    let services = compose["services"].as_object().expect("services");
    let (db_name, db) = services
        .iter()
        .find(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("postgres"))
        })
        .expect("a postgres service");
    assert!(
        db["healthcheck"]["test"].is_array() || db["healthcheck"]["test"].is_string(),
        "the database has a healthcheck (service_healthy needs one)"
    );
    assert!(
        db["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v.ends_with(":/var/lib/postgresql/data")),
        "the database keeps its data in a volume"
    );

    let (_, server) = services
        .iter()
        .find(|(_, s)| s.get("build").is_some())
        .expect("a server service built from the Dockerfile");
    let test = server["healthcheck"]["test"].to_string();
    assert!(
        test.contains("/health"),
        "the server's healthcheck calls /health: {test}"
    );
    assert_eq!(
        server["depends_on"][db_name]["condition"], "service_healthy",
        "the server waits for a healthy database"
    );

    let env = environment(server);
    let host = env.get("NANGO_DB_HOST").and_then(Value::as_str);
    let url = env
        .get("NANGO_DATABASE_URL")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        host == Some(db_name.as_str())
            || url.contains(&format!("@{db_name}:"))
            || url.contains(&format!("@{db_name}/")),
        "the server's database settings point at the {db_name} service: {env:?}"
    );

    let publishes_3003 = server["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|port| match port {
            Value::String(spec) => {
                let spec = spec.trim_end_matches("/tcp");
                spec.rsplit(':').next() == Some("3003")
                    && spec.split(':').rev().nth(1) == Some("3003")
            }
            Value::Object(long) => {
                long.get("target").map(json_literal).as_deref() == Some("3003")
                    && long.get("published").map(json_literal).as_deref() == Some("3003")
            }
            _ => false,
        });
    assert!(
        publishes_3003,
        "the server's port 3003 is published as 3003: {}",
        server["ports"]
    );

    // A fresh clone has no .env: an env_file must be optional.
    let env_files = match &server["env_file"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    for entry in env_files {
        assert_eq!(
            entry["required"], false,
            "env_file {entry} would fail on a fresh clone: give it `required: false`"
        );
    }
}

/// Dockerfile instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((keyword.to_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    instructions
}

#[test]
fn the_dockerfile_is_multi_stage_runs_as_non_root_and_has_a_healthcheck() {
    let instructions = dockerfile_instructions(&read("Dockerfile"));
    let stages = instructions.iter().filter(|(k, _)| k == "FROM").count();
    assert!(stages >= 2, "a multi-stage build: {stages} FROM");
    let last_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let last_stage = &instructions[last_from..];
    assert!(
        last_stage
            .iter()
            .any(|(k, v)| k == "COPY" && v.starts_with("--from=")),
        "the final stage copies the binary from the build stage"
    );
    let user = last_stage
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, v)| v.as_str())
        .expect("a USER in the final stage");
    let user_name = user.split(':').next().unwrap_or_default();
    assert!(
        !["root", "0"].contains(&user_name),
        "the final image runs as a non-root user, not {user}"
    );
    let healthcheck = last_stage
        .iter()
        .find(|(k, _)| k == "HEALTHCHECK")
        .map(|(_, v)| v.as_str())
        .expect("a HEALTHCHECK");
    assert!(
        !healthcheck.eq_ignore_ascii_case("none") && healthcheck.contains("/health"),
        "HEALTHCHECK calls /health: {healthcheck}"
    );
    assert!(
        last_stage
            .iter()
            .any(|(k, v)| k == "EXPOSE" && v.split_whitespace().any(|p| p == "3003")),
        "EXPOSE 3003"
    );
    assert!(
        last_stage
            .iter()
            .any(|(k, v)| (k == "CMD" || k == "ENTRYPOINT") && v.contains("serve")),
        "the image runs `nango serve`"
    );

    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(|l| l.trim().trim_matches('/').to_string())
        .collect();
    for needed in ["target", ".git"] {
        assert!(
            ignored.iter().any(|l| l == needed),
            ".dockerignore leaves out {needed}"
        );
    }
    // The build reads these (sdks/frontend/index.js is compiled into the server).
    for kept in [
        "crates",
        "sdks",
        "sdks/frontend",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        assert!(
            !ignored.iter().any(|l| l == kept),
            ".dockerignore must not leave out {kept}"
        );
    }
}
