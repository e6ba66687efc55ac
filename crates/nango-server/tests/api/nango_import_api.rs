//! `import:nango` over HTTP (`nango_import::api`): reading a Nango server's configs and
//! connections through its API, 0.9 (this server, which speaks it) and current (this server,
//! and a stand-in with paging, end users and failures), and the errors when it cannot.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use nango_server::nango_import::api::{
    read_nango_api, read_nango_api_with, ApiOptions, ApiVersion,
};
use nango_server::nango_import::source::{SourceError, SourceLayout, SourceSnapshot};
use nango_server::store::ImportKind;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::helpers::fake_nango::{FakeConnection, FakeIntegration, FakeNango};
use crate::helpers::{FakeApi, TestApp, CLIENT_ID, CLIENT_SECRET, SECRET_KEY};

/// Records every `progress(done, total)` call.
#[derive(Default)]
struct Progress(Mutex<Vec<(usize, usize)>>);

impl Progress {
    fn calls(&self) -> Vec<(usize, usize)> {
        self.0.lock().unwrap().clone()
    }

    /// Asserts one call per connection, counting up to `total`.
    fn assert_counted(&self, total: usize) {
        let expected: Vec<(usize, usize)> = (1..=total).map(|done| (done, total)).collect();
        assert_eq!(self.calls(), expected);
    }
}

async fn read(
    url: &Url,
    key: &str,
    version: ApiVersion,
) -> (Result<SourceSnapshot, SourceError>, Progress) {
    let progress = Progress::default();
    let report = |done, total| progress.0.lock().unwrap().push((done, total));
    let result = read_nango_api(url, key, version, &report).await;
    (result, progress)
}

fn connection<'a>(
    snapshot: &'a SourceSnapshot,
    id: &str,
) -> &'a nango_server::nango_import::source::SourceConnection {
    snapshot
        .connections
        .iter()
        .find(|c| c.connection_id == id)
        .unwrap_or_else(|| panic!("no connection {id} in {:?}", snapshot.connections))
}

fn ids(snapshot: &SourceSnapshot) -> Vec<&str> {
    snapshot
        .connections
        .iter()
        .map(|c| c.connection_id.as_str())
        .collect()
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc),
    )
}

/// An id that needs percent-encoding in a path and in a query.
const ODD_ID: &str = "imp 1/ü?x#y&z";

/// This server with a config, a connection made by the OAuth flow and one imported with an
/// end user and tags.
async fn our_server_with_connections() -> TestApp {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "read write").await;
    app.authorize("fake-1", "flow-1").await;
    let (status, body) = app
        .send_json(
            Method::POST,
            "/connections",
            Some(json!({
                "provider_config_key": "fake-1",
                "connection_id": ODD_ID,
                "credentials": {
                    "type": "OAUTH2",
                    "access_token": "imported-access",
                    "refresh_token": "imported-refresh",
                    "expires_at": "2099-01-01T00:00:00.000Z",
                },
                "metadata": {"team": "a"},
                "end_user": {
                    "id": "u-7",
                    "email": "u7@example.com",
                    "organization": {"id": "org-1", "display_name": "Org One"},
                },
                "tags": {"plan": "pro"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app
}

#[tokio::test]
async fn our_server_is_read_as_nango_0_9_when_asked_and_as_current_nango_by_default() {
    let app = our_server_with_connections().await;
    let url = Url::parse(&app.address).unwrap();

    let (old, progress) = read(&url, SECRET_KEY, ApiVersion::V09).await;
    let old = old.unwrap();
    assert_eq!(old.layout, SourceLayout::Api09);
    assert_eq!(old.environment, None);
    assert!(old.unreadable.is_empty(), "{:?}", old.unreadable);
    assert_eq!(old.configs.len(), 1, "{:?}", old.configs);
    let config = &old.configs[0];
    assert_eq!(config.unique_key, "fake-1");
    assert_eq!(config.provider, "fake");
    assert_eq!(config.client_id, CLIENT_ID);
    assert_eq!(config.client_secret, CLIENT_SECRET);
    assert_eq!(config.scopes, "read,write");
    assert_eq!(config.display_name, None);
    assert_eq!(ids(&old), ["flow-1", ODD_ID]);
    progress.assert_counted(2);
    let flow = connection(&old, "flow-1");
    assert_eq!(flow.provider_config_key, "fake-1");
    let served = app.get_connection("fake-1", "flow-1").await;
    assert_eq!(flow.credentials, served["credentials"]);
    assert!(flow.credentials["refresh_token"].is_string());
    assert!(flow.created_at.is_some() && flow.updated_at.is_some());
    assert_eq!(flow.end_user, None);
    assert!(flow.tags.is_empty());
    let imported = connection(&old, ODD_ID);
    assert_eq!(imported.credentials["access_token"], "imported-access");
    assert_eq!(imported.credentials["refresh_token"], "imported-refresh");
    assert_eq!(
        Value::Object(imported.metadata.clone()),
        json!({"team": "a"})
    );
    // The 0.9 dialect has no end users.
    assert_eq!(imported.end_user, None);
    // Fresh tokens: reading them made the source refresh nothing.
    assert_eq!(app.provider.refresh_count(), 0);

    let (current, progress) = read(&url, SECRET_KEY, ApiVersion::Auto).await;
    let current = current.unwrap();
    assert_eq!(current.layout, SourceLayout::ApiCurrent);
    assert!(current.unreadable.is_empty(), "{:?}", current.unreadable);
    assert_eq!(current.configs.len(), 1);
    let config = &current.configs[0];
    assert_eq!(
        (config.unique_key.as_str(), config.provider.as_str()),
        ("fake-1", "fake")
    );
    assert_eq!(config.client_id, CLIENT_ID);
    assert_eq!(config.client_secret, CLIENT_SECRET);
    assert_eq!(config.scopes, "read,write");
    assert!(config.display_name.is_some());
    assert_eq!(ids(&current), ["flow-1", ODD_ID]);
    progress.assert_counted(2);
    let flow = connection(&current, "flow-1");
    assert_eq!(flow.credentials, served["credentials"]);
    assert_eq!(flow.end_user, None);
    let imported = connection(&current, ODD_ID);
    assert_eq!(imported.credentials["access_token"], "imported-access");
    // Current Nango leaves it out unless asked: it was asked.
    assert_eq!(imported.credentials["refresh_token"], "imported-refresh");
    assert_eq!(
        Value::Object(imported.metadata.clone()),
        json!({"team": "a"})
    );
    let end_user = Value::Object(imported.end_user.clone().expect("an end user"));
    assert_eq!(end_user["id"], "u-7");
    assert_eq!(end_user["email"], "u7@example.com");
    assert_eq!(
        end_user["organization"],
        json!({"id": "org-1", "display_name": "Org One"})
    );
    assert!(
        end_user.as_object().unwrap().values().all(|v| !v.is_null()),
        "{end_user}"
    );
    assert_eq!(imported.tags["plan"], "pro");
    assert_eq!(imported.created_at, old.connections[1].created_at);
    assert_eq!(app.provider.refresh_count(), 0);

    // Asked for current Nango explicitly: the same.
    let (explicit, _) = read(&url, SECRET_KEY, ApiVersion::Current).await;
    assert_eq!(ids(&explicit.unwrap()), ["flow-1", ODD_ID]);
}

/// A current Nango with three integrations (one without an OAuth app) and seven connections,
/// one of which cannot be read.
async fn stand_in() -> FakeNango {
    let nango = FakeNango::start("sk-current-123").await;
    nango.add_integration(FakeIntegration::oauth2(
        "github-prod",
        "github",
        "gh-id",
        "gh-secret",
        json!(["repo", "user"]),
    ));
    nango.add_integration(FakeIntegration::oauth2(
        "slack",
        "slack",
        "sl-id",
        "sl-secret",
        json!("chat:write,users:read"),
    ));
    nango.add_integration(FakeIntegration::without_credentials(
        "stripe-keys",
        "stripe",
    ));
    for n in 0..4 {
        nango.add_connection(FakeConnection::oauth2("github-prod", &format!("c-{n}")));
    }
    let mut owned = FakeConnection::oauth2("slack", "user 1/ü");
    owned.end_user = json!({
        "id": "u1",
        "email": null,
        "display_name": "Ann",
        "tags": {"team": "a"},
        "organization": {"id": "o1", "display_name": null},
    });
    owned.tags = json!({"env": "prod", "end_user_id": "u1"});
    owned.connection_config = json!({"subdomain": "acme"});
    owned.metadata = json!({"realmId": "123"});
    nango.add_connection(owned);
    nango.add_connection(FakeConnection::oauth2("slack", "gone"));
    nango.break_connection("gone", 404);
    let mut no_org = FakeConnection::oauth2("slack", "no-org");
    no_org.end_user = json!({"id": "u2", "email": "u2@example.com", "organization": null});
    nango.add_connection(no_org);
    nango
}

#[tokio::test]
async fn a_current_nango_is_read_page_by_page_with_end_users_and_what_it_cannot_answer() {
    let nango = stand_in().await;
    // Failures in passing are tried again.
    nango.fail_next("/integrations", &[503]);
    nango.fail_next("/connections", &[502]);
    let progress = Progress::default();
    let report = |done, total| progress.0.lock().unwrap().push((done, total));
    let options = ApiOptions {
        page_size: 3,
        ..ApiOptions::new(ApiVersion::Auto)
    };
    let snapshot = read_nango_api_with(&nango.url(), "sk-current-123", options, &report)
        .await
        .unwrap();

    assert_eq!(snapshot.layout, SourceLayout::ApiCurrent);
    assert_eq!(nango.hits("/integrations"), 2);
    // Pages of 3, 3 and 1 (plus the failed first try); each connection read once.
    assert_eq!(nango.hits("/connections"), 4);
    assert_eq!(nango.hits("/connections/c-0"), 1);
    assert_eq!(nango.hits("/connections/user%201%2F%C3%BC"), 1);
    assert_eq!(nango.hits("/integrations/stripe-keys"), 1);
    // No 0.9 probe once current Nango answered.
    assert_eq!(nango.hits("/config"), 0);
    progress.assert_counted(7);

    let configs: Vec<(&str, &str, &str, &str, &str)> = snapshot
        .configs
        .iter()
        .map(|c| {
            (
                c.unique_key.as_str(),
                c.provider.as_str(),
                c.client_id.as_str(),
                c.client_secret.as_str(),
                c.scopes.as_str(),
            )
        })
        .collect();
    assert_eq!(
        configs,
        [
            ("github-prod", "github", "gh-id", "gh-secret", "repo,user"),
            (
                "slack",
                "slack",
                "sl-id",
                "sl-secret",
                "chat:write,users:read"
            ),
            ("stripe-keys", "stripe", "", "", ""),
        ]
    );
    assert_eq!(
        snapshot.configs[0].display_name.as_deref(),
        Some("github (github-prod)")
    );

    assert_eq!(
        ids(&snapshot),
        ["c-0", "c-1", "c-2", "c-3", "user 1/ü", "no-org"]
    );
    assert_eq!(snapshot.unreadable.len(), 1, "{:?}", snapshot.unreadable);
    let gone = &snapshot.unreadable[0];
    assert_eq!(gone.kind, ImportKind::Connection);
    assert_eq!(
        (
            gone.provider_config_key.as_str(),
            gone.connection_id.as_str()
        ),
        ("slack", "gone")
    );
    assert!(gone.reason.contains("404"), "{}", gone.reason);
    assert!(
        gone.reason.contains("Failed to find connection."),
        "{}",
        gone.reason
    );

    let plain = connection(&snapshot, "c-0");
    assert_eq!(plain.provider_config_key, "github-prod");
    assert_eq!(plain.credentials["access_token"], "access-c-0");
    assert_eq!(plain.credentials["refresh_token"], "refresh-c-0");
    assert_eq!(plain.end_user, None);
    assert!(plain.tags.is_empty());
    assert_eq!(plain.created_at, time("2025-03-01T10:00:00.000Z"));
    assert_eq!(plain.updated_at, time("2025-03-02T10:00:00.000Z"));

    let owned = connection(&snapshot, "user 1/ü");
    assert_eq!(
        owned.end_user.clone().map(Value::Object),
        Some(json!({
            "id": "u1",
            "display_name": "Ann",
            "tags": {"team": "a"},
            "organization": {"id": "o1"},
        }))
    );
    assert_eq!(
        Value::Object(owned.tags.clone()),
        json!({"env": "prod", "end_user_id": "u1"})
    );
    assert_eq!(
        Value::Object(owned.connection_config.clone()),
        json!({"subdomain": "acme"})
    );
    assert_eq!(
        Value::Object(owned.metadata.clone()),
        json!({"realmId": "123"})
    );
    assert_eq!(
        connection(&snapshot, "no-org")
            .end_user
            .clone()
            .map(Value::Object),
        Some(json!({"id": "u2", "email": "u2@example.com"}))
    );
}

#[tokio::test]
async fn paging_stops_at_an_empty_page_and_a_server_without_paging_is_read_whole() {
    let nango = FakeNango::start("sk").await;
    nango.add_integration(FakeIntegration::oauth2(
        "gh",
        "github",
        "id",
        "secret",
        json!(""),
    ));
    for n in 0..4 {
        nango.add_connection(FakeConnection::oauth2("gh", &format!("c-{n}")));
    }
    let options = ApiOptions {
        page_size: 2,
        ..ApiOptions::new(ApiVersion::Current)
    };
    let snapshot = read_nango_api_with(&nango.url(), "sk", options, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(ids(&snapshot), ["c-0", "c-1", "c-2", "c-3"]);
    // 2, 2, then an empty page.
    assert_eq!(nango.hits("/connections"), 3);

    let old = FakeNango::start("sk").await;
    old.add_integration(FakeIntegration::oauth2(
        "gh",
        "github",
        "id",
        "secret",
        json!(""),
    ));
    for n in 0..4 {
        old.add_connection(FakeConnection::oauth2("gh", &format!("c-{n}")));
    }
    old.without_paging();
    let snapshot = read_nango_api_with(&old.url(), "sk", options, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(ids(&snapshot), ["c-0", "c-1", "c-2", "c-3"]);
    // Refused with `limit`, then asked for everything.
    assert_eq!(old.hits("/connections"), 2);
}

/// Asserts an `Unreachable` saying the secret key was refused, without the key.
fn assert_key_refused(result: Result<SourceSnapshot, SourceError>, key: &str) {
    let error = result.expect_err("a refused key must fail the read");
    let message = error.to_string();
    assert!(matches!(error, SourceError::Unreachable(_)), "{error:?}");
    assert!(message.contains("secret key"), "{message}");
    assert!(!message.contains(key), "the key is in {message}");
    assert!(!format!("{error:?}").contains(key));
}

#[tokio::test]
async fn a_wrong_secret_key_is_reported_without_its_value() {
    let nango = stand_in().await;
    let wrong = "sk-wrong-value-42";
    for version in [ApiVersion::Auto, ApiVersion::Current] {
        let (result, progress) = read(&nango.url(), wrong, version).await;
        assert_key_refused(result, wrong);
        assert!(progress.calls().is_empty());
    }
    assert_eq!(nango.hits("/connections"), 0);

    let app = our_server_with_connections().await;
    let url = Url::parse(&app.address).unwrap();
    for version in [ApiVersion::Auto, ApiVersion::V09, ApiVersion::Current] {
        let (result, _) = read(&url, wrong, version).await;
        assert_key_refused(result, wrong);
    }
}

#[tokio::test]
async fn no_server_and_a_server_that_is_not_nango_are_told_apart() {
    // A port nothing listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{address}/")).unwrap();
    let (result, _) = read(&url, "sk-abc-secret", ApiVersion::Auto).await;
    match result {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains(&address.to_string()), "{message}");
            assert!(!message.contains("sk-abc-secret"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // Something that answers 200 JSON to everything, but not Nango's.
    let echo = FakeApi::start().await;
    let url = Url::parse(&echo.base_url).unwrap();
    let (result, _) = read(&url, "sk-abc-secret", ApiVersion::Auto).await;
    match result {
        Err(SourceError::NotNango(message)) => {
            assert!(message.contains("/integrations"), "{message}");
            assert!(message.contains("/config"), "{message}");
        }
        other => panic!("expected NotNango, got {other:?}"),
    }
    // The key went in the Authorization header only.
    for request in echo.requests() {
        assert!(!request.path.contains("sk-abc"));
        assert!(request
            .query
            .as_deref()
            .is_none_or(|q| !q.contains("sk-abc")));
    }
    let (result, _) = read(&url, "k", ApiVersion::V09).await;
    assert!(
        matches!(result, Err(SourceError::NotNango(_))),
        "{result:?}"
    );

    // The CLI may run a read on any runtime thread.
    fn assert_send<T: Send>(_: &T) {}
    let future = read_nango_api(&url, "k", ApiVersion::Auto, &|_, _| {});
    assert_send(&future);
    let result = future.await;
    assert!(
        matches!(result, Err(SourceError::NotNango(_))),
        "{result:?}"
    );
}
