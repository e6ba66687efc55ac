//! `read_nango_database` against real Nango databases (0.9 and current) in PostgreSQL: layouts,
//! environments, soft deletes, Nango's encryption and its key check, end users, and that the
//! source is never written.

use chrono::{DateTime, Utc};
use nango_server::nango_import::database::read_nango_database;
use nango_server::nango_import::source::{
    SourceConfig, SourceConnection, SourceError, SourceLayout, SourceSnapshot,
};
use nango_server::store::nango_db::connect_read_only;
use nango_server::store::ImportKind;
use serde_json::{json, Map, Value};

use crate::helpers::nango_db::{
    random_key, Layout, NangoConfig, NangoConnection, NangoDb, NangoEndUser, DEV, PROD,
};

const KEY_FLAG: &str = "--nango-encryption-key";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn read(
    db: &NangoDb,
    environment: &str,
    key: Option<&str>,
) -> Result<SourceSnapshot, SourceError> {
    read_nango_database(db.url(), "nango", environment, key).await
}

fn connection<'s>(snapshot: &'s SourceSnapshot, connection_id: &str) -> &'s SourceConnection {
    snapshot
        .connections
        .iter()
        .find(|c| c.connection_id == connection_id)
        .unwrap_or_else(|| {
            panic!(
                "no connection {connection_id} in {:?}",
                snapshot.connections
            )
        })
}

fn connection_ids(snapshot: &SourceSnapshot) -> Vec<&str> {
    let mut ids: Vec<&str> = snapshot
        .connections
        .iter()
        .map(|c| c.connection_id.as_str())
        .collect();
    ids.sort();
    ids
}

fn config<'s>(snapshot: &'s SourceSnapshot, unique_key: &str) -> &'s SourceConfig {
    snapshot
        .configs
        .iter()
        .find(|c| c.unique_key == unique_key)
        .unwrap_or_else(|| panic!("no config {unique_key} in {:?}", snapshot.configs))
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn wrong_key(result: Result<SourceSnapshot, SourceError>) -> String {
    match result {
        Err(SourceError::WrongKey(message)) => message,
        Err(other) => panic!("expected WrongKey, got {other:?}"),
        Ok(snapshot) => panic!("expected WrongKey, read {snapshot:?}"),
    }
}

fn invalid(result: Result<SourceSnapshot, SourceError>) -> String {
    match result {
        Err(SourceError::Invalid(message)) => message,
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(snapshot) => panic!("expected Invalid, read {snapshot:?}"),
    }
}

#[tokio::test]
async fn reads_a_nango_09_database_as_it_is_stored() {
    let db = NangoDb::create(Layout::Layout09).await;
    db.insert_config(
        NangoConfig::new("github", "github")
            .client_id("gh-id")
            .client_secret("gh-secret")
            .scopes("repo,user"),
    )
    .await;
    db.insert_config(NangoConfig::new("zendesk", "zendesk").no_scopes())
        .await;
    let github = NangoConnection::oauth2("github", "user-1")
        .access_token("at-1")
        .refresh_token("rt-1")
        .expires_at(at("2023-03-01T10:00:00Z"))
        .metadata(json!({"redirect_uri_metadata": {"installation_id": "42"}}))
        .created_at(at("2023-02-01T09:00:00.123Z"))
        .updated_at(at("2023-02-01T09:00:00.123Z"));
    db.insert_connection(github.clone()).await;
    db.insert_connection(
        NangoConnection::oauth2("zendesk", "acme")
            .connection_config(json!({"connectionConfig.params.subdomain": "acme"})),
    )
    .await;
    // Rows older than the connection_config and metadata columns.
    let old = NangoConnection::oauth1("twitter", "old")
        .no_connection_config()
        .no_metadata();
    db.insert_connection(old.clone()).await;

    let snapshot = read(&db, "prod", None).await.unwrap();
    assert_eq!(snapshot.layout, SourceLayout::Database09);
    assert_eq!(snapshot.environment, None);
    assert!(snapshot.unreadable.is_empty(), "{:?}", snapshot.unreadable);
    assert_eq!(
        snapshot.configs,
        vec![
            SourceConfig {
                unique_key: "github".into(),
                provider: "github".into(),
                client_id: "gh-id".into(),
                client_secret: "gh-secret".into(),
                scopes: "repo,user".into(),
                display_name: None,
            },
            SourceConfig {
                unique_key: "zendesk".into(),
                provider: "zendesk".into(),
                client_id: "zendesk-client-id".into(),
                client_secret: "zendesk-client-secret".into(),
                scopes: String::new(),
                display_name: None,
            },
        ]
    );
    assert_eq!(connection_ids(&snapshot), ["acme", "old", "user-1"]);

    let user = connection(&snapshot, "user-1");
    assert_eq!(user.provider_config_key, "github");
    assert_eq!(&user.credentials, github.credentials());
    assert_eq!(user.credentials["expires_at"], "2023-03-01T10:00:00.000Z");
    assert_eq!(
        user.metadata,
        object(json!({"redirect_uri_metadata": {"installation_id": "42"}}))
    );
    assert_eq!(user.created_at, Some(at("2023-02-01T09:00:00.123Z")));
    assert_eq!(user.updated_at, Some(at("2023-02-01T09:00:00.123Z")));
    assert_eq!(user.last_refreshed_at, None);
    assert_eq!(user.end_user, None);
    assert!(user.tags.is_empty());

    // 0.9's prefixed keys stay as they are: the conversion is not the reader's job.
    assert_eq!(
        connection(&snapshot, "acme").connection_config,
        object(json!({"connectionConfig.params.subdomain": "acme"}))
    );
    let old_read = connection(&snapshot, "old");
    assert_eq!(&old_read.credentials, old.credentials());
    assert!(old_read.connection_config.is_empty());
    assert!(old_read.metadata.is_empty());

    // 0.9 has neither environments nor encryption: both arguments are moot.
    let again = read(&db, "dev", Some(&random_key())).await.unwrap();
    assert_eq!(again.connections, snapshot.connections);
}

#[tokio::test]
async fn reads_encrypted_and_plaintext_rows_of_current_nango() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_config(
        NangoConfig::new("github", "github")
            .client_secret("gh-secret")
            .display_name("GitHub")
            .encrypted(&key),
    )
    .await;
    // Written before Nango had a key (or before its start-up pass sealed it).
    db.insert_config(NangoConfig::new("slack", "slack").client_secret("plain-secret"))
        .await;
    db.insert_config(NangoConfig::new("api", "some-api-key-provider").without_app())
        .await;
    let sealed = NangoConnection::oauth2("github", "sealed")
        .access_token("sealed-at")
        .refresh_token("sealed-rt")
        .expires_at(at("2030-01-01T00:00:00Z"))
        .connection_config(json!({"subdomain": "acme"}))
        .last_refresh_success(at("2024-05-01T12:30:00.250Z"))
        .updated_at(at("2024-05-01T12:30:00.250Z"))
        .encrypted(&key);
    let plain = NangoConnection::oauth2("slack", "plain").access_token("plain-at");
    let api_key = NangoConnection::with_credentials(
        "api",
        "api-key",
        json!({"type": "API_KEY", "apiKey": "the-api-key"}),
    )
    .encrypted(&key);
    for c in [&sealed, &plain, &api_key] {
        db.insert_connection(c.clone()).await;
    }
    let stored = db.dump().await;
    assert!(!stored.contains("sealed-at") && !stored.contains("gh-secret"));
    assert!(stored.contains("encrypted_credentials"));

    let snapshot = read(&db, "prod", Some(&key)).await.unwrap();
    assert_eq!(snapshot.layout, SourceLayout::DatabaseCurrent);
    assert_eq!(snapshot.environment.as_deref(), Some("prod"));
    assert!(snapshot.unreadable.is_empty(), "{:?}", snapshot.unreadable);

    let github = config(&snapshot, "github");
    assert_eq!(github.client_secret, "gh-secret");
    assert_eq!(github.client_id, "github-client-id");
    assert_eq!(github.scopes, "read,write");
    assert_eq!(github.display_name.as_deref(), Some("GitHub"));
    assert_eq!(config(&snapshot, "slack").client_secret, "plain-secret");
    let api = config(&snapshot, "api");
    assert_eq!(
        (
            api.client_id.as_str(),
            api.client_secret.as_str(),
            api.scopes.as_str()
        ),
        ("", "", "")
    );

    let read_sealed = connection(&snapshot, "sealed");
    assert_eq!(&read_sealed.credentials, sealed.credentials());
    assert_eq!(
        read_sealed.connection_config,
        object(json!({"subdomain": "acme"}))
    );
    assert_eq!(
        read_sealed.last_refreshed_at,
        Some(at("2024-05-01T12:30:00.250Z"))
    );
    assert_eq!(read_sealed.updated_at, Some(at("2024-05-01T12:30:00.250Z")));
    assert!(read_sealed.created_at.is_some());
    assert_eq!(
        &connection(&snapshot, "plain").credentials,
        plain.credentials()
    );
    assert_eq!(
        &connection(&snapshot, "api-key").credentials,
        api_key.credentials()
    );
}

#[tokio::test]
async fn environments_are_kept_apart_and_deleted_rows_are_not_read() {
    let db = NangoDb::create(Layout::Current).await;
    db.insert_config(NangoConfig::new("github", "github").client_id("prod-id"))
        .await;
    db.insert_config(NangoConfig::new("gitlab", "gitlab").deleted())
        .await;
    db.insert_config(
        NangoConfig::new("github", "github")
            .client_id("dev-id")
            .environment(DEV),
    )
    .await;
    db.insert_connection(NangoConnection::oauth2("github", "prod-1"))
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "prod-2"))
        .await;
    db.soft_delete_connection("github", "prod-2").await;
    db.insert_connection(NangoConnection::oauth2("gitlab", "prod-3").deleted())
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "dev-1").environment(DEV))
        .await;
    let staging = db.add_environment("staging").await;
    db.insert_connection(NangoConnection::oauth2("github", "staging-1").environment(staging))
        .await;
    db.delete_environment(staging).await;

    let prod = read(&db, "prod", None).await.unwrap();
    assert_eq!(prod.environment.as_deref(), Some("prod"));
    assert_eq!(connection_ids(&prod), ["prod-1"]);
    assert_eq!(prod.configs.len(), 1);
    assert_eq!(config(&prod, "github").client_id, "prod-id");

    let dev = read(&db, "dev", None).await.unwrap();
    assert_eq!(dev.environment.as_deref(), Some("dev"));
    assert_eq!(connection_ids(&dev), ["dev-1"]);
    assert_eq!(config(&dev, "github").client_id, "dev-id");

    let by_id = read(&db, &DEV.to_string(), None).await.unwrap();
    assert_eq!(by_id.environment.as_deref(), Some("dev"));
    assert_eq!(by_id.connections, dev.connections);
    assert_eq!(
        read(&db, &PROD.to_string(), None)
            .await
            .unwrap()
            .connections,
        prod.connections
    );

    let message = invalid(read(&db, "staging", None).await);
    assert!(
        message.contains("\"staging\"") && message.contains("dev, prod"),
        "{message}"
    );
    invalid(read(&db, &staging.to_string(), None).await);
}

#[tokio::test]
async fn an_environment_name_several_accounts_have_is_given_by_id() {
    let db = NangoDb::create(Layout::Current).await;
    let other = db.add_environment_in(7, "prod").await;
    db.insert_connection(NangoConnection::oauth2("github", "account-0"))
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "account-7").environment(other))
        .await;

    let message = invalid(read(&db, "prod", None).await);
    assert!(
        message.contains(&format!("ids {PROD}, {other}")),
        "{message}"
    );
    let snapshot = read(&db, &other.to_string(), None).await.unwrap();
    assert_eq!(snapshot.environment.as_deref(), Some("prod"));
    assert_eq!(connection_ids(&snapshot), ["account-7"]);
}

#[tokio::test]
async fn a_wrong_key_is_detected_by_the_stored_key_hash() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    // Only plaintext rows: the hash alone tells the key is not the database's.
    db.insert_connection(NangoConnection::oauth2("github", "plain"))
        .await;

    let message = wrong_key(read(&db, "prod", Some(&random_key())).await);
    assert!(
        message.contains(KEY_FLAG) && message.contains("NANGO_ENCRYPTION_KEY"),
        "{message}"
    );
    assert_eq!(
        read(&db, "prod", Some(&key))
            .await
            .unwrap()
            .connections
            .len(),
        1
    );
    // No key and nothing sealed: nothing to open, nothing to check.
    assert_eq!(read(&db, "prod", None).await.unwrap().connections.len(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_detected_without_a_key_hash() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.insert_config(NangoConfig::new("github", "github").encrypted(&key))
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "sealed").encrypted(&key))
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "plain"))
        .await;

    let message = wrong_key(read(&db, "prod", Some(&random_key())).await);
    assert!(message.contains(KEY_FLAG), "{message}");
    let snapshot = read(&db, "prod", Some(&key)).await.unwrap();
    assert_eq!(connection_ids(&snapshot), ["plain", "sealed"]);
    assert!(snapshot.unreadable.is_empty());
}

#[tokio::test]
async fn encrypted_rows_need_the_key() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_connection(NangoConnection::oauth2("github", "sealed").encrypted(&key))
        .await;

    let message = wrong_key(read(&db, "prod", None).await);
    assert!(message.contains(KEY_FLAG), "{message}");
}

#[tokio::test]
async fn a_key_must_be_base64_of_32_bytes() {
    let db = NangoDb::create(Layout::Current).await;
    for bad in ["short", "AAECAwQFBgcICQoLDA0ODw=="] {
        let message = invalid(read(&db, "prod", Some(bad)).await);
        assert!(message.contains(KEY_FLAG), "{message}");
    }
}

#[tokio::test]
async fn damaged_rows_are_unreadable_and_the_others_are_read() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_config(NangoConfig::new("github", "github").encrypted(&key))
        .await;
    db.insert_config(NangoConfig::new("broken-config", "github").encrypted(&key))
        .await;
    for id in ["good-1", "good-2", "broken"] {
        db.insert_connection(NangoConnection::oauth2("github", id).encrypted(&key))
            .await;
    }
    db.insert_connection(NangoConnection::with_credentials(
        "github",
        "not-an-object",
        json!("a string"),
    ))
    .await;
    // Each sealed value with another one's tag or IV: it no longer authenticates.
    db.execute(
        "UPDATE nango._nango_connections SET credentials_tag = (SELECT credentials_tag \
         FROM nango._nango_connections WHERE connection_id = 'good-1') \
         WHERE connection_id = 'broken';
         UPDATE nango._nango_configs SET oauth_client_secret_iv = (SELECT oauth_client_secret_iv \
         FROM nango._nango_configs WHERE unique_key = 'github') \
         WHERE unique_key = 'broken-config';",
    )
    .await;

    let check = |snapshot: SourceSnapshot| {
        assert_eq!(connection_ids(&snapshot), ["good-1", "good-2"]);
        assert_eq!(snapshot.configs.len(), 1);
        let mut unreadable: Vec<(ImportKind, String, String, String)> = snapshot
            .unreadable
            .into_iter()
            .map(|u| (u.kind, u.provider_config_key, u.connection_id, u.reason))
            .collect();
        unreadable.sort_by(|a, b| a.2.cmp(&b.2));
        assert_eq!(
            unreadable,
            [
                (
                    ImportKind::Config,
                    "broken-config".to_string(),
                    String::new(),
                    "could not be decrypted".to_string()
                ),
                (
                    ImportKind::Connection,
                    "github".to_string(),
                    "broken".to_string(),
                    "could not be decrypted".to_string()
                ),
                (
                    ImportKind::Connection,
                    "github".to_string(),
                    "not-an-object".to_string(),
                    "its credentials are not a JSON object".to_string()
                ),
            ]
        );
    };
    check(read(&db, "prod", Some(&key)).await.unwrap());
    // Without the key check, the rows that open show the key is right: still a damaged row.
    db.execute("DELETE FROM nango._nango_db_config").await;
    check(read(&db, "prod", Some(&key)).await.unwrap());
}

#[tokio::test]
async fn end_users_and_tags_are_read() {
    let db = NangoDb::create(Layout::Current).await;
    let alice = db
        .insert_end_user(
            NangoEndUser::new("alice-id")
                .email("alice@example.com")
                .display_name("Alice")
                .organization("org-1", Some("Acme"))
                .tags(json!({"plan": "pro"})),
        )
        .await;
    let bob = db
        .insert_end_user(NangoEndUser::new("bob-id").organization("org-2", None))
        .await;
    let carol = db
        .insert_end_user(NangoEndUser::new("carol-id").environment(DEV))
        .await;
    db.insert_connection(
        NangoConnection::oauth2("github", "alice")
            .end_user(alice)
            .tags(json!({"team": "core", "region": "eu"})),
    )
    .await;
    db.insert_connection(NangoConnection::oauth2("github", "bob").end_user(bob))
        .await;
    db.insert_connection(NangoConnection::oauth2("github", "nobody"))
        .await;
    db.insert_connection(
        NangoConnection::oauth2("github", "carol")
            .end_user(carol)
            .environment(DEV),
    )
    .await;

    let snapshot = read(&db, "prod", None).await.unwrap();
    let alice = connection(&snapshot, "alice");
    assert_eq!(
        alice.end_user.clone().map(Value::Object),
        Some(json!({
            "id": "alice-id", "email": "alice@example.com", "display_name": "Alice",
            "tags": {"plan": "pro"}, "organization": {"id": "org-1", "display_name": "Acme"}
        }))
    );
    assert_eq!(alice.tags, object(json!({"team": "core", "region": "eu"})));
    assert_eq!(
        connection(&snapshot, "bob")
            .end_user
            .clone()
            .map(Value::Object),
        Some(json!({"id": "bob-id", "organization": {"id": "org-2"}}))
    );
    let nobody = connection(&snapshot, "nobody");
    assert_eq!(nobody.end_user, None);
    assert!(nobody.tags.is_empty());

    let dev = read(&db, "dev", None).await.unwrap();
    assert_eq!(
        connection(&dev, "carol")
            .end_user
            .clone()
            .map(Value::Object),
        Some(json!({"id": "carol-id"}))
    );
}

#[tokio::test]
async fn configs_on_nangos_shared_credentials_take_them() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    let shared = db
        .insert_shared_credentials(
            "slack",
            "shared-id",
            "shared-secret",
            "chat:write",
            Some(&key),
        )
        .await;
    db.insert_config(NangoConfig::new("slack", "slack").shared_credentials(shared))
        .await;

    let snapshot = read(&db, "prod", Some(&key)).await.unwrap();
    let slack = config(&snapshot, "slack");
    assert_eq!(
        (
            slack.client_id.as_str(),
            slack.client_secret.as_str(),
            slack.scopes.as_str()
        ),
        ("shared-id", "shared-secret", "chat:write")
    );
}

#[tokio::test]
async fn what_is_not_a_nango_database_is_told() {
    let empty = NangoDb::create_empty().await;
    match read(&empty, "prod", None).await {
        Err(SourceError::NotNango(message)) => {
            assert!(message.contains("\"nango\""), "{message}")
        }
        other => panic!("{other:?}"),
    }

    let db = NangoDb::create(Layout::Current).await;
    match read_nango_database(db.url(), "public", "prod", None).await {
        Err(SourceError::NotNango(message)) => {
            assert!(message.contains("\"public\""), "{message}")
        }
        other => panic!("{other:?}"),
    }
    invalid(read_nango_database(db.url(), "nango\"; DROP SCHEMA nango; --", "prod", None).await);
}

#[tokio::test]
async fn the_source_is_never_written() {
    let db = NangoDb::create(Layout::Current).await;
    let key = random_key();
    db.set_key_hash(&key).await;
    db.insert_config(NangoConfig::new("github", "github").encrypted(&key))
        .await;
    db.insert_connection(
        NangoConnection::oauth2("github", "user-1")
            .refresh_token("rt")
            .expires_at(at("2000-01-01T00:00:00Z"))
            .updated_at(at("2024-01-01T00:00:00Z"))
            .encrypted(&key),
    )
    .await;
    let before = db.dump().await;
    read(&db, "prod", Some(&key)).await.unwrap();
    assert_eq!(db.dump().await, before);

    // The reader's connection refuses writes whatever runs in it.
    let mut conn = connect_read_only(db.url()).await.unwrap();
    let refused = sqlx::query("UPDATE nango._nango_connections SET updated_at = now()")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
}

#[tokio::test]
async fn an_unreachable_source_is_named_without_its_password() {
    let result = read_nango_database(
        "postgres://nango:hunter2-secret@127.0.0.1:1/nango",
        "nango",
        "prod",
        None,
    )
    .await;
    match result {
        Err(SourceError::Unreachable(message)) => {
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("nango:***@127.0.0.1:1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
