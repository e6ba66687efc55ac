//! The HTML page that ends a flow in the popup (§2.2): legacy `postMessage` payloads, status
//! codes, security headers and escaping.

use reqwest::StatusCode;

use crate::helpers::{query_value, Page, TestApp};

fn assert_security_headers(page: &Page) {
    assert!(
        page.header("content-type").starts_with("text/html"),
        "content type {:?}",
        page.header("content-type")
    );
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    page.assert_csp_allows_script();
}

#[tokio::test]
async fn success_page_posts_authorization_suceeded_to_the_opener() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let page = app.authorize("fake-1", "c1").await;
    page.assert_success("fake-1", "c1");
    assert_security_headers(&page);
    assert!(page.script().contains("window.opener"), "{}", page.body);
    assert!(page.script().contains("window.close"), "{}", page.body);
}

#[tokio::test]
async fn failure_page_is_a_500_with_authorization_failed() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.deny = true);
    let page = app.run_flow("fake-1", "connection_id=c1").await;
    page.assert_failure(
        "callback_err",
        "Did not get oauth_token and/or oauth_verifier in the callback. The provider returned: access_denied (The user denied access).",
    );
    assert_security_headers(&page);

    // An early error, answered by /oauth/connect itself, gets the same kind of page.
    let page = Page::read(app.connect("nope", "connection_id=c1").await).await;
    page.assert_failure(
        "provider_config_err",
        "Could not find a Provider Config matching the \"nope\" key.",
    );
    assert_security_headers(&page);
}

/// The page's own `</script>` is the only one: no value can close the script early.
fn assert_single_script_end(page: &Page) {
    let lower = page.body.to_ascii_lowercase();
    assert_eq!(
        lower.matches("</script").count(),
        1,
        "a value closed the script: {}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
}

#[tokio::test]
async fn values_in_the_page_are_escaped() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let evil = "</script><script>alert(1)</script>";

    // Success page.
    let page = app.authorize("fake-1", evil).await;
    assert_single_script_end(&page);
    // The browser still gets the exact id.
    page.assert_success("fake-1", evil);

    // Failure page from /oauth/connect (unknown config key, hostile id).
    let page = Page::read(
        app.connect("nope", &format!("connection_id={}", query_value(evil)))
            .await,
    )
    .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_single_script_end(&page);
    assert_eq!(page.post_message()["eventType"], "AUTHORIZATION_FAILED");

    // Failure page for an unknown state that carries markup and quotes.
    let page = app
        .callback(&format!(
            "code=x&state={}",
            query_value("'\"</script><img src=x onerror=alert(1)>")
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_single_script_end(&page);
    assert!(!page.body.contains("<img"), "{}", page.body);
    let message = page.post_message();
    assert_eq!(message["data"]["error"]["type"], "state_err");
}
