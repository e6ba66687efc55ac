//! Telling the frontend how a flow ended: WebSocket frames for `@nangohq/frontend` 0.9 (§2.3 of
//! the wire reference) and the legacy `postMessage` pages for 0.8 and older (§2.2).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::AppState;

/// How a flow ended, as the frontend must learn it.
#[derive(Debug, Clone)]
pub enum FlowOutcome {
    Success {
        provider_config_key: String,
        connection_id: String,
    },
    Failure {
        error_type: &'static str,
        message: String,
        provider_config_key: Option<String>,
        connection_id: Option<String>,
    },
}

impl FlowOutcome {
    fn ws_frame(&self) -> Value {
        match self {
            FlowOutcome::Success {
                provider_config_key,
                connection_id,
            } => json!({
                "message_type": "success",
                "provider_config_key": provider_config_key,
                "connection_id": connection_id,
            }),
            FlowOutcome::Failure {
                error_type,
                message,
                provider_config_key,
                connection_id,
            } => {
                let mut frame = json!({"message_type": "error"});
                if let Some(key) = provider_config_key {
                    frame["provider_config_key"] = json!(key);
                }
                if let Some(id) = connection_id {
                    frame["connection_id"] = json!(id);
                }
                frame["error_type"] = json!(error_type);
                frame["error_desc"] = json!(message);
                frame
            }
        }
    }

    /// The `postMessage` payload of the legacy protocol (the `SUCEEDED` spelling is the contract).
    fn post_message(&self) -> Value {
        match self {
            FlowOutcome::Success {
                provider_config_key,
                connection_id,
            } => json!({
                "eventType": "AUTHORIZATION_SUCEEDED",
                "data": {"connectionId": connection_id, "providerConfigKey": provider_config_key},
            }),
            FlowOutcome::Failure {
                error_type,
                message,
                provider_config_key,
                connection_id,
            } => {
                let mut data = json!({"error": {"type": error_type, "message": message}});
                if let Some(key) = provider_config_key {
                    data["providerConfigKey"] = json!(key);
                }
                if let Some(id) = connection_id {
                    data["connectionId"] = json!(id);
                }
                json!({"eventType": "AUTHORIZATION_FAILED", "data": data})
            }
        }
    }

    /// The page's status: 4xx when the request was at fault, 500 only for our (or the
    /// provider's) faults. The 0.9 clients read the payload, not the status.
    fn status(&self) -> StatusCode {
        use super::flow_error as fe;
        match self {
            FlowOutcome::Success { .. } => StatusCode::OK,
            FlowOutcome::Failure { error_type, .. } => match *error_type {
                fe::PROVIDER_CONFIG | fe::UNKNOWN_CONFIG_KEY => StatusCode::NOT_FOUND,
                fe::MISSING_CONNECTION_ID
                | fe::URL_PARAM
                | fe::GRANT_TYPE
                | fe::AUTH_MODE
                | fe::CALLBACK
                | fe::STATE
                | fe::INVALID_REQUEST
                | fe::INVALID_RETURN_TO
                | fe::CONNECT_SESSION => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

/// Where the outcome of a flow goes besides the popup page.
#[derive(Debug, Clone, Default)]
pub struct FlowReply {
    /// The WebSocket of a 0.9-style SDK.
    pub ws_client_id: Option<String>,
    /// Redirect mode: the app URL to send the browser back to (allow-listed).
    pub return_to: Option<String>,
}

/// Open WebSockets per client address at most: a page runs one flow at a time, and a few
/// users behind one NAT address still fit.
pub const MAX_SOCKETS_PER_CLIENT: usize = 32;
/// Open WebSockets in this process at most.
pub const MAX_SOCKETS: usize = 4096;

/// Open frontend WebSockets of this process, by client id. A callback served by another replica
/// reaches them through the store's channel (PostgreSQL NOTIFY, `forward_published_frames`).
#[derive(Default)]
pub struct WsHub {
    sockets: Mutex<HashMap<String, oneshot::Sender<String>>>,
    /// Open (or opening) sockets by client address; the total is the sum.
    open: std::sync::Arc<Mutex<OpenSockets>>,
}

#[derive(Default)]
struct OpenSockets {
    by_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// One socket counted against the caps until dropped.
pub struct SocketSlot {
    open: std::sync::Arc<Mutex<OpenSockets>>,
    client: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(count) = open.by_client.get_mut(&self.client) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.by_client.remove(&self.client);
                }
            }
        }
    }
}

impl WsHub {
    /// A slot for one more socket of `client`, unless it or the process is at its cap.
    /// `per_client`: whether the per-address cap applies (it does not when the public rate
    /// limit is off, as behind a reverse proxy, where every client has the proxy's address).
    fn reserve(&self, client: IpAddr, per_client: bool) -> Option<SocketSlot> {
        let mut open = self.open.lock().ok()?;
        let mine = open.by_client.get(&client).copied().unwrap_or(0);
        if open.total >= MAX_SOCKETS || (per_client && mine >= MAX_SOCKETS_PER_CLIENT) {
            return None;
        }
        open.total += 1;
        open.by_client.insert(client, mine + 1);
        Some(SocketSlot {
            open: self.open.clone(),
            client,
        })
    }

    fn register(&self, id: String, sender: oneshot::Sender<String>) {
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.insert(id, sender);
        }
    }

    fn forget(&self, id: &str) {
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.remove(id);
        }
    }

    /// Sends one frame to the socket and forgets it; false if no such socket is open here.
    fn deliver(&self, id: &str, frame: String) -> bool {
        let sender = self.sockets.lock().ok().and_then(|mut s| s.remove(id));
        sender.is_some_and(|s| s.send(frame).is_ok())
    }
}

/// The path the SDKs open their socket on: the host root (`ws://host:port`).
pub const SOCKET_PATH: &str = "/";

/// Whether `request` asks for a WebSocket on the SDKs' path (the public rate limit counts
/// these with the flow's routes).
pub fn is_socket_request(request: &Request) -> bool {
    request.uri().path() == SOCKET_PATH
        && request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Accepts WebSocket upgrades on the SDKs' path (the 0.9 SDK connects to the host root), at
/// most [`MAX_SOCKETS_PER_CLIENT`] per client address (while the public rate limit is on) and
/// [`MAX_SOCKETS`] in all (beyond, 429: our SDK then falls back to the popup's `postMessage`),
/// and passes every other request on.
pub async fn upgrade_websockets(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !is_socket_request(&request) {
        return next.run(request).await;
    }
    let client = crate::http::client_address(&request);
    let per_client = state.settings.public_rate_limit_per_minute > 0;
    let Some(slot) = state.ws.reserve(client, per_client) else {
        tracing::info!(client = %client, "WebSocket refused: too many open");
        return crate::http::json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "error": "Too many WebSockets open from this address or on this server.",
                "type": "rate_limited",
            }),
        );
    };
    let (mut parts, _body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade
            .max_message_size(64 * 1024)
            .on_upgrade(move |socket| serve_socket(state, socket, slot)),
        Err(rejection) => rejection.into_response(),
    }
}

/// Serves one SDK socket: the ack with its id, then the flow's outcome. A socket lives no
/// longer than a flow may take (`oauth_state_ttl`): after that no outcome can come for it.
async fn serve_socket(state: AppState, mut socket: WebSocket, slot: SocketSlot) {
    let deadline = tokio::time::sleep(state.settings.oauth_state_ttl);
    tokio::pin!(deadline);
    let id = uuid::Uuid::new_v4().to_string();
    let (sender, receiver) = oneshot::channel();
    state.ws.register(id.clone(), sender);
    let ack = json!({"message_type": "connection_ack", "ws_client_id": id}).to_string();
    if socket.send(Message::Text(ack.into())).await.is_err() {
        state.ws.forget(&id);
        return;
    }
    let mut receiver = receiver;
    loop {
        tokio::select! {
            frame = &mut receiver => {
                if let Ok(frame) = frame {
                    let _ = socket.send(Message::Text(frame.into())).await;
                }
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            () = &mut deadline => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.recv() => match incoming {
                // The SDK sends nothing; anything else is ignored until the socket closes.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.ws.forget(&id);
    drop(slot);
}

/// Ends a flow. In redirect mode the browser goes back to the app. When the flow came from a WebSocket SDK, the outcome goes to its socket (here, or
/// through the database to the replica that holds it) and the popup just closes; otherwise the
/// page carries the outcome to the opener with `postMessage`.
pub async fn finish_flow(state: &AppState, reply: &FlowReply, outcome: FlowOutcome) -> Response {
    let ws_client_id = reply.ws_client_id.as_deref();
    match &outcome {
        FlowOutcome::Success {
            provider_config_key,
            connection_id,
        } => tracing::info!(
            provider_config_key = %provider_config_key, connection_id = %connection_id, "OAuth flow succeeded"
        ),
        FlowOutcome::Failure {
            error_type,
            message,
            ..
        } => {
            tracing::info!(error_type = %error_type, message = %message, "OAuth flow failed")
        }
    }
    if let Some(response) = reply
        .return_to
        .as_deref()
        .and_then(|return_to| redirect_page(&outcome, return_to))
    {
        return response;
    }
    let delivered = match ws_client_id {
        Some(id) => {
            let frame = outcome.ws_frame().to_string();
            state.ws.deliver(id, frame.clone())
                || state
                    .store
                    .publish_ws_frame(id, &frame)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "could not publish a flow result");
                        false
                    })
        }
        None => false,
    };
    let script = if delivered {
        "setTimeout(function () { window.close(); }, 300);".to_string()
    } else {
        format!(
            "var message = {};\nif (window.opener) {{ window.opener.postMessage(message, '*'); }}\nsetTimeout(function () {{ window.close(); }}, 300);",
            script_json(&outcome.post_message())
        )
    };
    html_page(&outcome, &script)
}

/// Forwards frames published by other replicas to the sockets open here.
pub async fn forward_published_frames(
    hub: std::sync::Arc<WsHub>,
    mut frames: crate::store::WsFrames,
) {
    while let Some((id, frame)) = frames.recv().await {
        hub.deliver(&id, frame);
    }
}

/// JSON that is safe inside an inline `<script>`: `<`, `>`, `&` and the JS line separators are
/// escaped, so no value (connection id, provider error) can close the script or inject markup.
fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

const PAGE_STYLE: &str = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f6f7f9;color:#1f2328;display:flex;min-height:100vh;align-items:center;justify-content:center}main{background:#fff;border:1px solid #d8dee4;border-radius:12px;padding:32px 40px;max-width:420px;box-shadow:0 1px 3px rgba(0,0,0,.06);text-align:center}.brand{font-weight:700;letter-spacing:.04em;color:#6e7781;font-size:13px;text-transform:uppercase;margin:0 0 16px}h1{font-size:20px;margin:0 0 8px}h1.ok{color:#1a7f37}h1.err{color:#cf222e}p{margin:0 0 8px;line-height:1.45;overflow-wrap:anywhere}.hint{color:#6e7781;font-size:13px}";

/// Text for people, HTML-escaped: every value in the page body goes through here.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The popup page: a short message for the user and the script, both pinned by hash in the CSP.
fn html_page(outcome: &FlowOutcome, script: &str) -> Response {
    let digest = |text: &str| {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    };
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        digest(script),
        digest(PAGE_STYLE)
    );
    let (class, title, message) = match outcome {
        FlowOutcome::Success {
            provider_config_key,
            connection_id,
        } => (
            "ok",
            "Connected",
            format!(
                "The connection \u{201c}{connection_id}\u{201d} to {provider_config_key} is ready."
            ),
        ),
        FlowOutcome::Failure { message, .. } => ("err", "Authorization failed", message.clone()),
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>Authorization callback</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n<main>\n<p class=\"brand\">Nango</p>\n<h1 class=\"{class}\">{title}</h1>\n<p>{}</p>\n<p class=\"hint\">This window closes by itself. If it does not, you can close it.</p>\n</main>\n<script>{script}</script>\n</body>\n</html>\n",
        escape_html(&message)
    );
    let mut response = (outcome.status(), body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(headers);
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The query parameters a redirect-mode result is given in (read by `Nango.handleRedirectResult`).
const REDIRECT_RESULT_PARAMS: [&str; 5] = [
    "nango_result",
    "provider_config_key",
    "connection_id",
    "error_type",
    "error_message",
];

/// Sends the browser back to the app's `return_to` (already checked against the allow-list) with
/// the outcome in the query: the redirect mode of our frontend SDK.
fn redirect_page(outcome: &FlowOutcome, return_to: &str) -> Option<Response> {
    let mut url = url::Url::parse(return_to).ok()?;
    // The app's own query survives; an earlier result's parameters (a user retrying from a page
    // that already carries one) are replaced, never duplicated into an ambiguous query.
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !REDIRECT_RESULT_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(kept);
        match outcome {
            FlowOutcome::Success {
                provider_config_key,
                connection_id,
            } => {
                query.append_pair("nango_result", "success");
                query.append_pair("provider_config_key", provider_config_key);
                query.append_pair("connection_id", connection_id);
            }
            FlowOutcome::Failure {
                error_type,
                message,
                provider_config_key,
                connection_id,
            } => {
                query.append_pair("nango_result", "error");
                query.append_pair("error_type", error_type);
                query.append_pair("error_message", message);
                if let Some(key) = provider_config_key {
                    query.append_pair("provider_config_key", key);
                }
                if let Some(id) = connection_id {
                    query.append_pair("connection_id", id);
                }
            }
        }
    }
    let location = HeaderValue::from_str(url.as_str()).ok()?;
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    security_headers(response.headers_mut());
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let s = script_json(&json!({"id": "</script><img src=x onerror=alert(1)>\u{2028}"}));
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('\u{2028}'),
            "{s}"
        );
    }

    #[test]
    fn ws_error_frame_omits_unknown_keys() {
        let frame = FlowOutcome::Failure {
            error_type: "missing_connection_id",
            message: "Missing Connection ID.".into(),
            provider_config_key: Some("k".into()),
            connection_id: None,
        }
        .ws_frame();
        assert_eq!(
            frame.to_string(),
            r#"{"message_type":"error","provider_config_key":"k","error_type":"missing_connection_id","error_desc":"Missing Connection ID."}"#
        );
    }
}
