//! A fake OAuth 2 provider: an authorize endpoint that hands out codes bound to the PKCE challenge
//! and redirect URI it was given, and a token endpoint that checks them, records every request and
//! answers as the test configured it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

/// How the provider answers; tests change it between steps with [`FakeProvider::set`].
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `expires_in` of successful token responses (`None`: no expiry).
    pub expires_in: Option<i64>,
    /// Whether successful token responses carry a new `refresh_token`.
    pub issue_refresh_token: bool,
    /// Extra fields of every successful token response.
    pub extra_token_fields: Map<String, Value>,
    /// Answer to `grant_type=authorization_code` instead of tokens: (status, JSON body).
    pub code_failure: Option<(u16, Value)>,
    /// Answer to `grant_type=refresh_token` instead of tokens: (status, JSON body).
    pub refresh_failure: Option<(u16, Value)>,
    /// Wait before answering any token request.
    pub token_delay: Duration,
    /// `/authorize` redirects back with `error=access_denied` instead of a code.
    pub deny: bool,
    /// Extra query parameters on the redirect back to the callback (e.g. QuickBooks' `realmId`).
    pub callback_extra: Vec<(String, String)>,
    /// Token responses as `application/x-www-form-urlencoded` (GitHub's default) instead of JSON.
    pub form_encoded_response: bool,
    /// Tokens and lifetime under this key, as Slack's `authed_user` (a different, "bot" access
    /// token stays at the top level).
    pub nest_tokens_under: Option<String>,
    /// Only HTTP Basic client authentication is accepted (a client secret in the body is refused).
    pub require_basic: bool,
    /// A refresh token works once: each refresh issues a new one and retires the old.
    pub rotate_refresh_tokens: bool,
    /// Reuse detection (with rotation, as OAuth 2.0 Security BCP §4.14 describes): a retired
    /// refresh token presented again revokes the whole grant, so every token issued from the same
    /// authorization stops working.
    pub revoke_grant_on_reuse: bool,
    /// Answer to `grant_type=client_credentials` instead of tokens: (status, JSON body).
    pub client_credentials_failure: Option<(u16, Value)>,
    /// The names this provider gives standard parameters (`client_id` -> `client_key`), in its
    /// authorize endpoint and its token endpoint alike.
    pub param_names: Vec<(String, String)>,
    /// The callback parameter the code is sent back in. Default: `code`.
    pub code_param: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            expires_in: Some(3600),
            issue_refresh_token: true,
            extra_token_fields: Map::new(),
            code_failure: None,
            refresh_failure: None,
            token_delay: Duration::ZERO,
            deny: false,
            callback_extra: Vec::new(),
            form_encoded_response: false,
            nest_tokens_under: None,
            require_basic: false,
            rotate_refresh_tokens: false,
            revoke_grant_on_reuse: false,
            client_credentials_failure: None,
            param_names: Vec::new(),
            code_param: None,
        }
    }
}

/// One request to an authorize endpoint.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The `{sub}` of `/{sub}/authorize`, `None` for `/authorize`.
    pub subdomain: Option<String>,
    pub query: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// Whether the parameter was sent at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to a token endpoint, as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The request path (`/token`, `/refresh`, `/<sub>/token`).
    pub path: String,
    pub subdomain: Option<String>,
    pub method: Method,
    pub headers: HeaderMap,
    pub content_type: String,
    /// The body parsed as JSON (for a JSON content type) or as a form; values as sent.
    pub body: Map<String, Value>,
    /// The body parameter names in the order they were sent (forms only; repeated names kept).
    pub form_names: Vec<String>,
    pub raw_body: String,
}

impl TokenRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    pub fn grant_type(&self) -> &str {
        self.param("grant_type").unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

#[derive(Default)]
struct Inner {
    behaviour: Behaviour,
    counter: u64,
    codes: HashMap<String, IssuedCode>,
    /// Refresh tokens that work now.
    refresh_tokens: HashSet<String>,
    /// Refresh tokens retired by a rotation.
    retired_refresh_tokens: HashSet<String>,
    /// The grant (authorization) every refresh token was issued under.
    grant_of: HashMap<String, u64>,
    revoked_grants: HashSet<u64>,
    /// Retired refresh tokens presented again.
    reuses: usize,
    authorize_requests: Vec<AuthorizeRequest>,
    token_requests: Vec<TokenRequest>,
    /// Requests to `/exchange` (the long-lived token exchange), as query or form pairs.
    exchange_requests: Vec<Vec<(String, String)>>,
    /// Requests to `/extend` (a token renewed with itself), as query pairs.
    extend_requests: Vec<Vec<(String, String)>>,
    /// Access tokens issued by the token endpoint (what `/exchange` accepts).
    issued_access_tokens: HashSet<String>,
    /// Token requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// Handle on a running fake provider; cheap to clone.
#[derive(Clone)]
pub struct FakeProvider {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    /// Starts the provider on an ephemeral port of the current runtime.
    pub async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let provider = FakeProvider {
            base_url,
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/{sub}/authorize", get(authorize_sub))
            .route("/token", any(token))
            .route("/refresh", any(refresh))
            .route("/{sub}/token", any(token_sub))
            .route("/exchange", any(exchange))
            .route("/extend", get(extend))
            .route("/metadata", get(account_metadata))
            .with_state(provider.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        provider
    }

    /// The provider templates the tests use, all pointing at this provider. Written to the file
    /// given to the server as `providers_file`.
    pub fn catalog_yaml(&self) -> String {
        let base = &self.base_url;
        let endpoints =
            format!("  auth_mode: OAUTH2\n  authorization_url: \"{base}/authorize\"\n  token_url: \"{base}/token\"\n");
        format!(
            "# Test providers, all served by the fake provider at {base}.\n\
             fake:\n{endpoints}\
             fake-basic:\n{endpoints}  authorization_method: header\n\
             fake-json:\n{endpoints}  body_format: json\n\
             fake-nopkce:\n{endpoints}  disable_pkce: true\n\
             fake-sub:\n  auth_mode: OAUTH2\n  \
               authorization_url: \"{base}/${{connectionConfig.params.subdomain}}/authorize\"\n  \
               token_url: \"{base}/${{connectionConfig.params.subdomain}}/token\"\n\
             fake-granttype:\n{endpoints}  token_params:\n    grant_type: authorization_code\n    audience: fake-api\n\
             fake-comma:\n{endpoints}  scope_separator: \",\"\n  authorization_params:\n    response_type: code\n    prompt: consent\n    access_type: offline\n\
             fake-meta:\n{endpoints}  redirect_uri_metadata:\n    - realmId\n  token_response_metadata:\n    - instance_url\n\
             fake-cc:\n{endpoints}  token_params:\n    grant_type: client_credentials\n\
             fake-both:\n{endpoints}  authorization_method: both\n\
             fake-slack:\n{endpoints}  token_response:\n    access_token: authed_user.access_token\n    refresh_token: authed_user.refresh_token\n    expires_in: authed_user.expires_in\n\
             fake-millis:\n{endpoints}  token_response:\n    expires_in_unit: milliseconds\n\
             fake-fixed:\n{endpoints}  token_response:\n    default_expires_in: 600\n\
             fake-refresh-url:\n{endpoints}  refresh_url: \"{base}/refresh\"\n  token_params:\n    audience: code-only\n  refresh_params:\n    scope: offline\n\
             fake-headers:\n{endpoints}  token_request_headers:\n    X-Api-Version: \"2024-01-01\"\n\
             fake-defaults:\n{endpoints}  scope_separator: \",\"\n  default_scopes:\n    - read\n    - write\n\
             fake-sub-pattern:\n  auth_mode: OAUTH2\n  \
               authorization_url: \"{base}/${{connectionConfig.params.subdomain}}/authorize\"\n  \
               token_url: \"{base}/${{connectionConfig.params.subdomain}}/token\"\n  \
               connection_config:\n    subdomain:\n      description: Your workspace subdomain\n      pattern: \"[a-z0-9][a-z0-9-]*\"\n      example: acme\n\
             fake-host:\n  auth_mode: OAUTH2\n  \
               authorization_url: \"http://${{connectionConfig.params.hostname}}:{port}/authorize\"\n  \
               token_url: \"http://${{connectionConfig.params.hostname}}:{port}/token\"\n  \
               connection_config:\n    hostname:\n      description: Your server's host name\n\
             fake-cc-mode:\n  auth_mode: OAUTH2_CC\n  token_url: \"{base}/token\"\n  token_params:\n    audience: fake-api\n\
             fake-apikey:\n  auth_mode: API_KEY\n  api_key:\n    header: X-Api-Key\n    pattern: \"sk-[a-z0-9]{{8,}}\"\n    description: Settings > API keys\n\
             fake-basic-auth:\n  auth_mode: BASIC\n\
             fake-basic-nopw:\n  auth_mode: BASIC\n  basic:\n    password_required: false\n",
            port = base.rsplit(':').next().unwrap_or_default(),
        )
    }

    /// Changes how the provider answers from now on.
    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.inner.lock().unwrap().behaviour);
    }

    /// Requests to the long-lived token exchange, as their query or form pairs.
    pub fn exchange_requests(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().unwrap().exchange_requests.clone()
    }

    /// Requests to the renewal of a token with itself, as their query pairs.
    pub fn extend_requests(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().unwrap().extend_requests.clone()
    }

    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.inner.lock().unwrap().authorize_requests.clone()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.inner.lock().unwrap().token_requests.clone()
    }

    /// Token requests with `grant_type=refresh_token`.
    pub fn refresh_requests(&self) -> Vec<TokenRequest> {
        self.token_requests()
            .into_iter()
            .filter(|r| r.grant_type() == "refresh_token")
            .collect()
    }

    /// The most token requests answered at once (counted while `token_delay` is set).
    pub fn max_concurrent_token_requests(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub fn refresh_count(&self) -> usize {
        self.refresh_requests().len()
    }

    /// How many times a retired (rotated) refresh token was presented again.
    pub fn refresh_token_reuses(&self) -> usize {
        self.inner.lock().unwrap().reuses
    }

    /// How many grants reuse detection revoked.
    pub fn revoked_grants(&self) -> usize {
        self.inner.lock().unwrap().revoked_grants.len()
    }

    /// A refresh token of a new grant, as if an authorization had issued it (for connections a
    /// test stores directly).
    pub fn register_refresh_token(&self) -> String {
        let mut inner = self.inner.lock().unwrap();
        inner.counter += 1;
        let token = format!("refresh-registered-{}", inner.counter);
        let grant = inner.counter;
        inner.refresh_tokens.insert(token.clone());
        inner.grant_of.insert(token.clone(), grant);
        token
    }

    /// The last token request (panics if there was none).
    pub fn last_token_request(&self) -> TokenRequest {
        self.token_requests()
            .pop()
            .expect("the fake provider received no token request")
    }
}

async fn authorize(State(p): State<FakeProvider>, RawQuery(q): RawQuery) -> Response {
    handle_authorize(p, None, q)
}

async fn authorize_sub(
    State(p): State<FakeProvider>,
    Path(sub): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    handle_authorize(p, Some(sub), q)
}

fn handle_authorize(p: FakeProvider, subdomain: Option<String>, query: Option<String>) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let request = AuthorizeRequest { subdomain, query };
    let mut inner = p.inner.lock().unwrap();
    inner.authorize_requests.push(request.clone());
    let names = inner.behaviour.param_names.clone();
    let name = |standard: &'static str| wire_name(&names, standard);
    let (Some(redirect_uri), Some(client_id)) = (
        request.param(&name("redirect_uri")),
        request.param(&name("client_id")),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri or client_id").into_response();
    };
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let state = request
        .param(&name("state"))
        .unwrap_or_default()
        .to_string();
    if inner.behaviour.deny {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied access")
            .append_pair("state", &state);
    } else {
        inner.counter += 1;
        let code = format!("code-{}", inner.counter);
        inner.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                code_challenge: request.param("code_challenge").map(String::from),
                code_challenge_method: request.param("code_challenge_method").map(String::from),
            },
        );
        let code_param = inner.behaviour.code_param.clone();
        target
            .query_pairs_mut()
            .append_pair(code_param.as_deref().unwrap_or("code"), &code)
            .append_pair("state", &state)
            .extend_pairs(inner.behaviour.callback_extra.iter());
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn token(
    State(p): State<FakeProvider>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_token(p, "/token".into(), None, method, headers, body).await
}

/// A separate refresh endpoint (templates with `refresh_url`); it answers like `/token`.
async fn refresh(
    State(p): State<FakeProvider>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_token(p, "/refresh".into(), None, method, headers, body).await
}

async fn token_sub(
    State(p): State<FakeProvider>,
    Path(sub): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_token(p, format!("/{sub}/token"), Some(sub), method, headers, body).await
}

/// The parameters of a request's query string and form body, in order.
fn query_and_form_pairs(query: Option<String>, body: &[u8]) -> Vec<(String, String)> {
    let query = query.unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .chain(url::form_urlencoded::parse(body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pair(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Facebook's refusal of an unknown or expired token.
fn invalid_graph_token() -> Response {
    let body = json!({"error": {"message": "Invalid OAuth access token", "code": 190}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The long-lived token exchange (Facebook's `fb_exchange_token` shape): a short-lived access
/// token this provider issued, and the app's secret, for a token that lives 60 days.
async fn exchange(
    State(p): State<FakeProvider>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let pairs = query_and_form_pairs(query, &body);
    let get = |name: &str| pair(&pairs, name);
    let mut inner = p.inner.lock().unwrap();
    inner.exchange_requests.push(pairs.clone());
    let short = get("fb_exchange_token").unwrap_or_default();
    let valid = get("grant_type").as_deref() == Some("fb_exchange_token")
        && get("client_secret").as_deref() == Some(super::CLIENT_SECRET)
        && inner.issued_access_tokens.contains(&short);
    if !valid {
        return invalid_graph_token();
    }
    let body = json!({"access_token": format!("long-{short}"), "token_type": "bearer", "expires_in": 5_184_000});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A token renewed with itself (Instagram's `ig_refresh_token` shape): an access token this
/// provider issued, for a new one that lives 60 days; an unknown token is refused.
async fn extend(State(p): State<FakeProvider>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_and_form_pairs(query, &[]);
    let get = |name: &str| pair(&pairs, name);
    let mut inner = p.inner.lock().unwrap();
    inner.extend_requests.push(pairs.clone());
    let token = get("access_token").unwrap_or_default();
    let valid = get("grant_type").as_deref() == Some("ig_refresh_token")
        && inner.issued_access_tokens.contains(&token);
    if !valid {
        return invalid_graph_token();
    }
    let extended = format!("ext{}-{token}", inner.extend_requests.len());
    inner.issued_access_tokens.insert(extended.clone());
    let body = json!({"access_token": extended, "token_type": "bearer", "expires_in": 5_184_000});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Account metadata read with a token this provider issued, sent as `Authorization: OAuth
/// <token>` (Mailchimp's metadata endpoint): the account's data centre and API host.
async fn account_metadata(State(p): State<FakeProvider>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "))
        .unwrap_or_default();
    if !p.inner.lock().unwrap().issued_access_tokens.contains(token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    }
    let body = json!({
        "dc": "us9",
        "api_endpoint": format!("{}/dc/us9", p.base_url),
        "accounts": [{"id": "acct-1"}, {"id": "acct-2"}],
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(status: u16, code: &str) -> (u16, Value) {
    (status, json!({"error": code}))
}

async fn handle_token(
    p: FakeProvider,
    path: String,
    subdomain: Option<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (parsed, form_names) = if content_type.starts_with("application/json") {
        let map = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        (map, Vec::new())
    } else {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let names = pairs.iter().map(|(k, _)| k.clone()).collect();
        let map = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        (map, names)
    };
    let request = TokenRequest {
        path,
        subdomain,
        method,
        headers,
        content_type,
        body: parsed,
        form_names,
        raw_body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (delay, answer, form_encoded) = {
        let mut inner = p.inner.lock().unwrap();
        inner.token_requests.push(request.clone());
        let answer = decide(&mut inner, &request);
        (
            inner.behaviour.token_delay,
            answer,
            inner.behaviour.form_encoded_response,
        )
    };
    if !delay.is_zero() {
        {
            let mut inner = p.inner.lock().unwrap();
            inner.in_flight += 1;
            inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        }
        tokio::time::sleep(delay).await;
        p.inner.lock().unwrap().in_flight -= 1;
    }
    let (status, body) = answer;
    let status = StatusCode::from_u16(status).unwrap();
    if form_encoded {
        // GitHub's shape: flat string values, no JSON content type.
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in body.as_object().unwrap() {
            match v {
                Value::String(s) => form.append_pair(k, s),
                other => form.append_pair(k, &other.to_string()),
            };
        }
        return (
            status,
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            form.finish(),
        )
            .into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The client id and secret the request authenticated with: HTTP Basic (form-decoded, RFC 6749
/// §2.3.1) or the body.
fn presented_client(
    request: &TokenRequest,
    names: &[(String, String)],
) -> (Option<String>, Option<String>) {
    if let Some(basic) = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .unwrap_or_default();
        let Some((id, secret)) = decoded.split_once(':') else {
            return (None, None);
        };
        let form_decode = |v: &str| {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return (form_decode(id), form_decode(secret));
    }
    (
        request
            .param(&wire_name(names, "client_id"))
            .map(String::from),
        request
            .param(&wire_name(names, "client_secret"))
            .map(String::from),
    )
}

/// The name the provider gives a standard parameter.
fn wire_name(names: &[(String, String)], standard: &str) -> String {
    names
        .iter()
        .find(|(k, _)| k == standard)
        .map_or_else(|| standard.to_string(), |(_, v)| v.clone())
}

fn decide(inner: &mut Inner, request: &TokenRequest) -> (u16, Value) {
    if inner.behaviour.require_basic
        && (request.header("authorization").is_none() || request.param("client_secret").is_some())
    {
        return error(401, "invalid_client");
    }
    match request.grant_type() {
        "authorization_code" => {
            if let Some(failure) = inner.behaviour.code_failure.clone() {
                return failure;
            }
            let names = inner.behaviour.param_names.clone();
            let code = request.param(&wire_name(&names, "code"));
            let Some(issued) = code.and_then(|c| inner.codes.remove(c)) else {
                return error(400, "invalid_grant");
            };
            if request.param(&wire_name(&names, "redirect_uri"))
                != Some(issued.redirect_uri.as_str())
            {
                return error(400, "invalid_grant");
            }
            if presented_client(request, &names).0.as_deref() != Some(issued.client_id.as_str()) {
                return error(401, "invalid_client");
            }
            if let Some(challenge) = &issued.code_challenge {
                if issued.code_challenge_method.as_deref() != Some("S256") {
                    return error(400, "invalid_request");
                }
                let Some(verifier) = request.param("code_verifier") else {
                    return error(400, "invalid_grant");
                };
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return error(400, "invalid_grant");
                }
            }
            issue_tokens(inner, None)
        }
        "refresh_token" => {
            if let Some(failure) = inner.behaviour.refresh_failure.clone() {
                return failure;
            }
            let rotate =
                inner.behaviour.rotate_refresh_tokens || inner.behaviour.revoke_grant_on_reuse;
            match request.param("refresh_token") {
                Some(token) if inner.refresh_tokens.contains(token) => {
                    let grant = inner.grant_of.get(token).copied();
                    if rotate {
                        inner.refresh_tokens.remove(token);
                        inner.retired_refresh_tokens.insert(token.to_string());
                    }
                    issue_tokens(inner, grant)
                }
                Some(token) if inner.retired_refresh_tokens.contains(token) => {
                    inner.reuses += 1;
                    if inner.behaviour.revoke_grant_on_reuse {
                        if let Some(grant) = inner.grant_of.get(token).copied() {
                            inner.revoked_grants.insert(grant);
                            let grant_of = &inner.grant_of;
                            let revoked: Vec<String> = inner
                                .refresh_tokens
                                .iter()
                                .filter(|t| grant_of.get(*t) == Some(&grant))
                                .cloned()
                                .collect();
                            for t in revoked {
                                inner.refresh_tokens.remove(&t);
                            }
                        }
                    }
                    error(400, "invalid_grant")
                }
                _ => error(400, "invalid_grant"),
            }
        }
        "client_credentials" => {
            if let Some(failure) = inner.behaviour.client_credentials_failure.clone() {
                return failure;
            }
            let (id, secret) = presented_client(request, &inner.behaviour.param_names);
            if id.as_deref() != Some(super::CLIENT_ID)
                || secret.as_deref() != Some(super::CLIENT_SECRET)
            {
                return error(401, "invalid_client");
            }
            // No refresh token in a client credentials grant (RFC 6749 §4.4.3).
            let (status, mut body) = issue_tokens(inner, None);
            if let Some(obj) = body.as_object_mut() {
                if let Some(Value::String(refresh)) = obj.remove("refresh_token") {
                    inner.refresh_tokens.remove(&refresh);
                }
            }
            (status, body)
        }
        _ => error(400, "unsupported_grant_type"),
    }
}

/// Tokens of `grant` (a new grant when `None`: an authorization).
fn issue_tokens(inner: &mut Inner, grant: Option<u64>) -> (u16, Value) {
    inner.counter += 1;
    let n = inner.counter;
    let grant = grant.unwrap_or(n);
    inner.issued_access_tokens.insert(format!("access-{n}"));
    let mut body = json!({
        "access_token": format!("access-{n}"),
        "token_type": "bearer",
        "scope": "read",
    });
    if let Some(expires_in) = inner.behaviour.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    if inner.behaviour.issue_refresh_token {
        let refresh = format!("refresh-{n}");
        inner.refresh_tokens.insert(refresh.clone());
        inner.grant_of.insert(refresh.clone(), grant);
        body["refresh_token"] = json!(refresh);
    }
    for (k, v) in &inner.behaviour.extra_token_fields {
        body[k] = v.clone();
    }
    if let Some(key) = inner.behaviour.nest_tokens_under.clone() {
        let mut nested = Map::new();
        for field in ["access_token", "refresh_token", "expires_in"] {
            if let Some(v) = body.as_object_mut().unwrap().remove(field) {
                nested.insert(field.into(), v);
            }
        }
        body["access_token"] = json!(format!("bot-{n}"));
        body["ok"] = json!(true);
        body[key.as_str()] = Value::Object(nested);
    }
    (200, body)
}
