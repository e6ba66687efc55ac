//! Encryption at rest (`NANGO_ENCRYPTION_KEY`): after real flows and refreshes, the database
//! (the SQLite files, or a `pg_dump` of PostgreSQL) holds no client secret, token or PKCE
//! verifier in plain text; old keys still open data; `rotate_encryption` re-seals everything and
//! retires the old key; a server refuses to start on data sealed with a key it was not given; a
//! sealed value moved to another row does not open there.

use base64::Engine;
use nango_server::secret::Secret;
use nango_server::store::Cipher;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, CLIENT_SECRET};

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn key_id(byte: u8) -> String {
    Cipher::from_base64_keys(&[Secret::new(key(byte))])
        .unwrap()
        .primary_key_id()
        .unwrap()
        .to_string()
}

fn keys(bytes: &[u8]) -> Vec<Secret<String>> {
    bytes.iter().map(|b| Secret::new(key(*b))).collect()
}

/// Everything the database holds, as bytes: the SQLite file with its WAL, or a `pg_dump`.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    if app.on_postgres() {
        let pg_dump = find_pg_dump();
        let output = std::process::Command::new(&pg_dump)
            .arg("--data-only")
            .arg(&app.database_url)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {pg_dump}: {e}"));
        assert!(
            output.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return output.stdout;
    }
    let path = app.database_url.trim_start_matches("sqlite://");
    let path = std::path::Path::new(path);
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(&name) {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(!bytes.is_empty(), "no database file at {}", path.display());
    bytes
}

/// pg_dump from PATH or Debian's versioned directories; a test on PostgreSQL without it fails.
fn find_pg_dump() -> String {
    if let Ok(path) = which("pg_dump") {
        return path;
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .map(|p| p.display().to_string())
        .expect("pg_dump not found: install PostgreSQL's client tools")
}

fn which(name: &str) -> Result<String, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
        .ok_or(())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A config, a connection whose token was refreshed once, and a flow left half-way (its PKCE
/// verifier stored). Returns every secret that went into the database.
async fn fill(app: &TestApp) -> Vec<String> {
    app.create_config("fake-1", "fake", "read").await;
    app.provider.set(|b| {
        b.expires_in = Some(0);
        b.issue_refresh_token = true;
    });
    app.authorize("fake-1", "c1").await;
    let first = stored_credentials(app, "c1").await;
    app.provider.set(|b| b.expires_in = Some(3600));
    let refreshed = app.get_connection("fake-1", "c1").await["credentials"].clone();
    assert_ne!(first["access_token"], refreshed["access_token"]);
    let authorize = app.start_flow("fake-1", "connection_id=c2").await;
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut secrets = vec![CLIENT_SECRET.to_string()];
    for credentials in [&first, &refreshed] {
        for field in ["access_token", "refresh_token"] {
            secrets.push(credentials[field].as_str().unwrap().to_string());
        }
    }
    secrets.push(state);
    secrets
}

async fn stored_credentials(app: &TestApp, connection_id: &str) -> Value {
    let connection = app
        .state
        .store
        .get_connection("fake-1", connection_id)
        .await
        .unwrap()
        .unwrap();
    serde_json::to_value(&connection.credentials).unwrap()
}

/// The PKCE verifier of the pending flow, read (and consumed) through the store.
async fn pending_verifier(app: &TestApp, state: &str) -> String {
    let session = app
        .state
        .store
        .take_oauth_session(state, chrono::Utc::now())
        .await
        .unwrap()
        .expect("the pending flow's session");
    session.code_verifier.unwrap().expose().clone()
}

#[tokio::test]
async fn no_secret_is_stored_in_plain_text_with_a_key_and_the_check_sees_them_without() {
    for encrypted in [true, false] {
        let app = TestApp::spawn_with(move |s| {
            if encrypted {
                s.encryption_keys = keys(&[1]);
            }
        })
        .await;
        let mut secrets = fill(&app).await;
        let state = secrets.pop().unwrap();
        let dump = database_bytes(&app);
        secrets.push(pending_verifier(&app, &state).await);
        for secret in &secrets {
            assert!(
                !encrypted || !contains(&dump, secret),
                "{secret:?} is in plain text"
            );
        }
        if !encrypted {
            // Without a key the live values are there to see: the check can fail.
            let live = [&secrets[0]]
                .into_iter()
                .chain(&secrets[secrets.len() - 3..]);
            for secret in live {
                assert!(
                    contains(&dump, secret),
                    "{secret:?} not found without a key"
                );
            }
        }
        if encrypted {
            assert!(contains(&dump, &format!("enc:v1:{}:", key_id(1))));
        }
    }
}

#[tokio::test]
async fn rotation_reseals_everything_and_retires_the_old_key() {
    let mut app = TestApp::spawn_with(|s| s.encryption_keys = keys(&[1])).await;
    let secrets = fill(&app).await;
    let before = app.get_connection("fake-1", "c1").await;

    // A new primary key, the old one still configured: everything still opens.
    app.restart_with(|s| s.encryption_keys = keys(&[2, 1]))
        .await;
    assert_eq!(
        app.get_connection("fake-1", "c1").await["credentials"],
        before["credentials"]
    );

    let report = app.state.store.rotate_encryption().await.unwrap();
    // The config's secret, the connection's credentials and the pending flow's verifier.
    assert_eq!(report.resealed, 3, "{report:?}");
    assert_eq!(report.retired, vec![key_id(1)]);
    // Only the key registry's check value is still sealed with the old key.
    let dump = database_bytes(&app);
    let old_prefix = format!("enc:v1:{}:", key_id(1));
    let sealed_with_old = dump
        .windows(old_prefix.len())
        .filter(|w| *w == old_prefix.as_bytes())
        .count();
    assert_eq!(sealed_with_old, 1);
    for secret in &secrets[..secrets.len() - 1] {
        assert!(!contains(&dump, secret), "{secret}");
    }
    // Rotating again has nothing left to do.
    let again = app.state.store.rotate_encryption().await.unwrap();
    assert_eq!((again.resealed, again.current), (0, 3));

    // The old key can go; alone, it no longer opens anything.
    app.restart_with(|s| s.encryption_keys = keys(&[2])).await;
    assert_eq!(
        app.get_connection("fake-1", "c1").await["credentials"],
        before["credentials"]
    );
    let refused = app.try_start(|s| s.encryption_keys = keys(&[1])).await;
    let message = refused
        .err()
        .expect("started with the retired key")
        .to_string();
    assert!(message.contains(&key_id(2)), "{message}");
}

#[tokio::test]
async fn a_server_refuses_to_start_without_the_key_that_sealed_the_data() {
    let app = TestApp::spawn_with(|s| s.encryption_keys = keys(&[1])).await;
    fill(&app).await;
    for (given, what) in [(keys(&[3]), "a wrong key"), (Vec::new(), "no key")] {
        let refused = app
            .try_start(move |s| s.encryption_keys = given.clone())
            .await;
        let message = refused
            .err()
            .unwrap_or_else(|| panic!("started with {what}"))
            .to_string();
        assert!(
            message.contains(&key_id(1)) && message.contains("not configured"),
            "{what}: {message}"
        );
    }
    // The right key, with others, is fine.
    app.try_start(|s| s.encryption_keys = keys(&[4, 1]))
        .await
        .expect("start with the key among others");
}

#[tokio::test]
async fn turning_encryption_on_over_plain_data_seals_secrets_at_start_and_rotation_the_rest() {
    let mut app = TestApp::spawn().await;
    let secrets = fill(&app).await;
    let before = app.get_connection("fake-1", "c1").await;
    app.restart_with(|s| s.encryption_keys = keys(&[1])).await;
    assert_eq!(
        app.get_connection("fake-1", "c1").await["credentials"],
        before["credentials"]
    );
    // The first start with a key over a database with nothing sealed sealed the client secret
    // and the credentials (bound to their rows: from then on a value stored as given there is
    // refused); the pending flow's verifier is left to the rotation.
    let report = app.state.store.rotate_encryption().await.unwrap();
    assert_eq!((report.resealed, report.current), (1, 2), "{report:?}");
    let dump = database_bytes(&app);
    for secret in &secrets[..secrets.len() - 1] {
        assert!(!contains(&dump, secret), "{secret}");
    }
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_row_does_not_open() {
    let app = TestApp::spawn_with(|s| s.encryption_keys = keys(&[1])).await;
    fill(&app).await;
    app.authorize("fake-1", "c3").await;
    // Someone with write access to the database copies c1's sealed credentials onto c3.
    let sql = "UPDATE connections SET credentials = \
               (SELECT credentials FROM connections WHERE connection_id = 'c1') \
               WHERE connection_id = 'c3'";
    execute(&app, sql).await;
    let response = app.get_connection_response("fake-1", "c3").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.text().await.unwrap();
    assert!(!body.contains("access-"), "{body}");
    // c1 itself is untouched.
    app.get_connection("fake-1", "c1").await;
}

async fn execute(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    if app.on_postgres() {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
}

/// The SQLite database and its companions (`-wal`, `-shm`), as paths.
fn sqlite_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let path = app.database_url.trim_start_matches("sqlite://");
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| std::path::PathBuf::from(format!("{path}{suffix}")))
        .collect()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Security review F9 (E9): the SQLite files are the owner's only (0600, whatever the umask; a
/// directory the server creates 0700), and a deleted config's secret or connection's token is in
/// neither the database file nor its log afterwards (`secure_delete`, then a checkpoint).
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_and_deleted_secrets_are_gone_from_them() {
    let app = TestApp::spawn().await;
    if app.on_postgres() {
        return;
    }
    const DELETED_SECRET: &str = "DELETED-SECRET-SHOULD-BE-GONE";
    const DELETED_KEY: &str = "sk-deletedapikey0123456789";
    let created = app
        .post_json(
            "/config",
            &serde_json::json!({
                "provider_config_key": "tmp",
                "provider": "fake",
                "oauth_client_id": "cid",
                "oauth_client_secret": DELETED_SECRET,
                "oauth_scopes": "",
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    app.create_config("openai", "fake-apikey", "").await;
    let imported = app
        .post_json(
            "/connection",
            &serde_json::json!({
                "provider_config_key": "openai",
                "connection_id": "gone",
                "api_key": DELETED_KEY,
            }),
        )
        .await;
    assert!(
        imported.status().is_success(),
        "{}",
        imported.text().await.unwrap()
    );
    app.create_config("kept", "fake", "").await;

    for file in sqlite_files(&app) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let before = database_bytes(&app);
    assert!(contains(&before, DELETED_SECRET) && contains(&before, DELETED_KEY));

    assert_eq!(app.delete("/config/tmp").await.status(), StatusCode::OK);
    assert_eq!(
        app.delete("/connection/gone?provider_config_key=openai")
            .await
            .status(),
        StatusCode::OK
    );
    let after = database_bytes(&app);
    assert!(
        !contains(&after, DELETED_SECRET),
        "the deleted client secret is still in the files"
    );
    assert!(
        !contains(&after, DELETED_KEY),
        "the deleted API key is still in the files"
    );
    assert!(
        contains(&after, CLIENT_SECRET),
        "what was not deleted is still there"
    );
    for file in sqlite_files(&app) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // A server given a database in a directory that does not exist yet creates it owner-only.
    let root = std::path::Path::new(app.database_url.trim_start_matches("sqlite://"))
        .parent()
        .unwrap()
        .to_path_buf();
    let nested = root.join("new").join("data");
    let url = format!("sqlite://{}", nested.join("nango.db").display());
    let state = app
        .try_start(|s| s.database_url = Secret::new(url.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&root.join("new")), 0o700);
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&nested.join("nango.db")), 0o600);
    drop(state);

    // A database an earlier version left readable by everyone is tightened at start.
    use std::os::unix::fs::PermissionsExt;
    let loose = nested.join("nango.db");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let state = app
        .try_start(|s| s.database_url = Secret::new(url.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&loose), 0o600);
    drop(state);
}

/// Templates whose API base URL comes from the connection's metadata, and one that points at
/// `attacker` outright.
fn bound_templates(provider: &crate::helpers::FakeProvider, attacker: &str) -> String {
    let base = &provider.base_url;
    let oauth2 = format!(
        "  auth_mode: OAUTH2\n  authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/token\"\n"
    );
    format!(
        "bound-meta:\n{oauth2}  token_response_metadata:\n    - instance_url\n  \
           base_api_url: \"${{metadata.instance_url}}\"\n  \
           metadata_url_hosts:\n    - '127.0.0.1'\n\
         bound-evil:\n{oauth2}  base_api_url: \"{attacker}\"\n"
    )
}

/// Stores connection `id` of config `key` through the store, with metadata naming `instance_url`.
async fn store_connection_of(app: &TestApp, key: &str, id: &str, instance_url: &str) {
    use nango_server::credentials::{Credentials, OAuth2Credentials};
    let now = chrono::Utc::now();
    let token = format!("token-of-{id}");
    let metadata = serde_json::json!({ "instance_url": instance_url });
    let config = serde_json::json!({ "params": { "region": "eu" } });
    app.state
        .store
        .upsert_connection(&nango_server::store::ConnectionFields {
            provider_config_key: key.into(),
            connection_id: id.into(),
            credentials: Credentials::OAuth2(OAuth2Credentials {
                access_token: token.clone(),
                refresh_token: Some(format!("refresh-of-{id}")),
                expires_at: Some(now + chrono::Duration::hours(1)),
                raw: serde_json::json!({ "access_token": token }),
            }),
            connection_config: config.as_object().unwrap().clone(),
            metadata: metadata.as_object().unwrap().clone(),
            obtained_at: now,
            owner: None,
        })
        .await
        .unwrap();
}

async fn store_bound_connection(app: &TestApp, id: &str, instance_url: &str) {
    store_connection_of(app, "bound", id, instance_url).await;
}

fn proxy_get(app: &TestApp, key: &str, id: &str) -> reqwest::RequestBuilder {
    app.api(reqwest::Method::GET, "/proxy/ping")
        .header("Connection-Id", id)
        .header("Provider-Config-Key", key)
}

/// Security review F11 (E11): with encryption on, a connection's metadata and connection config
/// and a config's provider are bound to the sealed credentials and client secret; edited in the
/// database without the key, the row is refused (the proxy, GET /connection, GET /config), and
/// nothing is sent to the host the edit names. A restart does not launder the edit.
#[tokio::test]
async fn columns_edited_without_the_key_are_refused_and_never_followed() {
    let legit = crate::helpers::FakeApi::start().await;
    let attacker = crate::helpers::FakeApi::start().await;
    let attacker_url = attacker.base_url.clone();
    let mut app = TestApp::spawn_with_templates(
        |s| {
            s.encryption_keys = keys(&[1]);
            s.secret_key = Some(Secret::new(crate::helpers::SECRET_KEY.to_string()));
        },
        move |provider| bound_templates(provider, &attacker_url),
    )
    .await;
    app.create_config("bound", "bound-meta", "read").await;
    app.create_config("other", "bound-meta", "read").await;
    app.create_config("hosted", "bound-meta", "read").await;
    for id in ["meta", "config", "fine"] {
        store_bound_connection(&app, id, &legit.base_url).await;
    }
    store_connection_of(&app, "other", "victim", &legit.base_url).await;
    let ok = proxy_get(&app, "bound", "meta").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        legit.last_request().bearer().as_deref(),
        Some("token-of-meta")
    );

    // Someone with write access to the database, without the key.
    let attacker_meta = format!(r#"{{"instance_url":"{}"}}"#, attacker.base_url);
    execute(
        &app,
        &format!(
            "UPDATE connections SET metadata = '{attacker_meta}' WHERE connection_id = 'meta'"
        ),
    )
    .await;
    execute(
        &app,
        r#"UPDATE connections SET connection_config = '{"params":{"region":"us"}}' WHERE connection_id = 'config'"#,
    )
    .await;
    execute(
        &app,
        "UPDATE provider_configs SET provider = 'bound-evil' WHERE unique_key = 'other'",
    )
    .await;
    // The operator's host values decide where secrets go as much as the provider does.
    execute(
        &app,
        r#"UPDATE provider_configs SET connection_config = '{"hostname":"evil.example"}' WHERE unique_key = 'hosted'"#,
    )
    .await;
    // Whatever was cached is gone; the start's checks must not bind the edits either.
    app.restart().await;

    for id in ["meta", "config"] {
        let response = proxy_get(&app, "bound", id).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{id}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("token-of"), "{body}");
        let response = app.get_connection_response("bound", id).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{id}");
        assert!(!response.text().await.unwrap().contains("token-of"));
    }
    for key in ["other", "hosted"] {
        let config = app.get(&format!("/config/{key}")).await;
        assert_eq!(config.status(), StatusCode::INTERNAL_SERVER_ERROR, "{key}");
    }
    // A connection of the edited config: its config (and so its template) is refused.
    let response = proxy_get(&app, "other", "victim").send().await.unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(
        attacker.request_count(),
        0,
        "a token went to the edited host"
    );

    // Credentials written as plain text (by someone without the key) are refused too.
    execute(
        &app,
        r#"UPDATE connections SET credentials = '{"type":"OAUTH2","access_token":"planted","raw":{}}' WHERE connection_id = 'fine'"#,
    )
    .await;
    app.restart().await;
    let response = app.get_connection_response("bound", "fine").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // Untouched rows, and rows written again through the server, are fine.
    store_bound_connection(&app, "fine", &legit.base_url).await;
    let ok = proxy_get(&app, "bound", "fine").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    app.get_connection("bound", "fine").await;
    assert_eq!(app.get("/config/bound").await.status(), StatusCode::OK);
    assert_eq!(attacker.request_count(), 0);
}

/// A database from before columns were bound: at the first start with the key, values sealed
/// with the old associated data are bound to their rows as they are then (once); a value sealed
/// the old way that appears later is refused, not bound.
#[tokio::test]
async fn values_sealed_before_columns_were_bound_are_bound_once_at_start() {
    let legit = crate::helpers::FakeApi::start().await;
    let attacker_url = "http://127.0.0.1:9".to_string();
    let mut app = TestApp::spawn_with_templates(
        |s| {
            s.encryption_keys = keys(&[1]);
            s.secret_key = Some(Secret::new(crate::helpers::SECRET_KEY.to_string()));
        },
        move |provider| bound_templates(provider, &attacker_url),
    )
    .await;
    app.create_config("bound", "bound-meta", "read").await;
    store_bound_connection(&app, "old", &legit.base_url).await;
    store_bound_connection(&app, "later", &legit.base_url).await;
    let expected = app.get_connection("bound", "old").await["credentials"].clone();

    // Rewrite the rows as an earlier version sealed them, and its key registry value.
    let cipher = Cipher::from_base64_keys(&keys(&[1])).unwrap();
    let legacy = |id: &str| {
        let credentials = serde_json::json!({
            "type": "OAUTH2",
            "access_token": format!("token-of-{id}"),
            "refresh_token": format!("refresh-of-{id}"),
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "raw": { "access_token": format!("token-of-{id}") },
        });
        cipher
            .seal(
                &credentials.to_string(),
                &format!("connections.credentials:bound\u{0}{id}"),
            )
            .unwrap()
    };
    let secret = cipher
        .seal(CLIENT_SECRET, "provider_configs.oauth_client_secret:bound")
        .unwrap();
    let canary = cipher
        .seal("nango encryption key check", "encryption_keys.canary")
        .unwrap();
    execute(
        &app,
        &format!(
            "UPDATE connections SET credentials = '{}' WHERE connection_id = 'old'; \
             UPDATE provider_configs SET oauth_client_secret = '{secret}' WHERE unique_key = 'bound'; \
             UPDATE encryption_keys SET canary = '{canary}'",
            legacy("old")
        ),
    )
    .await;
    app.restart().await;
    let bound = app.get_connection("bound", "old").await;
    assert_eq!(
        bound["credentials"]["access_token"],
        expected["access_token"]
    );
    assert_eq!(app.get("/config/bound").await.status(), StatusCode::OK);
    let ok = proxy_get(&app, "bound", "old").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // Once bound, an old-style value (say, from a backup) is not bound again at a restart.
    execute(
        &app,
        &format!(
            "UPDATE connections SET credentials = '{}' WHERE connection_id = 'later'",
            legacy("later")
        ),
    )
    .await;
    app.restart().await;
    let response = app.get_connection_response("bound", "later").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
