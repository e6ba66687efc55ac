//! What the client puts on the wire and how it reads answers, against a canned one-shot HTTP
//! responder (no Nango server needed).

// A canned exchange that cannot even happen should stop the test right there, with the reason.
#![allow(clippy::expect_used)]

use nango_client::{Client, Error, GetOptions, NewConfig, NewCredentials, ProxyRequest, Token};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as received: the head (request line + headers, lower-cased names) and the body.
struct Received {
    head: String,
    body: String,
}

impl Received {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Answers exactly one request with `status` and `body`, and hands back what it received.
async fn respond_once(status: &str, body: &str) -> (String, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host = format!("http://{}", listener.local_addr().expect("addr"));
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body_start) = loop {
            let n = socket.read(&mut chunk).await.expect("read");
            assert!(n > 0, "client closed before sending a request");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&buf[..pos]).to_string(), pos + 4);
            }
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < body_start + length {
            let n = socket.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "client closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        socket.write_all(response.as_bytes()).await.expect("write");
        let _ = socket.shutdown().await;
        Received {
            body: String::from_utf8_lossy(&buf[body_start..body_start + length]).to_string(),
            head,
        }
    });
    (host, task)
}

fn config_row() -> serde_json::Value {
    json!({
        "id": 1, "created_at": "2023-02-28T10:00:00.000Z", "updated_at": "2023-02-28T10:00:00.000Z",
        "unique_key": "my key", "provider": "github", "oauth_client_id": "cid",
        "oauth_client_secret": "csecret", "oauth_scopes": "repo,user", "account_id": 0
    })
}

#[tokio::test]
async fn get_config_sends_basic_auth_and_an_encoded_key() {
    let (host, server) = respond_once("200 OK", &json!({"config": config_row()}).to_string()).await;
    let client = Client::builder(&format!("{host}/"))
        .secret_key("sk")
        .build()
        .expect("client");
    let config = client.get_config("my key").await.expect("config");
    assert_eq!(config.unique_key, "my key");
    assert_eq!(config.oauth_client_secret.expose(), "csecret");
    assert_eq!(config.account_id, Some(0));

    let req = server.await.expect("server");
    assert_eq!(req.request_line(), "GET /config/my%20key HTTP/1.1");
    assert_eq!(req.header("authorization").as_deref(), Some("Basic c2s6"));
    assert_eq!(req.header("accept").as_deref(), Some("application/json"));
}

#[tokio::test]
async fn no_secret_key_means_no_authorization_header() {
    let (host, server) = respond_once("200 OK", r#"{"configs":[]}"#).await;
    let client = Client::new(&host).expect("client");
    assert!(client.list_configs().await.expect("list").is_empty());
    let req = server.await.expect("server");
    assert_eq!(req.request_line(), "GET /config HTTP/1.1");
    assert_eq!(req.header("authorization"), None);
}

#[tokio::test]
async fn create_config_posts_the_five_fields_as_json() {
    let (host, server) = respond_once("200 OK", r#"{"config_id":7}"#).await;
    let client = Client::new(&host).expect("client");
    let id = client
        .create_config(&NewConfig {
            provider_config_key: "github-dev".into(),
            provider: "github".into(),
            oauth_client_id: "cid".into(),
            oauth_client_secret: "csecret".into(),
            oauth_scopes: "repo,user".into(),
            connection_config: None,
        })
        .await
        .expect("create");
    assert_eq!(id, 7);

    let req = server.await.expect("server");
    assert_eq!(req.request_line(), "POST /config HTTP/1.1");
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    let body: serde_json::Value = serde_json::from_str(&req.body).expect("JSON body");
    assert_eq!(
        body,
        json!({"provider_config_key": "github-dev", "provider": "github",
               "oauth_client_id": "cid", "oauth_client_secret": "csecret",
               "oauth_scopes": "repo,user"})
    );
}

#[tokio::test]
async fn empty_200_bodies_are_success_for_edits_and_deletes() {
    let (host, server) = respond_once("200 OK", "").await;
    let client = Client::new(&host).expect("client");
    client
        .delete_connection("my key", "user/1")
        .await
        .expect("delete");
    let req = server.await.expect("server");
    assert_eq!(
        req.request_line(),
        "DELETE /connection/user%2F1?provider_config_key=my+key HTTP/1.1"
    );

    let (host, server) = respond_once("200 OK", "").await;
    let client = Client::new(&host).expect("client");
    client
        .update_config(&NewConfig {
            provider_config_key: "k".into(),
            provider: "github".into(),
            oauth_client_id: "i".into(),
            oauth_client_secret: "s".into(),
            oauth_scopes: "".into(),
            connection_config: None,
        })
        .await
        .expect("update");
    assert_eq!(
        server.await.expect("server").request_line(),
        "PUT /config HTTP/1.1"
    );
}

#[tokio::test]
async fn error_envelopes_become_api_errors() {
    let body = r#"{"error":"No connection matching params 'connection_id' and 'provider_config_key'.","type":"unkown_connection"}"#;
    let (host, _server) = respond_once("400 Bad Request", body).await;
    let client = Client::new(&host).expect("client");
    match client.get_token("k", "nobody").await {
        Err(Error::Api {
            status,
            message,
            kind,
        }) => {
            assert_eq!(status, 400);
            assert_eq!(
                message,
                "No connection matching params 'connection_id' and 'provider_config_key'."
            );
            assert_eq!(kind.as_deref(), Some("unkown_connection"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_come_from_the_credentials() {
    let connection = |credentials: serde_json::Value| {
        json!({
            "id": 3, "created_at": "c", "updated_at": "u", "provider_config_key": "k",
            "connection_id": "1", "credentials": credentials, "connection_config": {},
            "account_id": 0, "metadata": {}
        })
        .to_string()
    };
    let (host, server) = respond_once(
        "200 OK",
        &connection(json!({"type": "OAUTH2", "access_token": "gho_x", "raw": {}})),
    )
    .await;
    let token = Client::new(&host)
        .expect("client")
        .get_token("k", "1")
        .await;
    assert!(
        matches!(token, Ok(Token::OAuth2(ref t)) if t.expose() == "gho_x"),
        "{token:?}"
    );
    assert_eq!(
        server.await.expect("server").request_line(),
        "GET /connection/1?provider_config_key=k HTTP/1.1"
    );

    let (host, _server) = respond_once(
        "200 OK",
        &connection(json!({"type": "SAML", "assertion": "a"})),
    )
    .await;
    let err = Client::new(&host)
        .expect("client")
        .get_token("k", "1")
        .await;
    assert_eq!(
        err.err().map(|e| e.to_string()).as_deref(),
        Some("Unrecognized OAuth type 'SAML' in stored credentials.")
    );
}

#[tokio::test]
async fn a_2xx_body_that_is_not_json_is_a_decode_error() {
    let (host, _server) = respond_once("200 OK", "<html>proxy login</html>").await;
    let result = Client::new(&host).expect("client").list_connections().await;
    assert!(matches!(result, Err(Error::Decode(_))), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_network_error_naming_the_host() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let host = format!("http://127.0.0.1:{port}");
    let result = Client::new(&host).expect("client").list_configs().await;
    match result {
        Err(e @ Error::Network { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("The Nango server at {host} could not be reached")),
                "{message}"
            );
        }
        other => panic!("expected a network error, got {other:?}"),
    }
}

#[tokio::test]
async fn force_refresh_is_a_query_parameter_of_the_same_get() {
    let connection = json!({
        "id": 3, "created_at": "c", "updated_at": "u", "provider_config_key": "k",
        "connection_id": "a/b", "credentials": {"type": "OAUTH2", "access_token": "t2", "raw": {"x": 1}},
        "connection_config": {}, "account_id": 0, "metadata": {}
    })
    .to_string();
    let forced = GetOptions::new().force_refresh(true);
    for call in 0..3 {
        let (host, server) = respond_once("200 OK", &connection).await;
        let client = Client::new(&host).expect("client");
        match call {
            0 => {
                let token = client.get_token_with("k", "a/b", forced).await;
                assert_eq!(token.expect("token").expose(), Some("t2"));
            }
            1 => {
                let raw = client.get_raw_token_response_with("k", "a/b", forced).await;
                assert_eq!(
                    raw.expect("raw").map(|r| r.into_exposed()),
                    Some(json!({"x": 1}))
                );
            }
            _ => {
                let c = client.get_connection_with("k", "a/b", forced).await;
                assert_eq!(c.expect("connection").connection_id, "a/b");
            }
        }
        assert_eq!(
            server.await.expect("server").request_line(),
            "GET /connection/a%2Fb?provider_config_key=k&force_refresh=true HTTP/1.1"
        );
    }
}

#[tokio::test]
async fn create_connection_posts_the_credentials_of_its_auth_mode() {
    let connection = json!({
        "id": 4, "created_at": "c", "updated_at": "u", "provider_config_key": "openai",
        "connection_id": "u1", "credentials": {"type": "API_KEY", "apiKey": "sk-1"},
        "connection_config": {}, "account_id": 0, "metadata": {}
    })
    .to_string();
    let (host, server) = respond_once("200 OK", &connection).await;
    let created = Client::new(&host)
        .expect("client")
        .create_connection("openai", "u1", &NewCredentials::ApiKey("sk-1".into()))
        .await
        .expect("create");
    assert_eq!(created.credentials.kind(), "API_KEY");
    let req = server.await.expect("server");
    assert_eq!(req.request_line(), "POST /connection HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&req.body).expect("JSON body");
    assert_eq!(
        body,
        json!({"provider_config_key": "openai", "connection_id": "u1", "api_key": "sk-1"})
    );
}

#[tokio::test]
async fn providers_are_listed_with_an_optional_search() {
    let (host, server) = respond_once(
        "200 OK",
        r#"{"providers":[{"name":"github","display_name":"GitHub","auth_mode":"OAUTH2","categories":["dev-tools"],"docs":null}]}"#,
    )
    .await;
    let providers = Client::new(&host)
        .expect("client")
        .list_providers(Some("git hub"))
        .await
        .expect("providers");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].name, "github");
    assert_eq!(providers[0].auth_mode, "OAUTH2");
    assert_eq!(
        server.await.expect("server").request_line(),
        "GET /providers?search=git+hub HTTP/1.1"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok(Ok((mut socket, _))) =
            tokio::time::timeout(std::time::Duration::from_millis(500), listener.accept()).await
        {
            accepted += 1;
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        accepted
    });
    let result = Client::builder(&host)
        .secret_key("sk")
        .build()
        .expect("client")
        .list_configs()
        .await;
    match result {
        Err(e @ Error::Api { status: 302, .. }) => {
            assert!(e.to_string().contains("a redirect to /elsewhere"), "{e}")
        }
        other => panic!("expected the 302 as an error, got {other:?}"),
    }
    assert_eq!(
        server.await.expect("server"),
        1,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn proxy_sends_the_connection_the_prefixed_headers_and_the_body() {
    let (host, server) = respond_once("404 Not Found", r#"{"message":"Not Found"}"#).await;
    let client = Client::builder(&format!("{host}/"))
        .secret_key("sk")
        .build()
        .expect("client");
    let response = client
        .proxy(
            ProxyRequest::post("my-config", "user-42", "repos/octo/issues?state=open")
                .param("a", "1 2")
                .param("a", "&")
                .header("X-Custom", "v")
                .header("Accept", "application/vnd.github+json")
                .json(&json!({"title": "Bug"}))
                .expect("JSON")
                .retries(4),
        )
        .await
        .expect("a 404 is a response");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.content_type(),
        Some("application/json; charset=utf-8")
    );
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"message": "Not Found"}));

    let req = server.await.expect("server");
    assert_eq!(
        req.request_line(),
        "POST /proxy/repos/octo/issues?state=open&a=1+2&a=%26 HTTP/1.1"
    );
    assert_eq!(req.header("authorization").as_deref(), Some("Basic c2s6"));
    assert_eq!(req.header("connection-id").as_deref(), Some("user-42"));
    assert_eq!(
        req.header("provider-config-key").as_deref(),
        Some("my-config")
    );
    assert_eq!(req.header("retries").as_deref(), Some("4"));
    assert_eq!(req.header("nango-proxy-x-custom").as_deref(), Some("v"));
    assert_eq!(
        req.header("nango-proxy-accept").as_deref(),
        Some("application/vnd.github+json")
    );
    // Not the client's default `application/json`: the server forwards plain headers too.
    assert_eq!(req.header("accept").as_deref(), Some("*/*"));
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(req.header("nango-proxy-content-type"), None);
    assert_eq!(req.body, r#"{"title":"Bug"}"#);
}

#[tokio::test]
async fn proxy_without_retries_or_body_sends_neither() {
    let (host, server) = respond_once("200 OK", "{}").await;
    let client = Client::new(&host).expect("client");
    let response = client
        .proxy(ProxyRequest::get("k", "c", "/"))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let req = server.await.expect("server");
    assert_eq!(req.request_line(), "GET /proxy/ HTTP/1.1");
    assert_eq!(req.header("retries"), None);
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.header("content-type"), None);
    assert_eq!(req.body, "");
}
