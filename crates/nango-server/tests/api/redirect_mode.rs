//! Redirect mode (no popup): the flow ends with a 302 back to the app's allow-listed `return_to`,
//! carrying the outcome in the query; any other `return_to` is refused, never followed.

use reqwest::StatusCode;

use crate::helpers::{query_param, query_value, Page, TestApp};

const APP: &str = "http://app.example.test:8080";

async fn app_with_allowlist() -> TestApp {
    TestApp::spawn_with(|s| s.redirect_allowlist = vec![APP.to_string()]).await
}

#[tokio::test]
async fn success_returns_to_the_app_with_the_result() {
    let app = app_with_allowlist().await;
    app.create_config("fake-1", "fake", "").await;
    let return_to = format!("{APP}/settings?tab=integrations");
    let query = format!("connection_id=c1&return_to={}", query_value(&return_to));
    let authorize = app.start_flow("fake-1", &query).await;
    let callback = app.authorize_at_provider(&authorize).await;
    let response = app.browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&format!("{APP}/settings?tab=integrations&")),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "nango_result").as_deref(),
        Some("success")
    );
    assert_eq!(
        query_param(&location, "provider_config_key").as_deref(),
        Some("fake-1")
    );
    assert_eq!(
        query_param(&location, "connection_id").as_deref(),
        Some("c1")
    );
    app.get_connection("fake-1", "c1").await;
}

#[tokio::test]
async fn a_result_already_in_return_to_is_replaced_not_duplicated() {
    let app = app_with_allowlist().await;
    app.create_config("fake-1", "fake", "").await;
    // The user retries from the page an earlier failed attempt sent them back to.
    let return_to = format!(
        "{APP}/cb?tab=x&nango_result=error&error_type=callback_err&error_message=old&connection_id=old"
    );
    let query = format!("connection_id=c2&return_to={}", query_value(&return_to));
    let authorize = app.start_flow("fake-1", &query).await;
    let callback = app.authorize_at_provider(&authorize).await;
    let response = app.browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "tab",
            "nango_result",
            "provider_config_key",
            "connection_id"
        ],
        "{location}"
    );
    assert_eq!(query_param(&location, "tab").as_deref(), Some("x"));
    assert_eq!(
        query_param(&location, "nango_result").as_deref(),
        Some("success")
    );
    assert_eq!(
        query_param(&location, "connection_id").as_deref(),
        Some("c2")
    );
}

#[tokio::test]
async fn a_denied_flow_returns_to_the_app_with_the_error() {
    let app = app_with_allowlist().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.deny = true);
    let query = format!("connection_id=c1&return_to={}", query_value(APP));
    let authorize = app.start_flow("fake-1", &query).await;
    let callback = app.authorize_at_provider(&authorize).await;
    let response = app.browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&location, "nango_result").as_deref(),
        Some("error")
    );
    assert_eq!(
        query_param(&location, "error_type").as_deref(),
        Some("callback_err")
    );
    assert!(query_param(&location, "error_message")
        .unwrap()
        .contains("access_denied"));
    app.assert_no_connection("fake-1", "c1").await;
}

#[tokio::test]
async fn a_return_to_outside_the_allowlist_is_refused_on_the_page() {
    let app = app_with_allowlist().await;
    app.create_config("fake-1", "fake", "").await;
    for evil in [
        "https://evil.example/steal",
        "http://app.example.test:8081/",
        "javascript:alert(1)",
        "//evil.example/",
    ] {
        let query = format!("connection_id=c1&return_to={}", query_value(evil));
        let page = Page::read(app.connect("fake-1", &query).await).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{evil}");
        let message = page.post_message();
        assert_eq!(
            message["data"]["error"]["type"], "invalid_return_to",
            "{evil}"
        );
        assert!(
            page.headers.get("location").is_none(),
            "{evil} was followed"
        );
    }
}

#[tokio::test]
async fn without_an_allowlist_no_return_to_is_accepted() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let query = format!("connection_id=c1&return_to={}", query_value(APP));
    let page = Page::read(app.connect("fake-1", &query).await).await;
    assert_eq!(
        page.post_message()["data"]["error"]["type"],
        "invalid_return_to"
    );
}

#[tokio::test]
async fn without_the_flow_cookie_the_callback_is_refused_on_the_page_not_returned_to_the_app() {
    let app = app_with_allowlist().await;
    app.create_config("fake-1", "fake", "").await;
    let query = format!("connection_id=c1&return_to={}", query_value(APP));
    let authorize = app.start_flow("fake-1", &query).await;
    let callback = app.authorize_at_provider(&authorize).await;
    // Another browser: refused with the page (no redirect to the starter's return_to).
    let page = app.open_elsewhere(&callback).await;
    page.assert_failure("state_err", crate::state::BROWSER_MISMATCH);
    assert!(app.provider.token_requests().is_empty());
    app.assert_no_connection("fake-1", "c1").await;

    // The starting browser is returned to the app.
    let authorize = app.start_flow("fake-1", &query).await;
    let callback = app.authorize_at_provider(&authorize).await;
    let response = app.browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .contains("nango_result=success"));
    app.get_connection("fake-1", "c1").await;
}
