//! Template features of the flow, one test each against the fake provider: empty parameters left
//! out, renamed standard parameters and the code under another callback parameter, placeholders
//! and a per-flow nonce in extra parameters, the callback URL in a refresh, a region choice with a
//! default, a post-authorization exchange for a long-lived token, a token renewed with itself,
//! metadata read after authorization, and a zero lifetime read as none.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{FakeProvider, TestApp, CLIENT_ID, CLIENT_SECRET};

/// The fake provider's endpoints, as a template's first lines.
fn endpoints(p: &FakeProvider) -> String {
    format!(
        "  auth_mode: OAUTH2\n  authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/token\"\n",
        base = p.base_url
    )
}

async fn spawn(templates: impl FnOnce(&FakeProvider) -> String) -> TestApp {
    TestApp::spawn_with_templates(|_| {}, templates).await
}

#[tokio::test]
async fn empty_parameters_are_left_out_only_where_the_template_says_so() {
    let app = spawn(|p| {
        format!(
            "feature-omit:\n{}  omit_empty_params: true\n  authorization_params:\n    audience: ''\n",
            endpoints(p)
        )
    })
    .await;
    app.create_config("omit", "feature-omit", "").await;
    app.create_config("plain", "fake", "").await;

    app.authorize("omit", "c1").await;
    let sent = app.provider.authorize_requests().pop().unwrap();
    assert!(!sent.has("scope"), "{:?}", sent.query);
    assert!(!sent.has("audience"), "{:?}", sent.query);
    assert!(sent.param("client_id").is_some() && sent.param("state").is_some());
    app.get_connection("omit", "c1").await;

    // Nango 0.9's behaviour stays the default: `scope=` is sent, empty.
    app.authorize("plain", "c1").await;
    let sent = app.provider.authorize_requests().pop().unwrap();
    assert_eq!(sent.param("scope"), Some(""), "{:?}", sent.query);
}

#[tokio::test]
async fn renamed_standard_parameters_and_a_code_under_another_name_complete_a_flow() {
    let app = spawn(|p| {
        format!(
            "feature-renamed:\n{}  param_names:\n    client_id: client_key\n    redirect_uri: redirect_url\n    code: auth_code\n  callback_code_param: spapi_oauth_code\n",
            endpoints(p)
        )
    })
    .await;
    app.provider.set(|b| {
        b.param_names = vec![
            ("client_id".into(), "client_key".into()),
            ("redirect_uri".into(), "redirect_url".into()),
            ("code".into(), "auth_code".into()),
        ];
        b.code_param = Some("spapi_oauth_code".into());
    });
    app.create_config("renamed", "feature-renamed", "read")
        .await;
    app.authorize("renamed", "c1").await;

    let sent = app.provider.authorize_requests().pop().unwrap();
    assert!(sent.param("client_key").is_some(), "{:?}", sent.query);
    assert!(sent.param("redirect_url").is_some(), "{:?}", sent.query);
    assert!(!sent.has("client_id") && !sent.has("redirect_uri"));
    let token_request = app.provider.last_token_request();
    assert!(
        token_request.param("client_key").is_some(),
        "{}",
        token_request.raw_body
    );
    assert!(token_request.param("redirect_url").is_some());
    assert!(token_request.param("auth_code").is_some());
    assert!(token_request.param("code").is_none());
    assert!(token_request.param("client_id").is_none());
    let connection = app.get_connection("renamed", "c1").await;
    assert!(connection["credentials"]["access_token"]
        .as_str()
        .unwrap()
        .starts_with("access-"));

    // The refresh uses the provider's names too.
    let response = app
        .get("/connection/c1?provider_config_key=renamed&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let refresh = app.provider.refresh_requests().pop().unwrap();
    assert!(
        refresh.param("client_key").is_some(),
        "{}",
        refresh.raw_body
    );

    // Without the template's names, the same provider refuses the flow.
    app.create_config("standard", "fake", "read").await;
    let authorize = app.start_flow("standard", "connection_id=c2").await;
    let response = app.browser.get(authorize).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn placeholders_in_extra_parameters_are_filled_and_the_nonce_is_new_each_flow() {
    let app = spawn(|p| {
        format!(
            "feature-placeholders:\n{}  authorization_params:\n    nonce: '${{nonce}}'\n    tenant: 't-${{connectionConfig.params.tenant}}'\n    app_key: '${{clientId}}'\n  token_params:\n    tenant: '${{connectionConfig.params.tenant}}'\n  connection_config:\n    tenant:\n      description: Your tenant\n      pattern: '[a-z0-9]+'\n      example: acme\n",
            endpoints(p)
        )
    })
    .await;
    app.create_config("ph", "feature-placeholders", "").await;
    for id in ["c1", "c2"] {
        let page = app
            .run_flow("ph", &format!("connection_id={id}&params[tenant]=acme"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    let sent = app.provider.authorize_requests();
    let nonces: Vec<&str> = sent.iter().map(|r| r.param("nonce").unwrap()).collect();
    assert_eq!(nonces.len(), 2);
    assert_ne!(nonces[0], nonces[1], "a nonce is drawn per flow");
    assert!(nonces.iter().all(|n| n.len() >= 32), "{nonces:?}");
    assert_eq!(sent[0].param("tenant"), Some("t-acme"));
    assert_eq!(sent[0].param("app_key"), Some(CLIENT_ID));
    let token_request = app.provider.last_token_request();
    assert_eq!(token_request.param("tenant"), Some("acme"));

    // The refresh fills the stored value in.
    let response = app
        .get("/connection/c1?provider_config_key=ph&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.provider
            .refresh_requests()
            .pop()
            .unwrap()
            .param("tenant"),
        Some("acme")
    );

    // A value the pattern refuses never reaches the provider.
    let response = app
        .connect("ph", "connection_id=c3&params[tenant]=a%26b%3Dc")
        .await;
    assert_ne!(response.status(), StatusCode::FOUND);
    assert_eq!(app.provider.authorize_requests().len(), 2);
}

#[tokio::test]
async fn a_refresh_sends_the_callback_url_again_where_the_template_says_so() {
    let app = spawn(|p| {
        format!(
            "feature-refresh-redirect:\n{}  refresh_params:\n    redirect_uri: '${{redirectUri}}'\n",
            endpoints(p)
        )
    })
    .await;
    let callback = app.state.settings.callback_url.clone();
    for (key, provider) in [("rr", "feature-refresh-redirect"), ("plain", "fake")] {
        app.create_config(key, provider, "").await;
        app.authorize(key, "c1").await;
        let response = app
            .get(&format!(
                "/connection/c1?provider_config_key={key}&force_refresh=true"
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{key}");
    }
    let refreshes = app.provider.refresh_requests();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(refreshes[0].param("redirect_uri"), Some(callback.as_str()));
    assert_eq!(refreshes[0].param("grant_type"), Some("refresh_token"));
    // Nango 0.9's refresh stays the default: no redirect_uri.
    assert_eq!(refreshes[1].param("redirect_uri"), None);
}

#[tokio::test]
async fn a_region_choice_defaults_and_refuses_hosts_outside_its_list() {
    let app = spawn(|p| {
        let port = p.base_url.rsplit(':').next().unwrap().to_string();
        format!(
            "feature-region:\n  auth_mode: OAUTH2\n  authorization_url: \"http://${{connectionConfig.params.region}}:{port}/authorize\"\n  token_url: \"http://${{connectionConfig.params.region}}:{port}/token\"\n  connection_config:\n    region:\n      description: Your data centre\n      choices: ['127.0.0.1', 'localhost']\n      default: '127.0.0.1'\n"
        )
    })
    .await;
    app.create_config("region", "feature-region", "").await;

    // No choice: the default host; the browser may pick a listed one (no operator value needed).
    app.authorize("region", "c1").await;
    let page = app
        .run_flow("region", "connection_id=c2&params[region]=127.0.0.1")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(app.provider.token_requests().len(), 2);
    let response = app
        .get("/connection/c2?provider_config_key=region&force_refresh=true")
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Anything else is refused before a request leaves the server.
    let response = app
        .connect("region", "connection_id=c3&params[region]=evil.example")
        .await;
    assert_ne!(response.status(), StatusCode::FOUND);
    let body = response.text().await.unwrap();
    assert!(body.contains("must be one of"), "{body}");
    assert_eq!(app.provider.authorize_requests().len(), 2);
}

#[tokio::test]
async fn a_long_lived_token_exchange_replaces_the_short_lived_token() {
    let app = spawn(|p| {
        format!(
            "feature-long-lived:\n{e}  long_lived_token:\n    url: \"{base}/exchange\"\n    params:\n      grant_type: fb_exchange_token\n      client_id: '${{clientId}}'\n      client_secret: '${{clientSecret}}'\n      fb_exchange_token: '${{accessToken}}'\n\
             feature-long-lived-bad:\n{e}  long_lived_token:\n    url: \"{base}/exchange\"\n    method: POST\n    params:\n      grant_type: fb_exchange_token\n      client_secret: wrong\n      fb_exchange_token: '${{accessToken}}'\n",
            e = endpoints(p),
            base = p.base_url
        )
    })
    .await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.issue_refresh_token = false;
    });
    app.create_config("fb", "feature-long-lived", "").await;
    app.authorize("fb", "c1").await;

    let exchanges = app.provider.exchange_requests();
    assert_eq!(exchanges.len(), 1);
    let sent = |name: &str| {
        exchanges[0]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(sent("client_secret").as_deref(), Some(CLIENT_SECRET));
    let short = sent("fb_exchange_token").unwrap();
    let connection = app.get_connection("fb", "c1").await;
    let token = connection["credentials"]["access_token"].as_str().unwrap();
    assert_eq!(token, format!("long-{short}"));
    let expires_at: chrono::DateTime<chrono::Utc> = connection["credentials"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let days = (expires_at - chrono::Utc::now()).num_days();
    assert!((59..=60).contains(&days), "{days}");

    // A refused exchange fails the flow: no connection with the short-lived token.
    app.create_config("fb-bad", "feature-long-lived-bad", "")
        .await;
    let page = app.run_flow("fb-bad", "connection_id=c2").await;
    assert_ne!(page.status, StatusCode::OK);
    assert!(page.body.contains("long-lived"), "{}", page.body);
    app.assert_no_connection("fb-bad", "c2").await;
}

#[tokio::test]
async fn metadata_read_after_authorization_is_kept_and_gives_the_api_url() {
    let app = spawn(|p| {
        format!(
            "feature-metadata:\n{e}  metadata_request:\n    url: \"{base}/metadata\"\n    headers:\n      Authorization: 'OAuth ${{accessToken}}'\n    fields:\n      api_endpoint: api_endpoint\n      dc: dc\n      account: accounts.1.id\n  base_api_url: ${{metadata.api_endpoint}}\n  metadata_url_hosts: ['127.0.0.1']\n\
             feature-metadata-refused:\n{e}  metadata_request:\n    url: \"{base}/metadata\"\n    fields:\n      dc: dc\n",
            e = endpoints(p),
            base = p.base_url
        )
    })
    .await;
    app.create_config("mc", "feature-metadata", "").await;
    app.authorize("mc", "c1").await;
    let connection = app.get_connection("mc", "c1").await;
    let metadata = connection["metadata"].as_object().unwrap();
    let api_endpoint = format!("{}/dc/us9", app.provider.base_url);
    assert_eq!(metadata["api_endpoint"], api_endpoint.as_str());
    assert_eq!(metadata["dc"], "us9");
    assert_eq!(metadata["account"], "acct-2");
    let template = app.state.catalog.get("feature-metadata").unwrap();
    let base =
        nango_server::providers::api_base_url(template, &Default::default(), metadata).unwrap();
    assert_eq!(base.as_str(), api_endpoint);

    // The token sent the default way (Bearer) is refused here: the flow fails, nothing stored.
    app.create_config("mc-refused", "feature-metadata-refused", "")
        .await;
    let page = app.run_flow("mc-refused", "connection_id=c2").await;
    assert_ne!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("metadata request failed"),
        "{}",
        page.body
    );
    app.assert_no_connection("mc-refused", "c2").await;
}

/// A template whose tokens are renewed with themselves at the fake provider's `/extend`, sending
/// `grant_type`.
fn self_renewing(name: &str, p: &FakeProvider, grant_type: &str) -> String {
    format!(
        "{name}:\n{}  access_token_refresh:\n    url: \"{}/extend\"\n    params:\n      grant_type: {grant_type}\n      access_token: '${{accessToken}}'\n",
        endpoints(p),
        p.base_url
    )
}

#[tokio::test]
async fn a_token_without_refresh_token_is_renewed_with_itself_where_the_template_says_how() {
    let app = spawn(|p| {
        self_renewing("feature-extend", p, "ig_refresh_token")
            + &self_renewing("feature-extend-refused", p, "not_a_grant")
    })
    .await;
    // Already expired when issued, and no refresh token.
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = false;
    });
    app.create_config("ig", "feature-extend", "").await;
    app.authorize("ig", "c1").await;

    // The read finds the token due and renews it with itself: no refresh grant is sent.
    let connection = app.get_connection("ig", "c1").await;
    let requests = app.provider.extend_requests();
    assert_eq!(requests.len(), 1);
    let sent = |i: usize, name: &str| {
        requests[i]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(sent(0, "grant_type"), "ig_refresh_token");
    let issued = sent(0, "access_token");
    let renewed = connection["credentials"]["access_token"].as_str().unwrap();
    assert_eq!(renewed, format!("ext1-{issued}"));
    assert_eq!(connection["credentials"]["refresh_token"], Value::Null);
    let expires_at: chrono::DateTime<chrono::Utc> = connection["credentials"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&(expires_at - chrono::Utc::now()).num_days()));
    assert_eq!(app.provider.refresh_count(), 0);

    // A 60-day token is not due: read again, nothing is sent.
    let again = app.get_connection("ig", "c1").await;
    assert_eq!(again["credentials"]["access_token"], renewed);
    assert_eq!(app.provider.extend_requests().len(), 1);

    // force_refresh renews it with the token in hand (not refused as "no refresh token").
    let forced: Value = app
        .get("/connection/c1?provider_config_key=ig&force_refresh=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        forced["credentials"]["access_token"],
        format!("ext2-{renewed}")
    );

    // A refusal is a refused refresh: a 4xx, and the stored token stays.
    app.create_config("ig-refused", "feature-extend-refused", "")
        .await;
    app.authorize("ig-refused", "c1").await;
    let response = app.get_connection_response("ig-refused", "c1").await;
    let status = response.status();
    let body = crate::helpers::assert_json_error(response, status).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["type"], "refresh_rejected", "{body}");
    assert_eq!(app.provider.extend_requests().len(), 3);
}

#[tokio::test]
async fn a_zero_lifetime_means_no_expiry_only_where_the_template_says_so() {
    let app = spawn(|p| {
        format!(
            "feature-zero:\n{}  token_response:\n    zero_expires_in_never_expires: true\n",
            endpoints(p)
        )
    })
    .await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = false;
    });
    app.create_config("zero", "feature-zero", "").await;
    app.authorize("zero", "c1").await;
    let connection = app.get_connection("zero", "c1").await;
    assert_eq!(connection["credentials"]["expires_at"], Value::Null);
    // Read again: still the same token, no refresh attempted.
    let again = app.get_connection("zero", "c1").await;
    assert_eq!(
        again["credentials"]["access_token"],
        connection["credentials"]["access_token"]
    );
    assert_eq!(app.provider.refresh_count(), 0);

    // Elsewhere zero is already expired, as before.
    app.create_config("plain", "fake", "").await;
    app.authorize("plain", "c1").await;
    let stored = app
        .state
        .store
        .get_connection("plain", "c1")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_value(&stored.credentials).unwrap();
    assert!(stored["expires_at"].is_string(), "{stored}");
}
