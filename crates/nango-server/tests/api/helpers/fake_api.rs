//! A fake provider API for the proxy tests: records every request it gets (method, path, raw
//! query, headers, body size and the start of the body), echoes it back as JSON, and can be told
//! to refuse some bearer tokens (401), to answer a script of statuses first (429, 5xx with their
//! headers), or to stream a body of any size (`GET <base>/big/<bytes>`).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Map, Value};

/// Bytes of each request body kept for assertions (the rest is only counted).
const KEPT_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body_len: usize,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    pub fn bearer(&self) -> Option<String> {
        self.header("authorization")?
            .strip_prefix("Bearer ")
            .map(String::from)
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<ApiRequest>,
    refused_tokens: HashSet<String>,
    refuse_every_bearer: bool,
    script: VecDeque<(u16, Vec<(String, String)>)>,
}

#[derive(Clone)]
pub struct FakeApi {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let api = FakeApi {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::default(),
        };
        let app = Router::new().fallback(any(handle)).with_state(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        api
    }

    pub fn requests(&self) -> Vec<ApiRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn last_request(&self) -> ApiRequest {
        self.requests().pop().expect("the fake API got no request")
    }

    pub fn request_count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// Answers 401 to requests with this bearer token from now on.
    pub fn refuse_token(&self, token: &str) {
        self.inner
            .lock()
            .unwrap()
            .refused_tokens
            .insert(token.to_string());
    }

    /// Answers 401 to every bearer token (as when a grant was revoked).
    pub fn refuse_every_bearer(&self, refuse: bool) {
        self.inner.lock().unwrap().refuse_every_bearer = refuse;
    }

    /// The next requests get these statuses and headers, in order, before normal answers.
    pub fn script(&self, answers: &[(u16, &[(&str, &str)])]) {
        let mut inner = self.inner.lock().unwrap();
        for (status, headers) in answers {
            let headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            inner.script.push_back((*status, headers));
        }
    }
}

async fn handle(State(api): State<FakeApi>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut body_len = 0;
    let mut kept = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
        };
        body_len += chunk.len();
        if kept.len() < KEPT_BODY {
            let room = KEPT_BODY - kept.len();
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    let recorded = ApiRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        headers: parts.headers.clone(),
        body_len,
        body: kept,
    };
    let mut inner = api.inner.lock().unwrap();
    inner.requests.push(recorded.clone());
    if let Some(token) = recorded.bearer() {
        if inner.refuse_every_bearer || inner.refused_tokens.contains(&token) {
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"error":"invalid_token"}"#,
            )
                .into_response();
        }
    }
    if let Some((status, headers)) = inner.script.pop_front() {
        let mut response = (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"scripted": status})),
        )
            .into_response();
        for (name, value) in headers {
            response.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        return response;
    }
    drop(inner);

    if let Some(size) = recorded
        .path
        .rsplit_once("/big/")
        .and_then(|(_, n)| n.parse::<usize>().ok())
    {
        return big_body(size);
    }
    let headers: Map<String, Value> = recorded
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
        .collect();
    let echo = json!({
        "method": recorded.method,
        "path": recorded.path,
        "query": recorded.query,
        "headers": headers,
        "body_len": recorded.body_len,
        "body": String::from_utf8_lossy(&recorded.body),
    });
    (
        StatusCode::OK,
        [("x-fake-api", "echo"), ("cache-control", "no-store")],
        axum::Json(echo),
    )
        .into_response()
}

/// `size` bytes of a repeating pattern, made as they are sent (never held whole).
fn big_body(size: usize) -> Response {
    const CHUNK: usize = 64 * 1024;
    let pattern: Bytes = (0..CHUNK)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let chunks = futures::stream::unfold(size, move |left| {
        let pattern = pattern.clone();
        async move {
            (left > 0).then(|| {
                let n = left.min(CHUNK);
                (Ok::<_, std::io::Error>(pattern.slice(..n)), left - n)
            })
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header("content-length", size.to_string())
        .body(Body::from_stream(chunks))
        .unwrap()
}
