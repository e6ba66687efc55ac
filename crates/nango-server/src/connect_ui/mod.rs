//! Connect UI: the page an app opens with `@nangohq/frontend`'s
//! `openConnectUI({sessionToken, baseURL: '<server>/connect', apiURL: '<server>'})`, or sends the
//! end user to with a session's `connect_link`. It lists the integrations the connect session
//! allows, runs the OAuth popup or the API-key / Basic form with this server's frontend SDK
//! (no connection id: the session names the connection), and tells the app the outcome with
//! current Nango's postMessage protocol (`ready`, then `connect`, `error` or `close`).
//!
//! The page holds nothing secret (the session token arrives by postMessage or in the link), and
//! only the app's own origins may frame it: those of `NANGO_REDIRECT_ALLOWLIST`
//! (`frame-ancestors`); the script also takes the token only from a parent of those origins.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::dashboard::assets;
use crate::http::{parse_query, query_value};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect", get(page))
        .route("/connect/", get(page))
}

/// The Content-Security-Policy of the page: its own scripts and styles, API calls and the SDK's
/// WebSocket to this server, framed only by the app's origins.
fn policy(app_origins: &[String]) -> String {
    let ancestors = if app_origins.is_empty() {
        "'none'".to_string()
    } else {
        app_origins.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'none'; base-uri 'none'; object-src 'none'; \
         frame-ancestors {ancestors}"
    )
}

/// `theme=light|dark` from the SDK (anything else follows the system).
fn theme(query: Option<&str>) -> &'static str {
    let Ok(pairs) = parse_query(query) else {
        return "system";
    };
    match query_value(&pairs, "theme") {
        Some("light") => "light",
        Some("dark") => "dark",
        _ => "system",
    }
}

async fn page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let origins = &state.settings.redirect_allowlist;
    let markup = render(origins, theme(query.as_deref()));
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response();
    match HeaderValue::from_str(&policy(origins)) {
        Ok(value) => {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
        // The allow-list's origins are checked when the server starts; should one not fit a
        // header, nothing may frame the page.
        Err(_) => {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
        }
    }
    response
}

fn render(app_origins: &[String], theme: &str) -> Markup {
    let origins = serde_json::to_string(app_origins).unwrap_or_else(|_| "[]".into());
    html! {
        (DOCTYPE)
        html lang="en" data-theme=(theme) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Connect an account" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::url(assets::CONNECT_UI_CSS));
                script type="module" src=(assets::url(assets::CONNECT_UI_JS)) {}
            }
            body {
                main.connect-ui data-app-origins=(origins) {
                    header.connect-head {
                        h1 id="title" { "Connect an account" }
                        button.close type="button" id="close" aria-label="Close" { "×" }
                    }
                    p id="status" role="status" aria-live="polite" { "Loading…" }
                    section id="choose" aria-labelledby="choose-title" hidden {
                        h2 id="choose-title" { "Choose an integration" }
                        ul id="integrations" class="integrations" {}
                    }
                    form id="credentials" novalidate hidden {
                        h2 id="form-title" {}
                        div.field id="field-api-key" hidden {
                            label for="api-key" { "API key" }
                            input id="api-key" name="apiKey" type="password" autocomplete="off" spellcheck="false";
                        }
                        div.field id="field-username" hidden {
                            label for="username" { "Username" }
                            input id="username" name="username" type="text" autocomplete="username" spellcheck="false";
                        }
                        div.field id="field-password" hidden {
                            label for="password" { "Password" }
                            input id="password" name="password" type="password" autocomplete="current-password";
                        }
                        div.actions {
                            button.primary type="submit" id="submit" { "Connect" }
                            button type="button" id="back" { "Back" }
                        }
                    }
                    section id="done" hidden {
                        p id="done-text" {}
                        button.primary type="button" id="finish" { "Done" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_apps_origins_may_frame_the_page() {
        assert!(policy(&[]).contains("frame-ancestors 'none'"));
        let policy = policy(&["https://app.example.com".into()]);
        assert!(
            policy.ends_with("frame-ancestors https://app.example.com"),
            "{policy}"
        );
        assert!(policy.contains("script-src 'self'"));
    }

    #[test]
    fn the_origins_are_escaped_into_the_page() {
        let page = render(&["https://a.example\"<x>".into()], "dark").into_string();
        assert!(!page.contains("<x>"), "{page}");
        assert!(page.contains("data-theme=\"dark\""));
    }
}
