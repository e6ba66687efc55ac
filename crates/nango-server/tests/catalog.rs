//! The built-in provider catalog as data: every entry loads through the public API, is
//! documented, declares a strict pattern for each URL placeholder, gives its API base URL where it
//! can, and the catalog covers at least 250 distinct OAuth servers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

use std::collections::{BTreeMap, BTreeSet};

use nango_server::providers::{api_base_url, AuthMode, Catalog, ProviderTemplate, BUILTIN_CATALOG};

/// The category vocabulary listed in the header comment of providers.yaml.
const CATEGORIES: &[&str] = &[
    "accounting",
    "analytics",
    "cms",
    "communication",
    "crm",
    "design",
    "developer-tools",
    "ecommerce",
    "education",
    "gaming",
    "health",
    "hr",
    "identity",
    "knowledge-base",
    "legal",
    "marketing",
    "music",
    "other",
    "payments",
    "productivity",
    "project-management",
    "scheduling",
    "social",
    "storage",
    "support",
    "video",
];

/// Values no connection-config pattern may accept: each would move a URL to another host or path.
const HOSTILE: &[&str] = &["evil.com/x", "a@b", "x?y"];

const MIN_DISTINCT: usize = 250;

fn catalog() -> Catalog {
    if let Some(text) = replacement_catalog() {
        return Catalog::from_yaml(&text, false).expect("the replacement catalog loads");
    }
    let mut catalog = Catalog::builtin().expect("the built-in catalog loads");
    if let Some((path, text)) = lint_file() {
        // A draft of new entries, checked by this test's rules before it goes into providers.yaml
        // (`CATALOG_LINT_FILE=draft.yaml cargo test -p nango-server --test catalog`).
        let extra = Catalog::from_yaml(&text, false).unwrap_or_else(|e| panic!("{path}: {e}"));
        for name in extra.names() {
            assert!(
                !catalog.contains(name),
                "{path}: {name} is already built in"
            );
        }
        catalog.extend(extra);
    }
    catalog
}

/// The text of CATALOG_LINT_WHOLE, an edited copy of the whole providers.yaml checked in place of
/// the built-in one (for reviewing many entries without rebuilding).
fn replacement_catalog() -> Option<String> {
    let path = std::env::var("CATALOG_LINT_WHOLE").ok()?;
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// The built-in catalog's text, or its replacement's.
fn catalog_text() -> String {
    replacement_catalog().unwrap_or_else(|| BUILTIN_CATALOG.to_string())
}

/// The file named by CATALOG_LINT_FILE, if any: its path and text.
fn lint_file() -> Option<(String, String)> {
    let path = std::env::var("CATALOG_LINT_FILE").ok()?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some((path, text))
}

/// `${...}` placeholder names in `url`, in order.
fn placeholders(url: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = url;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed placeholder in {url}"));
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    names
}

/// `url` with every placeholder replaced by a sample host label.
fn filled(url: &str) -> String {
    let mut out = url.to_string();
    for name in placeholders(url) {
        out = out.replace(&format!("${{{name}}}"), "sample");
    }
    out
}

/// `field` when `base_api_url` is `${metadata.<field>}` (a URL the token response gives).
fn metadata_base(t: &ProviderTemplate) -> Option<&str> {
    t.base_api_url
        .as_deref()?
        .strip_prefix("${metadata.")?
        .strip_suffix('}')
}

/// Every URL field of a template, by field name (a `${metadata.<field>}` base_api_url is not a
/// URL template and is left out).
fn urls(t: &ProviderTemplate) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !t.authorization_url.is_empty() {
        out.push(("authorization_url", t.authorization_url.clone()));
    }
    if !t.token_url.is_empty() {
        out.push(("token_url", t.token_url.clone()));
    }
    if let Some(u) = &t.refresh_url {
        out.push(("refresh_url", u.clone()));
    }
    if let Some(u) = &t.request_url {
        out.push(("request_url", u.clone()));
    }
    if let Some(u) = &t.docs {
        out.push(("docs", u.clone()));
    }
    if let Some(u) = t
        .base_api_url
        .as_ref()
        .filter(|_| metadata_base(t).is_none())
    {
        out.push(("base_api_url", u.clone()));
    }
    out
}

fn anchored(pattern: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

#[test]
fn every_entry_loads_through_the_public_api() {
    let catalog = catalog();
    assert!(catalog.len() >= MIN_DISTINCT, "{} entries", catalog.len());
    for (name, t) in catalog.iter() {
        match t.auth_mode {
            AuthMode::OAuth1 => {
                assert!(t.request_url.is_some(), "{name}: OAUTH1 needs request_url");
                assert!(
                    t.signature_method.is_some(),
                    "{name}: OAUTH1 needs signature_method"
                );
            }
            AuthMode::OAuth2 => {}
            // Without a base URL such a connection could only be read back, never used.
            AuthMode::ApiKey | AuthMode::Basic | AuthMode::OAuth2ClientCredentials => {
                assert!(t.base_api_url.is_some(), "{name}: base_api_url");
            }
        }
        if t.auth_mode == AuthMode::ApiKey {
            let scheme = t.api_key.clone().unwrap_or_default();
            let placed = scheme.header.is_some()
                || scheme.query.is_some()
                || nango_server::providers::mentions_api_key(&t.proxy);
            assert!(
                placed,
                "{name}: say where the key goes (api_key.header, api_key.query or proxy.headers with ${{apiKey}})"
            );
            assert!(
                scheme.description.is_some(),
                "{name}: api_key.description (where the user finds the key)"
            );
        }
        if t.auth_mode == AuthMode::Basic {
            let scheme = t.basic.clone().unwrap_or_default();
            assert!(
                scheme.description.is_some(),
                "{name}: basic.description (what goes in username and password)"
            );
        }
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "{name}: provider names are lowercase letters, digits and '-'"
        );
    }
    if let Some((path, text)) = lint_file() {
        let extra = Catalog::from_yaml(&text, false).unwrap();
        for (name, t) in extra.iter() {
            assert!(t.verified.is_some(), "{path}: {name}: verified");
        }
    }
}

#[test]
fn urls_are_https_and_well_formed() {
    for (name, t) in catalog().iter() {
        for (field, template) in urls(t) {
            let sample = filled(&template);
            let parsed = url::Url::parse(&sample)
                .unwrap_or_else(|e| panic!("{name}.{field} {template}: {e}"));
            assert_eq!(parsed.scheme(), "https", "{name}.{field}: {template}");
            let host = parsed.host_str().unwrap_or_default();
            // A whole-host placeholder (a self-hosted server) fills in as the bare sample label.
            assert!(
                host.contains('.') || host == "sample",
                "{name}.{field}: host {host:?}"
            );
            assert!(
                parsed.username().is_empty() && parsed.password().is_none(),
                "{name}.{field}"
            );
            assert!(
                parsed.fragment().is_none() || field == "docs",
                "{name}.{field}: fragment"
            );
            if field == "authorization_url" || field == "base_api_url" {
                assert!(parsed.query().is_none(), "{name}: query string in {field}");
            }
            if field == "docs" {
                assert!(
                    placeholders(&template).is_empty(),
                    "{name}: placeholder in docs"
                );
            }
        }
    }
}

#[test]
fn base_api_urls_are_https_once_filled() {
    let catalog = catalog();
    let mut with_base = 0;
    for (name, t) in catalog.iter() {
        let Some(base) = &t.base_api_url else {
            continue;
        };
        with_base += 1;
        if let Some(field) = metadata_base(t) {
            let requested = t
                .metadata_request
                .as_ref()
                .is_some_and(|r| r.fields.contains_key(field));
            assert!(
                requested || t.token_response_metadata.iter().any(|f| f == field),
                "{name}: base_api_url {base} names no token_response_metadata or metadata_request field"
            );
            // What the proxy does with a stored value, with a value of the documented shape.
            // Under the template's declared domains only (F17), https only.
            let domain = t
                .metadata_url_hosts
                .first()
                .unwrap_or_else(|| panic!("{name}: no metadata_url_hosts"));
            let mut metadata = serde_json::Map::new();
            metadata.insert(field.to_string(), format!("https://na1.{domain}").into());
            let url = api_base_url(t, &serde_json::Map::new(), &metadata)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(url.scheme(), "https", "{name}");
            for elsewhere in [
                "https://sample.example.com".to_string(),
                format!("http://na1.{domain}"),
                format!("https://{domain}.example.com"),
                "https://127.0.0.1".to_string(),
            ] {
                metadata.insert(field.to_string(), elsewhere.clone().into());
                assert!(
                    api_base_url(t, &serde_json::Map::new(), &metadata).is_err(),
                    "{name}: {elsewhere} accepted"
                );
            }
            continue;
        }
        // Each placeholder filled with a sample host label, through the proxy's own function.
        let mut config = serde_json::Map::new();
        for placeholder in placeholders(base) {
            // A built-in template reaches public host names only.
            let value = if t.hosts.host.contains(&placeholder) {
                "sample.example.com"
            } else {
                "sample"
            };
            config.insert(placeholder, value.into());
        }
        let url = api_base_url(t, &config, &serde_json::Map::new())
            .unwrap_or_else(|e| panic!("{name}: {base}: {e}"));
        assert_eq!(url.scheme(), "https", "{name}: {base}");
        assert!(
            url.host_str()
                .is_some_and(|h| h.contains('.') || h == "sample"),
            "{name}: {base}"
        );
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{name}: {base}"
        );
        assert!(
            url.query().is_none() && url.fragment().is_none(),
            "{name}: {base}"
        );
    }
    println!(
        "built-in catalog: {with_base} of {} providers have a base_api_url",
        catalog.len()
    );
    // The providers the proxy work was checked against keep theirs.
    for (name, expected) in [
        ("github", "https://api.github.com"),
        ("notion", "https://api.notion.com"),
        ("slack", "https://slack.com/api"),
        ("salesforce", "${metadata.instance_url}"),
        (
            "shopify",
            "https://${connectionConfig.params.subdomain}.myshopify.com",
        ),
        (
            "zendesk",
            "https://${connectionConfig.params.subdomain}.zendesk.com",
        ),
    ] {
        let t = catalog.get(name).unwrap();
        assert_eq!(t.base_api_url.as_deref(), Some(expected), "{name}");
    }
    assert!(with_base * 10 >= catalog.len() * 9, "{with_base}");
}

#[test]
fn every_entry_is_documented_and_categorised() {
    for (name, t) in catalog().iter() {
        let display = t.display_name.as_deref().unwrap_or_default();
        assert!(!display.trim().is_empty(), "{name}: display_name");
        assert!(t.docs.is_some(), "{name}: docs");
        assert!(
            (1..=3).contains(&t.categories.len()),
            "{name}: 1 to 3 categories, got {:?}",
            t.categories
        );
        for category in &t.categories {
            assert!(
                CATEGORIES.contains(&category.as_str()),
                "{name}: category {category:?} is not in the vocabulary"
            );
        }
        let unique: BTreeSet<&String> = t.categories.iter().collect();
        assert_eq!(
            unique.len(),
            t.categories.len(),
            "{name}: repeated category"
        );
    }
}

/// Entries of the first catalog (Nango 0.9's and the first additions) that no reader could yet
/// confirm against the provider's own current pages (reasons per entry in docs/catalog-audit.md).
/// Every other entry records the page it was checked against and when (`docs`, `verified`); an
/// entry verified later leaves this list, and no entry joins it.
const NOT_YET_VERIFIED: &[&str] = &[
    "adyen",
    "apaleo",
    "bamboohr",
    "battlenet",
    "braintree",
    "braintree-sandbox",
    "bullhorn",
    "capsule",
    "contentstack",
    "datev",
    "deezer",
    "deviantart",
    "dexcom",
    "dexcom-sandbox",
    "dialpad-sandbox",
    "discogs",
    "drip",
    "ecwid",
    "epic-games",
    "exact-online",
    "figma",
    "flickr",
    "frame-io",
    "front",
    "garmin",
    "genesys-cloud",
    "getresponse",
    "gong-oauth",
    "gumroad",
    "harvest",
    "hootsuite",
    "hubstaff",
    "huggingface",
    "kintone",
    "launchpad",
    "lyft",
    "mercury",
    "monzo",
    "mural",
    "payfit",
    "pennylane",
    "printful",
    "productboard",
    "qualtrics",
    "ramp-sandbox",
    "ring-central-sandbox",
    "sellsy",
    "servicem8",
    "shippo",
    "signnow",
    "signnow-sandbox",
    "smugmug",
    "snapchat",
    "sourcehut",
    "splitwise",
    "squarespace",
    "survey-monkey",
    "talkdesk",
    "teamleader",
    "teamwork",
    "thinkific",
    "ticktick",
    "tiktok-accounts",
    "tiktok-ads",
    "timely",
    "trakt",
    "tremendous",
    "tremendous-sandbox",
    "truelayer-sandbox",
    "tsheetsteam",
    "twinfield",
    "vk",
    "wahoo",
    "wave_accounting",
    "wealthbox",
    "weibo",
    "wikimedia",
    "wix",
    "workable-oauth",
    "yahoo",
    "yammer",
    "zendesk-chat",
    "zendesk-sell",
    "zenefits",
    "zenodo",
];

#[test]
fn every_entry_records_when_it_was_verified_unless_listed_as_not_yet() {
    let catalog = catalog();
    let mut verified = 0;
    for (name, t) in catalog.iter().filter(|(_, t)| t.alias_of.is_none()) {
        if NOT_YET_VERIFIED.contains(&name) {
            assert!(
                t.verified.is_none(),
                "{name} is verified now: take it off NOT_YET_VERIFIED"
            );
        } else {
            assert!(
                t.verified.is_some(),
                "{name}: verified (the date it was checked against docs)"
            );
            verified += 1;
        }
    }
    for name in NOT_YET_VERIFIED {
        assert!(
            catalog.contains(name),
            "NOT_YET_VERIFIED names {name}, which is not in the catalog"
        );
    }
    println!(
        "verified against the provider's documentation: {verified} entries; not yet: {}",
        NOT_YET_VERIFIED.len()
    );
}

#[test]
fn placeholders_are_declared_used_and_strictly_patterned() {
    const PREFIX: &str = "connectionConfig.params.";
    for (name, t) in catalog().iter() {
        let mut used = BTreeSet::new();
        for (field, template) in urls(t) {
            for placeholder in placeholders(&template) {
                let param = placeholder.strip_prefix(PREFIX).unwrap_or_else(|| {
                    panic!("{name}.{field}: placeholder {placeholder} is not {PREFIX}<name>")
                });
                assert!(
                    t.connection_config.contains_key(param),
                    "{name}.{field}: {param} is not declared in connection_config"
                );
                used.insert(param.to_string());
            }
        }
        let params = t
            .authorization_params
            .iter()
            .chain(&t.token_params)
            .chain(&t.refresh_params);
        for (header, value) in t.proxy.headers.iter().chain(&t.proxy.query).chain(params) {
            for placeholder in placeholders(value) {
                if let Some(param) = placeholder.strip_prefix(PREFIX) {
                    assert!(
                        t.connection_config.contains_key(param),
                        "{name}.proxy.{header}: {param} is not declared in connection_config"
                    );
                    used.insert(param.to_string());
                }
            }
        }
        for (param, spec) in &t.connection_config {
            assert!(
                used.contains(param),
                "{name}: connection_config.{param} is never used"
            );
            let description = spec.description.as_deref().unwrap_or_default();
            assert!(
                !description.trim().is_empty(),
                "{name}.{param}: description"
            );
            let pattern = spec
                .pattern
                .as_deref()
                .unwrap_or_else(|| panic!("{name}.{param}: pattern"));
            let example = spec
                .example
                .as_deref()
                .unwrap_or_else(|| panic!("{name}.{param}: example"));
            let re = anchored(pattern);
            assert!(
                re.is_match(example),
                "{name}.{param}: {pattern} rejects its example {example:?}"
            );
            for hostile in HOSTILE {
                assert!(
                    !re.is_match(hostile),
                    "{name}.{param}: {pattern} accepts {hostile:?}"
                );
            }
            // The example, put in every URL, gives a URL on the template's own host suffix.
            for (field, template) in urls(t) {
                if !template.contains(&format!("${{{PREFIX}{param}}}")) {
                    continue;
                }
                let with_example = template.replace(&format!("${{{PREFIX}{param}}}"), example);
                let parsed = url::Url::parse(&filled(&with_example))
                    .unwrap_or_else(|e| panic!("{name}.{field} with {example:?}: {e}"));
                assert_eq!(parsed.scheme(), "https", "{name}.{field}");
            }
        }
    }
}

/// Top-level keys of a catalog's raw YAML, in file order (a map loader would keep only the last
/// of two same-named entries, so duplicates are found in the text).
fn raw_top_level_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with([' ', '#', '-']) && !line.trim().is_empty())
        .map(|line| {
            line.strip_suffix(':')
                .unwrap_or_else(|| panic!("unexpected top-level line {line:?}"))
                .to_string()
        })
        .collect()
}

#[test]
fn no_duplicate_names_and_the_file_is_sorted() {
    let mut texts = vec![("providers.yaml".to_string(), catalog_text())];
    texts.extend(lint_file());
    let mut seen = BTreeMap::new();
    let mut total = 0;
    for (file, text) in &texts {
        let keys = raw_top_level_keys(text);
        for (i, key) in keys.iter().enumerate() {
            if let Some(first) = seen.insert(key.clone(), (file.clone(), i)) {
                panic!("provider {key} appears twice ({first:?} and {file} entry {i})");
            }
        }
        total += keys.len();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{file} is kept sorted by provider name");
    }
    assert_eq!(total, catalog().len());
}

#[test]
fn at_least_250_distinct_oauth_servers() {
    let catalog = catalog();
    let distinct: BTreeSet<(String, String)> = catalog
        .iter()
        .filter(|(_, t)| t.auth_mode.uses_browser_flow())
        .map(|(_, t)| (filled(&t.authorization_url), filled(&t.token_url)))
        .collect();
    println!(
        "built-in catalog: {} entries, {} distinct providers (authorization_url, token_url)",
        catalog.len(),
        distinct.len()
    );
    assert!(
        distinct.len() >= MIN_DISTINCT,
        "only {} distinct providers (need {MIN_DISTINCT})",
        distinct.len()
    );
}

/// Entries by auth mode (aliases, which stand for another entry, not counted), and the floors
/// the catalog may not fall below: 1,000 entries with at least 400 OAuth (OAUTH2 and OAUTH1),
/// 250 API_KEY, 80 BASIC and 80 OAUTH2_CC.
const FLOORS: &[(&str, usize)] = &[
    ("OAuth (OAUTH2 + OAUTH1)", 400),
    ("API_KEY", 250),
    ("BASIC", 80),
    ("OAUTH2_CC", 80),
    ("all", 1000),
];

#[test]
fn counts_by_auth_mode_stay_above_their_floors() {
    let catalog = catalog();
    let entries: Vec<&ProviderTemplate> = catalog
        .iter()
        .filter(|(_, t)| t.alias_of.is_none())
        .map(|(_, t)| t)
        .collect();
    let count = |modes: &[AuthMode]| {
        entries
            .iter()
            .filter(|t| modes.contains(&t.auth_mode))
            .count()
    };
    let counts = [
        (
            "OAuth (OAUTH2 + OAUTH1)",
            count(&[AuthMode::OAuth2, AuthMode::OAuth1]),
        ),
        ("API_KEY", count(&[AuthMode::ApiKey])),
        ("BASIC", count(&[AuthMode::Basic])),
        ("OAUTH2_CC", count(&[AuthMode::OAuth2ClientCredentials])),
        ("all", entries.len()),
    ];
    let aliases = catalog.len() - entries.len();
    println!("built-in catalog by auth mode ({aliases} aliases not counted):");
    for (mode, n) in counts {
        println!("  {mode:<24} {n:>5}");
    }
    for ((mode, n), (floor_mode, floor)) in counts.iter().zip(FLOORS) {
        assert_eq!(mode, floor_mode);
        assert!(n >= floor, "{mode}: {n} entries, the floor is {floor}");
    }
}

#[test]
fn aliases_point_at_entries_of_the_catalog() {
    let catalog = catalog();
    let aliases: Vec<(&str, &ProviderTemplate)> = catalog
        .iter()
        .filter(|(_, t)| t.alias_of.is_some())
        .collect();
    for (name, t) in &aliases {
        let target = t.alias_of.as_deref().unwrap();
        let original = catalog
            .get(target)
            .unwrap_or_else(|| panic!("{name}: alias of {target}, which is not in the catalog"));
        assert!(original.alias_of.is_none(), "{name}: alias of an alias");
        assert_eq!(t.auth_mode, original.auth_mode, "{name}");
        assert_eq!(t.token_url, original.token_url, "{name}");
    }
    // Nango's names for providers named otherwise here.
    for (nango, ours) in [
        ("wave-accounting", "wave_accounting"),
        ("sharepoint-online", "microsoft"),
    ] {
        let t = catalog.get(nango).unwrap_or_else(|| panic!("{nango}"));
        assert_eq!(t.alias_of.as_deref(), Some(ours));
    }
}

// ------------------------------------------------------------------------------------------------
// docs/providers.md, generated from the catalog
// ------------------------------------------------------------------------------------------------

const UPDATE_PROVIDERS_COMMAND: &str = "UPDATE_DOCS=1 cargo test -p nango-server --test catalog";

/// `# quirk: ...` and `# note: ...` comments of providers.yaml, by the provider they precede.
fn remarks() -> BTreeMap<String, Vec<(&'static str, String)>> {
    let mut remarks = BTreeMap::new();
    let mut pending = Vec::new();
    for line in catalog_text().lines() {
        if let Some(text) = line.strip_prefix("# quirk:") {
            pending.push(("quirk", text.trim().to_string()));
        } else if let Some(text) = line.strip_prefix("# note:") {
            pending.push(("note", text.trim().to_string()));
        } else if line.starts_with('#') {
            continue;
        } else if let Some(name) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            if !pending.is_empty() {
                remarks.insert(name.to_string(), std::mem::take(&mut pending));
            }
        } else {
            pending.clear();
        }
    }
    remarks
}

/// Text fit for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `docs/providers.md`: every provider of the built-in catalog.
fn render_providers(catalog: &Catalog) -> String {
    use std::fmt::Write as _;
    let w = "writing to a String cannot fail";
    let remarks = remarks();
    let mut out = String::new();
    writeln!(out, "# Providers\n").expect(w);
    writeln!(
        out,
        "<!-- Generated from crates/nango-server/providers.yaml by crates/nango-server/tests/catalog.rs: do not\n     edit. `{UPDATE_PROVIDERS_COMMAND}` rewrites it. -->\n"
    )
    .expect(w);
    let mut modes: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, t) in catalog.iter() {
        *modes.entry(t.auth_mode.as_str()).or_default() += 1;
    }
    let modes: Vec<String> = modes
        .iter()
        .map(|(mode, n)| format!("{n} `{mode}`"))
        .collect();
    writeln!(
        out,
        "The built-in catalog has {} providers ({}). The **name** is what `nango config:create <key> <name> ...`\n\
         and `POST /config` take as `provider`. The same list is served by `GET /providers` (with\n\
         `?search=<text>` and `?auth_mode=<mode>`) and `nango providers:list [--search <text>] [--auth-mode <mode>]`;\n\
         `GET /providers/<name>` and `nango providers:get <name>`\n\
         show a whole template. A file given with `NANGO_PROVIDERS_FILE` adds providers or replaces\n\
         built-in ones ([configuration.md](configuration.md#providers)); the template fields are documented\n\
         at the top of `crates/nango-server/providers.yaml`.\n",
        catalog.len(),
        modes.join(", ")
    )
    .expect(w);
    writeln!(
        out,
        "**Connection config** lists the values a connection must supply when its flow starts, because the\n\
         provider's URLs contain them (the frontend SDK's `params`, e.g. `{{subdomain: 'acme'}}`).\n\
         Those marked **(host)** choose the provider's host itself: only the operator sets them, on the\n\
         provider config (`connection_config` of `POST /config`, `nango config:create ... --connection-config\n\
         hostname=<host>`), never the browser; the others fill one label under the provider's fixed domain\n\
         or a path segment ([security.md](security.md#provider-urls-and-connection-config)).\n\
         **API base URL** is the template's `base_api_url`, where the proxy (`/proxy/<path>`) sends a\n\
         connection's API calls: `${{connectionConfig.params.<name>}}` is filled from the connection\n\
         config and `${{metadata.<field>}}` is a URL the provider's token response gave. A provider\n\
         without one cannot be proxied until an operator file adds it.\n\
         Providers marked in **Quirks** do something the template fields cannot express: they may need\n\
         an operator override or provider-specific handling to work end to end ([below](#quirks)).\n"
    )
    .expect(w);

    writeln!(out, "## By category\n").expect(w);
    let mut by_category: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, t) in catalog.iter() {
        for category in &t.categories {
            by_category.entry(category.as_str()).or_default().push(name);
        }
    }
    writeln!(out, "| Category | Providers |").expect(w);
    writeln!(out, "|---|---|").expect(w);
    for (category, names) in &by_category {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        writeln!(
            out,
            "| {category} ({}) | {} |",
            names.len(),
            names.join(", ")
        )
        .expect(w);
    }
    out.push('\n');

    writeln!(out, "## All providers\n").expect(w);
    writeln!(
        out,
        "| Name | Display name | Auth mode | Categories | Connection config | API base URL | Quirks | Docs |"
    )
    .expect(w);
    writeln!(out, "|---|---|---|---|---|---|---|---|").expect(w);
    for (name, t) in catalog.iter() {
        let params: Vec<String> = t
            .connection_config
            .keys()
            .map(|p| {
                if t.hosts.host_params().any(|h| h == p) {
                    format!("`{p}` (host)")
                } else {
                    format!("`{p}`")
                }
            })
            .collect();
        let quirky = remarks
            .get(name)
            .is_some_and(|r| r.iter().any(|(kind, _)| *kind == "quirk"));
        let docs = t
            .docs
            .as_deref()
            .map(|url| format!("[docs](<{}>)", url.replace('>', "%3E")))
            .unwrap_or_default();
        let base = t
            .base_api_url
            .as_deref()
            .map(|url| format!("`{}`", cell(url)))
            .unwrap_or_default();
        writeln!(
            out,
            "| `{name}` | {} | `{}` | {} | {} | {base} | {} | {docs} |",
            cell(t.display_name.as_deref().unwrap_or_default()),
            t.auth_mode.as_str(),
            cell(&t.categories.join(", ")),
            params.join(", "),
            if quirky { "yes" } else { "" },
        )
        .expect(w);
    }
    out.push('\n');

    writeln!(out, "## Quirks\n").expect(w);
    writeln!(
        out,
        "What the catalog records about providers that do not follow the template fields (**quirk**), or\n\
         that are worth knowing about (**note**), from the comments of `providers.yaml`.\n"
    )
    .expect(w);
    for (name, entries) in &remarks {
        for (kind, text) in entries {
            // `<code>` in a comment would be read as an HTML tag.
            let text = text.replace('<', "&lt;");
            writeln!(out, "- `{name}` ({kind}): {text}").expect(w);
        }
    }
    out
}

#[test]
fn the_providers_page_is_generated_from_the_catalog() {
    let catalog = Catalog::builtin().unwrap();
    let generated = render_providers(&catalog);
    for (name, _) in catalog.iter() {
        assert!(generated.contains(&format!("| `{name}` |")), "{name}");
    }
    let remarks = remarks();
    assert!(
        remarks.keys().all(|name| catalog.contains(name)),
        "a quirk comment precedes something that is not a provider: {:?}",
        remarks
            .keys()
            .filter(|n| !catalog.contains(n))
            .collect::<Vec<_>>()
    );
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/providers.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/providers.md is not what the catalog generates: run `{UPDATE_PROVIDERS_COMMAND}` and commit it"
    );
}

/// `refresh_margin` is where a provider's own renewal rule goes (docs/refresh.md): Exact Online
/// refuses a new access token within 9.5 minutes of the last (its tokens live 10 minutes), so its
/// tokens are refreshed in their last 30 s rather than at half their lifetime. A margin longer
/// than a day is refused as a mistake of units.
#[test]
fn refresh_margins_are_set_where_a_provider_needs_one_and_bounded() {
    let catalog = catalog();
    let exact = catalog.get("exact-online").expect("exact-online");
    assert_eq!(exact.refresh_margin, Some(30));
    assert_eq!(
        catalog.longest_refresh_margin(),
        std::time::Duration::from_secs(30)
    );
    let entry = |margin: u64| {
        format!(
            "p:\n  auth_mode: OAUTH2\n  authorization_url: https://p.example/a\n  \
             token_url: https://p.example/t\n  refresh_margin: {margin}\n"
        )
    };
    assert!(Catalog::from_yaml(&entry(86_400), false).is_ok());
    let error = Catalog::from_yaml(&entry(86_401), false).unwrap_err();
    assert!(error.to_string().contains("refresh_margin"), "{error}");
}
