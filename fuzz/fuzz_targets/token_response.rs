//! `parse_oauth2_response` with arbitrary token responses (JSON text or generated trees biased
//! towards the keys it reads) and arbitrary response shapes (dotted paths, units, default
//! lifetimes, clock). Beyond "never panics":
//! - it succeeds exactly when the value at the access-token path is a non-empty string and the
//!   response could be stored and read back (nested at most `MAX_TOKEN_RESPONSE_DEPTH` levels,
//!   none of serde_json's magic keys), and then returns that string, and the refresh token at its
//!   path when it is a non-empty string;
//! - `raw` keeps the response as it came, plus `expires_at` (ISO, milliseconds) when an expiry
//!   was computed;
//! - the credentials survive being stored: serialized as `GET /connection` and the store write
//!   them, they read back equal (expiry to the millisecond).

#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use nango_server::credentials::{
    iso_millis, parse_oauth2_response, Credentials, TokenResponseError, MAX_TOKEN_RESPONSE_DEPTH,
};
use nango_server::providers::{ExpiresInUnit, TokenResponseShape};
use serde_json::{Map, Number, Value};

#[derive(Arbitrary, Debug)]
enum Key {
    AccessToken,
    RefreshToken,
    ExpiresIn,
    ExpiresAt,
    AuthedUser,
    Data,
    Other(String),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::AccessToken => "access_token".into(),
            Key::RefreshToken => "refresh_token".into(),
            Key::ExpiresIn => "expires_in".into(),
            Key::ExpiresAt => "expires_at".into(),
            Key::AuthedUser => "authed_user".into(),
            Key::Data => "data".into(),
            Key::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A number in a string, as some providers send `expires_in`.
    NumStr(i64),
    Arr(Vec<Tree>),
    Obj(Vec<(Key, Tree)>),
}

impl Tree {
    fn into_json(self) -> Value {
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(b),
            Tree::Int(i) => Value::Number(i.into()),
            Tree::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Tree::Str(s) => Value::String(s),
            Tree::NumStr(i) => Value::String(i.to_string()),
            Tree::Arr(items) => Value::Array(items.into_iter().map(Tree::into_json).collect()),
            Tree::Obj(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.name(), v.into_json()))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    /// Text the JSON parser reads (only objects are token responses).
    Text(String),
    Generated(Vec<(Key, Tree)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    body: Body,
    access_token: Option<Vec<Key>>,
    refresh_token: Option<Vec<Key>>,
    expires_in: Option<Vec<Key>>,
    unit: u8,
    default_expires_in: Option<u64>,
    zero_expires_in_never_expires: bool,
    now_secs: i64,
    now_nanos: u32,
}

fn path(keys: Option<Vec<Key>>) -> Option<String> {
    keys.map(|keys| keys.iter().map(Key::name).collect::<Vec<_>>().join("."))
}

/// The value at a dotted path, as documented for the template's response fields.
fn at<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = object.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn non_empty_string(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fuzz_target!(|input: Input| {
    let raw = match input.body {
        Body::Text(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return,
        },
        Body::Generated(entries) => entries
            .into_iter()
            .map(|(k, v)| (k.name(), v.into_json()))
            .collect(),
    };
    let unit = match input.unit % 5 {
        0 => ExpiresInUnit::Seconds,
        1 => ExpiresInUnit::Milliseconds,
        2 => ExpiresInUnit::Minutes,
        3 => ExpiresInUnit::Hours,
        _ => ExpiresInUnit::Days,
    };
    let shape = TokenResponseShape {
        access_token: path(input.access_token),
        refresh_token: path(input.refresh_token),
        expires_in: path(input.expires_in),
        expires_in_unit: unit,
        default_expires_in: input.default_expires_in,
        zero_expires_in_never_expires: input.zero_expires_in_never_expires,
    };
    let Some(now): Option<DateTime<Utc>> = Utc
        .timestamp_opt(
            input.now_secs % 100_000_000_000,
            input.now_nanos % 1_000_000_000,
        )
        .single()
    else {
        return;
    };

    let result = parse_oauth2_response(raw.clone(), now, &shape);

    let expected_access = non_empty_string(at(&raw, shape.access_token_path()));
    let (depth, magic_key) = depth_and_magic_key(&raw);
    let credentials = match result {
        Ok(credentials) => credentials,
        Err(TokenResponseError::MissingAccessToken) => {
            assert!(
                expected_access.is_none(),
                "refused a response with an access token: {raw:?}"
            );
            return;
        }
        Err(TokenResponseError::TooDeep) => {
            assert!(
                depth > MAX_TOKEN_RESPONSE_DEPTH,
                "refused as too deep at depth {depth}"
            );
            return;
        }
        // The magic keys are what the fuzzer found; a new reason would deserve a look.
        Err(TokenResponseError::NotStorable(reason)) => {
            assert!(magic_key, "refused as not storable ({reason}): {raw:?}");
            return;
        }
    };
    assert!(
        depth <= MAX_TOKEN_RESPONSE_DEPTH && !magic_key,
        "accepted a response nested {depth} levels or with a magic key: {raw:?}"
    );
    assert_eq!(Some(credentials.access_token.as_str()), expected_access);
    assert_eq!(
        credentials.refresh_token.as_deref(),
        non_empty_string(at(&raw, shape.refresh_token_path()))
    );

    // raw: the response as it came, plus the computed expiry.
    let Value::Object(out_raw) = &credentials.raw else {
        panic!("raw is not an object: {:?}", credentials.raw);
    };
    match credentials.expires_at {
        Some(expires_at) => {
            assert_eq!(
                out_raw.get("expires_at"),
                Some(&Value::String(iso_millis(expires_at)))
            );
        }
        None => assert_eq!(out_raw.get("expires_at"), raw.get("expires_at")),
    }
    let without = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("expires_at");
        m
    };
    assert_eq!(
        without(out_raw),
        without(&raw),
        "raw changed beyond expires_at"
    );

    // Stored and read back (the credentials column and GET /connection use this serialization).
    let stored = Credentials::OAuth2(credentials.clone());
    let text = match serde_json::to_string(&stored) {
        Ok(text) => text,
        Err(e) => panic!("credentials cannot be serialized: {e}"),
    };
    let read: Credentials = match serde_json::from_str(&text) {
        Ok(read) => read,
        Err(e) => panic!("stored credentials cannot be read back ({e}): {text}"),
    };
    let Credentials::OAuth2(read) = read else {
        panic!("read back as another type: {text}");
    };
    assert_eq!(read.access_token, credentials.access_token);
    assert_eq!(read.refresh_token, credentials.refresh_token);
    assert_eq!(
        read.expires_at.map(|t| t.timestamp_millis()),
        credentials.expires_at.map(|t| t.timestamp_millis())
    );
    // serde_json (without its `float_roundtrip` feature) may read a float back one ulp off.
    assert!(
        same_json(&read.raw, &credentials.raw),
        "raw changed when read back:\n{:?}\n{:?}",
        read.raw,
        credentials.raw
    );
});

/// How many levels of arrays and objects the response has (itself included), and whether an
/// object in it has one of serde_json's magic `$serde_json::private::` keys.
fn depth_and_magic_key(raw: &Map<String, Value>) -> (usize, bool) {
    let mut deepest = 1;
    let mut magic = raw.keys().any(|k| k.starts_with("$serde_json::private::"));
    let mut pending: Vec<(&Value, usize)> = raw.values().map(|v| (v, 2)).collect();
    while let Some((value, depth)) = pending.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(depth);
                pending.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(depth);
                magic |= map.keys().any(|k| k.starts_with("$serde_json::private::"));
                pending.extend(map.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    (deepest, magic)
}

/// Equal JSON, floats compared to within 4 units in the last place.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y
                        || (x.is_sign_negative() == y.is_sign_negative()
                            && x.to_bits().abs_diff(y.to_bits()) <= 4)
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}
