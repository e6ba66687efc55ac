//! An operator providers file in current Nango's format: detected (not configured), translated
//! entry by entry (aliases, `${connectionConfig.x}` placeholders, `proxy.base_url`/`headers`,
//! credentials, categories), with the entries that cannot work here named and left out, and a
//! field neither format knows still an error with the entry's name and line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

use nango_server::providers::{AuthMode, AuthorizationMethod, Catalog, CatalogError};

/// A small file as a team would have written it for Nango.
const NANGO_FILE: &str = r#"
my-crm:
    display_name: My CRM
    categories:
        - crm
        - dev-tools
        - popular
    auth_mode: OAUTH2
    authorization_url: https://${connectionConfig.subdomain}.mycrm.example/oauth/authorize
    token_url: https://${connectionConfig.subdomain}.mycrm.example/oauth/token
    token_request_auth_method: basic
    authorization_params:
        audience: api-${connectionConfig.subdomain}
    proxy:
        base_url: https://${connectionConfig.subdomain}.mycrm.example/api
        headers:
            x-api-version: '2024-01'
        retry:
            after: retry-after
        paginate:
            type: cursor
    docs: https://docs.mycrm.example/oauth
    docs_connect: https://docs.nango.dev/integrations/all/my-crm/connect
    connection_config:
        subdomain:
            type: string
            title: Subdomain
            description: The subdomain of your account
            pattern: '^[a-z0-9-]+$'
            example: acme
            doc_section: '#step-1'
my-crm-eu:
    alias: my-crm
    display_name: My CRM (EU)
my-salesforce:
    alias: salesforce
    default_scopes:
        - api
my-keyed:
    display_name: Keyed
    categories:
        - e-commerce
    auth_mode: API_KEY
    proxy:
        base_url: https://api.keyed.example
        headers:
            authorization: Bearer ${apiKey}
        verification:
            method: GET
            endpoints:
                - /v1/me
    credentials:
        apiKey:
            type: string
            title: API Key
            description: Settings > Developers > API keys
            pattern: '^sk_[a-z0-9]+$'
my-app:
    display_name: An app install
    auth_mode: APP
    authorization_url: https://github.com/apps/${connectionConfig.appPublicLink}/installations/new
my-replacing:
    auth_mode: OAUTH2
    authorization_url: https://auth.example.com/authorize
    token_url: https://auth.example.com/token
    authorization_url_replacements:
        x: y
my-user-header:
    auth_mode: BASIC
    proxy:
        base_url: https://api.user.example
        headers:
            x-user: ${credentials.username}
"#;

fn load(text: &str) -> Result<Catalog, CatalogError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.yaml");
    std::fs::write(&path, text).unwrap();
    Catalog::load(Some(&path))
}

#[test]
fn a_nango_file_is_detected_and_its_entries_translated() {
    let catalog = load(NANGO_FILE).unwrap();
    assert!(catalog.nango_format);

    let crm = catalog.get("my-crm").unwrap();
    assert_eq!(crm.auth_mode, AuthMode::OAuth2);
    assert_eq!(
        crm.authorization_url,
        "https://${connectionConfig.params.subdomain}.mycrm.example/oauth/authorize"
    );
    assert_eq!(
        crm.base_api_url.as_deref(),
        Some("https://${connectionConfig.params.subdomain}.mycrm.example/api")
    );
    assert_eq!(crm.authorization_method, AuthorizationMethod::Header);
    assert_eq!(
        crm.authorization_params["audience"],
        "api-${connectionConfig.params.subdomain}"
    );
    assert_eq!(crm.proxy.headers["x-api-version"], "2024-01");
    assert_eq!(crm.proxy.retry.after.as_deref(), Some("retry-after"));
    assert_eq!(crm.categories, ["crm", "developer-tools"]);
    let subdomain = &crm.connection_config["subdomain"];
    assert_eq!(
        subdomain.description.as_deref(),
        Some("The subdomain of your account")
    );
    assert!(subdomain.accepts("acme") && !subdomain.accepts("evil.com/x"));
    // The subdomain is a label placeholder: the user's browser may give it, as on Nango.
    assert!(crm.hosts.host.is_empty());

    // Aliases: of an entry of the same file, and of a built-in provider, with overrides.
    let eu = catalog.get("my-crm-eu").unwrap();
    assert_eq!(eu.alias_of.as_deref(), Some("my-crm"));
    assert_eq!(eu.display_name.as_deref(), Some("My CRM (EU)"));
    assert_eq!(eu.token_url, crm.token_url);
    let salesforce = catalog.get("my-salesforce").unwrap();
    let builtin = catalog.get("salesforce").unwrap();
    assert_eq!(salesforce.alias_of.as_deref(), Some("salesforce"));
    assert_eq!(salesforce.authorization_url, builtin.authorization_url);
    assert_eq!(salesforce.default_scopes, ["api"]);

    let keyed = catalog.get("my-keyed").unwrap();
    assert_eq!(keyed.auth_mode, AuthMode::ApiKey);
    assert_eq!(keyed.proxy.headers["authorization"], "Bearer ${apiKey}");
    let key = keyed.api_key.clone().unwrap();
    assert_eq!(key.pattern.as_deref(), Some("^sk_[a-z0-9]+$"));
    assert_eq!(
        key.description.as_deref(),
        Some("Settings > Developers > API keys")
    );
    assert_eq!(keyed.verification.as_ref().unwrap().path, "/v1/me");
    assert_eq!(keyed.categories, ["ecommerce"]);

    // What cannot work here is named, with the reason, and left out; the rest loads.
    let skipped: Vec<(&str, &str)> = catalog
        .skipped
        .iter()
        .map(|s| (s.provider.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped.contains(&("my-app", "auth mode APP is not supported")));
    assert!(skipped
        .iter()
        .any(|(p, r)| *p == "my-replacing" && r.contains("authorization_url_replacements")));
    assert!(skipped
        .iter()
        .any(|(p, r)| *p == "my-user-header" && r.contains("credentials.username")));
    for (name, _) in &skipped {
        assert!(catalog.get(name).is_none(), "{name}");
    }
    // The built-in catalog is still there under it.
    assert!(catalog.get("github").is_some());
}

#[test]
fn a_file_in_this_catalogs_own_format_is_not_taken_for_nangos() {
    let own = "my-own:\n  auth_mode: OAUTH2\n  authorization_url: https://a.example/authorize\n  token_url: https://a.example/token\n  authorization_params:\n    prompt: consent\n";
    let catalog = load(own).unwrap();
    assert!(!catalog.nango_format);
    assert!(catalog.skipped.is_empty());
    assert!(catalog.get("my-own").is_some());
}

#[test]
fn a_field_neither_format_knows_fails_with_the_entry_and_its_line() {
    let typo = NANGO_FILE.replace(
        "    token_request_auth_method: basic",
        "    token_request_auth: basic",
    );
    let error = load(&typo).unwrap_err().to_string();
    assert!(error.contains("my-crm"), "{error}");
    assert!(error.contains("token_request_auth"), "{error}");
    let line = typo
        .lines()
        .position(|l| l == "my-crm:")
        .map(|i| i + 1)
        .unwrap();
    assert!(error.contains(&format!("line {line}")), "{error}");

    // A malformed URL is an error too, not a skipped entry.
    let bad_url = NANGO_FILE.replace(
        "    token_url: https://${connectionConfig.subdomain}.mycrm.example/oauth/token",
        "    token_url: not a url",
    );
    let error = load(&bad_url).unwrap_err().to_string();
    assert!(
        error.contains("my-crm") && error.contains("token_url"),
        "{error}"
    );

    // So is an alias of nothing.
    let dangling = format!("{NANGO_FILE}my-ghost:\n    alias: no-such-provider\n");
    let error = load(&dangling).unwrap_err().to_string();
    assert!(
        error.contains("my-ghost") && error.contains("no-such-provider"),
        "{error}"
    );
}
