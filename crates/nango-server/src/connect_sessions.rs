//! Connect sessions: the app's backend (with the secret key) mints a short-lived, single-use token
//! for one end user's flow, bound to a config key and connection id, and hands it to its
//! frontend. With `NANGO_REQUIRE_CONNECT_SESSION=true`, `/oauth/connect` and `/api-auth/...`
//! refuse to run without one, so a browser cannot attach credentials to another user's
//! connection id just by knowing it. Minted by REST and the dashboard, redeemed by the flows.

use base64::Engine;
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::configs::config_and_template;
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::http::check_id;
use crate::store::ConnectSession;
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
        .map_err(|e| {
            tracing::error!(error = %e, "could not read a connect session");
            ConnectSessionError::Unavailable
        })?
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
    state
        .store
        .insert_connect_session(&ConnectSession {
            token_hash: hash(&token),
            provider_config_key: key.to_string(),
            connection_id: connection_id.to_string(),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(ConnectSessionToken {
        token,
        provider_config_key: key.to_string(),
        connection_id: connection_id.to_string(),
        expires_at: iso_millis(expires_at),
    })
}
