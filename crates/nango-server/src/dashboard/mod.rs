//! The web dashboard at `/dashboard`: integrations (provider configs) and connections, behind
//! the secret key. Server-rendered HTML (maud) with two small scripts, all embedded in the binary.
//!
//! Every state-changing request is a POST carrying the session's CSRF token (see `session`);
//! pages forbid inline script (`Content-Security-Policy`). The handlers reuse the REST API's
//! validation and code paths (config fields, connection delete with its webhook, connect
//! sessions) and the store directly. These routes are not part of the REST API's OpenAPI
//! document.

pub mod assets;
mod pages;
pub mod session;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use maud::Markup;
use serde_json::{json, Map, Value};

use crate::configs::{config_fields, normalise_scopes};
use crate::credentials::{Credentials, FreshError, Freshness};
use crate::error::ApiError;
use crate::http::{id_problem, parse_query, query_value};
use crate::providers::AuthMode;
use crate::store::{ConnectionHealth, ProviderConfig, StoreError};
use crate::AppState;

use pages::{ConnectionRow, Ctx, Nav, Notice, NoticeKind, Status};
use session::Session;

const LOGIN: &str = "/dashboard/login";
const HOME: &str = "/dashboard";

/// No inline script or style, nothing from elsewhere, no framing, forms only to ourselves.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   object-src 'none'";

pub fn routes() -> Router<AppState> {
    let connection = "/dashboard/integrations/{key}/connections/{connection_id}";
    Router::new()
        .route(HOME, get(integrations_page))
        .route("/dashboard/", get(|| async { Redirect::to(HOME) }))
        .route(LOGIN, get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/assets/{name}", get(assets::serve))
        .route("/dashboard/new-integration", get(new_integration_page))
        .route(
            "/dashboard/integrations",
            get(|| async { Redirect::to(HOME) }).post(create_integration),
        )
        .route(
            "/dashboard/integrations/{key}",
            get(integration_page).post(update_integration),
        )
        .route(
            "/dashboard/integrations/{key}/edit",
            get(edit_integration_page),
        )
        .route(
            "/dashboard/integrations/{key}/delete",
            get(confirm_delete_integration).post(delete_integration),
        )
        .route(
            "/dashboard/integrations/{key}/connect-session",
            post(create_test_connect_session),
        )
        .route("/dashboard/connections", get(connections_page))
        .route(connection, get(connection_page))
        .route(&format!("{connection}/refresh"), post(refresh_connection))
        .route(
            &format!("{connection}/delete"),
            get(confirm_delete_connection).post(delete_connection),
        )
        .route(&format!("{connection}/reveal"), post(reveal_secret))
}

// --- access ------------------------------------------------------------------------------------

/// A request with a session: without one, pages redirect (303) to the login form.
struct Dash {
    session: Session,
    open: bool,
    csrf: String,
}

impl Dash {
    fn ctx(&self, nav: Nav) -> Ctx<'_> {
        Ctx {
            csrf: &self.csrf,
            open: self.open,
            nav,
        }
    }

    /// An HTML page of this session (with its `Set-Cookie` on an open dashboard's first visit).
    fn page(&self, status: StatusCode, markup: Markup) -> Response {
        let mut response = html(status, markup);
        if let Some(cookie) = &self.session.set_cookie {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// Checks the CSRF token of a state-changing request (form field `csrf` or header
    /// `X-CSRF-Token`) and returns the form.
    fn checked_form(
        &self,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Form, DashError> {
        if cross_site(headers) {
            return Err(DashError::Forbidden);
        }
        let form = Form::parse(body)?;
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| form.get("csrf"))
            .unwrap_or_default();
        if self.session.csrf_matches(presented) {
            Ok(form)
        } else {
            tracing::info!("dashboard: a POST without a valid CSRF token was refused");
            Err(DashError::Forbidden)
        }
    }
}

impl FromRequestParts<AppState> for Dash {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Dash, Response> {
        match Session::from_request(state, &parts.headers) {
            Some(session) => Ok(Dash {
                csrf: session.csrf_token(),
                session,
                open: state.settings.secret_key.is_none(),
            }),
            None => Err(Redirect::to(LOGIN).into_response()),
        }
    }
}

/// A request the browser marks as coming from another site (or origin) is refused outright;
/// the CSRF token is the real check, this only closes the door earlier (and guards the login
/// form, which has no token).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A JSON answer for the scripts, never cached.
fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = crate::http::json_response(status, body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a dashboard request failed, as a page.
#[derive(Debug)]
enum DashError {
    /// No or a wrong CSRF token, or a cross-site request.
    Forbidden,
    NotFound(&'static str),
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for DashError {
    fn from(e: StoreError) -> Self {
        DashError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            DashError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This form was not sent from a page of this dashboard session (a missing or stale CSRF token). Reload the page and try again.".to_string(),
            ),
            DashError::NotFound(what) => (StatusCode::NOT_FOUND, "Not found", what.to_string()),
            DashError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Bad request", message),
            DashError::Internal(cause) => {
                tracing::error!(cause = %cause, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Server error",
                    "Something went wrong on the server; its log says what.".to_string(),
                )
            }
        };
        html(status, pages::problem(None, title, &message))
    }
}

type PageResult = Result<Response, DashError>;

/// A urlencoded form body, in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: Result<Bytes, BytesRejection>) -> Result<Form, DashError> {
        let bytes =
            body.map_err(|_| DashError::BadRequest("The form could not be read.".into()))?;
        Ok(Form(
            url::form_urlencoded::parse(&bytes).into_owned().collect(),
        ))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The named fields as the JSON object the REST API's validation reads (absent stay absent).
    fn json_object(&self, names: &[&str]) -> Map<String, Value> {
        names
            .iter()
            .filter_map(|name| Some((name.to_string(), Value::String(self.get(name)?.into()))))
            .collect()
    }
}

/// A config key or connection id from the path, checked as the REST API checks them.
fn path_ids<T>(path: Result<Path<T>, PathRejection>) -> Result<T, DashError> {
    path.map(|Path(p)| p).map_err(|_| {
        DashError::NotFound("That address does not name an integration or connection.")
    })
}

fn checked_id(what: &str, value: String) -> Result<String, DashError> {
    match id_problem(what, &value) {
        Some(problem) => Err(DashError::BadRequest(problem)),
        None => Ok(value),
    }
}

fn redirect(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `<path>?notice=<code>&subject=<text>`: the page shows the notice the code names.
fn with_notice(path: &str, code: &str, subject: &str) -> String {
    format!("{path}?notice={code}&subject={}", pages::query(subject))
}

/// The notice a page was sent to show (only the fixed texts below; the subject is escaped).
fn notice_of(query: Option<&str>) -> Option<Notice> {
    let params = parse_query(query).ok()?;
    let subject: String = query_value(&params, "subject")
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    let (kind, text) = match query_value(&params, "notice")? {
        "created" => (NoticeKind::Success, format!("Integration {subject} created.")),
        "updated" => (NoticeKind::Success, format!("Integration {subject} saved.")),
        "deleted" => (NoticeKind::Success, format!("Integration {subject} deleted.")),
        "connected" => (NoticeKind::Success, format!("Connected {subject}.")),
        "connection_deleted" => (NoticeKind::Success, format!("Connection {subject} deleted.")),
        "refreshed" => (NoticeKind::Success, "The credentials were refreshed.".into()),
        "not_refreshable" => (
            NoticeKind::Warning,
            "These credentials cannot be refreshed: they have no refresh token (OAuth 1 tokens, API keys and passwords never do).".into(),
        ),
        "refresh_rejected" => (
            NoticeKind::Error,
            "The provider refused the refresh: the connection needs to be re-authorized (its error is below).".into(),
        ),
        "refresh_unavailable" => (
            NoticeKind::Error,
            "The provider failed to refresh the credentials; the stored ones were kept (its error is below).".into(),
        ),
        "no_config" => (
            NoticeKind::Error,
            "This connection's integration no longer exists, so its credentials cannot be refreshed.".into(),
        ),
        "refresh_failed" => (
            NoticeKind::Error,
            "The refresh failed on the server; its log says why.".into(),
        ),
        _ => return None,
    };
    Some(Notice { kind, text })
}

// --- login -------------------------------------------------------------------------------------

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.settings.secret_key.is_none() || Session::from_request(&state, &headers).is_some() {
        return redirect(HOME);
    }
    html(StatusCode::OK, pages::login(None))
}

/// Checks the key (as the REST API does: SHA-256 digests compared in constant time) and starts a
/// session. A wrong key answers the form again, with 401 and no cookie.
async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let Some(secret) = state.settings.secret_key.as_ref() else {
        return Ok(redirect(HOME));
    };
    if cross_site(&headers) {
        return Err(DashError::Forbidden);
    }
    // Wrong keys count with the REST API's, per client address (see `AuthFailureLimit`).
    let client = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0.ip());
    if let Some(seconds) = state.auth_failures.locked_out(client) {
        let mut page = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(Some(&format!(
                "Too many wrong secret keys from this address; try again in {seconds} s."
            ))),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(page);
    }
    let form = Form::parse(body)?;
    let presented = form.get("secret_key").unwrap_or_default();
    if !crate::http::secret_key_matches(secret.expose(), presented) {
        state.auth_failures.failed(client);
        tracing::info!("dashboard: login with a wrong secret key refused");
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That is not the server's secret key.")),
        ));
    }
    let cookie = session::new_session(secret.expose())
        .map_err(|e| DashError::Internal(format!("no randomness for a session: {e}")))?;
    let set_cookie = HeaderValue::from_str(&session::set_cookie_header(
        &cookie,
        session::secure(&state),
    ))
    .map_err(|e| DashError::Internal(e.to_string()))?;
    let mut response = redirect(HOME);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie);
    Ok(response)
}

/// Removes the cookie from the browser. Sessions are stateless: a copy of the cookie taken
/// before stays valid until it expires (or the secret key changes).
async fn logout(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    dash.checked_form(&headers, body)?;
    if dash.open {
        return Ok(redirect(HOME));
    }
    let mut response = redirect(LOGIN);
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie_header(session::secure(&state)))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

// --- integrations ------------------------------------------------------------------------------

async fn integrations_page(
    State(state): State<AppState>,
    dash: Dash,
    RawQuery(query): RawQuery,
) -> PageResult {
    let configs = state.store.list_configs().await?;
    let connections = state.store.list_connections().await?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for c in &connections {
        *counts.entry(c.provider_config_key.as_str()).or_default() += 1;
    }
    let rows: Vec<pages::IntegrationRow> = configs
        .iter()
        .map(|c| pages::IntegrationRow {
            key: &c.unique_key,
            provider: &c.provider,
            display_name: display_name(&state, &c.provider),
            client_id: &c.oauth_client_id,
            scopes: &c.oauth_scopes,
            connections: counts.get(c.unique_key.as_str()).copied().unwrap_or(0),
        })
        .collect();
    let notice = notice_of(query.as_deref());
    Ok(dash.page(
        StatusCode::OK,
        pages::integrations(
            &dash.ctx(Nav::Integrations),
            &rows,
            &state.settings.callback_url,
            notice.as_ref(),
        ),
    ))
}

fn display_name<'a>(state: &'a AppState, provider: &str) -> Option<&'a str> {
    state.catalog.get(provider)?.display_name.as_deref()
}

fn form_page(
    state: &AppState,
    dash: &Dash,
    status: StatusCode,
    form: &pages::ConfigForm,
) -> Response {
    dash.page(
        status,
        pages::config_form(
            &dash.ctx(Nav::Integrations),
            form,
            state.catalog.len(),
            &state.settings.callback_url,
        ),
    )
}

async fn new_integration_page(State(state): State<AppState>, dash: Dash) -> Response {
    let form = pages::ConfigForm {
        key: "",
        provider: "",
        client_id: "",
        scopes: "",
        connection_config: "",
        editing: false,
        error: None,
    };
    form_page(&state, &dash, StatusCode::OK, &form)
}

const CONFIG_FIELDS: [&str; 5] = [
    "provider_config_key",
    "provider",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scopes",
];

/// The form's `name=value` lines as the REST body's `connection_config`. On create, an empty box
/// sends nothing; on edit the box shows the stored values, so an empty one clears them (a post
/// without the field keeps them).
fn add_connection_config(
    object: &mut Map<String, Value>,
    text: Option<&str>,
    editing: bool,
) -> Result<(), ApiError> {
    let Some(text) = text else {
        return Ok(());
    };
    let mut values = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(ApiError::InvalidRequest(
                "Write each connection config value as name=value, one a line.".into(),
            ));
        };
        values.insert(
            name.trim().to_string(),
            Value::String(value.trim().to_string()),
        );
    }
    if editing || !values.is_empty() {
        object.insert("connection_config".into(), Value::Object(values));
    }
    Ok(())
}

/// The stored values as the form shows them.
fn connection_config_text(values: &Map<String, Value>) -> String {
    values
        .iter()
        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The REST API's message, in the words of the form.
fn form_error(error: &ApiError) -> String {
    match error {
        ApiError::MissingProviderConfig => "Enter a key for this integration.".into(),
        ApiError::MissingProviderTemplate | ApiError::UnknownProviderTemplate => {
            "Choose a provider of the catalog (search by name or category).".into()
        }
        ApiError::DuplicateProviderConfig => "An integration with this key exists already.".into(),
        other => other.to_string(),
    }
}

async fn create_integration(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let form = dash.checked_form(&headers, body)?;
    let refused = |error: &ApiError, status: StatusCode| {
        form_page(
            &state,
            &dash,
            status,
            &pages::ConfigForm {
                key: form.get("provider_config_key").unwrap_or_default(),
                provider: form.get("provider").unwrap_or_default(),
                client_id: form.get("oauth_client_id").unwrap_or_default(),
                scopes: form.get("oauth_scopes").unwrap_or_default(),
                connection_config: form.get("connection_config").unwrap_or_default(),
                editing: false,
                error: Some(form_error(error)),
            },
        )
    };
    let mut object = form.json_object(&CONFIG_FIELDS);
    if let Err(e) = add_connection_config(&mut object, form.get("connection_config"), false) {
        return Ok(refused(&e, StatusCode::BAD_REQUEST));
    }
    let mut fields = match config_fields(&object, &state).await {
        Ok(fields) => fields,
        Err(e) => return Ok(refused(&e, StatusCode::BAD_REQUEST)),
    };
    fields.oauth_scopes = normalise_scopes(&fields.oauth_scopes);
    match state.store.insert_config(&fields).await {
        Ok(_) => Ok(redirect(&with_notice(
            &pages::integration_url(&fields.unique_key),
            "created",
            &fields.unique_key,
        ))),
        Err(StoreError::Conflict(_)) => Ok(refused(
            &ApiError::DuplicateProviderConfig,
            StatusCode::CONFLICT,
        )),
        Err(e) => Err(e.into()),
    }
}

const NO_INTEGRATION: &str = "There is no integration with this key.";

/// The provider config a page is about, or the dashboard's "not found" page.
async fn stored_config(state: &AppState, key: &str) -> Result<ProviderConfig, DashError> {
    state
        .store
        .get_config(key)
        .await?
        .ok_or(DashError::NotFound(NO_INTEGRATION))
}

async fn edit_integration_page(
    State(state): State<AppState>,
    dash: Dash,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let key = checked_id("provider_config_key", path_ids(path)?)?;
    let config = stored_config(&state, &key).await?;
    let form = pages::ConfigForm {
        key: &config.unique_key,
        provider: &config.provider,
        client_id: &config.oauth_client_id,
        scopes: &config.oauth_scopes,
        connection_config: &connection_config_text(&config.connection_config),
        editing: true,
        error: None,
    };
    Ok(form_page(&state, &dash, StatusCode::OK, &form))
}

/// Saves the edit form; an empty client secret keeps the stored one.
async fn update_integration(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let key = checked_id("provider_config_key", path_ids(path)?)?;
    let form = dash.checked_form(&headers, body)?;
    let existing = stored_config(&state, &key).await?;
    let mut object = form.json_object(&CONFIG_FIELDS);
    object.insert("provider_config_key".into(), Value::String(key.clone()));
    if form
        .get("oauth_client_secret")
        .unwrap_or_default()
        .is_empty()
    {
        object.insert(
            "oauth_client_secret".into(),
            Value::String(existing.oauth_client_secret.expose().clone()),
        );
    }
    let checked = match add_connection_config(&mut object, form.get("connection_config"), true) {
        Ok(()) => config_fields(&object, &state).await,
        Err(e) => Err(e),
    };
    let mut fields = match checked {
        Ok(fields) => fields,
        Err(e) => {
            let form = pages::ConfigForm {
                key: &key,
                provider: form.get("provider").unwrap_or_default(),
                client_id: form.get("oauth_client_id").unwrap_or_default(),
                scopes: form.get("oauth_scopes").unwrap_or_default(),
                connection_config: form.get("connection_config").unwrap_or_default(),
                editing: true,
                error: Some(form_error(&e)),
            };
            return Ok(form_page(&state, &dash, StatusCode::BAD_REQUEST, &form));
        }
    };
    fields.oauth_scopes = normalise_scopes(&fields.oauth_scopes);
    if !state.store.update_config(&fields).await? {
        return Err(DashError::NotFound(NO_INTEGRATION));
    }
    Ok(redirect(&with_notice(
        &pages::integration_url(&key),
        "updated",
        &key,
    )))
}

async fn confirm_delete_integration(
    State(state): State<AppState>,
    dash: Dash,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let key = checked_id("provider_config_key", path_ids(path)?)?;
    stored_config(&state, &key).await?;
    let connections = state
        .store
        .list_connections()
        .await?
        .iter()
        .filter(|c| c.provider_config_key == key)
        .count();
    let url = pages::integration_url(&key);
    let message = maud::html! {
        p { "Delete the integration " strong { (key) } "? Apps can no longer start flows or get tokens with it." }
        @if connections > 0 {
            p { "Its " (connections) " connection(s) are kept, but cannot be used until an integration with this key exists again." }
        }
    };
    Ok(dash.page(
        StatusCode::OK,
        pages::confirm_delete(
            &dash.ctx(Nav::Integrations),
            "Delete integration",
            message,
            &format!("{url}/delete"),
            &url,
        ),
    ))
}

async fn delete_integration(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let key = checked_id("provider_config_key", path_ids(path)?)?;
    dash.checked_form(&headers, body)?;
    state.store.delete_config(&key).await?;
    Ok(redirect(&with_notice(HOME, "deleted", &key)))
}

/// A suggested id for a test connection: `test-` and 6 random hex digits.
fn suggested_connection_id() -> String {
    let mut random = [0u8; 3];
    let _ = getrandom::fill(&mut random);
    format!("test-{}", hex::encode(random))
}

async fn integration_page(
    State(state): State<AppState>,
    dash: Dash,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let key = checked_id("provider_config_key", path_ids(path)?)?;
    let config = stored_config(&state, &key).await?;
    let template = state.catalog.get(&config.provider);
    let test_connect = match template.map(|t| t.auth_mode) {
        None => pages::TestConnect::Unavailable(
            "This integration's provider is not in the catalog any more: no flow can run.",
        ),
        Some(mode) if mode.uses_browser_flow() => pages::TestConnect::Popup,
        Some(AuthMode::ApiKey) => pages::TestConnect::ApiKey,
        Some(AuthMode::Basic) => pages::TestConnect::Basic,
        Some(_) => pages::TestConnect::Unavailable(
            "Client credentials connections involve no user: create them with POST /connection.",
        ),
    };
    let summaries = state.store.list_connections().await?;
    let rows = connection_rows(&state, &summaries, Some(&key));
    let view = pages::IntegrationView {
        key: &config.unique_key,
        provider: &config.provider,
        display_name: template.and_then(|t| t.display_name.as_deref()),
        auth_mode: template.map(|t| t.auth_mode.as_str()),
        docs: template
            .and_then(|t| t.docs.as_deref())
            .filter(|d| d.starts_with("https://") || d.starts_with("http://")),
        client_id: &config.oauth_client_id,
        scopes: &config.oauth_scopes,
        created_at: config.created_at,
        updated_at: config.updated_at,
        test_connect,
        require_connect_session: state.settings.require_connect_session,
        suggested_connection_id: suggested_connection_id(),
    };
    let notice = notice_of(query.as_deref());
    Ok(dash.page(
        StatusCode::OK,
        pages::integration(
            &dash.ctx(Nav::Integrations),
            &view,
            &rows,
            &state.settings.callback_url,
            notice.as_ref(),
        ),
    ))
}

/// The form of an action the page's script calls (answered as JSON): only with a session and
/// its CSRF token; otherwise the status and message of the refusal.
fn json_action_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Form, (StatusCode, &'static str)> {
    let Some(session) = Session::from_request(state, headers) else {
        return Err((StatusCode::UNAUTHORIZED, "Sign in again."));
    };
    let dash = Dash {
        csrf: String::new(),
        open: state.settings.secret_key.is_none(),
        session,
    };
    dash.checked_form(headers, body)
        .map_err(|_| (StatusCode::FORBIDDEN, "Reload the page and try again."))
}

/// For "connect a test account" when connect sessions are required: mints one server-side,
/// exactly as `POST /connect/sessions` does, and answers `{token}` to the script.
async fn create_test_connect_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match json_action_form(&state, &headers, body) {
        Ok(form) => form,
        Err((status, message)) => return json(status, &json!({ "error": message })),
    };
    let Ok(Path(key)) = path else {
        return json(
            StatusCode::NOT_FOUND,
            &json!({"error": "No such integration."}),
        );
    };
    let connection_id = form.get("connection_id").unwrap_or_default();
    match crate::connect_sessions::mint_connect_session(&state, &key, connection_id).await {
        Ok(minted) => json(StatusCode::OK, &json!({"token": minted.token})),
        Err(e) => json(e.status(), &json!({"error": e.to_string()})),
    }
}

// --- connections -------------------------------------------------------------------------------

/// How a connection is doing: needs re-authorization, retrying (a failed refresh, backing off),
/// expiring (within the refresh margin), or healthy.
fn status_of(
    health: &ConnectionHealth,
    expires_at: Option<chrono::DateTime<Utc>>,
    margin: std::time::Duration,
) -> Status {
    let now = Utc::now();
    if health.needs_reauth {
        Status::NeedsReauth
    } else if health.retry_after.is_some_and(|at| at > now) || health.refresh_failures > 0 {
        Status::Retrying
    } else if expires_at.is_some_and(|at| {
        let lifetime = crate::credentials::policy::lifetime(at, health);
        at - now < crate::credentials::policy::window(margin, lifetime)
    }) {
        Status::Expiring
    } else {
        Status::Healthy
    }
}

fn connection_rows<'a>(
    state: &AppState,
    summaries: &'a [crate::store::ConnectionSummary],
    only_key: Option<&str>,
) -> Vec<ConnectionRow<'a>> {
    summaries
        .iter()
        .filter(|c| only_key.is_none_or(|k| c.provider_config_key == k))
        .map(|c| ConnectionRow {
            key: &c.provider_config_key,
            connection_id: &c.connection_id,
            status: status_of(&c.health, c.expires_at, state.settings.refresh_margin),
            created_at: c.created_at,
            refreshed_at: c.health.refreshed_at,
            expires_at: c.expires_at,
            error: c.health.refresh_error.as_deref(),
        })
        .collect()
}

async fn connections_page(
    State(state): State<AppState>,
    dash: Dash,
    RawQuery(query): RawQuery,
) -> PageResult {
    let summaries = state.store.list_connections().await?;
    let rows = connection_rows(&state, &summaries, None);
    let notice = notice_of(query.as_deref());
    Ok(dash.page(
        StatusCode::OK,
        pages::connections(&dash.ctx(Nav::Connections), &rows, notice.as_ref()),
    ))
}

fn connection_ids(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), DashError> {
    let (key, connection_id) = path_ids(path)?;
    Ok((
        checked_id("provider_config_key", key)?,
        checked_id("connection_id", connection_id)?,
    ))
}

/// The fields of the credentials; secrets are masked on pages and revealed one at a time.
fn credential_fields(credentials: &Credentials) -> Vec<pages::CredentialField<'_>> {
    fn field<'a>(name: &'static str, value: &'a str, secret: bool) -> pages::CredentialField<'a> {
        pages::CredentialField {
            name,
            value,
            secret,
        }
    }
    match credentials {
        Credentials::OAuth2(c) => {
            let mut fields = vec![field("access_token", &c.access_token, true)];
            if let Some(refresh) = &c.refresh_token {
                fields.push(field("refresh_token", refresh, true));
            }
            fields
        }
        Credentials::OAuth1(c) => vec![
            field("oauth_token", &c.oauth_token, true),
            field("oauth_token_secret", &c.oauth_token_secret, true),
        ],
        Credentials::OAuth2ClientCredentials(c) => vec![field("token", &c.token, true)],
        Credentials::ApiKey(c) => vec![field("apiKey", &c.api_key, true)],
        Credentials::Basic(c) => vec![
            field("username", &c.username, false),
            field("password", &c.password, true),
        ],
    }
}

fn credential_type(credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::OAuth2(_) => "OAUTH2",
        Credentials::OAuth1(_) => "OAUTH1",
        Credentials::OAuth2ClientCredentials(_) => "OAUTH2_CC",
        Credentials::ApiKey(_) => "API_KEY",
        Credentials::Basic(_) => "BASIC",
    }
}

fn raw_of(credentials: &Credentials) -> Option<&Value> {
    match credentials {
        Credentials::OAuth2(c) => Some(&c.raw),
        Credentials::OAuth1(c) => Some(&c.raw),
        Credentials::OAuth2ClientCredentials(c) => Some(&c.raw),
        Credentials::ApiKey(_) | Credentials::Basic(_) => None,
    }
}

async fn connection_page(
    State(state): State<AppState>,
    dash: Dash,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let (key, connection_id) = connection_ids(path)?;
    let connection = state
        .store
        .get_connection(&key, &connection_id)
        .await?
        .ok_or(DashError::NotFound("There is no such connection."))?;
    let config = state.store.get_config(&key).await?;
    let credentials = &connection.credentials;
    let view = pages::ConnectionView {
        key: &connection.provider_config_key,
        connection_id: &connection.connection_id,
        provider: config.as_ref().map(|c| c.provider.as_str()),
        display_name: config
            .as_ref()
            .and_then(|c| display_name(&state, &c.provider)),
        status: status_of(
            &connection.health,
            credentials.expires_at(),
            state.settings.refresh_margin,
        ),
        credential_type: credential_type(credentials),
        fields: credential_fields(credentials),
        expires_at: credentials.expires_at(),
        raw: raw_of(credentials).map(|raw| pages::masked_raw(raw, None)),
        connection_config: &connection.connection_config,
        metadata: &connection.metadata,
        created_at: connection.created_at,
        updated_at: connection.updated_at,
        health: &connection.health,
    };
    let notice = notice_of(query.as_deref());
    Ok(dash.page(
        StatusCode::OK,
        pages::connection(&dash.ctx(Nav::Connections), &view, notice.as_ref()),
    ))
}

/// Refreshes now (the REST API's `force_refresh=true` path) and shows how it went.
async fn refresh_connection(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let (key, connection_id) = connection_ids(path)?;
    dash.checked_form(&headers, body)?;
    let outcome = match state
        .refresher
        .fresh_connection(&state, &key, &connection_id, Freshness::forced_now())
        .await
    {
        Ok(_) => "refreshed",
        Err(FreshError::UnknownConnection) => {
            return Err(DashError::NotFound("There is no such connection."))
        }
        Err(FreshError::UnknownConfig) => "no_config",
        Err(FreshError::NotRefreshable) => "not_refreshable",
        Err(FreshError::Rejected(_)) => "refresh_rejected",
        Err(FreshError::Unavailable(_)) => "refresh_unavailable",
        Err(FreshError::Internal(cause)) => {
            tracing::error!(cause = %cause, "dashboard: forced refresh failed");
            "refresh_failed"
        }
    };
    Ok(redirect(&with_notice(
        &pages::connection_url(&key, &connection_id),
        outcome,
        &connection_id,
    )))
}

async fn confirm_delete_connection(
    State(state): State<AppState>,
    dash: Dash,
    path: Result<Path<(String, String)>, PathRejection>,
) -> PageResult {
    let (key, connection_id) = connection_ids(path)?;
    state
        .store
        .get_connection(&key, &connection_id)
        .await?
        .ok_or(DashError::NotFound("There is no such connection."))?;
    let url = pages::connection_url(&key, &connection_id);
    let message = maud::html! {
        p { "Delete the connection " strong { (connection_id) } " of " strong { (key) } "?" }
        p { "Its credentials are erased (the provider's grant is not revoked); the app must connect the user again." }
    };
    Ok(dash.page(
        StatusCode::OK,
        pages::confirm_delete(
            &dash.ctx(Nav::Connections),
            "Delete connection",
            message,
            &format!("{url}/delete"),
            &url,
        ),
    ))
}

/// Deletes through the REST API's code path (which emits the `connection.deleted` webhook).
async fn delete_connection(
    State(state): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> PageResult {
    let (key, connection_id) = connection_ids(path)?;
    dash.checked_form(&headers, body)?;
    match crate::connections::delete_connection_and_notify(&state, &key, &connection_id).await {
        Ok(()) => Ok(redirect(&with_notice(
            &pages::integration_url(&key),
            "connection_deleted",
            &connection_id,
        ))),
        Err(ApiError::UnknownConnection) => {
            Err(DashError::NotFound("There is no such connection."))
        }
        Err(e) => Err(DashError::Internal(e.to_string())),
    }
}

/// One secret of a connection in full, as JSON for the page's script: only with the session
/// and its CSRF token, never cached.
async fn reveal_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match json_action_form(&state, &headers, body) {
        Ok(form) => form,
        Err((status, message)) => return json(status, &json!({ "error": message })),
    };
    let not_found = || {
        json(
            StatusCode::NOT_FOUND,
            &json!({"error": "No such connection."}),
        )
    };
    let Ok((key, connection_id)) = connection_ids(path) else {
        return not_found();
    };
    let connection = match state.store.get_connection(&key, &connection_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard: could not read a connection");
            return json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "The connection could not be read."}),
            );
        }
    };
    let wanted = form.get("field").unwrap_or_default();
    let fields = credential_fields(&connection.credentials);
    match fields.iter().find(|f| f.secret && f.name == wanted) {
        Some(field) => {
            tracing::info!(
                provider_config_key = %key,
                field = field.name,
                "dashboard: a secret of a connection was revealed"
            );
            json(
                StatusCode::OK,
                &json!({"field": field.name, "value": field.value}),
            )
        }
        None => json(
            StatusCode::NOT_FOUND,
            &json!({"error": "These credentials have no such secret."}),
        ),
    }
}
