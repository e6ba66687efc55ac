//! Webhooks: connection events reach the configured URL as signed JSON, at least once, from the
//! durable outbox, even when the receiver is down for a while; the delivery log shows it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use nango_server::secret::Secret;

use crate::helpers::TestApp;

const WEBHOOK_SECRET: &str = "whsec-test-signing-key";

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answer these statuses first (one per request), then 200.
    failures: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn serve(self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let receiver = self.clone();
                async move {
                    let status = receiver.failures.lock().unwrap().pop().unwrap_or(200);
                    receiver
                        .received
                        .lock()
                        .unwrap()
                        .push((headers, String::from_utf8_lossy(&body).into_owned()));
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    }

    fn events(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_str(body).unwrap())
            .collect()
    }
}

/// What a receiver computes: HMAC-SHA256 keyed by `key` over `<X-Nango-Timestamp>.<raw body>`.
fn signature_with(key: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex_encode(&mac.finalize().into_bytes()))
}

/// The receiver's check, as docs/security.md gives it: the signature of the timestamp and the
/// body with the webhook secret, and a timestamp within 5 minutes of now.
fn verifies(headers: &HeaderMap, body: &str, key: &str) -> bool {
    let timestamp = headers["x-nango-timestamp"].to_str().unwrap();
    let sent: i64 = timestamp.parse().unwrap();
    let fresh = (chrono::Utc::now().timestamp() - sent).abs() <= 300;
    fresh && headers["x-nango-signature"].to_str().unwrap() == signature_with(key, timestamp, body)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let body: Value = app
        .get(&format!("/webhooks/deliveries{query}"))
        .await
        .json()
        .await
        .unwrap();
    body["deliveries"].as_array().unwrap().clone()
}

/// Waits until every delivery is delivered (or fails the test after 15 s).
async fn all_delivered(app: &TestApp, expected: usize) -> Vec<Value> {
    for _ in 0..150 {
        let all = deliveries(app, "").await;
        if all.len() == expected && all.iter().all(|d| d["status"] == "delivered") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not all delivered: {:#?}", deliveries(app, "").await);
}

#[tokio::test]
async fn events_survive_a_receiver_that_is_down_and_arrive_signed() {
    // The receiver's port is known but nothing listens on it yet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/hook");
    let hook_url = url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.webhook_urls = vec![hook_url.clone()];
        s.webhook_secret = Some(nango_server::secret::Secret::new(
            WEBHOOK_SECRET.to_string(),
        ));
        s.webhook_retry_base = Duration::from_millis(100);
        s.refresh_retry_base = Duration::from_millis(1);
    })
    .await;

    // Four events: created, refresh failed, refreshed after the failure, deleted.
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "c1").await;
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    app.get_connection_response("fake-1", "c1").await;
    app.provider.set(|b| {
        b.refresh_failure = None;
        b.expires_in = Some(3600);
    });
    let forced = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(forced.status(), StatusCode::OK);
    assert_eq!(
        app.delete("/connection/c1?provider_config_key=fake-1")
            .await
            .status(),
        StatusCode::OK
    );

    // Down: attempted, failed, pending.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pending = deliveries(&app, "?status=pending").await;
    assert_eq!(pending.len(), 4, "{pending:#?}");
    assert!(
        pending.iter().all(|d| d["attempts"].as_i64().unwrap() >= 1),
        "{pending:#?}"
    );
    assert!(pending
        .iter()
        .all(|d| d["last_error"] == "could not connect"));

    // The receiver comes up, and answers 500 to its first request.
    let receiver = Receiver::default();
    receiver.failures.lock().unwrap().push(500);
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    tokio::spawn(receiver.clone().serve(listener));
    let delivered = all_delivered(&app, 4).await;
    assert!(deliveries(&app, "?status=pending").await.is_empty());

    let types: Vec<String> = {
        let mut t: Vec<String> = receiver
            .events()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        // At least once: the delivery that met the 500 arrived twice.
        t.sort();
        t.dedup();
        t
    };
    assert_eq!(
        types,
        [
            "connection.created",
            "connection.deleted",
            "connection.refresh_failed",
            "connection.refreshed"
        ]
    );
    for (headers, body) in receiver.received.lock().unwrap().iter() {
        assert!(verifies(headers, body, WEBHOOK_SECRET), "{headers:?}");
        assert_eq!(headers["content-type"], "application/json");
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["x-nango-event"].to_str().unwrap(), event["type"]);
        assert_eq!(event["provider_config_key"], "fake-1");
        assert_eq!(event["connection_id"], "c1");
        assert!(event["id"].is_string() && event["created_at"].is_string());
        assert!(!body.contains("access-"), "no token in an event: {body}");
    }
    let failed = receiver
        .events()
        .into_iter()
        .find(|e| e["type"] == "connection.refresh_failed")
        .unwrap();
    assert_eq!(failed["data"]["needs_reauthorization"], true);
    assert!(failed["data"]["error"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    // The one that met the 500 took one more attempt than the others.
    let max_attempts = delivered
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(max_attempts >= 3, "{delivered:#?}");
    assert!(delivered.iter().all(|d| d["url"] == url.as_str()));
}

#[tokio::test]
async fn without_urls_no_event_is_written_and_the_log_needs_the_key() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    assert!(deliveries(&app, "").await.is_empty());
    let anonymous = app
        .anon(reqwest::Method::GET, "/webhooks/deliveries")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bad = app.get("/webhooks/deliveries?status=lost").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Security review F10/F15: webhooks are signed with their own key (never the API's secret key),
/// over a timestamp and the body, so a receiver rejects a replay once its tolerance has passed;
/// a server with webhook URLs and no webhook secret does not start.
#[tokio::test]
async fn deliveries_are_signed_with_the_webhook_secret_over_a_timestamp() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(receiver.clone().serve(listener));
    let hook_url = url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.secret_key = Some(Secret::new(crate::helpers::SECRET_KEY.to_string()));
        s.webhook_urls = vec![hook_url.clone()];
        s.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.to_string()));
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    all_delivered(&app, 1).await;
    let (headers, body) = receiver.received.lock().unwrap()[0].clone();
    assert!(verifies(&headers, &body, WEBHOOK_SECRET), "{headers:?}");
    let timestamp = headers["x-nango-timestamp"].to_str().unwrap().to_string();
    let signature = headers["x-nango-signature"].to_str().unwrap().to_string();
    // Not the API key's signature, and not a signature of the body alone (the 0.9-era scheme).
    assert_ne!(
        signature,
        signature_with(crate::helpers::SECRET_KEY, &timestamp, &body)
    );
    let mut body_only = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    body_only.update(body.as_bytes());
    assert_ne!(
        signature,
        format!("sha256={}", hex_encode(&body_only.finalize().into_bytes()))
    );
    // The same body and signature presented with another time do not verify: a replay must
    // keep the old timestamp, which the receiver's tolerance rejects.
    let later = (timestamp.parse::<i64>().unwrap() + 600).to_string();
    assert_ne!(signature, signature_with(WEBHOOK_SECRET, &later, &body));

    // No webhook secret, or the API key as the webhook secret: the server refuses to start.
    for webhook_secret in [None, Some(crate::helpers::SECRET_KEY)] {
        let url = url.clone();
        let refused = app
            .try_start(move |s| {
                s.secret_key = Some(Secret::new(crate::helpers::SECRET_KEY.to_string()));
                s.webhook_urls = vec![url.clone()];
                s.webhook_secret = webhook_secret.map(|w| Secret::new(w.to_string()));
            })
            .await;
        match refused {
            Ok(_) => panic!("started with webhook secret {webhook_secret:?}"),
            Err(e) => assert!(e.to_string().contains("NANGO_WEBHOOK_SECRET"), "{e}"),
        }
    }
    // The same through the flags and environment `nango serve` reads.
    let args = nango_server::ServeArgs {
        secret_key: Some("api-key".into()),
        webhook_urls: vec![url],
        ..Default::default()
    };
    let error = nango_server::Settings::resolve(&args, &|_| None).expect_err("refused");
    assert!(
        error.to_string().contains("NANGO_WEBHOOK_SECRET"),
        "{error}"
    );
}

/// Current Nango's auth webhooks (`NANGO_WEBHOOK_FORMAT=nango`): creation, override and a failed
/// refresh, in its body shape, signed in `X-Nango-Hmac-Sha256` (and the legacy
/// `X-Nango-Signature`) as `@nangohq/node` checks them; a deletion sends nothing, as in Nango.
#[tokio::test]
async fn in_nangos_format_deliveries_are_auth_webhooks_signed_as_its_clients_check() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(receiver.clone().serve(listener));
    let app = TestApp::spawn_with(move |s| {
        s.webhook_urls = vec![url.clone()];
        s.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.to_string()));
        s.webhook_format = nango_server::webhooks::WebhookFormat::Nango;
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    app.authorize("fake-1", "c1").await;
    app.provider
        .set(|b| b.refresh_failure = Some((400, json!({"error": "invalid_grant"}))));
    let refused = app
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let deleted = app
        .delete("/connection/c1?provider_config_key=fake-1")
        .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let logged = all_delivered(&app, 3).await;
    assert!(
        logged.iter().all(|d| d["event_type"] == "auth"),
        "{logged:#?}"
    );
    let mut received = receiver.received.lock().unwrap().clone();
    received.sort_by_key(|(_, body)| {
        let body: Value = serde_json::from_str(body).unwrap();
        ["creation", "override", "refresh"]
            .iter()
            .position(|op| body["operation"] == *op)
    });
    let bodies: Vec<Value> = received
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect();
    for (body, (operation, success)) in
        bodies
            .iter()
            .zip([("creation", true), ("override", true), ("refresh", false)])
    {
        assert_eq!(body["from"], "nango", "{body}");
        assert_eq!(body["type"], "auth", "{body}");
        assert_eq!(body["operation"], operation, "{body}");
        assert_eq!(body["success"], success, "{body}");
        assert_eq!(body["connectionId"], "c1", "{body}");
        assert_eq!(body["providerConfigKey"], "fake-1", "{body}");
        assert_eq!(body["provider"], "fake", "{body}");
        assert_eq!(body["authMode"], "OAUTH2", "{body}");
        assert_eq!(body["environment"], "prod", "{body}");
    }
    assert_eq!(bodies[2]["error"]["type"], "refresh_token_external_error");
    let description = bodies[2]["error"]["description"].as_str().unwrap();
    assert!(description.contains("invalid_grant"), "{description}");
    assert!(bodies[0].get("error").is_none());

    for (headers, body) in &received {
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        assert_eq!(
            headers["x-nango-hmac-sha256"].to_str().unwrap(),
            hex_encode(&mac.finalize().into_bytes())
        );
        use sha2::Digest;
        let legacy = Sha256::digest(format!("{WEBHOOK_SECRET}{body}").as_bytes());
        assert_eq!(
            headers["x-nango-signature"].to_str().unwrap(),
            hex_encode(&legacy)
        );
        assert!(headers.get("x-nango-timestamp").is_none());
    }
}

/// In Nango's format, a connection made under a connect session carries its end user and tags,
/// and a failed authorization is a `creation` with `success: false` (with the session's end
/// user); the default format sends nothing for the failure.
#[tokio::test]
async fn in_nangos_format_auth_webhooks_carry_the_end_user_and_report_failed_authorizations() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(receiver.clone().serve(listener));
    let app = TestApp::spawn_with(move |s| {
        s.webhook_urls = vec![url.clone()];
        s.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.to_string()));
        s.webhook_format = nango_server::webhooks::WebhookFormat::Nango;
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    let mint = |user: &'static str| {
        let app = &app;
        async move {
            let response = app
                .post_json(
                    "/connect/sessions",
                    &json!({"end_user": {"id": user, "email": format!("{user}@example.com"), "organization": {"id": "org-1"}}, "tags": {"plan": "pro"}}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let body: Value = response.json().await.unwrap();
            body["data"]["token"].as_str().unwrap().to_string()
        }
    };
    let token = mint("u-1").await;
    let page = app
        .run_flow(
            "fake-1",
            &format!(
                "connect_session_token={}",
                crate::helpers::query_value(&token)
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    app.provider.set(|b| b.deny = true);
    let token = mint("u-2").await;
    let failed = app
        .run_flow(
            "fake-1",
            &format!(
                "connect_session_token={}",
                crate::helpers::query_value(&token)
            ),
        )
        .await;
    assert_ne!(failed.status, StatusCode::OK);

    all_delivered(&app, 2).await;
    let bodies: Vec<Value> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect();
    let created = bodies
        .iter()
        .find(|b| b["success"] == true)
        .expect("creation");
    assert_eq!(created["operation"], "creation", "{created}");
    assert_eq!(created["endUser"]["endUserId"], "u-1", "{created}");
    assert_eq!(
        created["endUser"]["endUserEmail"], "u-1@example.com",
        "{created}"
    );
    assert_eq!(created["endUser"]["organizationId"], "org-1", "{created}");
    assert_eq!(created["tags"]["plan"], "pro", "{created}");
    let refused = bodies
        .iter()
        .find(|b| b["success"] == false)
        .expect("failure");
    assert_eq!(refused["operation"], "creation", "{refused}");
    assert_eq!(refused["endUser"]["endUserId"], "u-2", "{refused}");
    assert!(refused["error"]["type"].is_string(), "{refused}");
    assert!(refused["error"]["description"].is_string(), "{refused}");
}

/// Security review F12 (second half): delivered and given-up deliveries are pruned once older
/// than NANGO_WEBHOOK_RETENTION; pending ones and recent ones stay.
#[tokio::test]
async fn finished_deliveries_are_pruned_after_the_retention() {
    use nango_server::store::DeliveryOutcome;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let mut app = TestApp::spawn_with(move |s| {
        s.webhook_urls = vec![down.clone()];
        s.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.to_string()));
        // One attempt now, the next in an hour: the rows stay pending meanwhile.
        s.webhook_retry_base = Duration::from_secs(3600);
        s.webhook_retention = Duration::from_secs(24 * 3600);
    })
    .await;
    app.create_config("fake-1", "fake", "").await;
    for id in ["c1", "c2", "c3", "c4"] {
        app.authorize("fake-1", id).await;
    }
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = deliveries(&app, "").await;
        if rows.len() == 4 && rows.iter().all(|d| d["attempts"].as_i64().unwrap() >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let mut ids: Vec<i64> = rows.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    ids.sort();
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    let store = &app.state.store;
    // Delivered two days ago, given up two days ago, delivered just now; the fourth is pending.
    for (id, at, outcome) in [
        (
            ids[0],
            two_days_ago,
            DeliveryOutcome::Delivered { status: 200 },
        ),
        (
            ids[1],
            two_days_ago,
            DeliveryOutcome::Failed {
                status: None,
                error: "could not connect".into(),
                retry_at: None,
            },
        ),
        (
            ids[2],
            chrono::Utc::now(),
            DeliveryOutcome::Delivered { status: 200 },
        ),
    ] {
        store
            .record_webhook_attempt(id, at, &outcome)
            .await
            .unwrap();
    }
    // The periodic purge runs when a server starts, then every minute.
    app.restart().await;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = deliveries(&app, "")
            .await
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect::<Vec<_>>();
        if left.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    left.sort();
    assert_eq!(left, [ids[2], ids[3]]);
}
