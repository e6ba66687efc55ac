//! `Secret`: a value (token, client secret, password, raw token response) that `Debug` and
//! `Display` never print.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A sensitive value, a `String` unless said otherwise. Printing it (`{}` or `{:?}`) shows
/// `***`; [`Secret::expose`] is the one way to read it, so every place a secret leaves its box
/// is visible in the code.
///
/// ```
/// use nango_client::Secret;
///
/// let token = Secret::new("gho_16C7e42F292c6912E7710c838347Ae178B4a");
/// assert_eq!(format!("{token} {token:?}"), "*** ***");
/// assert_eq!(token.expose(), "gho_16C7e42F292c6912E7710c838347Ae178B4a");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T = String>(T);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
}

impl<T> Secret<T> {
    /// The secret in clear.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret in clear, by value.
    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret<T>, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_never_shows_the_value() {
        let s = Secret::new("gho_abc");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "gho_abc");
        assert_eq!(s.into_exposed(), "gho_abc");
    }

    #[test]
    fn any_value_can_be_kept_secret() {
        let raw = Secret::from(serde_json::json!({"access_token": "gho_abc"}));
        assert_eq!(format!("{raw:?} {raw}"), "*** ***");
        assert_eq!(raw.expose()["access_token"], "gho_abc");
    }
}
