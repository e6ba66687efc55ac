//! Connect sessions: the app's backend (with the secret key) mints a short-lived, single-use token
//! for one end user's flow, bound to a config key and connection id, and hands it to its
//! frontend. With `NANGO_REQUIRE_CONNECT_SESSION=true`, `/oauth/connect` and `/api-auth/...`
//! refuse to run without one, so a browser cannot attach credentials to another user's
//! connection id just by knowing it. Minted by REST and the dashboard, redeemed by the flows.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::configs::config_and_template;
use crate::connections::{owner_from, EndUser, Organization};
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::http::check_id;
use crate::store::{ConnectSession, Owner};
use crate::AppState;

/// Tokens carry this prefix so they are recognisable in logs and secret scanners.
const TOKEN_PREFIX: &str = "ncs_";

/// Why a flow's connect session was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConnectSessionError {
    #[error("A connect session token is required: mint one with POST /connect/sessions and pass it to the frontend SDK (connectSessionToken).")]
    Missing,
    #[error("The connect session token is unknown, expired or already used.")]
    Invalid,
    #[error("The connect session token was minted for another provider config or connection id.")]
    Mismatch,
    #[error("The connect session could not be checked.")]
    Unavailable,
    #[error("The connect session does not allow this integration.")]
    NotAllowed,
    #[error("A flow under a connect session made with an end user cannot choose its connection id: the server makes one (or uses the reconnected connection's).")]
    ConnectionIdGiven,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks (and uses up) the token a flow presents, when it presents one or when the server
/// requires one. Only the hash is looked up, so lookups leak nothing about valid tokens.
pub async fn redeem(
    state: &AppState,
    token: Option<&str>,
    provider_config_key: &str,
    connection_id: &str,
) -> Result<(), ConnectSessionError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return if state.settings.require_connect_session {
            Err(ConnectSessionError::Missing)
        } else {
            Ok(())
        };
    };
    let session = state
        .store
        .take_connect_session(&hash(token), Utc::now())
        .await
        .map_err(unavailable("could not read a connect session"))?
        .ok_or(ConnectSessionError::Invalid)?;
    if session.provider_config_key != provider_config_key || session.connection_id != connection_id
    {
        return Err(ConnectSessionError::Mismatch);
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionToken {
    /// Give this to the frontend SDK (`new Nango({host, connectSessionToken})`); it works once.
    pub token: String,
    pub provider_config_key: String,
    pub connection_id: String,
    /// ISO 8601 with milliseconds.
    pub expires_at: String,
}

/// Mints a connect session token for a flow of `connection_id` on config `key`, both checked
/// (also the dashboard's "connect a test account" when sessions are required).
pub async fn mint_connect_session(
    state: &AppState,
    key: &str,
    connection_id: &str,
) -> Result<ConnectSessionToken, ApiError> {
    if key.is_empty() {
        return Err(ApiError::MissingProviderConfig);
    }
    check_id("provider_config_key", key)?;
    if connection_id.is_empty() {
        return Err(ApiError::MissingConnection);
    }
    check_id("connection_id", connection_id)?;
    config_and_template(state, key).await?;
    let (token, expires_at) = insert_session(state, key, connection_id, None).await?;
    Ok(ConnectSessionToken {
        token,
        provider_config_key: key.to_string(),
        connection_id: connection_id.to_string(),
        expires_at: iso_millis(expires_at),
    })
}

/// Stores a new session and returns its token and expiry.
async fn insert_session(
    state: &AppState,
    key: &str,
    connection_id: &str,
    spec: Option<&SessionSpec>,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::Internal(format!("no randomness for a token: {e}")))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let now = Utc::now();
    let expires_at =
        now + chrono::Duration::from_std(state.settings.connect_session_ttl).unwrap_or_default();
    let spec = spec
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ApiError::Internal(format!("connect session: {e}")))?;
    state
        .store
        .insert_connect_session(&ConnectSession {
            token_hash: hash(&token),
            provider_config_key: key.to_string(),
            connection_id: connection_id.to_string(),
            created_at: now,
            expires_at,
            spec,
        })
        .await?;
    Ok((token, expires_at))
}

/// What one integration's flows start from in a session (current Nango's
/// `integrations_config_defaults[key]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationDefaults {
    /// Slack's user scopes (`user_scope`), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_scopes: Option<String>,
    /// Extra parameters of the authorization URL (strings); the flow's own (`client_id`,
    /// `redirect_uri`, `state`, `response_type`, `code_challenge...`) cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub authorization_params: Option<BTreeMap<String, String>>,
    /// Values of the template's placeholders (`{"subdomain": "acme"}`), which the end user's
    /// browser cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub connection_config: Option<BTreeMap<String, String>>,
}

/// Authorization parameters the flow sets itself.
const FLOW_PARAMS: [&str; 6] = [
    "client_id",
    "redirect_uri",
    "state",
    "response_type",
    "code_challenge",
    "code_challenge_method",
];

/// What a session of current Nango's kind allows and gives, stored with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionSpec {
    /// The end user and tags its connection gets.
    #[serde(default)]
    pub end_user: Option<Map<String, Value>>,
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// The integrations (config keys) it may connect; `None`: all.
    #[serde(default)]
    pub allowed_integrations: Option<Vec<String>>,
    #[serde(default)]
    pub integrations_config_defaults: BTreeMap<String, IntegrationDefaults>,
    /// A reconnect session: its connection is the one named by the row.
    #[serde(default)]
    pub reconnect: bool,
}

impl SessionSpec {
    pub fn owner(&self) -> Owner {
        Owner {
            end_user: self.end_user.clone(),
            tags: self.tags.clone(),
        }
    }

    pub fn allows(&self, key: &str) -> bool {
        self.allowed_integrations
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
    }
}

/// A session request of current Nango's kind (`POST /connect/sessions` with `end_user`, or
/// `/connect/sessions/reconnect`).
#[derive(Debug, Default)]
pub struct SessionRequest {
    pub end_user: Option<EndUser>,
    pub organization: Option<Organization>,
    pub tags: Option<Map<String, Value>>,
    pub allowed_integrations: Option<Vec<String>>,
    pub integrations_config_defaults: Option<BTreeMap<String, IntegrationDefaults>>,
}

/// A minted session of current Nango's kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionToken {
    /// Give this to the frontend SDK (`connectSessionToken`) or Connect UI: it works until it has
    /// made a connection or expires.
    pub token: String,
    /// This server's Connect UI for the session.
    pub connect_link: String,
    /// ISO 8601 with milliseconds.
    pub expires_at: String,
}

/// Mints a session of current Nango's kind: for any of `allowed_integrations` (all when absent),
/// its connection ids made by the server, with the end user, tags and defaults given. With
/// `reconnect`, the session re-authorizes that existing connection (config key, connection id).
pub async fn mint_session(
    state: &AppState,
    request: SessionRequest,
    reconnect: Option<(&str, &str)>,
) -> Result<SessionToken, ApiError> {
    let invalid = |message: String| ApiError::InvalidRequest(message);
    let mut allowed = request.allowed_integrations;
    let mut owner = owner_from(request.end_user, request.organization, request.tags)?;
    if let Some((key, connection_id)) = reconnect {
        check_id("integration_id", key)?;
        check_id("connection_id", connection_id)?;
        let connection = state
            .store
            .get_connection(key, connection_id)
            .await?
            .ok_or(ApiError::UnknownConnection)?;
        if owner.end_user.is_none() && owner.tags.is_empty() {
            owner = connection.owner;
        }
        allowed = Some(vec![key.to_string()]);
    }
    if let Some(keys) = &allowed {
        if keys.is_empty() {
            return Err(invalid(
                "Param 'allowed_integrations' must name at least one integration.".into(),
            ));
        }
        for key in keys {
            check_id("allowed_integrations", key)?;
            if state.store.get_config(key).await?.is_none() {
                return Err(invalid(format!("Integration '{key}' does not exist.")));
            }
        }
    }
    let defaults = request.integrations_config_defaults.unwrap_or_default();
    for (key, value) in &defaults {
        if !allowed.as_ref().is_none_or(|keys| keys.contains(key)) {
            return Err(invalid(format!(
                "integrations_config_defaults names '{key}', which the session does not allow."
            )));
        }
        if let Some(name) = value
            .authorization_params
            .iter()
            .flat_map(|p| p.keys())
            .find(|name| FLOW_PARAMS.contains(&name.as_str()))
        {
            return Err(invalid(format!(
                "integrations_config_defaults.{key}.authorization_params cannot set '{name}': the flow sets it."
            )));
        }
    }
    let spec = SessionSpec {
        end_user: owner.end_user,
        tags: owner.tags,
        allowed_integrations: allowed,
        integrations_config_defaults: defaults,
        reconnect: reconnect.is_some(),
    };
    let (key, connection_id) = reconnect.unwrap_or(("", ""));
    let (token, expires_at) = insert_session(state, key, connection_id, Some(&spec)).await?;
    let connect_link = format!(
        "{}/connect/?session_token={token}",
        state.settings.server_url.trim_end_matches('/')
    );
    Ok(SessionToken {
        token,
        connect_link,
        expires_at: iso_millis(expires_at),
    })
}

/// A session of current Nango's kind, as a token presents it.
#[derive(Debug, Clone)]
pub struct OpenSession {
    pub token_hash: String,
    pub spec: SessionSpec,
    /// For a reconnect session: the connection it re-authorizes (config key, connection id).
    pub reconnects: Option<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// The session of current Nango's kind a token names, without using it up; `None` when the
/// token names a session bound to one connection id (the kind `redeem` takes).
pub async fn open_session(
    state: &AppState,
    token: &str,
) -> Result<Option<OpenSession>, ConnectSessionError> {
    let session = state
        .store
        .get_connect_session(&hash(token), Utc::now())
        .await
        .map_err(unavailable("could not read a connect session"))?
        .ok_or(ConnectSessionError::Invalid)?;
    let Some(spec) = session.spec else {
        return Ok(None);
    };
    let spec = read_spec(spec)?;
    let reconnects = spec
        .reconnect
        .then_some((session.provider_config_key, session.connection_id));
    Ok(Some(OpenSession {
        token_hash: session.token_hash,
        spec,
        reconnects,
        expires_at: session.expires_at,
    }))
}

/// What a flow under a session of current Nango's kind works with: the connection it makes and
/// what it gives it.
#[derive(Debug, Clone)]
pub struct FlowGrant {
    pub token_hash: String,
    pub connection_id: String,
    pub defaults: IntegrationDefaults,
    pub owner: Owner,
}

/// Checks a flow of config `key` against the session a token names: `None` when the token is
/// absent or names a session bound to one connection id (checked by `redeem` instead). The
/// connection id is the reconnected one, or a new UUID; a flow under such a session cannot
/// choose its connection id (the browser would then pick whose connection it writes).
pub async fn grant_flow(
    state: &AppState,
    token: Option<&str>,
    key: &str,
    given_connection_id: Option<&str>,
) -> Result<Option<FlowGrant>, ConnectSessionError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let Some(session) = open_session(state, token).await? else {
        return Ok(None);
    };
    if !session.spec.allows(key) {
        return Err(ConnectSessionError::NotAllowed);
    }
    let connection_id = match (&session.reconnects, given_connection_id) {
        (Some((_, id)), None) => id.clone(),
        (Some((_, id)), Some(given)) if given == id => id.clone(),
        (None, None) => uuid::Uuid::new_v4().to_string(),
        _ => return Err(ConnectSessionError::ConnectionIdGiven),
    };
    Ok(Some(FlowGrant {
        token_hash: session.token_hash,
        connection_id,
        defaults: session
            .spec
            .integrations_config_defaults
            .get(key)
            .cloned()
            .unwrap_or_default(),
        owner: session.spec.owner(),
    }))
}

/// Uses up a session of current Nango's kind as its flow stores the connection (of two flows
/// under one session, only the first stores one) and returns the end user and tags the
/// connection gets.
pub async fn use_up(state: &AppState, token_hash: &str) -> Result<Owner, ConnectSessionError> {
    let session = state
        .store
        .take_connect_session(token_hash, Utc::now())
        .await
        .map_err(unavailable("could not use up a connect session"))?
        .ok_or(ConnectSessionError::Invalid)?;
    let spec = session.spec.map(read_spec).transpose()?.unwrap_or_default();
    Ok(spec.owner())
}

/// A store failure, logged with what was being done, as the client sees it: the server's fault,
/// not the token's.
fn unavailable(doing: &'static str) -> impl Fn(crate::store::StoreError) -> ConnectSessionError {
    move |e| {
        tracing::error!(error = %e, "{doing}");
        ConnectSessionError::Unavailable
    }
}

/// A stored session's `spec`; a row that cannot be read is the server's fault, not the token's.
fn read_spec(stored: Value) -> Result<SessionSpec, ConnectSessionError> {
    serde_json::from_value(stored).map_err(|e| {
        tracing::error!(error = %e, "a stored connect session cannot be read");
        ConnectSessionError::Unavailable
    })
}

/// Ends a session (current Nango's `DELETE /connect/session`); `Invalid` when there was none.
pub async fn end_session(state: &AppState, token: &str) -> Result<(), ConnectSessionError> {
    match state.store.delete_connect_session(&hash(token)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ConnectSessionError::Invalid),
        Err(e) => Err(unavailable("could not end a connect session")(e)),
    }
}

/// The end user and tags a session of current Nango's kind gives, by its token's hash, without
/// using it up (for the webhook of a failed authorization); `None` when it is gone.
pub async fn session_owner(state: &AppState, token_hash: &str) -> Option<Owner> {
    let session = state
        .store
        .get_connect_session(token_hash, Utc::now())
        .await
        .ok()??;
    let spec = read_spec(session.spec?).ok()?;
    Some(spec.owner())
}
