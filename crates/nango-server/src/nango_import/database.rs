//! Reads a Nango database (`store::nango_db`) and opens its secrets: checks the encryption key
//! given against the one the database was sealed with, decrypts client secrets and credentials
//! the way Nango seals them, and turns the rows into a [`SourceSnapshot`].
//!
//! Nango's sealing (its `NANGO_ENCRYPTION_KEY`): AES-256-GCM, a random 12-byte IV, no associated
//! data; ciphertext, IV and tag each standard base64 in their own column. Its key check: the
//! base64 PBKDF2-HMAC-SHA256 of the key text in `_nango_db_config.encryption_key_hash`.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::source::{
    SourceConfig, SourceConnection, SourceError, SourceLayout, SourceSnapshot, Unreadable,
};
use crate::secret::Secret;
use crate::store::nango_db::{self, NangoDatabaseRows, NangoDbError, NangoDbLayout, NangoRow};
use crate::store::ImportKind;

const KEY_FLAG: &str = "--nango-encryption-key";
/// Nango's fixed salt for the key check (the ASCII text, not its base64 decoding).
const KEY_HASH_SALT: &[u8] = b"X89FHEGqR3yNK0+v7rPWxQ==";
const KEY_HASH_ITERATIONS: u32 = 310_000;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const UNDECRYPTABLE: &str = "could not be decrypted";

// Node's base64 decoder, which Nango's values went through, is lenient about padding and
// accepts both alphabets; so are we, for the key and for the stored values.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const B64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const B64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).or_else(|_| B64_URL.decode(text)).ok()
}

/// Reads the Nango database at `url` (schema `schema`; for a current database, the environment
/// `environment`, by name or id) with its secrets opened by `encryption_key` (Nango's
/// `NANGO_ENCRYPTION_KEY`, needed when the rows are encrypted). Nothing is written to it.
pub async fn read_nango_database(
    url: &str,
    schema: &str,
    environment: &str,
    encryption_key: Option<&str>,
) -> Result<SourceSnapshot, SourceError> {
    // Before connecting: a mistyped key should not wait for the database.
    let key = encryption_key.map(NangoKey::parse).transpose()?;
    let rows = nango_db::read(url, schema, environment)
        .await
        .map_err(from_db_error)?;
    if let (Some(stored), Some(key)) = (rows.key_hash.as_deref(), key.as_ref()) {
        check_key_hash(key, stored).await?;
    }
    let snapshot = open_rows(&rows, key.as_ref())?;
    tracing::debug!(
        layout = snapshot.layout.as_str(),
        configs = snapshot.configs.len(),
        connections = snapshot.connections.len(),
        unreadable = snapshot.unreadable.len(),
        "read the Nango database"
    );
    Ok(snapshot)
}

fn from_db_error(e: NangoDbError) -> SourceError {
    let message = e.to_string();
    match e {
        NangoDbError::BadSchema(_)
        | NangoDbError::NoEnvironment { .. }
        | NangoDbError::AmbiguousEnvironment { .. } => SourceError::Invalid(message),
        NangoDbError::NotNango { .. } => SourceError::NotNango(message),
        NangoDbError::Connect { .. } | NangoDbError::Query { .. } => {
            SourceError::Unreachable(message)
        }
    }
}

/// Nango's data key: its text (what the key check hashes) and the cipher it makes.
struct NangoKey {
    text: Secret<String>,
    aead: Aes256Gcm,
}

impl NangoKey {
    fn parse(text: &str) -> Result<NangoKey, SourceError> {
        let text = text.trim();
        let bytes = decode_base64(text)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                SourceError::Invalid(format!(
                    "{KEY_FLAG} must be Nango's NANGO_ENCRYPTION_KEY: base64 of exactly 32 bytes"
                ))
            })?;
        let aead = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| SourceError::Invalid(format!("{KEY_FLAG} is not a 256-bit key")))?;
        Ok(NangoKey {
            text: Secret::new(text.to_string()),
            aead,
        })
    }
}

fn key_hash(key: &str) -> String {
    key_hash_with(key, KEY_HASH_ITERATIONS)
}

fn key_hash_with(key: &str, iterations: u32) -> String {
    let mut hash = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(key.as_bytes(), KEY_HASH_SALT, iterations, &mut hash);
    STANDARD.encode(hash)
}

async fn check_key_hash(key: &NangoKey, stored: &str) -> Result<(), SourceError> {
    let text = key.text.clone();
    // 310 000 rounds take a noticeable while: off the async workers.
    let computed = match tokio::task::spawn_blocking(move || key_hash(text.expose())).await {
        Ok(hash) => hash,
        Err(_) => key_hash(key.text.expose()),
    };
    if bool::from(computed.as_bytes().ct_eq(stored.trim().as_bytes())) {
        Ok(())
    } else {
        Err(SourceError::WrongKey(format!(
            "{KEY_FLAG} is not the key this Nango database was encrypted with (its \
             NANGO_ENCRYPTION_KEY): the key hash in _nango_db_config does not match"
        )))
    }
}

/// Opens one value sealed by Nango; `None` when the key, the IV, the tag or the ciphertext is
/// not the one it was sealed with.
fn decrypt(aead: &Aes256Gcm, ciphertext: &str, iv: &str, tag: &str) -> Option<Vec<u8>> {
    let mut sealed = decode_base64(ciphertext)?;
    let iv = decode_base64(iv)?;
    let tag = decode_base64(tag)?;
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return None;
    }
    // The aead crate wants the tag after the ciphertext, where WebCrypto puts it too.
    sealed.extend_from_slice(&tag);
    aead.decrypt(
        Nonce::from_slice(&iv),
        Payload {
            msg: &sealed,
            aad: b"",
        },
    )
    .ok()
}

/// Decrypts the sealed values of one read, counting them to tell a wrong key (nothing opens)
/// from a damaged row (the others open).
struct Opener<'k> {
    key: Option<&'k NangoKey>,
    sealed: usize,
    opened: usize,
}

impl Opener<'_> {
    fn open(&mut self, ciphertext: &str, iv: &str, tag: &str) -> Result<Vec<u8>, String> {
        self.sealed += 1;
        let key = self.key.ok_or_else(|| UNDECRYPTABLE.to_string())?;
        let plain =
            decrypt(&key.aead, ciphertext, iv, tag).ok_or_else(|| UNDECRYPTABLE.to_string())?;
        self.opened += 1;
        Ok(plain)
    }
}

/// Turns the rows into a snapshot; `Err` when the key given (or its absence) cannot open them.
fn open_rows(
    rows: &NangoDatabaseRows,
    key: Option<&NangoKey>,
) -> Result<SourceSnapshot, SourceError> {
    let mut opener = Opener {
        key,
        sealed: 0,
        opened: 0,
    };
    let shared: HashMap<i64, &NangoRow> = by_id(&rows.shared_credentials);
    let end_users: HashMap<i64, &NangoRow> = by_id(&rows.end_users);
    let mut snapshot = SourceSnapshot {
        layout: match rows.layout {
            NangoDbLayout::V09 => SourceLayout::Database09,
            NangoDbLayout::Current => SourceLayout::DatabaseCurrent,
        },
        environment: rows.environment.as_ref().map(|e| e.name.clone()),
        configs: Vec::new(),
        connections: Vec::new(),
        unreadable: Vec::new(),
    };

    for row in rows.configs.iter().filter(|row| !is_deleted(row)) {
        match read_config(row, &shared, &mut opener) {
            Ok(config) => snapshot.configs.push(config),
            Err(reason) => snapshot.unreadable.push(Unreadable {
                kind: ImportKind::Config,
                provider_config_key: text(row, "unique_key"),
                connection_id: String::new(),
                reason,
            }),
        }
    }
    for row in rows.connections.iter().filter(|row| !is_deleted(row)) {
        match read_connection(row, &end_users, &mut opener) {
            Ok(connection) => snapshot.connections.push(connection),
            Err(reason) => snapshot.unreadable.push(Unreadable {
                kind: ImportKind::Connection,
                provider_config_key: text(row, "provider_config_key"),
                connection_id: text(row, "connection_id"),
                reason,
            }),
        }
    }

    let where_ = match &snapshot.environment {
        Some(name) => format!("environment {name:?} of the Nango database"),
        None => "the Nango database".to_string(),
    };
    if opener.sealed > 0 && key.is_none() {
        return Err(SourceError::WrongKey(format!(
            "{where_} holds encrypted secrets (in {} of its rows): give {KEY_FLAG} (the \
             NANGO_ENCRYPTION_KEY of the Nango server) to read them",
            opener.sealed
        )));
    }
    // With a stored hash the key is already known to be right, and a failure is a damaged row.
    if opener.sealed > 0 && opener.opened == 0 && rows.key_hash.is_none() {
        return Err(SourceError::WrongKey(format!(
            "{KEY_FLAG} is not the key this Nango database was encrypted with (its \
             NANGO_ENCRYPTION_KEY): none of the {} encrypted secrets of {where_} decrypts with it",
            opener.sealed
        )));
    }
    Ok(snapshot)
}

fn by_id(rows: &[NangoRow]) -> HashMap<i64, &NangoRow> {
    rows.iter()
        .filter_map(|row| Some((row.get("id")?.as_i64()?, row)))
        .collect()
}

fn is_deleted(row: &NangoRow) -> bool {
    row.get("deleted").and_then(Value::as_bool) == Some(true)
}

/// A string column, empty when NULL or absent.
fn text(row: &NangoRow, column: &str) -> String {
    row.get(column)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A string column that holds something (Nango tests IV and tag columns for truthiness).
fn filled<'r>(row: &'r NangoRow, column: &str) -> Option<&'r str> {
    row.get(column)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn object_or_empty(row: &NangoRow, column: &str) -> Result<Map<String, Value>, String> {
    match row.get(column) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(format!("its {column} is not a JSON object")),
    }
}

fn timestamp(row: &NangoRow, column: &str) -> Option<DateTime<Utc>> {
    let text = row.get(column)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        // A `timestamp` (without time zone) column: Nango's times are UTC.
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|at| at.and_utc())
        })
}

fn read_config(
    row: &NangoRow,
    shared: &HashMap<i64, &NangoRow>,
    opener: &mut Opener<'_>,
) -> Result<SourceConfig, String> {
    // Nango's preprovisioned OAuth apps: the row points at credentials shared by many configs.
    let app: &NangoRow = match row.get("shared_credentials_id").and_then(Value::as_i64) {
        None => row,
        Some(id) => shared
            .get(&id)
            .and_then(|shared| shared.get("credentials"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                format!(
                    "it uses Nango's shared credentials (providers_shared_credentials id {id}), \
                     which are not in the database"
                )
            })?,
    };
    let client_secret = match (
        filled(app, "oauth_client_secret"),
        filled(app, "oauth_client_secret_iv"),
        filled(app, "oauth_client_secret_tag"),
    ) {
        (Some(ciphertext), Some(iv), Some(tag)) => {
            String::from_utf8(opener.open(ciphertext, iv, tag)?)
                .map_err(|_| "its client secret decrypts to text that is not UTF-8".to_string())?
        }
        _ => text(app, "oauth_client_secret"),
    };
    Ok(SourceConfig {
        unique_key: text(row, "unique_key"),
        provider: text(row, "provider"),
        client_id: text(app, "oauth_client_id"),
        client_secret,
        scopes: text(app, "oauth_scopes"),
        display_name: row
            .get("display_name")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn read_connection(
    row: &NangoRow,
    end_users: &HashMap<i64, &NangoRow>,
    opener: &mut Opener<'_>,
) -> Result<SourceConnection, String> {
    let stored = row.get("credentials").unwrap_or(&Value::Null);
    let sealed = stored
        .get("encrypted_credentials")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let credentials = match (
        sealed,
        filled(row, "credentials_iv"),
        filled(row, "credentials_tag"),
    ) {
        (Some(ciphertext), Some(iv), Some(tag)) => {
            serde_json::from_slice(&opener.open(ciphertext, iv, tag)?)
                .map_err(|_| "its credentials decrypt to text that is not JSON".to_string())?
        }
        // Nango would take this for plaintext credentials; they are a sealed value whose IV or
        // tag was lost, and useless either way.
        (Some(_), _, _) if stored.as_object().is_some_and(|o| o.len() == 1) => {
            return Err("its credentials are encrypted but the row has no IV or tag".to_string())
        }
        _ => stored.clone(),
    };
    if !credentials.is_object() {
        return Err("its credentials are not a JSON object".to_string());
    }
    Ok(SourceConnection {
        provider_config_key: text(row, "provider_config_key"),
        connection_id: text(row, "connection_id"),
        credentials,
        connection_config: object_or_empty(row, "connection_config")?,
        metadata: object_or_empty(row, "metadata")?,
        end_user: row
            .get("end_user_id")
            .and_then(Value::as_i64)
            .and_then(|id| end_users.get(&id))
            .map(|user| end_user(user)),
        tags: object_or_empty(row, "tags")?,
        created_at: timestamp(row, "created_at"),
        updated_at: timestamp(row, "updated_at"),
        last_refreshed_at: timestamp(row, "last_refresh_success"),
    })
}

/// An `end_users` row in this server's shape (`crate::store::Owner::end_user`).
fn end_user(row: &NangoRow) -> Map<String, Value> {
    let present = |column: &str| row.get(column).filter(|v| !v.is_null()).cloned();
    let mut user = Map::new();
    for (ours, theirs) in [
        ("id", "end_user_id"),
        ("email", "email"),
        ("display_name", "display_name"),
        ("tags", "tags"),
    ] {
        if let Some(value) = present(theirs) {
            user.insert(ours.to_string(), value);
        }
    }
    if let Some(id) = present("organization_id") {
        let mut organization = Map::new();
        organization.insert("id".to_string(), id);
        if let Some(name) = present("organization_display_name") {
            organization.insert("display_name".to_string(), name);
        }
        user.insert("organization".to_string(), Value::Object(organization));
    }
    user
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::nango_db::NangoEnvironment;
    use hmac::{Hmac, Mac};
    use serde_json::json;

    // A key, its hash and a value sealed with it, all computed by Node's crypto module (the
    // one Nango uses): pbkdf2Sync(key, salt, 310000, 32, 'sha256') and an aes-256-gcm cipher
    // with the IV bytes 100..=111.
    const NODE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const NODE_KEY_HASH: &str = "7DN6H/jClcRgbQFsTiqmAMbTjLDd8YJwrD4uxRz6JUk=";
    const NODE_CIPHERTEXT: &str = "MzmqHwmMdKQcLR69ji1Y327gZ2noCYAB+KXDI57Nh3K2hy+kKT/6cN+O";
    const NODE_IV: &str = "ZGVmZ2hpamtsbW5v";
    const NODE_TAG: &str = "cgMDtVnmCPNqyKYJkuw8kQ==";

    fn key(text: &str) -> NangoKey {
        match NangoKey::parse(text) {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// Seals `plaintext` as Nango does: random IV, tag apart, three base64 strings.
    fn seal(key_text: &str, plaintext: &str) -> (String, String, String) {
        let raw = STANDARD.decode(key_text).unwrap();
        let aead = Aes256Gcm::new_from_slice(&raw).unwrap();
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).unwrap();
        let mut sealed = aead
            .encrypt(Nonce::from_slice(&iv), plaintext.as_bytes())
            .unwrap();
        let tag = sealed.split_off(sealed.len() - TAG_LEN);
        (
            STANDARD.encode(sealed),
            STANDARD.encode(iv),
            STANDARD.encode(tag),
        )
    }

    fn other_key() -> String {
        STANDARD.encode([7u8; 32])
    }

    #[test]
    fn opens_what_it_seals_the_nango_way() {
        let k = key(NODE_KEY);
        let (ciphertext, iv, tag) = seal(NODE_KEY, "client-secret-ü");
        let plain = decrypt(&k.aead, &ciphertext, &iv, &tag).unwrap();
        assert_eq!(plain, "client-secret-ü".as_bytes());
        assert!(decrypt(&key(&other_key()).aead, &ciphertext, &iv, &tag).is_none());
        let (_, other_iv, _) = seal(NODE_KEY, "x");
        assert!(decrypt(&k.aead, &ciphertext, &other_iv, &tag).is_none());
        assert!(decrypt(&k.aead, &ciphertext, "AAAA", &tag).is_none());
    }

    #[test]
    fn opens_a_value_node_sealed() {
        let plain = decrypt(&key(NODE_KEY).aead, NODE_CIPHERTEXT, NODE_IV, NODE_TAG).unwrap();
        assert_eq!(plain, br#"{"type":"OAUTH2","access_token":"node-at"}"#);
    }

    #[test]
    fn key_hash_is_pbkdf2_hmac_sha256_of_the_key_text() {
        // One round of PBKDF2 is HMAC(key, salt || INT(1)) (RFC 8018, 5.2), 32 bytes long.
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(NODE_KEY.as_bytes()).unwrap();
        mac.update(KEY_HASH_SALT);
        mac.update(&1u32.to_be_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(key_hash_with(NODE_KEY, 1), expected);
    }

    #[test]
    fn key_hash_matches_nodes() {
        let hash = key_hash(NODE_KEY);
        assert_eq!(STANDARD.decode(&hash).unwrap().len(), 32);
        assert_eq!(hash, NODE_KEY_HASH);
    }

    #[test]
    fn keys_are_base64_of_32_bytes() {
        for bad in [
            "",
            "not base64!",
            &STANDARD.encode([1u8; 16]),
            &STANDARD.encode([1u8; 33]),
        ] {
            match NangoKey::parse(bad) {
                Err(SourceError::Invalid(message)) => {
                    assert!(message.contains(KEY_FLAG), "{message}")
                }
                _ => panic!("{bad:?} accepted"),
            }
        }
        assert!(NangoKey::parse(NODE_KEY.trim_end_matches('=')).is_ok());
    }

    fn row(value: Value) -> NangoRow {
        value.as_object().unwrap().clone()
    }

    fn current(configs: Vec<NangoRow>, connections: Vec<NangoRow>) -> NangoDatabaseRows {
        NangoDatabaseRows {
            layout: NangoDbLayout::Current,
            environment: Some(NangoEnvironment {
                id: 1,
                name: "prod".into(),
            }),
            key_hash: None,
            configs,
            connections,
            end_users: Vec::new(),
            shared_credentials: Vec::new(),
        }
    }

    fn sealed_connection(id: &str, key_text: &str) -> NangoRow {
        let (ciphertext, iv, tag) = seal(key_text, r#"{"type":"OAUTH2","access_token":"at"}"#);
        row(json!({
            "provider_config_key": "github", "connection_id": id,
            "credentials": {"encrypted_credentials": ciphertext},
            "credentials_iv": iv, "credentials_tag": tag,
        }))
    }

    #[test]
    fn one_damaged_row_is_unreadable_but_no_row_opening_is_a_wrong_key() {
        let mixed = current(
            Vec::new(),
            vec![
                sealed_connection("good", NODE_KEY),
                sealed_connection("bad", &other_key()),
            ],
        );
        let snapshot = open_rows(&mixed, Some(&key(NODE_KEY))).unwrap();
        assert_eq!(snapshot.connections.len(), 1);
        assert_eq!(snapshot.connections[0].credentials["access_token"], "at");
        assert_eq!(snapshot.unreadable.len(), 1);
        assert_eq!(snapshot.unreadable[0].connection_id, "bad");
        assert_eq!(snapshot.unreadable[0].reason, UNDECRYPTABLE);

        let wrong = open_rows(&mixed, Some(&key(&STANDARD.encode([9u8; 32]))));
        assert!(matches!(wrong, Err(SourceError::WrongKey(_))));
        let none = open_rows(&mixed, None);
        assert!(matches!(none, Err(SourceError::WrongKey(m)) if m.contains(KEY_FLAG)));
    }

    #[test]
    fn configs_take_their_app_from_shared_credentials() {
        let (ciphertext, iv, tag) = seal(NODE_KEY, "shared-secret");
        let mut rows = current(
            vec![
                row(
                    json!({"unique_key": "slack", "provider": "slack", "shared_credentials_id": 4,
                    "oauth_client_id": null, "oauth_client_secret": null, "display_name": "Slack"}),
                ),
                row(json!({"unique_key": "gone", "provider": "x", "shared_credentials_id": 5})),
            ],
            Vec::new(),
        );
        rows.shared_credentials = vec![row(json!({"id": 4, "name": "slack", "credentials": {
            "oauth_client_id": "shared-id", "oauth_client_secret": ciphertext,
            "oauth_client_secret_iv": iv, "oauth_client_secret_tag": tag, "oauth_scopes": "a,b"}}))];
        let snapshot = open_rows(&rows, Some(&key(NODE_KEY))).unwrap();
        assert_eq!(
            snapshot.configs,
            vec![SourceConfig {
                unique_key: "slack".into(),
                provider: "slack".into(),
                client_id: "shared-id".into(),
                client_secret: "shared-secret".into(),
                scopes: "a,b".into(),
                display_name: Some("Slack".into()),
            }]
        );
        assert_eq!(snapshot.unreadable[0].provider_config_key, "gone");
        assert!(snapshot.unreadable[0].reason.contains("shared credentials"));
    }

    #[test]
    fn end_users_take_this_servers_shape() {
        let full = row(json!({"id": 3, "end_user_id": "u-1", "email": "a@b.c",
            "display_name": null, "organization_id": "org", "organization_display_name": "Org",
            "tags": {"plan": "pro"}}));
        assert_eq!(
            Value::Object(end_user(&full)),
            json!({"id": "u-1", "email": "a@b.c", "tags": {"plan": "pro"},
                "organization": {"id": "org", "display_name": "Org"}})
        );
        let bare = row(
            json!({"id": 3, "end_user_id": "u-1", "organization_id": null,
            "organization_display_name": "Org"}),
        );
        assert_eq!(Value::Object(end_user(&bare)), json!({"id": "u-1"}));
    }

    #[test]
    fn timestamps_are_read_as_to_jsonb_writes_them() {
        let r = row(
            json!({"a": "2023-02-28T10:00:00.123+00:00", "b": "2023-02-28T12:00:00+02:00",
            "c": "2023-02-28T10:00:00.5", "d": "infinity"}),
        );
        let at = |c| timestamp(&r, c).map(|t| t.to_rfc3339());
        assert_eq!(at("a").as_deref(), Some("2023-02-28T10:00:00.123+00:00"));
        assert_eq!(at("b").as_deref(), Some("2023-02-28T10:00:00+00:00"));
        assert_eq!(at("c").as_deref(), Some("2023-02-28T10:00:00.500+00:00"));
        assert_eq!(at("d"), None);
        assert_eq!(at("missing"), None);
    }
}
