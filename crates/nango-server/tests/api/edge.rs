//! The server's edge (security review 2): CORS only where a web page needs it and a Host check
//! without a key (F2), connection timeouts and cap (F5), WebSocket limits (F6), the metrics'
//! method label (F7), rate-limited wrong secret keys (F14).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{basic_auth, header, TestApp, CLIENT_SECRET, SECRET_KEY};

const EVIL_ORIGIN: &str = "https://evil.example";

/// The routes that take the secret key (and the dashboard), as a page on another site would
/// read them.
const SECRET_ROUTES: [&str; 7] = [
    "/config",
    "/config/fake-1",
    "/connection",
    "/connect/sessions",
    "/metrics",
    "/webhooks/deliveries",
    "/dashboard",
];

fn assert_no_cors(headers: &reqwest::header::HeaderMap, what: &str) {
    let cors: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: CORS headers {cors:?}");
}

// --- F2 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_page_on_another_site_cannot_read_a_keyless_server() {
    // E2: without a key, any page the operator visits could read client secrets with fetch().
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    for path in SECRET_ROUTES {
        let response = app
            .anon(Method::GET, path)
            .header("Origin", EVIL_ORIGIN)
            .send()
            .await
            .unwrap();
        assert_no_cors(response.headers(), path);
        let preflight = app
            .anon(Method::OPTIONS, path)
            .header("Origin", EVIL_ORIGIN)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_no_cors(preflight.headers(), &format!("preflight {path}"));
    }
    // The proxy (a secret-key route too) keeps having none.
    let preflight = app
        .anon(Method::OPTIONS, "/proxy/anything")
        .header("Origin", EVIL_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_no_cors(preflight.headers(), "preflight /proxy");
}

#[tokio::test]
async fn with_a_key_the_secret_routes_send_no_cors_either() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    for path in SECRET_ROUTES {
        let response = app
            .api(Method::GET, path)
            .header("Origin", EVIL_ORIGIN)
            .send()
            .await
            .unwrap();
        assert_no_cors(response.headers(), path);
        let preflight = app
            .anon(Method::OPTIONS, path)
            .header("Origin", EVIL_ORIGIN)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert_no_cors(preflight.headers(), &format!("preflight {path}"));
    }
}

#[tokio::test]
async fn the_routes_the_frontend_sdks_call_keep_open_cors() {
    let app = TestApp::spawn_with_secret_key().await;
    app.create_config("fake-1", "fake", "").await;
    for path in [
        "/",
        "/health",
        "/providers",
        "/sdk/frontend.js",
        "/openapi.json",
    ] {
        let response = app
            .anon(Method::GET, path)
            .header("Origin", EVIL_ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            "*",
            "{path}"
        );
    }
    for (path, method) in [
        ("/api-auth/api-key/fake-1?connection_id=u1", "POST"),
        ("/api-auth/basic/fake-1?connection_id=u1", "POST"),
        ("/oauth/connect/fake-1?connection_id=u1", "GET"),
    ] {
        let preflight = app
            .anon(Method::OPTIONS, path)
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        assert_eq!(
            header(preflight.headers(), "access-control-allow-origin"),
            "*",
            "{path}"
        );
    }
    // Errors of a browser route carry it too, or the SDK could not read them.
    let response = app
        .anon(Method::POST, "/api-auth/api-key/nope?connection_id=u1")
        .header("Origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        "*"
    );
}

#[tokio::test]
async fn a_keyless_server_answers_a_rebound_host_name_with_421_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "").await;
    let port = app.addr.port();
    let rebound = format!("rebind.evil.example:{port}");
    for path in [
        "/config",
        "/config/fake-1",
        "/connection",
        "/dashboard",
        "/",
    ] {
        let response = app
            .anon(Method::GET, path)
            .header("Host", &rebound)
            .header("Origin", format!("http://{rebound}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
        assert_no_cors(response.headers(), path);
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(CLIENT_SECRET) && !body.contains("fake-1"),
            "{body}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["type"], "misdirected_request");
        assert!(body["error"].is_string());
    }
    // The names this server has: loopback ones (any port) and its URL's.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
        "LOCALHOST:1".to_string(),
        format!("[::1]:{port}"),
    ] {
        let response = app
            .anon(Method::GET, "/config")
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "Host: {host}");
    }
    // A health probe may address the container by any name.
    let response = app
        .anon(Method::GET, "/health")
        .header("Host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_keyless_server_answers_the_host_of_its_server_url() {
    let app = TestApp::spawn_with(|s| {
        s.server_url = "https://nango.internal.example".into();
    })
    .await;
    let response = app
        .anon(Method::GET, "/config")
        .header("Host", "nango.internal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .anon(Method::GET, "/config")
        .header("Host", "other.internal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn with_a_key_any_host_name_is_answered() {
    let app = TestApp::spawn_with_secret_key().await;
    let rebound = format!("rebind.evil.example:{}", app.addr.port());
    let response = app
        .api(Method::GET, "/config")
        .header("Host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .anon(Method::GET, "/config")
        .header("Host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

// --- F5 -----------------------------------------------------------------------------------------

/// Reads until the server closes the connection (or `limit` passes); returns what was read
/// and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into(), false),
        }
    }
}

/// Reads one whole response to `GET /health` (a small body with a Content-Length).
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

const HEALTH_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn the_default_timeouts_are_within_the_review_s_bounds() {
    let settings = nango_server::Settings::for_address(
        "127.0.0.1:3003".parse().unwrap(),
        "sqlite://unused.db",
    );
    let header = settings.header_read_timeout;
    assert!(
        header >= Duration::from_secs(10) && header <= Duration::from_secs(20),
        "{header:?}"
    );
    assert!(settings.idle_timeout <= Duration::from_secs(120));
    assert!(settings.max_connections > 0);
}

#[tokio::test]
async fn a_partial_request_head_is_closed_within_the_header_timeout() {
    // E5 (slowloris): a client that never finishes its request head.
    let app = TestApp::spawn_with(|s| {
        s.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "the connection is still open after 10 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // Dripping bytes does not keep it open either.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    for byte in b"GET /health HTTP/1.1\r\nHost: 127" {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed && started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(|s| {
        s.header_read_timeout = Duration::from_secs(30);
        s.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTH_REQUEST).await.unwrap();
    let response = read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Kept alive for the next request...
    stream.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(read_response(&mut stream, Duration::from_secs(5))
        .await
        .is_some());
    // ...but not forever.
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "still open after 10 s idle");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http1_keep_alive_between_requests_is_bounded_by_the_header_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(read_response(&mut stream, Duration::from_secs(5))
        .await
        .is_some());
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed && started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connections_above_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(|s| {
        s.max_connections = 2;
    })
    .await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(HEALTH_REQUEST).await.unwrap();
        assert!(read_response(stream, Duration::from_secs(5))
            .await
            .is_some());
    }
    // Both stay open (keep-alive); a third client is not served meanwhile.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(
        read_response(&mut third, Duration::from_millis(1500))
            .await
            .is_none(),
        "a third connection was served while two were open"
    );
    drop(first);
    let response = read_response(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a slot is free");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The second connection still works.
    second.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(read_response(&mut second, Duration::from_secs(5))
        .await
        .is_some());
}

#[tokio::test]
async fn shutdown_drains_a_request_in_flight() {
    let mut app = TestApp::spawn().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(read_response(&mut stream, Duration::from_secs(5))
        .await
        .is_some());
    // An idle keep-alive connection does not hold the shutdown up.
    let started = Instant::now();
    app.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(closed);
}

// --- F6 -----------------------------------------------------------------------------------------

async fn ws_open(app: &TestApp, path: &str) -> Result<WsStream, String> {
    tokio_tungstenite::connect_async(format!("ws://{}{path}", app.addr))
        .await
        .map(|(stream, _)| stream)
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                format!("HTTP {}", response.status().as_u16())
            }
            other => other.to_string(),
        })
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

#[tokio::test]
async fn websockets_open_only_on_the_sdk_path() {
    let app = TestApp::spawn().await;
    assert!(ws_open(&app, "/").await.is_ok());
    for path in ["/some/path", "/config", "/oauth/callback", "/health"] {
        let refused = ws_open(&app, path).await.err();
        assert!(refused.is_some(), "{path}: upgraded");
    }
}

#[tokio::test]
async fn websockets_are_capped_per_client_address() {
    let app = TestApp::spawn().await;
    let mut open = Vec::new();
    for _ in 0..nango_server::oauth::notify::MAX_SOCKETS_PER_CLIENT {
        open.push(ws_open(&app, "/").await.expect("under the cap"));
    }
    assert_eq!(ws_open(&app, "/").await.err().as_deref(), Some("HTTP 429"));
    // A closed one frees its place.
    let mut closed = open.pop().unwrap();
    closed.close(None).await.unwrap();
    while closed.next().await.is_some() {}
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(socket) = ws_open(&app, "/").await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the slot of a closed socket is not freed"
    );
}

#[tokio::test]
async fn websockets_count_against_the_public_rate_limit() {
    let app = TestApp::spawn_with(|s| s.public_rate_limit_per_minute = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(ws_open(&app, "/").await.expect("within the limit"));
    }
    assert_eq!(ws_open(&app, "/").await.err().as_deref(), Some("HTTP 429"));
}

#[tokio::test]
async fn a_websocket_is_closed_when_no_flow_can_end_on_it_any_more() {
    let app = TestApp::spawn_with(|s| s.oauth_state_ttl = Duration::from_secs(1)).await;
    let mut socket = ws_open(&app, "/").await.unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    let started = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket is still open after 5 s");
    assert!(
        matches!(
            next,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None
        ),
        "{next:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    let _ = socket
        .send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
}

// --- F7 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn invented_methods_add_no_metric_series() {
    let app = TestApp::spawn().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("nango_http_requests_total"))
            .count()
    };
    let _ = app.get("/health").await;
    let before = series(&app.get("/metrics").await.text().await.unwrap());
    for i in 0..50 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let _ = app.anon(method, "/health").send().await.unwrap();
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(text.contains("method=\"OTHER\""), "{text}");
    // One OTHER series (and the second /metrics call's), not fifty.
    assert!(
        series(&text) <= before + 2,
        "{} -> {}",
        before,
        series(&text)
    );
}

// --- F14 ----------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_secret_keys_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.to_string()));
        s.auth_failures_per_minute = 5;
    })
    .await;
    // Right keys are never limited.
    for _ in 0..30 {
        assert_eq!(app.get("/config").await.status(), StatusCode::OK);
    }
    for guess in 0..5 {
        let response = app
            .anon(Method::GET, "/config")
            .header("Authorization", basic_auth(&format!("guess-{guess}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {guess}");
    }
    let response = app
        .anon(Method::GET, "/config")
        .header("Authorization", basic_auth("guess-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(response.headers(), "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "rate_limited");
    // Until the window ends, even the right key is refused from this address: a guesser must
    // not learn from the answer which guess was right.
    assert_eq!(
        app.get("/config").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The dashboard login counts with them.
    let response = app
        .anon(Method::POST, "/dashboard/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("secret_key={SECRET_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!header(response.headers(), "retry-after").is_empty());
    assert!(header(response.headers(), "set-cookie").is_empty());
}

#[tokio::test]
async fn wrong_dashboard_logins_are_rate_limited_too() {
    let app = TestApp::spawn_with(|s| {
        s.secret_key = Some(nango_server::secret::Secret::new(SECRET_KEY.to_string()));
        s.auth_failures_per_minute = 3;
    })
    .await;
    let login = |key: &str| {
        app.anon(Method::POST, "/dashboard/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("secret_key={key}"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login("wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("wrong").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get("/config").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_keyless_server_refuses_blind_writes_from_other_sites() {
    // Without CORS a page cannot read the answer, but a no-cors POST or a form still arrives;
    // the browser names the page's origin.
    let app = TestApp::spawn().await;
    let body = serde_json::json!({
        "provider_config_key": "planted",
        "provider": "fake",
        "oauth_client_id": "attacker",
        "oauth_client_secret": "attacker",
        "oauth_scopes": "",
    });
    for origin in [EVIL_ORIGIN, "null"] {
        let response = app
            .api(Method::POST, "/config")
            .header("Origin", origin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["type"], "cross_site_request");
    }
    assert!(app.config_keys().await.is_empty());
    // A page of this server (the dashboard) and programs (no Origin) are fine.
    let response = app
        .api(Method::POST, "/config")
        .header("Origin", format!("http://localhost:{}", app.addr.port()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.config_keys().await, ["planted"]);
}
