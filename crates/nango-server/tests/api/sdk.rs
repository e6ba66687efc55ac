//! `GET /sdk/frontend.js`: the frontend SDK served by the broker for script-tag use.

use reqwest::{Method, StatusCode};

use crate::helpers::{header, TestApp};

const SDK_SOURCE: &str = include_str!("../../../../sdks/frontend/index.js");

#[tokio::test]
async fn serves_the_frontend_sdk_as_a_cacheable_module_without_a_key() {
    let app = TestApp::spawn_with_secret_key().await;
    let response = app
        .anon(Method::GET, "/sdk/frontend.js")
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    let cache = header(&headers, "cache-control");
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache:?}"));
    assert!(max_age >= 30 * 24 * 3600, "cache too short: {cache:?}");
    assert_eq!(header(&headers, "access-control-allow-origin"), "*");

    let body = response.text().await.unwrap();
    assert_eq!(body, SDK_SOURCE, "the served file is the repository's SDK");
    let version = body
        .lines()
        .find_map(|l| l.strip_prefix("export const VERSION = '"))
        .and_then(|l| l.strip_suffix("';"))
        .expect("the file declares its VERSION");
    assert!(
        body.lines()
            .take(3)
            .any(|l| l.contains(&format!("v{version}"))),
        "the header comment names the version {version}"
    );
    assert!(body.contains("export default Nango"));
}

#[tokio::test]
async fn revalidation_with_the_etag_answers_304() {
    let app = TestApp::spawn().await;
    let first = app
        .anon(Method::GET, "/sdk/frontend.js")
        .send()
        .await
        .unwrap();
    let etag = header(first.headers(), "etag");
    assert!(etag.starts_with('"') && etag.len() > 10, "etag {etag:?}");

    let again = app
        .anon(Method::GET, "/sdk/frontend.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .anon(Method::GET, "/sdk/frontend.js")
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}
