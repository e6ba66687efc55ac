//! `GET /sdk/frontend.js`: the frontend SDK served by the broker for script-tag use.

use reqwest::{Method, StatusCode};

use crate::helpers::{header, TestApp};

const SDK_SOURCE: &str = include_str!("../../../../sdks/frontend/index.js");

#[tokio::test]
async fn serves_the_frontend_sdk_as_a_revalidated_module_without_a_key() {
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
    // The URL carries no version: a browser must ask again on every load (a 304 while its copy
    // is current), or it would keep an old SDK for as long as a max-age said.
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert!(!header(&headers, "etag").is_empty());
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
    assert_eq!(header(again.headers(), "cache-control"), "no-cache");
    assert_eq!(header(again.headers(), "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .anon(Method::GET, "/sdk/frontend.js")
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}
