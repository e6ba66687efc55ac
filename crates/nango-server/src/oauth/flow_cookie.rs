//! Binds an OAuth flow to the browser that started it (review F3).
//!
//! The `state` alone proves nothing about who finishes a flow: anyone who starts one can hand the
//! provider's authorize link to someone else, and the victim's approval would then be stored
//! under the starter's connection id. So `/oauth/connect` also gives the browser a fresh random
//! value in an HttpOnly cookie and keeps only its SHA-256 in the flow's row; `/oauth/callback`
//! finishes the flow only for a request that carries that value. The hash is in the database, so
//! a flow started on one replica is finished on another.
//!
//! Each flow has its own cookie, named after its state, so two flows in one browser (two popups)
//! do not overwrite each other's value. The cookie goes only to the callback's path, lives as long
//! as the flow state, is `SameSite=Lax` (sent on the provider's top-level redirect back, not on
//! cross-site subrequests) and `Secure` when the callback URL is https.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::pkce::random_bytes;

/// The cookie name's prefix; the rest is derived from the flow's state.
const NAME_PREFIX: &str = "nango_flow_";

/// A new flow's identity: the `state` the provider carries, and the browser's secret.
pub struct FlowBinding {
    /// The OAuth `state` (or, for OAuth 1, the one in our callback URL).
    pub state: String,
    /// The cookie value (32 random bytes, base64url): only the browser has it.
    value: String,
}

impl FlowBinding {
    pub fn new() -> Result<FlowBinding, getrandom::Error> {
        Ok(FlowBinding {
            state: hex::encode(random_bytes::<24>()?),
            value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?),
        })
    }

    /// What the flow's row keeps: the SHA-256 of the cookie value, never the value.
    pub fn hash(&self) -> String {
        hash(&self.value)
    }

    /// `Set-Cookie` for the response that sends the browser to the provider.
    pub fn set_cookie(&self, callback_url: &str, ttl: Duration) -> Option<HeaderValue> {
        let max_age = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let cookie = base_cookie(cookie_name(&self.state), self.value.clone(), callback_url)
            .max_age(cookie::time::Duration::seconds(max_age));
        HeaderValue::from_str(&cookie.build().to_string()).ok()
    }
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The cookie of the flow with this state: `nango_flow_` and 16 hex digits of SHA-256(state).
fn cookie_name(state: &str) -> String {
    let digest = hex::encode(Sha256::digest(state.as_bytes()));
    format!("{NAME_PREFIX}{}", &digest[..16])
}

fn base_cookie(name: String, value: String, callback_url: &str) -> cookie::CookieBuilder<'static> {
    let url = url::Url::parse(callback_url).ok();
    let path = url
        .as_ref()
        .map(|u| u.path().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let secure = url.as_ref().is_some_and(|u| u.scheme() == "https");
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
}

/// Whether the request carries the cookie of the flow with `state` whose value hashes to
/// `expected` (compared in constant time). A flow without a hash (started before this check
/// existed) is never proven.
pub fn presented(headers: &HeaderMap, state: &str, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let name = cookie_name(state);
    let mut found = false;
    for cookie in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
    {
        // Every candidate is checked, so the time taken does not tell which one matched.
        found |= bool::from(hash(cookie.value()).as_bytes().ct_eq(expected.as_bytes()));
    }
    found
}

/// `Set-Cookie` that removes the cookie of the flow with `state` (the answer of every callback).
pub fn clear_cookie(state: &str, callback_url: &str) -> Option<HeaderValue> {
    let mut cookie = base_cookie(cookie_name(state), String::new(), callback_url).build();
    cookie.make_removal();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_scoped_to_the_callback_and_bound_by_hash() {
        let binding = FlowBinding::new().unwrap();
        let set = binding
            .set_cookie(
                "https://nango.example/oauth/callback",
                Duration::from_secs(600),
            )
            .unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&cookie_name(&binding.state)), "{set}");
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/oauth/callback",
            "Max-Age=600",
        ] {
            assert!(set.contains(part), "{part} missing in {set}");
        }
        let plain = binding
            .set_cookie(
                "http://localhost:3003/oauth/callback",
                Duration::from_secs(600),
            )
            .unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));

        let pair = set.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        let hash = binding.hash();
        assert!(presented(&headers, &binding.state, Some(&hash)));
        assert!(!presented(&headers, &binding.state, None));
        assert!(!presented(&headers, "another-state", Some(&hash)));
        assert!(!presented(&HeaderMap::new(), &binding.state, Some(&hash)));
        let wrong = FlowBinding::new().unwrap().hash();
        assert!(!presented(&headers, &binding.state, Some(&wrong)));
    }

    #[test]
    fn the_removal_expires_the_same_cookie() {
        let clear = clear_cookie("s", "http://localhost:3003/oauth/callback").unwrap();
        let clear = clear.to_str().unwrap();
        assert!(
            clear.starts_with(&format!("{}=;", cookie_name("s"))),
            "{clear}"
        );
        assert!(clear.contains("Max-Age=0"), "{clear}");
        assert!(clear.contains("Path=/oauth/callback"), "{clear}");
    }
}
