//! Encryption at rest of the secret columns (client secrets, credentials with their raw token
//! responses, PKCE verifiers and OAuth 1 request-token secrets) with AES-256-GCM.
//!
//! A sealed value is `enc:v1:<key id>:<base64(nonce || ciphertext)>`, so every row records which
//! key sealed it. The key id is derived from the key (the first 8 bytes of its SHA-256, in hex),
//! so it needs no configuration and two different keys cannot share one. The associated data
//! binds each value to its column and row (`connections.credentials` + config key + connection
//! id): a value copied into another row does not decrypt there.
//!
//! Without keys, values are stored as given. Values without the `enc:` prefix are read as they
//! are, so encryption can be turned on over an existing database; `nango db:rotate-key` then
//! seals them.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// Why the configured keys cannot be used, or a sealed value cannot be opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CipherError {
    #[error("encryption key #{index} is not base64 of exactly 32 bytes")]
    BadKey { index: usize },
    #[error(
        "a value is encrypted with key {key_id}, which is not configured (NANGO_ENCRYPTION_KEY)"
    )]
    UnknownKey { key_id: String },
    #[error("a value encrypted with key {key_id} does not decrypt: wrong key, or the value or a column bound to it (metadata, connection config, provider) was altered, or it was moved to another row")]
    Undecryptable { key_id: String },
    #[error("a value is marked encrypted but is malformed")]
    Malformed,
    #[error("no encryption key is configured (NANGO_ENCRYPTION_KEY)")]
    NoKey,
    /// A value that must be sealed while keys are configured is stored as given: it was written
    /// by someone without the key, so neither it nor what it vouches for is used.
    #[error("a value is not encrypted although NANGO_ENCRYPTION_KEY is set: it was written without the key and is refused")]
    Unsealed,
}

struct Key {
    id: String,
    aead: Aes256Gcm,
}

/// The configured keys: the first seals, all of them open.
#[derive(Default)]
pub struct Cipher {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Cipher {
    /// No encryption: values are stored as given.
    pub fn disabled() -> Cipher {
        Cipher::default()
    }

    /// From base64 keys of 32 bytes each; the first is the one new values are sealed with.
    pub fn from_base64_keys(keys: &[Secret<String>]) -> Result<Cipher, CipherError> {
        let engine = base64::engine::general_purpose::STANDARD;
        let keys = keys
            .iter()
            .enumerate()
            .map(|(index, encoded)| {
                let bytes = engine
                    .decode(encoded.expose().trim())
                    .map_err(|_| CipherError::BadKey { index: index + 1 })?;
                if bytes.len() != 32 {
                    return Err(CipherError::BadKey { index: index + 1 });
                }
                let aead = Aes256Gcm::new_from_slice(&bytes)
                    .map_err(|_| CipherError::BadKey { index: index + 1 })?;
                Ok(Key {
                    id: hex::encode(&Sha256::digest(&bytes)[..8]),
                    aead,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cipher { keys })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The id of the key new values are sealed with.
    pub fn primary_key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    pub fn has_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Seals `plaintext` for the place `context` names, or returns it as is without keys.
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, CipherError> {
        let Some(key) = self.keys.first() else {
            return Ok(plaintext.to_string());
        };
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| CipherError::Malformed)?;
        let ciphertext = key
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Malformed)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!(
            "{PREFIX}{}:{}",
            key.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
        ))
    }

    /// Opens a stored value sealed for `context`; a value that is not sealed is returned as is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, CipherError> {
        let Some(key_id) = sealed_key_id(stored) else {
            return Ok(stored.to_string());
        };
        let key =
            self.keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| CipherError::UnknownKey {
                    key_id: key_id.to_string(),
                })?;
        let encoded = &stored[PREFIX.len() + key_id.len() + 1..];
        let sealed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| CipherError::Malformed)?;
        if sealed.len() < NONCE_LEN {
            return Err(CipherError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plaintext = key
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Undecryptable {
                key_id: key.id.clone(),
            })?;
        String::from_utf8(plaintext).map_err(|_| CipherError::Malformed)
    }

    /// `open` for a column that authenticates its row: while keys are configured, a value stored
    /// as given is refused (anyone with write access to the database could have put it there,
    /// with the columns it vouches for); without keys it is returned as is.
    pub fn open_authenticated(&self, stored: &str, context: &str) -> Result<String, CipherError> {
        if self.enabled() && !is_sealed(stored) {
            return Err(CipherError::Unsealed);
        }
        self.open(stored, context)
    }

    /// True when `stored` is sealed with the primary key already (nothing to rotate).
    pub fn is_current(&self, stored: &str) -> bool {
        match (sealed_key_id(stored), self.primary_key_id()) {
            (Some(id), Some(primary)) => id == primary,
            (None, None) => true,
            _ => false,
        }
    }
}

/// Whether `stored` is a sealed value (of any key).
pub fn is_sealed(stored: &str) -> bool {
    sealed_key_id(stored).is_some()
}

/// The key id of a sealed value, `None` for a value stored as given.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX)?;
    rest.split_once(':').map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret<String> {
        Secret::new(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    fn cipher(keys: &[u8]) -> Cipher {
        let keys: Vec<_> = keys.iter().map(|b| key(*b)).collect();
        Cipher::from_base64_keys(&keys).unwrap_or_default()
    }

    #[test]
    fn sealed_values_open_in_their_context_only() {
        let c = cipher(&[1]);
        let sealed = c
            .seal("{\"access_token\":\"t\"}", "row-a")
            .unwrap_or_default();
        assert!(sealed.starts_with("enc:v1:"), "{sealed}");
        assert!(!sealed.contains("access_token"));
        assert_eq!(sealed_key_id(&sealed), c.primary_key_id());
        assert_eq!(
            c.open(&sealed, "row-a").as_deref(),
            Ok("{\"access_token\":\"t\"}")
        );
        assert!(matches!(
            c.open(&sealed, "row-b"),
            Err(CipherError::Undecryptable { .. })
        ));
        // Two seals of the same value differ (random nonce).
        assert_ne!(
            sealed,
            c.seal("{\"access_token\":\"t\"}", "row-a")
                .unwrap_or_default()
        );
    }

    #[test]
    fn old_keys_open_and_unknown_keys_are_named() {
        let old = cipher(&[1]);
        let sealed = old.seal("secret", "ctx").unwrap_or_default();
        let rotated = cipher(&[2, 1]);
        assert_eq!(rotated.open(&sealed, "ctx").as_deref(), Ok("secret"));
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("x", "ctx").unwrap_or_default()));
        let other = cipher(&[3]);
        assert_eq!(
            other.open(&sealed, "ctx"),
            Err(CipherError::UnknownKey {
                key_id: old.primary_key_id().unwrap_or_default().to_string()
            })
        );
        assert!(matches!(
            Cipher::disabled().open(&sealed, "ctx"),
            Err(CipherError::UnknownKey { .. })
        ));
    }

    #[test]
    fn authenticated_columns_refuse_plaintext_while_keys_are_configured() {
        let c = cipher(&[1]);
        assert_eq!(
            c.open_authenticated("{}", "ctx"),
            Err(CipherError::Unsealed)
        );
        let sealed = c.seal("{}", "ctx").unwrap_or_default();
        assert_eq!(c.open_authenticated(&sealed, "ctx").as_deref(), Ok("{}"));
        assert_eq!(
            Cipher::disabled()
                .open_authenticated("{}", "ctx")
                .as_deref(),
            Ok("{}")
        );
    }

    #[test]
    fn plaintext_passes_through_and_bad_keys_are_refused() {
        assert_eq!(Cipher::disabled().seal("x", "c").as_deref(), Ok("x"));
        assert_eq!(
            cipher(&[1]).open("{\"a\":1}", "c").as_deref(),
            Ok("{\"a\":1}")
        );
        for bad in ["", "not base64!", "AAAA"] {
            assert_eq!(
                Cipher::from_base64_keys(&[Secret::new(bad.to_string())]).err(),
                Some(CipherError::BadKey { index: 1 })
            );
        }
        let tampered = {
            let c = cipher(&[1]);
            let sealed = c.seal("secret", "ctx").unwrap_or_default();
            // Change one character well inside the payload (not a padding bit at its end) to a
            // different base64 letter, so the ciphertext or tag really changes.
            let at = sealed.len() - 8;
            let flipped = if &sealed[at..=at] == "A" { "B" } else { "A" };
            let s = format!("{}{}{}", &sealed[..at], flipped, &sealed[at + 1..]);
            c.open(&s, "ctx")
        };
        assert!(tampered.is_err());
    }
}
