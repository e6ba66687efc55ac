//! Dashboard sessions and CSRF tokens, both stateless so that every replica sharing the secret
//! key accepts what another one issued.
//!
//! * The session cookie is `<expiry>.<nonce>.<mac>`: `expiry` in UNIX seconds, `nonce` 16 random
//!   bytes (base64url), `mac` the hex HMAC-SHA256, keyed with the secret key, of
//!   `"nango-dashboard-session\n<expiry>.<nonce>"`. Changing the secret key ends every session.
//! * The CSRF token of a session is the base64url HMAC-SHA256, keyed with the secret key, of
//!   `"nango-dashboard-csrf\n<cookie value>"`: another label, so neither can stand in for the
//!   other, and bound to the cookie, so a token from another session is refused.
//! * Without a secret key the dashboard is open (as the REST API is then), and the cookie is a
//!   random `open.<nonce>`: the CSRF token is then a double-submit token, whose protection is
//!   that a foreign page can neither read nor guess the cookie it is derived from.
//!
//! Every comparison of a MAC is constant-time (`Mac::verify_slice`).

use axum::http::{header, HeaderMap};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AppState;

/// The cookie's name; its path is `/dashboard`, so no other route ever receives it.
pub const COOKIE_NAME: &str = "nango_dashboard";
/// How long a session lasts (12 hours); there is no sliding renewal.
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;

const SESSION_LABEL: &[u8] = b"nango-dashboard-session\n";
const CSRF_LABEL: &[u8] = b"nango-dashboard-csrf\n";
const OPEN_PREFIX: &str = "open.";
/// Longer cookie values are not even looked at.
const MAX_COOKIE_LEN: usize = 256;

type HmacSha256 = Hmac<Sha256>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mac(key: &[u8], label: &[u8], message: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length: this never fails, but the API says it could.
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(label);
    mac.update(message);
    Some(mac)
}

fn random_nonce() -> Result<String, getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    Ok(b64(&nonce))
}

/// The session cookie value for `expiry` and `nonce`, signed with `secret_key`.
pub fn sign_session(secret_key: &str, expiry: i64, nonce: &str) -> String {
    let payload = format!("{expiry}.{nonce}");
    let tag = mac(secret_key.as_bytes(), SESSION_LABEL, payload.as_bytes())
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{payload}.{tag}")
}

/// True when `value` is a session cookie signed with `secret_key` that has not expired at `now`.
pub fn verify_session(secret_key: &str, value: &str, now: i64) -> bool {
    let mut parts = value.splitn(3, '.');
    let (Some(expiry), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(expiry_secs) = expiry.parse::<i64>() else {
        return false;
    };
    if expiry_secs <= now || nonce.is_empty() {
        return false;
    }
    let Ok(tag) = hex::decode(tag) else {
        return false;
    };
    let payload = format!("{expiry}.{nonce}");
    mac(secret_key.as_bytes(), SESSION_LABEL, payload.as_bytes())
        .is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// The cookie values named [`COOKIE_NAME`] the request carries.
fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty() && value.len() <= MAX_COOKIE_LEN)
}

/// A session the request proved (or, on an open dashboard, one just started).
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie value, which the CSRF token is bound to.
    cookie: String,
    /// The MAC key: the secret key, or nothing on an open dashboard.
    key: Vec<u8>,
    /// `Set-Cookie` to send with the response (an open dashboard's first visit).
    pub set_cookie: Option<String>,
}

impl Session {
    /// The session the request carries, if any: a valid signed cookie with a secret key; without
    /// one, any cookie of ours, or a new one (with its `Set-Cookie`).
    pub fn from_request(state: &AppState, headers: &HeaderMap) -> Option<Session> {
        match &state.settings.secret_key {
            Some(secret) => {
                let secret = secret.expose();
                let now = chrono::Utc::now().timestamp();
                let cookie = cookie_values(headers).find(|v| verify_session(secret, v, now))?;
                Some(Session {
                    cookie: cookie.to_string(),
                    key: secret.as_bytes().to_vec(),
                    set_cookie: None,
                })
            }
            None => {
                let existing = cookie_values(headers).find(|v| {
                    v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                });
                if let Some(cookie) = existing {
                    return Some(Session {
                        cookie: cookie.to_string(),
                        key: Vec::new(),
                        set_cookie: None,
                    });
                }
                let cookie = format!("{OPEN_PREFIX}{}", random_nonce().ok()?);
                Some(Session {
                    set_cookie: Some(set_cookie_header(&cookie, secure(state))),
                    cookie,
                    key: Vec::new(),
                })
            }
        }
    }

    /// The CSRF token forms and scripts of this session send back.
    pub fn csrf_token(&self) -> String {
        mac(&self.key, CSRF_LABEL, self.cookie.as_bytes())
            .map(|m| b64(&m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `presented` is this session's CSRF token (constant-time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(presented.trim())
        else {
            return false;
        };
        mac(&self.key, CSRF_LABEL, self.cookie.as_bytes())
            .is_some_and(|m| m.verify_slice(&tag).is_ok())
    }
}

/// A new signed session cookie value for `secret_key`, valid for [`SESSION_SECONDS`].
pub fn new_session(secret_key: &str) -> Result<String, getrandom::Error> {
    let expiry = chrono::Utc::now().timestamp() + SESSION_SECONDS;
    Ok(sign_session(secret_key, expiry, &random_nonce()?))
}

/// Cookies are `Secure` when the server's public URL is HTTPS.
pub fn secure(state: &AppState) -> bool {
    state
        .settings
        .server_url
        .to_ascii_lowercase()
        .starts_with("https://")
}

/// `Set-Cookie` for a session.
pub fn set_cookie_header(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie_header(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_session_verifies_until_it_expires_and_only_with_its_key() {
        let value = sign_session("sk", 1_000, "nonce");
        assert!(verify_session("sk", &value, 999));
        assert!(!verify_session("sk", &value, 1_000), "expired");
        assert!(!verify_session("other", &value, 999), "another key");
        let later = value.replacen("1000", "9000", 1);
        assert!(!verify_session("sk", &later, 999), "a changed expiry");
        assert!(!verify_session("sk", "1000.nonce", 999));
        assert!(!verify_session("sk", "", 999));
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_key() {
        let session = |cookie: &str, key: &str| Session {
            cookie: cookie.into(),
            key: key.as_bytes().to_vec(),
            set_cookie: None,
        };
        let a = session("a", "sk");
        assert!(a.csrf_matches(&a.csrf_token()));
        assert!(!a.csrf_matches(&session("b", "sk").csrf_token()));
        assert!(!a.csrf_matches(&session("a", "other").csrf_token()));
        assert!(!a.csrf_matches(""));
        assert!(!a.csrf_matches("not base64 !"));
    }
}
