//! `GET /providers` and `GET /providers/{name}`: browsing the catalog (open, no secret key).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_json_error, TestApp};

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.anon(Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn names(list: &Value) -> Vec<String> {
    list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_list_has_every_template_sorted_and_open_without_the_key() {
    let app = TestApp::spawn_with_secret_key().await;
    let (status, list) = get_json(&app, "/providers").await;
    assert_eq!(status, StatusCode::OK);
    let names = names(&list);
    assert_eq!(names.len(), app.state.catalog.len());
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for expected in ["github", "google", "slack", "fake", "fake-sub-pattern"] {
        assert!(names.iter().any(|n| n == expected), "{expected}");
    }
    let github = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "github")
        .unwrap();
    assert_eq!(github["auth_mode"], "OAUTH2");
    assert!(
        github.get("authorization_url").is_none(),
        "the list is a summary"
    );
}

#[tokio::test]
async fn search_matches_name_display_name_and_category_case_insensitively() {
    let app = TestApp::spawn().await;
    let (_, list) = get_json(&app, "/providers?search=GitHub").await;
    let found = names(&list);
    assert!(found.contains(&"github".to_string()), "{found:?}");
    assert!(found.iter().all(|n| {
        let p = app.state.catalog.get(n).unwrap();
        n.contains("github")
            || p.display_name
                .as_deref()
                .unwrap_or_default()
                .to_lowercase()
                .contains("github")
            || p.categories.iter().any(|c| c.contains("github"))
    }));
    let (_, none) = get_json(&app, "/providers?search=no-such-provider-xyz").await;
    assert!(names(&none).is_empty());
    let long = "x".repeat(256);
    let (status, body) = get_json(&app, &format!("/providers?search={long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Over the limit as sent, even if trimming would bring it under (schemathesis found it).
    let padded = format!("git{}", "+".repeat(300));
    let (status, body) = get_json(&app, &format!("/providers?search={padded}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_list_filters_by_auth_mode() {
    let app = TestApp::spawn().await;
    let mut total = 0;
    for mode in ["OAUTH2", "OAUTH1", "OAUTH2_CC", "API_KEY", "BASIC"] {
        let (status, list) = get_json(&app, &format!("/providers?auth_mode={mode}")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let found = names(&list);
        assert!(!found.is_empty(), "{mode}");
        for name in &found {
            assert_eq!(
                app.state.catalog.get(name).unwrap().auth_mode.as_str(),
                mode
            );
        }
        total += found.len();
    }
    assert_eq!(total, app.state.catalog.len());

    // Several modes, any case, with a search.
    let (_, list) = get_json(&app, "/providers?auth_mode=api_key,Basic&search=zendesk").await;
    let found = names(&list);
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|n| {
            let mode = app.state.catalog.get(n).unwrap().auth_mode.as_str();
            (mode == "API_KEY" || mode == "BASIC") && n.contains("zendesk")
        }),
        "{found:?}"
    );

    let (status, body) = get_json(&app, "/providers?auth_mode=PASSWORD").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("auth_mode"),
        "{body}"
    );
}

#[tokio::test]
async fn one_provider_is_its_whole_template() {
    let app = TestApp::spawn().await;
    let (status, body) = get_json(&app, "/providers/fake-sub-pattern").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "fake-sub-pattern");
    let provider = &body["template"];
    assert_eq!(provider["auth_mode"], "OAUTH2");
    assert!(provider["authorization_url"]
        .as_str()
        .unwrap()
        .ends_with("/${connectionConfig.params.subdomain}/authorize"));
    assert_eq!(
        provider["connection_config"]["subdomain"]["pattern"],
        "[a-z0-9][a-z0-9-]*"
    );

    let response = app
        .anon(Method::GET, "/providers/nope")
        .send()
        .await
        .unwrap();
    let body = assert_json_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(body["type"], "unknown_provider");
}

#[tokio::test]
async fn a_nango_format_providers_file_works_for_a_flow_and_names_what_it_left_out() {
    let app = TestApp::spawn_with_templates(
        |_| {},
        |p| {
            format!(
                "nango-crm:\n    display_name: Nango CRM\n    auth_mode: OAUTH2\n    authorization_url: {base}/${{connectionConfig.subdomain}}/authorize\n    token_url: {base}/${{connectionConfig.subdomain}}/token\n    token_request_auth_method: basic\n    docs_connect: https://docs.nango.dev/x\n    connection_config:\n        subdomain:\n            type: string\n            title: Subdomain\n            pattern: '^[a-z0-9-]+$'\n\
                 nango-crm-alias:\n    alias: nango-crm\n\
                 nango-app:\n    auth_mode: APP\n    authorization_url: https://github.com/apps/x/installations/new\n",
                base = p.base_url
            )
        },
    )
    .await;
    assert!(app.state.catalog.nango_format);
    let skipped: Vec<&str> = app
        .state
        .catalog
        .skipped
        .iter()
        .map(|s| s.provider.as_str())
        .collect();
    assert_eq!(skipped, ["nango-app"]);

    app.create_config("crm", "nango-crm-alias", "").await;
    let page = app
        .run_flow("crm", "connection_id=c1&params[subdomain]=acme")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token_request = app.provider.last_token_request();
    assert_eq!(token_request.path, "/acme/token");
    assert!(token_request
        .header("authorization")
        .is_some_and(|h| h.starts_with("Basic ")));

    // The alias is listed under its own name, saying what it stands for.
    let (_, list) = get_json(&app, "/providers?search=nango-crm").await;
    let alias = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "nango-crm-alias")
        .unwrap();
    assert_eq!(alias["alias_of"], "nango-crm");
    let (_, detail) = get_json(&app, "/providers/nango-crm-alias").await;
    assert_eq!(detail["alias_of"], "nango-crm");
    assert!(detail["template"].get("alias_of").is_none(), "{detail}");
    let (status, _) = get_json(&app, "/providers/nango-app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
