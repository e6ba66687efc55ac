//! The dashboard's HTML, rendered with maud: every value spliced into a page (config keys,
//! connection ids, provider errors, scopes) is escaped by the macro. No page has inline script or
//! style; behaviour comes from `assets/dashboard.js` and `assets/connect.js`.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::assets;

/// What every page of a session needs.
pub struct Ctx<'a> {
    pub csrf: &'a str,
    /// No secret key: the dashboard is open, and says so.
    pub open: bool,
    pub nav: Nav,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Integrations,
    Connections,
}

/// A message at the top of a page, after an action.
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Success,
    Warning,
    Error,
}

impl NoticeKind {
    fn class(self) -> &'static str {
        match self {
            NoticeKind::Success => "notice notice-success",
            NoticeKind::Warning => "notice notice-warning",
            NoticeKind::Error => "notice notice-error",
        }
    }
}

/// How a connection is doing, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NeedsReauth,
    Retrying,
    Expiring,
    Healthy,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::NeedsReauth => "needs re-authorization",
            Status::Retrying => "retrying",
            Status::Expiring => "expiring",
            Status::Healthy => "healthy",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Status::NeedsReauth => "badge badge-reauth",
            Status::Retrying => "badge badge-retrying",
            Status::Expiring => "badge badge-expiring",
            Status::Healthy => "badge badge-healthy",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Status::NeedsReauth => "The provider refused the refresh token: the user must connect again.",
            Status::Retrying => "The last refresh failed at the provider; automatic refreshes back off and retry.",
            Status::Expiring => "The access token expires within the refresh margin: it is refreshed on the next request for it.",
            Status::Healthy => "The credentials are good.",
        }
    }
}

/// Everything but RFC 3986's unreserved characters (`.` and `..` are refused as ids).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment, percent-encoded (keys and ids may hold any printable character).
pub fn seg(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A query value, form-encoded.
pub fn query(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub fn integration_url(key: &str) -> String {
    format!("/dashboard/integrations/{}", seg(key))
}

pub fn connection_url(key: &str, connection_id: &str) -> String {
    format!(
        "/dashboard/integrations/{}/connections/{}",
        seg(key),
        seg(connection_id)
    )
}

/// A secret as shown on a page: its first 4 characters when it is long enough for them to give
/// little away, then bullets (never its length).
pub fn mask(secret: &str) -> String {
    const BULLETS: &str = "••••••••••••";
    if secret.chars().count() >= 16 {
        format!("{}{BULLETS}", secret.chars().take(4).collect::<String>())
    } else {
        BULLETS.to_string()
    }
}

/// Keys of a token response whose values are shown as they are; every other string is masked.
const PLAIN_RAW_KEYS: &[&str] = &[
    "token_type",
    "scope",
    "expires_at",
    "expires_in",
    "refresh_token_expires_in",
    "instance_url",
];

/// A token response with every string masked except the harmless fields above, at any depth.
pub fn masked_raw(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::String(s) if key.is_some_and(|k| PLAIN_RAW_KEYS.contains(&k)) => {
            Value::String(s.clone())
        }
        Value::String(s) => Value::String(mask(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked_raw(v, key)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), masked_raw(v, Some(k))))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn absolute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let (future, s) = (seconds > 0, seconds.unsigned_abs());
    let amount = match s {
        0..=9 => return "just now".into(),
        10..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A time as "3 min ago", with the exact time on hover and in `datetime`.
fn time_ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    html! {
        @if let Some(at) = at {
            time datetime=(crate::credentials::iso_millis(at)) title=(absolute(at)) { (relative(at, now)) }
        } @else {
            span.muted { "—" }
        }
    }
}

/// A time written out, with "(3 min ago)".
fn time_full(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    html! {
        @if let Some(at) = at {
            time datetime=(crate::credentials::iso_millis(at)) { (absolute(at)) }
            " "
            span.muted { "(" (relative(at, now)) ")" }
        } @else {
            span.muted { "never" }
        }
    }
}

fn scopes(list: &str) -> Markup {
    html! {
        @let items: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        @if items.is_empty() {
            span.muted { "none" }
        } @else {
            span.chips { @for scope in items { span.chip { (scope) } } }
        }
    }
}

fn notice(notice: Option<&Notice>) -> Markup {
    html! {
        @if let Some(n) = notice {
            div class=(n.kind.class()) role="status" { (n.text) }
        }
    }
}

fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(csrf) = csrf { meta name="csrf-token" content=(csrf); }
            title { (title) " · Nango dashboard" }
            // No favicon request (it would be a JSON 404).
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(assets::url(assets::CSS));
            script type="module" src=(assets::url(assets::JS)) {}
        }
    }
}

/// The frame of every signed-in page: header with the product name, navigation and logout, the
/// open-dashboard warning, then `body`.
pub fn layout(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(ctx.csrf)))
            body {
                header.topbar {
                    div.topbar-inner {
                        a.brand href="/dashboard" {
                            span.logo aria-hidden="true" { "N" }
                            span { "Nango" }
                            span.brand-sub { "dashboard" }
                        }
                        nav.mainnav {
                            a.active[ctx.nav == Nav::Integrations] href="/dashboard" { "Integrations" }
                            a.active[ctx.nav == Nav::Connections] href="/dashboard/connections" { "Connections" }
                        }
                        div.spacer {}
                        @if !ctx.open {
                            form.logout method="post" action="/dashboard/logout" {
                                (csrf_field(ctx))
                                button.btn.btn-ghost type="submit" { "Log out" }
                            }
                        }
                    }
                }
                @if ctx.open {
                    div.banner role="alert" {
                        strong { "No secret key is configured." }
                        " This dashboard and the REST API are open to anyone who can reach this server. Set "
                        code { "NANGO_SECRET_KEY" }
                        " to require a key."
                    }
                }
                main.container { (body) }
            }
        }
    }
}

/// The login form (status 200, or 401 with `error`).
pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in", None))
            body.login-body {
                main.login-wrap {
                    div.brand.brand-dark {
                        span.logo aria-hidden="true" { "N" }
                        span { "Nango" }
                        span.brand-sub { "dashboard" }
                    }
                    form.card.login-card method="post" action="/dashboard/login" {
                        h1 { "Sign in" }
                        p.muted { "The server's secret key, " code { "NANGO_SECRET_KEY" } "." }
                        @if let Some(error) = error {
                            div.notice.notice-error role="alert" id="login-error" { (error) }
                        }
                        div.field {
                            label for="secret_key" { "Secret key" }
                            input #secret_key type="password" name="secret_key" autocomplete="current-password" required autofocus;
                        }
                        button.btn.btn-primary.btn-block type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// A page saying something went wrong (unknown integration, forbidden form, server error).
pub fn problem(ctx: Option<&Ctx>, title: &str, message: &str) -> Markup {
    let body = html! {
        div.card.problem {
            h1 { (title) }
            p { (message) }
            p { a.btn.btn-secondary href="/dashboard" { "Back to the dashboard" } }
        }
    };
    match ctx {
        Some(ctx) => layout(ctx, title, body),
        None => html! {
            (DOCTYPE)
            html lang="en" { (head(title, None)) body { main.container { (body) } } }
        },
    }
}

fn callback_card(callback_url: &str) -> Markup {
    html! {
        div.card.callback {
            div {
                div.label { "OAuth callback URL" }
                p.muted.small { "Register it as the redirect URI of the OAuth app at each provider." }
            }
            div.copy-row {
                code #callback-url { (callback_url) }
                button.btn.btn-secondary.btn-sm type="button" data-copy=(callback_url) { "Copy" }
            }
        }
    }
}

/// One line of the integrations table.
pub struct IntegrationRow<'a> {
    pub key: &'a str,
    pub provider: &'a str,
    pub display_name: Option<&'a str>,
    pub client_id: &'a str,
    pub scopes: &'a str,
    pub connections: usize,
}

fn provider_name(provider: &str, display_name: Option<&str>) -> Markup {
    html! {
        @if let Some(display) = display_name {
            span.provider { (display) } " " code.muted { (provider) }
        } @else {
            code { (provider) }
        }
    }
}

pub fn integrations(
    ctx: &Ctx,
    rows: &[IntegrationRow],
    callback_url: &str,
    flash: Option<&Notice>,
) -> Markup {
    layout(
        ctx,
        "Integrations",
        html! {
            div.page-head {
                div {
                    h1 { "Integrations" }
                    p.muted { "Provider configs: which provider, with which OAuth app." }
                }
                a.btn.btn-primary href="/dashboard/new-integration" { "New integration" }
            }
            (notice(flash))
            (callback_card(callback_url))
            div.card.table-card {
                @if rows.is_empty() {
                    div.empty {
                        p { "No integration yet." }
                        a.btn.btn-primary href="/dashboard/new-integration" { "Create the first one" }
                    }
                } @else {
                    table.table #integrations {
                        thead { tr {
                            th { "Key" } th { "Provider" } th { "Client ID" } th { "Scopes" }
                            th.num { "Connections" } th.actions { }
                        } }
                        tbody {
                            @for row in rows {
                                tr data-key=(row.key) {
                                    td { a.strong href=(integration_url(row.key)) { (row.key) } }
                                    td { (provider_name(row.provider, row.display_name)) }
                                    td { code.wrap { (row.client_id) } }
                                    td { (scopes(row.scopes)) }
                                    td.num { (row.connections) }
                                    td.actions {
                                        a.btn.btn-secondary.btn-sm href={ (integration_url(row.key)) "/edit" } { "Edit" }
                                        " "
                                        a.btn.btn-danger-ghost.btn-sm href={ (integration_url(row.key)) "/delete" } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The values of the create or edit form.
pub struct ConfigForm<'a> {
    pub key: &'a str,
    pub provider: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a str,
    /// The operator's placeholder values, one `name=value` a line.
    pub connection_config: &'a str,
    /// Editing an existing config (the key is fixed, an empty secret keeps the stored one).
    pub editing: bool,
    pub error: Option<String>,
}

pub fn config_form(
    ctx: &Ctx,
    form: &ConfigForm,
    catalog_size: usize,
    callback_url: &str,
) -> Markup {
    let title = if form.editing {
        "Edit integration"
    } else {
        "New integration"
    };
    let action = if form.editing {
        integration_url(form.key)
    } else {
        "/dashboard/integrations".to_string()
    };
    let cancel = if form.editing {
        integration_url(form.key)
    } else {
        "/dashboard".to_string()
    };
    layout(
        ctx,
        title,
        html! {
            div.page-head {
                div {
                    h1 { (title) @if form.editing { " " code { (form.key) } } }
                    p.muted { "The OAuth app you registered at the provider, and the scopes to ask for." }
                }
            }
            @if let Some(error) = &form.error {
                div.notice.notice-error role="alert" id="form-error" { (error) }
            }
            (callback_card(callback_url))
            form.card.form #config-form method="post" action=(action) {
                (csrf_field(ctx))
                div.field {
                    label for="provider_config_key" { "Key" }
                    @if form.editing {
                        input #provider_config_key type="text" name="provider_config_key" value=(form.key) readonly;
                    } @else {
                        input #provider_config_key type="text" name="provider_config_key" value=(form.key)
                            required maxlength="255" placeholder="github" autocomplete="off";
                    }
                    p.hint { "Your name for this integration: the frontend SDK and the REST API use it as " code { "provider_config_key" } "." }
                }
                div.field {
                    label for="provider" { "Provider" }
                    input #provider type="search" name="provider" value=(form.provider) required
                        autocomplete="off" spellcheck="false"
                        placeholder={ "Search " (catalog_size) " providers by name or category" }
                        aria-controls="provider-results";
                    p.hint #provider-selected aria-live="polite" {}
                    ul.provider-results #provider-results hidden {}
                }
                div.field {
                    label for="oauth_client_id" { "Client ID" }
                    input #oauth_client_id type="text" name="oauth_client_id" value=(form.client_id) autocomplete="off" spellcheck="false";
                }
                div.field {
                    label for="oauth_client_secret" { "Client secret" }
                    @if form.editing {
                        input #oauth_client_secret type="password" name="oauth_client_secret" autocomplete="new-password"
                            placeholder="Leave empty to keep the current secret";
                    } @else {
                        input #oauth_client_secret type="password" name="oauth_client_secret" autocomplete="new-password";
                    }
                }
                div.field {
                    label for="oauth_scopes" { "Scopes" }
                    input #oauth_scopes type="text" name="oauth_scopes" value=(form.scopes) autocomplete="off" spellcheck="false"
                        placeholder="repo, user";
                    p.hint { "Comma or space separated." }
                }
                div.field {
                    label for="connection_config" { "Connection config" }
                    textarea #connection_config name="connection_config" rows="2" autocomplete="off" spellcheck="false"
                        placeholder="hostname=ghe.example.com" { (form.connection_config) }
                    p.hint { "For providers whose URLs hold a placeholder, one " code { "name=value" } " a line (e.g. "
                        code { "hostname" } " for a self-hosted server). A placeholder that chooses the host is set only here, never by the user's browser." }
                }
                div.form-actions {
                    button.btn.btn-primary type="submit" { @if form.editing { "Save" } @else { "Create integration" } }
                    a.btn.btn-secondary href=(cancel) { "Cancel" }
                }
            }
        },
    )
}

/// A confirmation step before a delete.
pub fn confirm_delete(
    ctx: &Ctx,
    title: &str,
    message: Markup,
    action: &str,
    cancel: &str,
) -> Markup {
    layout(
        ctx,
        title,
        html! {
            div.card.confirm {
                h1 { (title) }
                div.confirm-text { (message) }
                form method="post" action=(action) {
                    (csrf_field(ctx))
                    div.form-actions {
                        button.btn.btn-danger type="submit" { "Delete" }
                        a.btn.btn-secondary href=(cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// One line of a connections table.
pub struct ConnectionRow<'a> {
    pub key: &'a str,
    pub connection_id: &'a str,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<&'a str>,
}

fn connections_table(ctx: &Ctx, rows: &[ConnectionRow], with_key: bool) -> Markup {
    let now = Utc::now();
    html! {
        table.table #connections {
            thead { tr {
                th { "Connection" }
                @if with_key { th { "Integration" } }
                th { "Status" } th { "Created" } th { "Last refresh" } th { "Expires" } th { "Provider error" }
                th.actions { }
            } }
            tbody {
                @for row in rows {
                    tr data-connection-id=(row.connection_id) data-key=(row.key) {
                        td { a.strong href=(connection_url(row.key, row.connection_id)) { (row.connection_id) } }
                        @if with_key { td { a href=(integration_url(row.key)) { (row.key) } } }
                        td { span class=(row.status.class()) title=(row.status.explanation()) { (row.status.label()) } }
                        td { (time_ago(Some(row.created_at), now)) }
                        td.refreshed { (time_ago(row.refreshed_at, now)) }
                        td { (time_ago(row.expires_at, now)) }
                        td.error-cell {
                            @if let Some(error) = row.error { span.error-text title=(error) { (error) } }
                            @else { span.muted { "—" } }
                        }
                        td.actions {
                            form.inline method="post" action={ (connection_url(row.key, row.connection_id)) "/refresh" } {
                                (csrf_field(ctx))
                                button.btn.btn-secondary.btn-sm type="submit" { "Refresh" }
                            }
                            " "
                            a.btn.btn-danger-ghost.btn-sm href={ (connection_url(row.key, row.connection_id)) "/delete" } { "Delete" }
                        }
                    }
                }
            }
        }
    }
}

pub fn connections(ctx: &Ctx, rows: &[ConnectionRow], flash: Option<&Notice>) -> Markup {
    layout(
        ctx,
        "Connections",
        html! {
            div.page-head {
                div {
                    h1 { "Connections" }
                    p.muted { "Every stored authorization, with how its refreshes go." }
                }
            }
            (notice(flash))
            div.card.table-card {
                @if rows.is_empty() {
                    div.empty { p { "No connection yet. Open an integration and connect a test account." } }
                } @else {
                    (connections_table(ctx, rows, true))
                }
            }
        },
    )
}

/// How "connect a test account" works for the integration's auth mode.
pub enum TestConnect {
    /// The popup flow (OAuth 2, OAuth 1).
    Popup,
    ApiKey,
    Basic,
    /// No browser involved (client credentials), or no template.
    Unavailable(&'static str),
}

pub struct IntegrationView<'a> {
    pub key: &'a str,
    pub provider: &'a str,
    pub display_name: Option<&'a str>,
    pub auth_mode: Option<&'static str>,
    pub docs: Option<&'a str>,
    pub client_id: &'a str,
    pub scopes: &'a str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub test_connect: TestConnect,
    pub require_connect_session: bool,
    pub suggested_connection_id: String,
}

pub fn integration(
    ctx: &Ctx,
    view: &IntegrationView,
    rows: &[ConnectionRow],
    callback_url: &str,
    flash: Option<&Notice>,
) -> Markup {
    let now = Utc::now();
    let base = integration_url(view.key);
    layout(
        ctx,
        view.key,
        html! {
            div.page-head {
                div {
                    div.crumbs { a href="/dashboard" { "Integrations" } " / " }
                    h1 { (view.key) }
                    p.muted { (provider_name(view.provider, view.display_name)) }
                }
                div.head-actions {
                    a.btn.btn-secondary href={ (base) "/edit" } { "Edit" }
                    a.btn.btn-danger-ghost href={ (base) "/delete" } { "Delete" }
                }
            }
            (notice(flash))
            div.grid-2 {
                div.card {
                    h2 { "Configuration" }
                    dl.kv {
                        dt { "Provider" } dd { (provider_name(view.provider, view.display_name)) }
                        dt { "Auth mode" } dd { @if let Some(mode) = view.auth_mode { code { (mode) } } @else { span.muted { "not in the catalog" } } }
                        dt { "Client ID" } dd { code.wrap { (view.client_id) } }
                        dt { "Client secret" } dd { span.muted { "stored, never shown" } }
                        dt { "Scopes" } dd { (scopes(view.scopes)) }
                        dt { "Created" } dd { (time_full(Some(view.created_at), now)) }
                        dt { "Updated" } dd { (time_full(Some(view.updated_at), now)) }
                        @if let Some(docs) = view.docs {
                            dt { "Provider docs" } dd { a href=(docs) rel="noopener noreferrer" target="_blank" { (docs) } }
                        }
                    }
                    div.copy-row.compact {
                        span.label { "Callback URL" }
                        code { (callback_url) }
                        button.btn.btn-secondary.btn-sm type="button" data-copy=(callback_url) { "Copy" }
                    }
                }
                div.card {
                    h2 { "Connect a test account" }
                    @match &view.test_connect {
                        TestConnect::Unavailable(why) => { p.muted { (why) } },
                        mode => {
                            p.muted {
                                @if matches!(mode, TestConnect::Popup) {
                                    "Runs the real flow in a popup with the frontend SDK, as your app would."
                                } @else {
                                    "Stores the credentials through the frontend SDK, as your app would."
                                }
                            }
                            form #connect-test data-key=(view.key)
                                data-auth-mode=(view.auth_mode.unwrap_or_default())
                                data-require-session=(if view.require_connect_session { "true" } else { "false" })
                                data-session-url={ (base) "/connect-session" } {
                                div.field {
                                    label for="test-connection-id" { "Connection ID" }
                                    input #test-connection-id type="text" name="connection_id" value=(view.suggested_connection_id) required maxlength="255" autocomplete="off";
                                }
                                @if matches!(mode, TestConnect::ApiKey) {
                                    div.field {
                                        label for="test-api-key" { "API key" }
                                        input #test-api-key type="password" name="api_key" required autocomplete="off";
                                    }
                                }
                                @if matches!(mode, TestConnect::Basic) {
                                    div.field {
                                        label for="test-username" { "Username" }
                                        input #test-username type="text" name="username" required autocomplete="off";
                                    }
                                    div.field {
                                        label for="test-password" { "Password" }
                                        input #test-password type="password" name="password" autocomplete="off";
                                    }
                                }
                                button.btn.btn-primary #connect-test-button type="submit" { "Connect a test account" }
                                p.connect-status #connect-status aria-live="polite" {}
                            }
                            @if view.require_connect_session {
                                p.hint { "Connect sessions are required: the dashboard mints one for this flow." }
                            }
                        }
                    }
                }
            }
            div.card.table-card {
                div.card-head { h2 { "Connections" } }
                @if rows.is_empty() {
                    div.empty { p { "No connection for this integration yet." } }
                } @else {
                    (connections_table(ctx, rows, false))
                }
            }
            script type="module" src=(assets::url(assets::CONNECT_JS)) {}
        },
    )
}

/// One field of the credentials, masked when it is a secret.
pub struct CredentialField<'a> {
    pub name: &'static str,
    pub value: &'a str,
    pub secret: bool,
}

pub struct ConnectionView<'a> {
    pub key: &'a str,
    pub connection_id: &'a str,
    pub provider: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub status: Status,
    pub credential_type: &'static str,
    pub fields: Vec<CredentialField<'a>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub raw: Option<Value>,
    pub connection_config: &'a Map<String, Value>,
    pub metadata: &'a Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub health: &'a crate::store::ConnectionHealth,
}

fn json_block(map: &Map<String, Value>) -> Markup {
    html! {
        @if map.is_empty() {
            span.muted { "none" }
        } @else {
            pre.json { (serde_json::to_string_pretty(map).unwrap_or_default()) }
        }
    }
}

pub fn connection(ctx: &Ctx, view: &ConnectionView, flash: Option<&Notice>) -> Markup {
    let now = Utc::now();
    let base = connection_url(view.key, view.connection_id);
    let health = view.health;
    layout(
        ctx,
        view.connection_id,
        html! {
            div.page-head {
                div {
                    div.crumbs {
                        a href="/dashboard" { "Integrations" } " / "
                        a href=(integration_url(view.key)) { (view.key) } " / "
                    }
                    h1 { (view.connection_id) " " span #status class=(view.status.class()) { (view.status.label()) } }
                    p.muted { (view.status.explanation()) }
                }
                div.head-actions {
                    form.inline method="post" action={ (base) "/refresh" } {
                        (csrf_field(ctx))
                        button.btn.btn-primary #force-refresh type="submit" { "Force refresh" }
                    }
                    a.btn.btn-danger-ghost href={ (base) "/delete" } { "Delete" }
                }
            }
            (notice(flash))
            div.grid-2 {
                div.card {
                    h2 { "Credentials" }
                    dl.kv.credentials {
                        dt { "Type" } dd { code { (view.credential_type) } }
                        @for field in &view.fields {
                            dt { (field.name) }
                            dd {
                                @if field.secret {
                                    @let id = format!("secret-{}", field.name);
                                    div.secret-row {
                                        code.secret id=(id) data-masked=(mask(field.value)) { (mask(field.value)) }
                                        button.btn.btn-secondary.btn-sm type="button"
                                            data-reveal={ (base) "/reveal" } data-field=(field.name) data-target=(id) { "Reveal" }
                                    }
                                } @else {
                                    code { (field.value) }
                                }
                            }
                        }
                        dt { "Expires" } dd #expires-at { (time_full(view.expires_at, now)) }
                    }
                    @if let Some(raw) = &view.raw {
                        details.raw {
                            summary { "Token response (secrets masked)" }
                            pre.json { (serde_json::to_string_pretty(raw).unwrap_or_default()) }
                        }
                    }
                }
                div.card {
                    h2 { "Refreshes" }
                    dl.kv {
                        dt { "Status" } dd { span class=(view.status.class()) { (view.status.label()) } }
                        dt { "Last refresh" } dd #last-refresh { (time_full(health.refreshed_at, now)) }
                        dt { "Failures" } dd { (health.refresh_failures) }
                        dt { "Retry after" } dd { (time_full(health.retry_after, now)) }
                        dt { "Provider error" } dd #provider-error {
                            @if let Some(error) = &health.refresh_error { span.error-text.wrap { (error) } }
                            @else { span.muted { "none" } }
                        }
                    }
                    h2 { "Connection" }
                    dl.kv {
                        dt { "Integration" } dd { a href=(integration_url(view.key)) { (view.key) } }
                        dt { "Provider" } dd {
                            @if let Some(provider) = view.provider { (provider_name(provider, view.display_name)) }
                            @else { span.muted { "the integration no longer exists" } }
                        }
                        dt { "Created" } dd { (time_full(Some(view.created_at), now)) }
                        dt { "Updated" } dd { (time_full(Some(view.updated_at), now)) }
                        dt { "Connection config" } dd { (json_block(view.connection_config)) }
                        dt { "Metadata" } dd { (json_block(view.metadata)) }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_at_most_a_short_prefix_of_long_secrets() {
        assert_eq!(mask("short"), "••••••••••••");
        assert_eq!(mask("access-1"), "••••••••••••");
        let jwt = "eyJhbGciOiJSUzI1NiJ9.payload.signature";
        assert_eq!(mask(jwt), "eyJh••••••••••••");
    }

    #[test]
    fn token_responses_are_masked_at_every_depth() {
        let raw = serde_json::json!({
            "access_token": "top-secret-access-token",
            "token_type": "bearer",
            "expires_in": 3600,
            "authed_user": {"access_token": "nested-secret-token-value", "scope": "read"},
        });
        let masked = masked_raw(&raw, None).to_string();
        assert!(!masked.contains("top-secret-access-token"), "{masked}");
        assert!(!masked.contains("nested-secret-token-value"), "{masked}");
        assert!(masked.contains("bearer") && masked.contains("read") && masked.contains("3600"));
    }

    #[test]
    fn spliced_text_is_escaped() {
        let page = problem(None, "<b>x</b>", "<script>alert(1)</script>").into_string();
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>alert"));
    }
}
