//! A stand-in for a current Nango server's API, for the import over HTTP: `GET /integrations`,
//! `GET /integrations/:key?include=credentials`, `GET /connections?limit=&page=` and
//! `GET /connections/:id?provider_config_key=&refresh_token=`, in the shapes of
//! `reference/nango-now-api.md`, behind a Bearer secret key. It holds what the test gives it,
//! counts requests per path, and can be told to fail some requests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// An integration; `credentials: None` for one without an OAuth app (API key providers).
#[derive(Debug, Clone)]
pub struct FakeIntegration {
    pub unique_key: String,
    pub provider: String,
    pub display_name: String,
    /// `{type, client_id, client_secret, scopes, webhook_secret}` as served.
    pub credentials: Option<Value>,
}

impl FakeIntegration {
    /// An OAuth 2 integration with these scopes (a string or a list, as served).
    pub fn oauth2(key: &str, provider: &str, client_id: &str, secret: &str, scopes: Value) -> Self {
        FakeIntegration {
            unique_key: key.into(),
            provider: provider.into(),
            display_name: format!("{provider} ({key})"),
            credentials: Some(json!({
                "type": "OAUTH2",
                "client_id": client_id,
                "client_secret": secret,
                "scopes": scopes,
                "webhook_secret": null,
            })),
        }
    }

    pub fn without_credentials(key: &str, provider: &str) -> Self {
        FakeIntegration {
            unique_key: key.into(),
            provider: provider.into(),
            display_name: provider.into(),
            credentials: None,
        }
    }
}

/// A connection as current Nango serves it in full.
#[derive(Debug, Clone)]
pub struct FakeConnection {
    pub provider_config_key: String,
    pub connection_id: String,
    pub credentials: Value,
    pub connection_config: Value,
    pub metadata: Value,
    /// `{id, email, display_name, tags, organization}` or null.
    pub end_user: Value,
    pub tags: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl FakeConnection {
    /// An OAuth 2 connection with a refresh token, no end user and no tags.
    pub fn oauth2(key: &str, id: &str) -> Self {
        FakeConnection {
            provider_config_key: key.into(),
            connection_id: id.into(),
            credentials: json!({
                "type": "OAUTH2",
                "access_token": format!("access-{id}"),
                "refresh_token": format!("refresh-{id}"),
                "expires_at": "2031-01-01T00:00:00.000Z",
                "raw": {"access_token": format!("access-{id}"), "token_type": "bearer"},
            }),
            connection_config: json!({}),
            metadata: json!({}),
            end_user: Value::Null,
            tags: json!({}),
            created_at: "2025-03-01T10:00:00.000Z".into(),
            updated_at: "2025-03-02T10:00:00.000Z".into(),
        }
    }
}

#[derive(Default)]
struct Inner {
    integrations: Vec<FakeIntegration>,
    connections: Vec<FakeConnection>,
    hits: HashMap<String, usize>,
    /// Statuses the next requests to a path get, in order, before normal answers.
    failures: HashMap<String, VecDeque<u16>>,
    /// Listed, but their detail answers this status (as a connection deleted meanwhile).
    broken: HashMap<String, u16>,
    /// A version without paging: `limit`/`page` are refused as unknown parameters.
    no_paging: bool,
}

#[derive(Clone)]
pub struct FakeNango {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    secret_key: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeNango {
    /// A server that takes `Bearer <secret_key>`.
    pub async fn start(secret_key: &str) -> FakeNango {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Nango");
        let nango = FakeNango {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            secret_key: secret_key.into(),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/integrations", get(list_integrations))
            .route("/integrations/{key}", get(get_integration))
            .route("/connections", get(list_connections))
            .route("/connections/{id}", get(get_connection))
            .fallback(|| async { not_found("Unknown route.") })
            .layer(middleware::from_fn_with_state(nango.clone(), gate))
            .with_state(nango.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        nango
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.base_url).unwrap()
    }

    pub fn add_integration(&self, integration: FakeIntegration) {
        self.inner.lock().unwrap().integrations.push(integration);
    }

    pub fn add_connection(&self, connection: FakeConnection) {
        self.inner.lock().unwrap().connections.push(connection);
    }

    /// Requests received on this path (as sent, percent-encoded), whatever they were answered.
    pub fn hits(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The next requests to `path` get these statuses, in order.
    pub fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .failures
            .entry(path.into())
            .or_default()
            .extend(statuses);
    }

    /// The connection stays listed but its detail answers `status` from now on.
    pub fn break_connection(&self, connection_id: &str, status: u16) {
        self.inner
            .lock()
            .unwrap()
            .broken
            .insert(connection_id.into(), status);
    }

    /// Acts as a version whose `GET /connections` knows no `limit`/`page`.
    pub fn without_paging(&self) {
        self.inner.lock().unwrap().no_paging = true;
    }
}

/// Current Nango's error envelope.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", message)
}

fn bad_query(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_query_params", message)
}

/// Counts the request, answers a scripted failure if one is due, then checks the key.
async fn gate(State(nango): State<FakeNango>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let scripted = {
        let mut inner = nango.inner.lock().unwrap();
        *inner.hits.entry(path.clone()).or_default() += 1;
        inner.failures.get_mut(&path).and_then(VecDeque::pop_front)
    };
    if let Some(status) = scripted {
        let status = StatusCode::from_u16(status).unwrap();
        return error(status, "server_error", "Scripted failure.");
    }
    let expected = format!("Bearer {}", nango.secret_key);
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unknown_account",
            "Authentication failed. The provided secret key does not match any account.",
        );
    }
    next.run(request).await
}

fn integration_json(integration: &FakeIntegration) -> Value {
    json!({
        "unique_key": integration.unique_key,
        "provider": integration.provider,
        "display_name": integration.display_name,
        "logo": format!("https://logos.example/{}.svg", integration.provider),
        "forward_webhooks": false,
        "created_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-02T00:00:00.000Z",
    })
}

async fn list_integrations(State(nango): State<FakeNango>) -> Response {
    let inner = nango.inner.lock().unwrap();
    let data: Vec<Value> = inner.integrations.iter().map(integration_json).collect();
    Json(json!({"data": data})).into_response()
}

async fn get_integration(
    State(nango): State<FakeNango>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = nango.inner.lock().unwrap();
    let Some(integration) = inner.integrations.iter().find(|i| i.unique_key == key) else {
        return not_found("Integration does not exist.");
    };
    let mut data = integration_json(integration);
    for include in query
        .get("include")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        match include {
            "" => {}
            "credentials" => {
                data["credentials"] = integration.credentials.clone().unwrap_or(Value::Null);
            }
            "webhook" => data["webhook_url"] = Value::Null,
            _ => return bad_query("Unknown include."),
        }
    }
    Json(json!({"data": data})).into_response()
}

fn provider_of(inner: &Inner, key: &str) -> Option<String> {
    inner
        .integrations
        .iter()
        .find(|i| i.unique_key == key)
        .map(|i| i.provider.clone())
}

async fn list_connections(
    State(nango): State<FakeNango>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = nango.inner.lock().unwrap();
    let number = |name: &str, min: usize, max: usize, default: usize| match query.get(name) {
        None => Ok(default),
        Some(_) if inner.no_paging => Err(format!("Unknown parameter '{name}'.")),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("Invalid '{name}'.")),
    };
    let (limit, page) = match (
        number("limit", 1, 2000, 100),
        number("page", 0, 1_000_000, 0),
    ) {
        (Ok(limit), Ok(page)) => (limit, page),
        (Err(message), _) | (_, Err(message)) => return bad_query(&message),
    };
    let limit = if inner.no_paging { usize::MAX } else { limit };
    let connections: Vec<Value> = inner
        .connections
        .iter()
        .enumerate()
        .skip(page.saturating_mul(limit))
        .take(limit)
        .map(|(index, c)| {
            json!({
                "id": index + 1,
                "connection_id": c.connection_id,
                "provider_config_key": c.provider_config_key,
                "provider": provider_of(&inner, &c.provider_config_key),
                "created": c.created_at,
                "metadata": c.metadata,
                "errors": [],
                "end_user": c.end_user,
                "tags": c.tags,
            })
        })
        .collect();
    Json(json!({"connections": connections})).into_response()
}

async fn get_connection(
    State(nango): State<FakeNango>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    const KNOWN: [&str; 4] = [
        "provider_config_key",
        "refresh_token",
        "force_refresh",
        "refresh_github_app_jwt_token",
    ];
    if let Some(name) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return bad_query(&format!("Unknown parameter '{name}'."));
    }
    for flag in &KNOWN[1..] {
        if query
            .get(*flag)
            .is_some_and(|v| v != "true" && v != "false")
        {
            return bad_query(&format!("Invalid '{flag}'."));
        }
    }
    let Some(key) = query.get("provider_config_key") else {
        return bad_query("Missing 'provider_config_key'.");
    };
    let inner = nango.inner.lock().unwrap();
    let Some(provider) = provider_of(&inner, key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_provider_config",
            "Provider config not found.",
        );
    };
    if let Some(status) = inner.broken.get(&id) {
        return error(
            StatusCode::from_u16(*status).unwrap(),
            "not_found",
            "Failed to find connection.",
        );
    }
    let Some((index, c)) = inner
        .connections
        .iter()
        .enumerate()
        .find(|(_, c)| c.connection_id == id && c.provider_config_key == *key)
    else {
        return not_found("Failed to find connection.");
    };
    let mut credentials = c.credentials.clone();
    if query.get("refresh_token").map(String::as_str) != Some("true") {
        if let Some(credentials) = credentials.as_object_mut() {
            credentials.remove("refresh_token");
        }
    }
    Json(json!({
        "id": index + 1,
        "connection_id": c.connection_id,
        "provider_config_key": c.provider_config_key,
        "provider": provider,
        "errors": [],
        "end_user": c.end_user,
        "tags": c.tags,
        "metadata": c.metadata,
        "connection_config": c.connection_config,
        "webhook_url_override": null,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_fetched_at": "2025-04-01T00:00:00.000Z",
        "credentials": credentials,
    }))
    .into_response()
}
