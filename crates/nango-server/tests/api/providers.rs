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
