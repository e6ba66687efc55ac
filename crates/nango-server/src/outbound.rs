//! Outbound HTTP clients: the plain one, and one that only connects to public addresses, for
//! requests whose host was not chosen by the operator's providers file (a host placeholder of a
//! built-in template, a base URL a token response gave). Resolving and connecting in one place
//! also pins the checked address: DNS cannot answer differently between the check and the
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::providers::is_public;
use crate::Shared;

/// A client with the server's outbound rules (no redirects, 10 s connect timeout); with
/// `public_only`, names resolve to their public addresses only (none left: the request fails).
/// IP literals never reach a resolver: callers refuse those first (`providers::check_host_name`).
pub fn client(public_only: bool) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10));
    let builder = if public_only {
        builder.dns_resolver(Arc::new(PublicOnly))
    } else {
        builder
    };
    builder.build()
}

impl Shared {
    /// The client for a request whose host must be public (see the module comment), or the plain
    /// one.
    pub fn http_for(&self, public_only: bool) -> &reqwest::Client {
        if public_only {
            &self.http_public
        } else {
            &self.http
        }
    }
}

/// The system resolver, minus loopback, private, link-local (cloud metadata), CGNAT, multicast
/// and other non-public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                let message = format!(
                    "{host} resolves to no public address; built-in templates reach public hosts only \
                     (an operator providers file may point a template at a private one)"
                );
                return Err(
                    std::io::Error::new(std::io::ErrorKind::PermissionDenied, message).into(),
                );
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A provider's answer that says nothing about the request itself, only about the provider's
/// state now (a server error, a rate limit, a request timeout): worth trying again later, never
/// taken as a refusal of a grant or a credential.
pub fn is_momentary_failure(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_public_only_client_never_connects_to_a_name_resolving_to_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://localhost:{port}/");
        let plain = client(false).unwrap().get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200);
        let err = client(true).unwrap().get(&url).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        let chain = format!("{err:?}");
        assert!(chain.contains("no public address"), "{chain}");
    }
}
