//! The OAuth `state`: unknown, missing, reused and expired states are refused with `state_err`;
//! a state survives a server restart because it lives in the database. A state is finished only
//! by the browser that started its flow (the flow cookie, review F3).

use std::time::Duration;

use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{header, query_param, Page, TestApp};

/// The page of a callback from a browser that did not start the flow.
pub const BROWSER_MISMATCH: &str = "This authorization was not started in this browser (the flow's cookie is missing or does not match): start the connection again from the app.";

fn state_err(state: &str) -> String {
    format!("Invalid state parameter passed in the callback: {state}")
}

#[tokio::test]
async fn an_unknown_state_is_state_err() {
    let app = TestApp::spawn().await;
    // The client times out after 10 s: a hang fails the test.
    let page = app.callback("code=abc&state=no-such-state").await;
    page.assert_failure("state_err", &state_err("no-such-state"));
    assert!(app.provider.token_requests().is_empty());
}

#[tokio::test]
async fn a_missing_state_is_state_err() {
    let app = TestApp::spawn().await;
    for query in ["code=abc", "", "error=access_denied"] {
        let page = app.callback(query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "?{query}");
        assert_eq!(
            page.post_message()["data"]["error"]["type"],
            "state_err",
            "?{query}"
        );
    }
}

#[tokio::test]
async fn a_state_works_only_once() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.authorize_at_provider(&authorize).await;
    app.open(&callback).await.assert_success("fake-1", "c1");
    let first = app.get_connection("fake-1", "c1").await;

    let replay = app.open(&callback).await;
    replay.assert_failure("state_err", &state_err(&state));
    // The replay neither reached the provider nor changed the connection.
    assert_eq!(app.provider.token_requests().len(), 1);
    let after = app.get_connection("fake-1", "c1").await;
    assert_eq!(after["credentials"], first["credentials"]);
}

#[tokio::test]
async fn concurrent_callbacks_with_one_state_complete_once() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let (a, b) = tokio::join!(app.open(&callback), app.open(&callback));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{}\n{}", a.body, b.body);
    assert_eq!(app.provider.token_requests().len(), 1);
}

#[tokio::test]
async fn an_expired_state_is_state_err() {
    let app = TestApp::spawn_with(|s| s.oauth_state_ttl = Duration::from_secs(1)).await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.authorize_at_provider(&authorize).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.open(&callback)
        .await
        .assert_failure("state_err", &state_err(&state));
    assert!(app.provider.token_requests().is_empty());
    app.assert_no_connection("fake-1", "c1").await;

    // A flow finished within the TTL still works.
    app.authorize("fake-1", "c1").await;
}

#[tokio::test]
async fn a_state_survives_a_server_restart() {
    let mut app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let first_address = app.address.clone();

    app.restart().await;
    assert_ne!(app.address, first_address, "the new server has a new port");
    // The provider sent the browser to the first server's callback URL; the same query lands on
    // the new server (as it would behind a load balancer).
    let page = app.callback(callback.query().unwrap()).await;
    page.assert_success("fake-1", "c1");
    let connection = app.get_connection("fake-1", "c1").await;
    assert_eq!(connection["credentials"]["type"], "OAUTH2");
    // The verifier came back from the database: the fake provider checked it.
    let request = app.provider.last_token_request();
    assert!(request.param("code_verifier").is_some());
    assert_eq!(
        request.param("redirect_uri"),
        Some(format!("{first_address}/oauth/callback").as_str())
    );

    // The state was consumed on the new server.
    let page = app.callback(callback.query().unwrap()).await;
    let state = query_param(&authorize, "state").unwrap();
    page.assert_failure("state_err", &state_err(&state));
}

/// The `name=value` of the flow cookie a `/oauth/connect` response set, and the whole header.
fn flow_cookie(response: &reqwest::Response) -> (String, String) {
    let set: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), 1, "one flow cookie expected: {set:?}");
    let pair = set[0].split(';').next().unwrap().to_string();
    (pair, set[0].clone())
}

#[tokio::test]
async fn a_callback_without_the_flow_cookie_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    // The attacker starts a flow for their connection id and sends the authorize link on.
    let authorize = app
        .start_flow("fake-1", "connection_id=attacker-acct")
        .await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.authorize_at_provider(&authorize).await;
    // The victim approves; their browser, which never saw /oauth/connect, comes back.
    let page = app.open_elsewhere(&callback).await;
    page.assert_failure("state_err", BROWSER_MISMATCH);
    assert!(
        page.header("set-cookie").contains("Max-Age=0"),
        "the answer clears the cookie: {:?}",
        page.header("set-cookie")
    );
    assert!(app.provider.token_requests().is_empty(), "no code exchange");
    app.assert_no_connection("fake-1", "attacker-acct").await;

    // The refusal used the state up: not even the starter's browser can finish it now.
    let page = app.open(&callback).await;
    page.assert_failure(
        "state_err",
        &format!("Invalid state parameter passed in the callback: {state}"),
    );
    assert!(app.provider.token_requests().is_empty());
    app.assert_no_connection("fake-1", "attacker-acct").await;
}

#[tokio::test]
async fn a_callback_with_a_wrong_flow_cookie_is_refused_and_the_right_one_works() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    // A browser without a jar: the cookie is handed over by hand.
    let start = |id: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(app.url(&format!("/oauth/connect/fake-1?connection_id={id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FOUND);
            let (pair, _) = flow_cookie(&response);
            let authorize = url::Url::parse(&header(response.headers(), "location")).unwrap();
            (pair, app.authorize_at_provider(&authorize).await)
        }
    };
    let with_cookie = |callback: url::Url, cookie: String| {
        let app = &app;
        async move {
            Page::read(
                app.client
                    .get(callback)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };

    // The cookie of another flow of this browser, the right name with a forged value, the right
    // name with no value: none proves the flow.
    let (other_pair, other_callback) = start("c2").await;
    for bad in ["another flow's", "forged", "empty"] {
        let (pair, callback) = start("c1").await;
        let name = pair.split('=').next().unwrap().to_string();
        assert!(name.starts_with("nango_flow_"), "{pair}");
        let cookie = match bad {
            "forged" => format!("{name}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "empty" => format!("{name}="),
            _ => other_pair.clone(),
        };
        let page = with_cookie(callback, cookie).await;
        page.assert_failure("state_err", BROWSER_MISMATCH);
        assert!(app.provider.token_requests().is_empty(), "{bad}");
        app.assert_no_connection("fake-1", "c1").await;
    }

    // The right cookie, among others, finishes its flow.
    let page = with_cookie(other_callback, format!("a=b; {other_pair}; c=d")).await;
    page.assert_success("fake-1", "c2");
    assert_eq!(app.provider.token_requests().len(), 1);
    app.get_connection("fake-1", "c2").await;
}

#[tokio::test]
async fn the_flow_cookie_is_http_only_lax_scoped_to_the_callback_and_lives_as_long_as_the_state() {
    let app = TestApp::spawn_with(|s| s.oauth_state_ttl = Duration::from_secs(300)).await;
    app.create_config("fake-1", "fake", "").await;
    let response = app.connect("fake-1", "connection_id=c1").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (pair, set_cookie) = flow_cookie(&response);
    let value = pair.split_once('=').unwrap().1;
    assert!(value.len() >= 22, "at least 128 random bits: {pair}");
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/oauth/callback",
        "Max-Age=300",
    ] {
        assert!(set_cookie.contains(part), "{part} missing: {set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "http callback: {set_cookie}"
    );
    // The row keeps the SHA-256 of the value, never the value.
    let state = query_param(
        &url::Url::parse(&header(response.headers(), "location")).unwrap(),
        "state",
    )
    .unwrap();
    let session = app
        .state
        .store
        .take_oauth_session(&state, chrono::Utc::now())
        .await
        .unwrap()
        .expect("the flow's row");
    assert_eq!(
        session.browser_hash,
        Some(format!("{:x}", Sha256::digest(value.as_bytes())))
    );

    // An https callback URL makes the cookie Secure.
    let app = TestApp::spawn_with(|s| {
        s.callback_url = "https://nango.example.com/oauth/cb".into();
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    let response = app.connect("fake-1", "connection_id=c1").await;
    let (_, set_cookie) = flow_cookie(&response);
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/oauth/cb"), "{set_cookie}");
}

#[tokio::test]
async fn two_concurrent_flows_in_one_browser_both_complete() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    // Two popups: both flows start before either finishes.
    let first = app.start_flow("fake-1", "connection_id=c1").await;
    let second = app.start_flow("fake-1", "connection_id=c2").await;
    let first = app.authorize_at_provider(&first).await;
    let second = app.authorize_at_provider(&second).await;
    app.open(&second).await.assert_success("fake-1", "c2");
    app.open(&first).await.assert_success("fake-1", "c1");
    app.get_connection("fake-1", "c1").await;
    app.get_connection("fake-1", "c2").await;
}
