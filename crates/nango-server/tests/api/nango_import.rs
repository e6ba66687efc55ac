//! `nango import:nango` end to end, from a running Nango server's API: another server of ours
//! is the source (it speaks Nango's API), the test's server the destination. What was imported
//! is served as it was, without a provider call; runs after the first change nothing; changes at
//! the source are taken only when asked, and never over tokens the destination obtained itself.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, SECRET_KEY};
use nango_server::nango_import::api::ApiVersion;
use nango_server::nango_import::{import_snapshot, Action, ImportOptions, ImportReport, Source};
use nango_server::secret::Secret;

/// The source's API, read and imported into `target` (through the library, as the CLI does).
async fn import_from(source: &TestApp, target: &TestApp, options: ImportOptions) -> ImportReport {
    import_through(source, ApiVersion::Auto, target, options).await
}

async fn import_through(
    source: &TestApp,
    version: ApiVersion,
    target: &TestApp,
    options: ImportOptions,
) -> ImportReport {
    let source = Source::Api {
        url: source.address.parse().unwrap(),
        secret_key: SECRET_KEY.into(),
        version,
    };
    let snapshot = source.read(&|_, _, _| {}).await.expect("read the source");
    import_snapshot(
        target.state.store.as_ref(),
        &target.state.catalog,
        snapshot,
        &source.name(),
        options,
        &|_, _, _| {},
    )
    .await
    .expect("import")
}

/// Several connections at once, as on PostgreSQL (outcomes still in the source's order).
fn write() -> ImportOptions {
    ImportOptions {
        in_flight: 4,
        ..ImportOptions::default()
    }
}

fn update() -> ImportOptions {
    ImportOptions {
        update: true,
        ..write()
    }
}

/// A source with one integration and two connections: one made by an OAuth flow, one imported
/// with an end user, tags and metadata. Its catalog also has a template the destination's lacks.
async fn source_with_connections() -> TestApp {
    let source = TestApp::spawn_with_templates(
        |s| s.secret_key = Some(Secret::new(SECRET_KEY.to_string())),
        |provider| {
            format!(
                "source-only:\n  auth_mode: OAUTH2\n  authorization_url: \"{0}/authorize\"\n  token_url: \"{0}/token\"\n",
                provider.base_url
            )
        },
    )
    .await;
    source.create_config("fake-1", "fake", "read,write").await;
    source.authorize("fake-1", "c1").await;
    let (status, body) = source
        .send_json(
            Method::POST,
            "/connections",
            Some(json!({
                "provider_config_key": "fake-1",
                "connection_id": "c2",
                "credentials": {
                    "type": "OAUTH2",
                    "access_token": "c2-access",
                    "refresh_token": "c2-refresh",
                    "expires_at": "2099-01-01T00:00:00.000Z",
                },
                "metadata": {"team": "blue"},
                "end_user": {"id": "u-7", "email": "u7@example.com", "organization": {"id": "org-1"}},
                "tags": {"plan": "pro"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    source
}

async fn access_token(app: &TestApp, id: &str) -> Value {
    app.get_connection("fake-1", id).await["credentials"]["access_token"].clone()
}

#[tokio::test]
async fn an_api_import_serves_the_same_tokens_and_a_second_run_imports_nothing() {
    let source = source_with_connections().await;
    let target = TestApp::spawn().await;

    let report = import_from(&source, &target, write()).await;
    assert_eq!(report.layout, "API (current Nango)");
    assert_eq!(
        (report.configs.new, report.connections.new),
        (1, 2),
        "{report:?}"
    );
    assert!(!report.anything_skipped(), "{report:?}");

    // Served as the source serves them, and no provider was asked for anything.
    for id in ["c1", "c2"] {
        assert_eq!(
            access_token(&target, id).await,
            access_token(&source, id).await
        );
    }
    assert_eq!(target.provider.token_requests().len(), 0);
    let c2: Value = target
        .get("/connections/c2?provider_config_key=fake-1&refresh_token=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c2["credentials"]["refresh_token"], "c2-refresh");
    assert_eq!(c2["metadata"], json!({"team": "blue"}));
    assert_eq!(c2["end_user"]["id"], "u-7");
    assert_eq!(c2["end_user"]["organization"]["id"], "org-1");
    assert_eq!(c2["tags"]["plan"], "pro");
    let config: Value = target.get("/config/fake-1").await.json().await.unwrap();
    assert_eq!(config["config"]["oauth_scopes"], "read,write");
    assert_eq!(
        config["config"]["oauth_client_secret"],
        crate::helpers::CLIENT_SECRET
    );

    // Again: nothing new, and it says so item by item.
    let again = import_from(&source, &target, write()).await;
    assert_eq!(
        (
            again.configs.new + again.connections.new,
            again.configs.updated + again.connections.updated,
            again.configs.unchanged,
            again.connections.unchanged
        ),
        (0, 0, 1, 2),
        "{again:?}"
    );
    assert!(again.items.iter().all(|i| i.action == Action::Unchanged));

    // Through Nango 0.9's API (which our server speaks too): the same tokens and metadata.
    let through_09 = TestApp::spawn().await;
    let report = import_through(&source, ApiVersion::V09, &through_09, write()).await;
    assert_eq!(report.layout, "API (Nango 0.9)");
    assert_eq!(
        (report.configs.new, report.connections.new),
        (1, 2),
        "{report:?}"
    );
    for id in ["c1", "c2"] {
        let theirs = source.get_connection("fake-1", id).await;
        let ours = through_09.get_connection("fake-1", id).await;
        assert_eq!(ours["credentials"], theirs["credentials"]);
        assert_eq!(ours["metadata"], theirs["metadata"]);
    }
    assert_eq!(through_09.provider.token_requests().len(), 0);
}

#[tokio::test]
async fn a_dry_run_names_every_item_and_writes_nothing() {
    let source = source_with_connections().await;
    let target = TestApp::spawn().await;
    let report = import_from(
        &source,
        &target,
        ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        },
    )
    .await;
    assert!(report.dry_run);
    let named: Vec<(String, Option<String>, Action)> = report
        .items
        .iter()
        .map(|i| {
            (
                i.provider_config_key.clone(),
                i.connection_id.clone(),
                i.action,
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![
            ("fake-1".into(), None, Action::New),
            ("fake-1".into(), Some("c1".into()), Action::New),
            ("fake-1".into(), Some("c2".into()), Action::New),
        ]
    );
    assert!(target.config_keys().await.is_empty());
    assert!(target.connections().await.is_empty());
    assert!(target
        .state
        .store
        .import_records()
        .await
        .unwrap()
        .is_empty());
    // The real run after it does what the dry run said.
    let report = import_from(&source, &target, write()).await;
    assert_eq!((report.configs.new, report.connections.new), (1, 2));
}

#[tokio::test]
async fn changes_at_the_source_are_taken_with_update_and_never_over_tokens_obtained_here() {
    let source = source_with_connections().await;
    let target = TestApp::spawn().await;
    import_from(&source, &target, write()).await;
    let first = access_token(&source, "c1").await;

    // The source refreshes c1: without --update the import only reports it.
    let refreshed = source
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = access_token(&source, "c1").await;
    assert_ne!(first, second);
    let report = import_from(&source, &target, write()).await;
    assert_eq!(report.connections.changed_at_source, 1, "{report:?}");
    assert_eq!(access_token(&target, "c1").await, first);

    // With --update it is taken.
    let report = import_from(&source, &target, update()).await;
    assert_eq!(report.connections.updated, 1, "{report:?}");
    assert_eq!(access_token(&target, "c1").await, second);
    assert_eq!(target.provider.token_requests().len(), 0);

    // This server obtains its own tokens for c1 (a re-authorization); the source refreshes
    // again: the import keeps this server's tokens and says why.
    target.authorize("fake-1", "c1").await;
    let own = access_token(&target, "c1").await;
    source
        .get("/connection/c1?provider_config_key=fake-1&force_refresh=true")
        .await;
    let report = import_from(&source, &target, update()).await;
    let c1 = report
        .items
        .iter()
        .find(|i| i.connection_id.as_deref() == Some("c1"))
        .unwrap();
    assert_eq!(c1.action, Action::Unchanged);
    assert!(
        c1.reason
            .as_deref()
            .unwrap_or_default()
            .contains("since the last import: kept"),
        "{c1:?}"
    );
    assert_eq!(access_token(&target, "c1").await, own);

    // A connection deleted here after its import is not brought back.
    let deleted = target
        .delete("/connection/c2?provider_config_key=fake-1")
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let report = import_from(&source, &target, update()).await;
    assert_eq!(report.connections.new, 0, "{report:?}");
    assert_eq!(target.connections().await.len(), 1);
}

#[tokio::test]
async fn items_that_cannot_move_are_skipped_with_their_reason_and_the_rest_imported() {
    let source = source_with_connections().await;
    // An integration whose template the destination does not have, with a connection.
    source.create_config("other", "source-only", "").await;
    let (status, body) = source
        .send_json(
            Method::POST,
            "/connections",
            Some(json!({
                "provider_config_key": "other",
                "connection_id": "o1",
                "credentials": {"type": "OAUTH2", "access_token": "o1-access"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let target = TestApp::spawn().await;
    // A connection made here (not imported) under an id the source also has.
    target.create_config("fake-1", "fake", "read,write").await;
    target.authorize("fake-1", "c1").await;
    let own = access_token(&target, "c1").await;

    let report = import_from(&source, &target, write()).await;
    assert!(report.anything_skipped());
    let skipped: Vec<(String, Option<String>, String)> = report
        .skipped()
        .map(|i| {
            (
                i.provider_config_key.clone(),
                i.connection_id.clone(),
                i.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped[0].0 == "other"
            && skipped[0]
                .2
                .contains("unknown provider template 'source-only'"),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|(k, id, reason)| k == "fake-1"
            && id.as_deref() == Some("c1")
            && reason.contains("not imported exists here")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|(k, id, reason)| k == "other"
            && id.as_deref() == Some("o1")
            && reason.contains("'other' was not imported")),
        "{skipped:?}"
    );
    // The rest came over; what was here stayed.
    assert_eq!(report.connections.new, 1);
    assert_eq!(access_token(&target, "c2").await, "c2-access");
    assert_eq!(access_token(&target, "c1").await, own);
}

// --- from a Nango database ---------------------------------------------------------------------

use crate::helpers::nango_db::{
    random_key, Layout, NangoConfig, NangoConnection, NangoDb, NangoEndUser, DEV,
};
use chrono::{Duration, Utc};
use nango_server::nango_import::source::SourceError;

fn database_source(db: &NangoDb, key: Option<&str>, environment: &str) -> Source {
    Source::Database {
        url: db.url().to_string(),
        schema: "nango".into(),
        environment: environment.into(),
        encryption_key: key.map(str::to_string),
    }
}

async fn import_database(
    source: &Source,
    target: &TestApp,
    options: ImportOptions,
) -> Result<ImportReport, SourceError> {
    let snapshot = source.read(&|_, _, _| {}).await?;
    Ok(import_snapshot(
        target.state.store.as_ref(),
        &target.state.catalog,
        snapshot,
        &source.name(),
        options,
        &|_, _, _| {},
    )
    .await
    .expect("import"))
}

#[tokio::test]
async fn an_encrypted_current_database_is_imported_served_as_it_was_and_refreshed_with_its_refresh_token(
) {
    let target = TestApp::spawn().await;
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_config(
        NangoConfig::new("sub", "fake-sub")
            .client_id(crate::helpers::CLIENT_ID)
            .client_secret(crate::helpers::CLIENT_SECRET)
            .display_name("Acme's tool")
            .encrypted(&key),
    )
    .await;
    let user = db
        .insert_end_user(
            NangoEndUser::new("u-42")
                .email("u42@example.com")
                .organization("org-9", Some("Org Nine")),
        )
        .await;
    let written = Utc::now() - Duration::hours(3);
    // Unexpired: served as it is. Expired: refreshed with its imported refresh token, at the
    // URL its (bare) connection config fills.
    db.insert_connection(
        NangoConnection::oauth2("sub", "live")
            .access_token("live-access")
            .refresh_token("live-refresh")
            .expires_at(Utc::now() + Duration::hours(2))
            .connection_config(json!({"subdomain": "acme"}))
            .metadata(json!({"plan": "team"}))
            .end_user(user)
            .tags(json!({"Region": "eu"}))
            .updated_at(written)
            .last_refresh_success(written)
            .encrypted(&key),
    )
    .await;
    let refresh_token = target.provider.register_refresh_token();
    db.insert_connection(
        NangoConnection::oauth2("sub", "expired")
            .access_token("expired-access")
            .refresh_token(&refresh_token)
            .expires_at(Utc::now() - Duration::minutes(5))
            .connection_config(json!({"subdomain": "acme"}))
            .encrypted(&key),
    )
    .await;
    // Another environment's connection stays out.
    db.insert_connection(NangoConnection::oauth2("sub", "dev-only").environment(DEV))
        .await;

    let source = database_source(&db, Some(&key), "prod");
    let report = import_database(&source, &target, write()).await.unwrap();
    assert_eq!(report.layout, "database (current Nango)");
    assert_eq!(report.environment.as_deref(), Some("prod"));
    assert_eq!(
        (report.configs.new, report.connections.new),
        (1, 2),
        "{report:?}"
    );
    assert!(!report.anything_skipped(), "{report:?}");
    assert_eq!(target.provider.token_requests().len(), 0);

    // The same token through both dialects, no provider call.
    let live = target.get_connection("sub", "live").await;
    assert_eq!(live["credentials"]["access_token"], "live-access");
    assert_eq!(
        live["connection_config"]["connectionConfig.params.subdomain"],
        "acme"
    );
    let current: Value = target
        .get("/connections/live?provider_config_key=sub&refresh_token=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["credentials"]["access_token"], "live-access");
    assert_eq!(current["credentials"]["refresh_token"], "live-refresh");
    assert_eq!(current["metadata"], json!({"plan": "team"}));
    assert_eq!(current["end_user"]["id"], "u-42");
    assert_eq!(current["end_user"]["email"], "u42@example.com");
    assert_eq!(current["end_user"]["organization"]["id"], "org-9");
    assert_eq!(current["tags"]["region"], "eu");
    assert_eq!(target.provider.token_requests().len(), 0);
    let integration: Value = target.get("/integrations/sub").await.json().await.unwrap();
    assert_eq!(integration["data"]["display_name"], "Acme's tool");
    assert!(target
        .get_connection_response("sub", "dev-only")
        .await
        .status()
        .is_client_error());

    // It counts as refreshed when the source last wrote it.
    let stored = target
        .state
        .store
        .get_connection("sub", "live")
        .await
        .unwrap()
        .unwrap();
    let refreshed_at = stored.health.refreshed_at.unwrap();
    assert!(
        (refreshed_at - written).num_milliseconds().abs() < 1000,
        "{refreshed_at} vs {written}"
    );

    // The expired one refreshes with the imported refresh token, at acme's token URL.
    let fresh = target.get_connection("sub", "expired").await;
    assert_ne!(fresh["credentials"]["access_token"], "expired-access");
    let refreshes = target.provider.refresh_requests();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(
        refreshes[0].param("refresh_token"),
        Some(refresh_token.as_str())
    );
    assert_eq!(refreshes[0].path, "/acme/token");

    // A second run changes nothing: the refreshed one is kept, the rest unchanged.
    let again = import_database(&source, &target, update()).await.unwrap();
    assert_eq!(
        (
            again.connections.new,
            again.connections.updated,
            again.connections.unchanged
        ),
        (0, 0, 2),
        "{again:?}"
    );
    let fresh_again = target.get_connection("sub", "expired").await;
    assert_eq!(
        fresh_again["credentials"]["access_token"],
        fresh["credentials"]["access_token"]
    );

    // The dev environment on its own.
    let dev = import_database(&database_source(&db, Some(&key), "dev"), &target, write())
        .await
        .unwrap();
    assert_eq!(dev.environment.as_deref(), Some("dev"));
    assert!(dev
        .items
        .iter()
        .any(|i| i.connection_id.as_deref() == Some("dev-only")));
}

#[tokio::test]
async fn a_wrong_encryption_key_is_refused_before_anything_is_written() {
    let target = TestApp::spawn().await;
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_config(NangoConfig::new("fake-1", "fake").encrypted(&key))
        .await;
    db.insert_connection(NangoConnection::oauth2("fake-1", "c1").encrypted(&key))
        .await;
    let wrong = random_key();
    let error = database_source(&db, Some(&wrong), "prod")
        .read(&|_, _, _| {})
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::WrongKey(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("--nango-encryption-key"), "{message}");
    assert!(
        !message.contains(&wrong) && !message.contains(&key),
        "{message}"
    );
    assert!(target.config_keys().await.is_empty());
    assert!(target.connections().await.is_empty());
}

#[tokio::test]
async fn a_09_database_keeps_its_prefixed_connection_config_and_its_auth_modes_are_checked() {
    let target = TestApp::spawn().await;
    let db = NangoDb::create(Layout::Layout09).await;
    db.insert_config(
        NangoConfig::new("sub", "fake-sub")
            .client_id(crate::helpers::CLIENT_ID)
            .client_secret(crate::helpers::CLIENT_SECRET),
    )
    .await;
    db.insert_connection(
        NangoConnection::oauth2("sub", "u1")
            .access_token("u1-access")
            .connection_config(json!({"connectionConfig.params.subdomain": "acme"})),
    )
    .await;
    // OAuth 1 credentials under an OAuth 2 template: refused with the reason.
    db.insert_connection(NangoConnection::oauth1("sub", "u2"))
        .await;
    let report = import_database(&database_source(&db, None, "prod"), &target, write())
        .await
        .unwrap();
    assert_eq!(report.layout, "database (Nango 0.9)");
    assert_eq!(report.connections.new, 1, "{report:?}");
    let skipped: Vec<_> = report.skipped().collect();
    assert_eq!(skipped.len(), 1, "{report:?}");
    assert_eq!(skipped[0].connection_id.as_deref(), Some("u2"));
    assert!(
        skipped[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("do not fit provider 'fake-sub'"),
        "{skipped:?}"
    );
    let u1 = target.get_connection("sub", "u1").await;
    assert_eq!(u1["credentials"]["access_token"], "u1-access");
    assert_eq!(
        u1["connection_config"]["connectionConfig.params.subdomain"],
        "acme"
    );
}

#[tokio::test]
async fn a_host_each_connection_set_becomes_the_integrations_when_they_agree() {
    let target = TestApp::spawn().await;
    let db = NangoDb::create(Layout::Current).await;
    db.insert_config(NangoConfig::new("ghe", "fake-host")).await;
    db.insert_config(NangoConfig::new("split", "fake-host"))
        .await;
    for (key, id, host) in [
        ("ghe", "a", "git.example.com"),
        ("ghe", "b", "git.example.com"),
        ("split", "c", "one.example.com"),
        ("split", "d", "two.example.com"),
    ] {
        db.insert_connection(
            NangoConnection::oauth2(key, id).connection_config(json!({"hostname": host})),
        )
        .await;
    }
    let report = import_database(&database_source(&db, None, "prod"), &target, write())
        .await
        .unwrap();
    let config = target.state.store.get_config("ghe").await.unwrap().unwrap();
    assert_eq!(config.connection_config["hostname"], "git.example.com");
    assert_eq!(report.connections.new, 2, "{report:?}");
    // No agreement: the operator must choose; those connections say so.
    let skipped: Vec<_> = report
        .skipped()
        .map(|i| (i.connection_id.clone().unwrap(), i.reason.clone().unwrap()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|(_, r)| r.contains("can only be set by the operator")),
        "{skipped:?}"
    );

    // Once the operator sets one host, the connection on it comes over, the other is refused
    // rather than sent to the wrong host.
    target
        .put_json(
            "/config",
            &json!({
                "provider_config_key": "split", "provider": "fake-host",
                "oauth_client_id": "split-client-id", "oauth_client_secret": "split-client-secret",
                "oauth_scopes": "read,write", "connection_config": {"hostname": "one.example.com"},
            }),
        )
        .await;
    let report = import_database(&database_source(&db, None, "prod"), &target, write())
        .await
        .unwrap();
    let by_id = |id: &str| {
        report
            .items
            .iter()
            .find(|i| i.connection_id.as_deref() == Some(id))
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("c").action, Action::New, "{report:?}");
    assert_eq!(by_id("d").action, Action::Skipped);
    assert!(
        by_id("d").reason.unwrap().contains("two.example.com"),
        "{report:?}"
    );
}
