//! The read cache of `GET /connection` (issue 7) must never answer what the database no longer
//! says: every write of this server evicts at once, and on PostgreSQL every other replica's write
//! is heard within moments. And the per-provider cap on refreshes in flight holds in a storm.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_client_error, TestApp};

fn access_token(connection: &Value) -> String {
    connection["credentials"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token in {connection}"))
        .to_string()
}

async fn force_refresh(app: &TestApp, base: &str, connection_id: &str) -> Value {
    let response = app
        .client
        .get(format!(
            "{base}/connection/{connection_id}?provider_config_key=fake-1&force_refresh=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_hot_path_answers_this_servers_latest_write() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    // Read twice: the second answer may come from the cache.
    let first = access_token(&app.get_connection("fake-1", "c1").await);
    assert_eq!(
        access_token(&app.get_connection("fake-1", "c1").await),
        first
    );

    let refreshed = access_token(&force_refresh(&app, &app.address, "c1").await);
    assert_ne!(refreshed, first);
    assert_eq!(
        access_token(&app.get_connection("fake-1", "c1").await),
        refreshed,
        "a refresh must replace the cached token"
    );

    // A new authorization replaces it too.
    app.authorize("fake-1", "c1").await;
    let reauthorized = access_token(&app.get_connection("fake-1", "c1").await);
    assert_ne!(reauthorized, refreshed);

    // Deleted: gone at once, though it was just read.
    let response = app
        .api(Method::DELETE, "/connection/c1?provider_config_key=fake-1")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    app.assert_no_connection("fake-1", "c1").await;

    // A deleted config makes its (still stored) connections unreadable at once as well.
    app.authorize("fake-1", "c2").await;
    app.get_connection("fake-1", "c2").await;
    let response = app
        .api(Method::DELETE, "/config/fake-1")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_client_error(app.get_connection_response("fake-1", "c2").await).await;
}

/// Another replica's writes reach this replica's cache through PostgreSQL notifications.
/// scripts/test runs this with `--include-ignored` in its PostgreSQL stage.
#[tokio::test]
#[ignore = "needs PostgreSQL (NANGO_TEST_DATABASE_URL); run with --include-ignored"]
async fn a_replica_hears_another_replicas_writes() {
    let app = TestApp::spawn().await;
    assert!(
        app.on_postgres(),
        "replicas share cache evictions only on PostgreSQL: set NANGO_TEST_DATABASE_URL"
    );
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    let cached = access_token(&app.get_connection("fake-1", "c1").await);
    assert_eq!(
        access_token(&app.get_connection("fake-1", "c1").await),
        cached
    );

    let refreshed = access_token(&force_refresh(&app, &replica.address, "c1").await);
    assert_ne!(refreshed, cached);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen = access_token(&app.get_connection("fake-1", "c1").await);
        if seen == refreshed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "this replica still answers the token another replica replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let response = app
        .client
        .delete(format!(
            "{}/connection/c1?provider_config_key=fake-1",
            replica.address
        ))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let response = app.get_connection_response("fake-1", "c1").await;
        if response.status() == StatusCode::BAD_REQUEST {
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "this replica still answers a connection another replica deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `NANGO_REFRESH_CONCURRENCY`: a storm of expiring tokens reaches the provider at most that
/// many at a time, and every connection is still refreshed, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_in_flight_per_provider_are_capped() {
    let app = TestApp::spawn_with(|s| s.refresh_concurrency = 3).await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    let ids: Vec<String> = (0..12).map(|i| format!("storm-{i}")).collect();
    for id in &ids {
        app.authorize("fake-1", id).await;
    }
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_millis(150);
    });

    let app = &app;
    let answers = futures::future::join_all(ids.iter().map(|id| async move {
        // Two reads of each connection at once: they share one refresh.
        futures::future::join(
            app.get_connection_response("fake-1", id),
            app.get_connection_response("fake-1", id),
        )
        .await
    }))
    .await;
    for (a, b) in answers {
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(b.status(), StatusCode::OK);
        let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
        assert_eq!(access_token(&a), access_token(&b));
    }
    assert_eq!(app.provider.refresh_count(), ids.len());
    assert_eq!(
        app.provider.max_concurrent_token_requests(),
        3,
        "the provider saw more (or fewer) refreshes at once than the cap"
    );
}
