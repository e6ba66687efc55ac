//! Several servers on one database (the scale-out of DESIGN.md): a flow may finish on another
//! replica, a token is refreshed once across replicas, and a WebSocket learns a result that
//! another replica produced. The last needs PostgreSQL (SQLite is single-process by design).

use std::time::Duration;

use chrono::Utc;
use nango_server::credentials::{Credentials, FreshError, Freshness, OAuth2Credentials};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Page, TestApp};

#[tokio::test]
async fn a_flow_started_on_one_replica_finishes_on_another() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    let authorize = app.start_flow("fake-1", "connection_id=c1").await;
    let callback = app.authorize_at_provider(&authorize).await;
    let page = Page::read(
        app.browser
            .get(format!(
                "{}/oauth/callback?{}",
                replica.address,
                callback.query().unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_success("fake-1", "c1");
    // Both replicas see the connection.
    let response = app
        .get_connection_response_at(&replica.address, "fake-1", "c1")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.get_connection("fake-1", "c1").await;
}

/// Two servers on one database file or PostgreSQL database: the refresh lease lives in the
/// database, so it holds on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refresh_a_connection_exactly_once() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_millis(300);
    });

    let app = &app;
    let requests = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.address.clone()
        };
        async move { app.get_connection_response_at(&base, "fake-1", "c1").await }
    });
    let responses = futures::future::join_all(requests).await;
    let mut tokens = Vec::new();
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["credentials"]["access_token"].clone());
    }
    assert_eq!(
        app.provider.refresh_count(),
        1,
        "two replicas refreshed the same token (a provider that rotates refresh tokens would revoke one of them)"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

/// Results cross replicas through PostgreSQL LISTEN/NOTIFY; a SQLite server is one process.
/// scripts/test runs this with `--include-ignored` in its PostgreSQL stage.
#[tokio::test]
#[ignore = "needs PostgreSQL (NANGO_TEST_DATABASE_URL); run with --include-ignored"]
async fn a_websocket_learns_the_result_of_a_callback_served_by_another_replica() {
    let app = TestApp::spawn().await;
    assert!(
        app.on_postgres(),
        "replicas share WebSocket results only on PostgreSQL: set NANGO_TEST_DATABASE_URL"
    );
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    let mut ws = app.ws_connect().await;
    let authorize = app
        .start_flow(
            "fake-1",
            &format!("connection_id=c1&ws_client_id={}", ws.id),
        )
        .await;
    let callback = app.authorize_at_provider(&authorize).await;
    let page = Page::read(
        app.browser
            .get(format!(
                "{}/oauth/callback?{}",
                replica.address,
                callback.query().unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // The 0.9 SDK opened the popup with noopener: the socket is its only way to learn the result.
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({"message_type": "success", "provider_config_key": "fake-1", "connection_id": "c1"})
    );
}

/// Reads waiting for a refresh on two replicas: when the provider refuses it, they answer the
/// recorded refusal instead of presenting the refused refresh token again, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_is_tried_once_however_many_reads_wait_for_it() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.refresh_failure = Some((400, json!({"error": "invalid_grant"})));
        b.token_delay = Duration::from_millis(300);
    });

    let app = &app;
    let requests = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.address.clone()
        };
        async move { app.get_connection_response_at(&base, "fake-1", "c1").await }
    });
    for response in futures::future::join_all(requests).await {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["type"], "refresh_rejected", "{body}");
    }
    assert_eq!(app.provider.refresh_count(), 1);
}

/// The lease is short (so a dead replica blocks others briefly) and renewed while the refresh
/// is in flight: a provider slower than the lease still sees one refresh, not one per replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_slower_than_the_lease_keeps_it() {
    let app = TestApp::spawn().await;
    let replica = app.try_start(|_| {}).await.unwrap();
    app.create_config("fake-1", "fake", "").await;
    app.provider.set(|b| b.expires_in = Some(0));
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_secs(12);
    });
    // Through the library, not HTTP: the test client gives up after 10 s.
    let read = |state: nango_server::AppState| async move {
        state
            .refresher
            .fresh_connection(&state, "fake-1", "c1", Freshness::IfNeeded)
            .await
            .map(|c| serde_json::to_value(&c.credentials).unwrap())
    };
    let first = tokio::spawn(read(app.state.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn(read(replica));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(app.provider.refresh_count(), 1);
}

/// The store's side of the lease: only its holder renews or releases it; once it has expired
/// another holder takes it and the first can no longer renew it.
#[tokio::test]
async fn a_refresh_lease_is_renewed_and_released_only_by_its_holder() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let now = Utc::now();
    let later = |secs| now + chrono::Duration::seconds(secs);
    assert!(store
        .try_lock_refresh("k", "c", "a", now, later(10))
        .await
        .unwrap());
    assert!(!store
        .try_lock_refresh("k", "c", "b", now, later(10))
        .await
        .unwrap());
    assert!(!store
        .renew_refresh_lock("k", "c", "b", later(20))
        .await
        .unwrap());
    store.unlock_refresh("k", "c", "b").await.unwrap();
    assert!(store
        .renew_refresh_lock("k", "c", "a", later(20))
        .await
        .unwrap());
    // Renewed: still held at 15 s, free at 20 s.
    assert!(!store
        .try_lock_refresh("k", "c", "b", later(15), later(25))
        .await
        .unwrap());
    assert!(store
        .try_lock_refresh("k", "c", "b", later(20), later(30))
        .await
        .unwrap());
    assert!(!store
        .renew_refresh_lock("k", "c", "a", later(40))
        .await
        .unwrap());
    store.unlock_refresh("k", "c", "a").await.unwrap();
    assert!(store
        .renew_refresh_lock("k", "c", "b", later(40))
        .await
        .unwrap());
    store.unlock_refresh("k", "c", "b").await.unwrap();
    assert!(store
        .try_lock_refresh("k", "c", "a", now, later(10))
        .await
        .unwrap());
}

fn credentials(access_token: &str, refresh_token: &str) -> Credentials {
    Credentials::OAuth2(OAuth2Credentials {
        access_token: access_token.into(),
        refresh_token: Some(refresh_token.into()),
        expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
        raw: json!({"access_token": access_token}),
    })
}

/// What a flow completing for `fake-1`/`c1` stores: credentials "newer"/"newer-r".
async fn store_new_authorization(store: &std::sync::Arc<dyn nango_server::store::Store>) {
    store
        .upsert_connection(&nango_server::store::ConnectionFields {
            provider_config_key: "fake-1".into(),
            connection_id: "c1".into(),
            credentials: credentials("newer", "newer-r"),
            connection_config: Default::default(),
            metadata: Default::default(),
            // A second ago: the generation (milliseconds) of a write the test makes next must
            // differ from this one, however fast the machine.
            obtained_at: Utc::now() - chrono::Duration::seconds(1),
            owner: None,
        })
        .await
        .unwrap();
}

/// Authorizes `fake-1`/`c1` with an expiring token, then starts a refresh of it that the provider
/// answers after 600 ms; returns 300 ms in, while the refresh holds its lease and waits.
async fn start_slow_refresh(
    app: &TestApp,
) -> tokio::task::JoinHandle<Result<nango_server::store::Connection, FreshError>> {
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.token_delay = Duration::ZERO;
    });
    app.authorize("fake-1", "c1").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.token_delay = Duration::from_millis(600);
    });
    let state = app.state.clone();
    let refresh = tokio::spawn(async move {
        state
            .refresher
            .fresh_connection(&state, "fake-1", "c1", Freshness::IfNeeded)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    refresh
}

/// A new authorization that lands while a refresh (holding its lease) waits for the provider
/// is newer than what the refresh brings back: it stays, and the refresh answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_authorization_during_a_refresh_is_kept() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let refresh = start_slow_refresh(&app).await;
    store_new_authorization(&app.state.store).await;
    let answered = refresh.await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&answered.credentials).unwrap()["access_token"],
        json!("newer")
    );
    assert_eq!(app.provider.refresh_count(), 1);
    assert_eq!(
        app.get_connection("fake-1", "c1").await["credentials"]["access_token"],
        json!("newer")
    );
}

/// A holder whose lease was taken over while the provider answered: the provider has rotated
/// the refresh token already, so what it answered is stored unless newer credentials were
/// stored meanwhile, which then stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_lost_its_lease_stores_its_tokens_only_if_nobody_replaced_them() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    for replaced in [false, true] {
        let refresh = start_slow_refresh(&app).await;
        // Another holder takes the lease over (as if ours had expired).
        let store = &app.state.store;
        let far = Utc::now() + chrono::Duration::hours(1);
        assert!(store
            .try_lock_refresh("fake-1", "c1", "thief", far, far)
            .await
            .unwrap());
        if replaced {
            store_new_authorization(store).await;
        }
        let answered = refresh.await.unwrap().unwrap();
        let stored = store.get_connection("fake-1", "c1").await.unwrap().unwrap();
        let Credentials::OAuth2(stored) = stored.credentials else {
            panic!("OAuth 2 credentials")
        };
        assert_eq!(
            serde_json::to_value(&answered.credentials).unwrap()["access_token"],
            json!(stored.access_token)
        );
        if replaced {
            assert_eq!(stored.access_token, "newer", "the newer credentials stay");
        } else {
            let last = app.provider.refresh_requests().pop().unwrap();
            assert_ne!(stored.refresh_token.as_deref(), last.param("refresh_token"));
            assert_ne!(
                stored.access_token, "newer",
                "the provider's answer is stored"
            );
        }
        store.unlock_refresh("fake-1", "c1", "thief").await.unwrap();
    }
    assert_eq!(app.provider.refresh_count(), 2);
}

/// A refusal of a refresh token that is no longer the connection's (the credentials were
/// replaced while the provider answered) does not mark the connection.
#[tokio::test]
async fn a_refusal_of_replaced_credentials_is_not_recorded() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    app.authorize("fake-1", "c1").await;
    let store = &app.state.store;
    let read = store.get_connection("fake-1", "c1").await.unwrap().unwrap();
    let failure = nango_server::store::RefreshFailure {
        error: "invalid_grant".into(),
        permanent: true,
        retry_after: None,
        at: Utc::now(),
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    store_new_authorization(store).await;
    assert!(!store
        .record_refresh_failure("fake-1", "c1", &failure, read.health.refreshed_at)
        .await
        .unwrap());
    assert!(!store
        .update_credentials_if_unchanged(
            "fake-1",
            "c1",
            &credentials("stale", "stale-r"),
            read.health.refreshed_at,
            Utc::now(),
        )
        .await
        .unwrap());
    let now = store.get_connection("fake-1", "c1").await.unwrap().unwrap();
    assert_eq!(now.health.refresh_failures, 0);
    assert!(store
        .record_refresh_failure("fake-1", "c1", &failure, now.health.refreshed_at)
        .await
        .unwrap());
    let marked = store.get_connection("fake-1", "c1").await.unwrap().unwrap();
    assert!(marked.health.needs_reauth);
}

fn access_token(connection: &nango_server::store::Connection) -> Value {
    serde_json::to_value(&connection.credentials).unwrap()["access_token"].clone()
}

/// Taking the lease reads the connection as the previous holders left it, on both backends:
/// after a holder's write and release, after a release without a write, after a write that took
/// no lease (a new authorization), and not at all while the lease is held.
#[tokio::test]
async fn taking_a_refresh_lease_reads_what_the_previous_holder_left() {
    use nango_server::store::LeaseTake;
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    store_new_authorization(&app.state.store).await;
    let store = &app.state.store;
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(10);
    let take =
        |holder: &'static str| store.lock_refresh_and_read("fake-1", "c1", holder, now, until);

    let LeaseTake::Taken(Some(first)) = take("a").await.unwrap() else {
        panic!("a free lease is taken, with the connection")
    };
    assert_eq!(access_token(&first), json!("newer"));
    assert!(matches!(take("b").await.unwrap(), LeaseTake::Busy));
    assert!(store
        .update_credentials_and_unlock(
            "fake-1",
            "c1",
            &credentials("refreshed", "refreshed-r"),
            first.health.refreshed_at,
            Utc::now(),
            "a",
        )
        .await
        .unwrap());
    let LeaseTake::Taken(Some(second)) = take("b").await.unwrap() else {
        panic!("released with the write")
    };
    assert_eq!(access_token(&second), json!("refreshed"));
    // A write from before the release no longer applies.
    store.unlock_refresh("fake-1", "c1", "b").await.unwrap();
    assert!(!store
        .update_credentials_and_unlock(
            "fake-1",
            "c1",
            &credentials("stale", "stale-r"),
            first.health.refreshed_at,
            Utc::now(),
            "c",
        )
        .await
        .unwrap());
    // A new authorization takes no lease; the next holder still reads it.
    app.state
        .store
        .upsert_connection(&nango_server::store::ConnectionFields {
            provider_config_key: "fake-1".into(),
            connection_id: "c1".into(),
            credentials: credentials("reauthorized", "reauthorized-r"),
            connection_config: Default::default(),
            metadata: Default::default(),
            obtained_at: Utc::now(),
            owner: None,
        })
        .await
        .unwrap();
    let LeaseTake::Taken(Some(third)) = take("c").await.unwrap() else {
        panic!("released without a write")
    };
    assert_eq!(access_token(&third), json!("reauthorized"));
    store.unlock_refresh("fake-1", "c1", "c").await.unwrap();
    assert!(store.delete_connection("fake-1", "c1").await.unwrap());
    assert!(matches!(take("d").await.unwrap(), LeaseTake::Taken(None)));
}

/// PostgreSQL takes the lease and reads in one statement, whose snapshot is from when it started.
/// Here the previous holder's write and release commit while that statement waits for the lease
/// row: the statement's own read is then older than the write, and must not be what it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (NANGO_TEST_DATABASE_URL); run with --include-ignored"]
async fn a_lease_taken_while_its_holder_commits_reads_the_holders_write() {
    use nango_server::store::LeaseTake;
    use sqlx::Connection as _;
    let app = TestApp::spawn().await;
    assert!(
        app.on_postgres(),
        "statement snapshots are PostgreSQL's: set NANGO_TEST_DATABASE_URL"
    );
    app.create_config("fake-1", "fake", "").await;
    store_new_authorization(&app.state.store).await;
    let store = app.state.store.clone();
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(10);
    assert!(matches!(
        store
            .lock_refresh_and_read("fake-1", "c1", "a", now, until)
            .await
            .unwrap(),
        LeaseTake::Taken(Some(_))
    ));

    // Holder "a" writes and releases in a transaction left open for now (a change of metadata
    // stands for its write: the credentials are sealed by the store).
    let mut holder = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(
        "WITH written AS (UPDATE connections SET metadata = '{\"written_by\": \"a\"}' \
           WHERE provider_config_key = 'fake-1' AND connection_id = 'c1' RETURNING xmin) \
         UPDATE refresh_locks SET holder = '', expires_at = 0, \
           settled = (SELECT xmin FROM written) \
         WHERE provider_config_key = 'fake-1' AND connection_id = 'c1' AND holder = 'a'",
    )
    .execute(&mut holder)
    .await
    .unwrap();

    let taker = tokio::spawn(async move {
        store
            .lock_refresh_and_read("fake-1", "c1", "b", now, until)
            .await
    });
    // Commit only once the taker's statement is waiting for the lease row.
    let mut observer = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let mut waiting = 0i64;
    for _ in 0..200 {
        waiting = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '%refresh_locks%'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(waiting, 1, "the taker never waited for the lease row");
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    let LeaseTake::Taken(Some(read)) = taker.await.unwrap().unwrap() else {
        panic!("the released lease is taken")
    };
    assert_eq!(read.metadata.get("written_by"), Some(&json!("a")));
}

/// The database cuts every connection of the server (a restart, a failover) while a refresh
/// waits for the provider, which has already rotated the refresh token: the new tokens are still
/// stored, on a new connection, and nothing is refreshed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (NANGO_TEST_DATABASE_URL); run with --include-ignored"]
async fn a_refresh_outlives_the_database_cutting_its_connections() {
    use sqlx::Connection as _;
    let app = TestApp::spawn().await;
    assert!(
        app.on_postgres(),
        "cuts connections with pg_terminate_backend: set NANGO_TEST_DATABASE_URL"
    );
    app.create_config("fake-1", "fake", "").await;
    let refresh = start_slow_refresh(&app).await;
    let mut admin = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "the server had no connection to cut");

    let answered = refresh.await.unwrap().expect("the refresh is stored");
    let issued = serde_json::to_value(&answered.credentials).unwrap()["access_token"].clone();
    assert_eq!(
        app.get_connection("fake-1", "c1").await["credentials"]["access_token"],
        issued
    );
    assert_eq!(app.provider.refresh_count(), 1);
}
