//! The OAuth dance: `/oauth/connect/:key` starts it, `/oauth/callback` finishes it, and the
//! frontend learns the outcome over a WebSocket or a `postMessage` page.

pub mod answer;
pub mod callback;
pub mod connect;
pub mod flow_cookie;
pub mod notify;
pub mod oauth1;
pub mod oauth2;
pub mod pkce;

use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/connect/{provider_config_key}",
            get(connect::start_flow),
        )
        .route("/oauth/callback", get(callback::finish_flow))
}

/// Flow error types and messages of Nango 0.9 (§2.4 of the wire reference); typos are the contract.
pub mod flow_error {
    pub const MISSING_CONNECTION_ID: &str = "missing_connection_id";
    pub const PROVIDER_CONFIG: &str = "provider_config_err";
    pub const UNKNOWN_CONFIG_KEY: &str = "unknown_config_key";
    pub const URL_PARAM: &str = "url_param_err";
    pub const GRANT_TYPE: &str = "grant_type_err";
    pub const AUTH_MODE: &str = "auth_mode_err";
    pub const CALLBACK: &str = "callback_err";
    /// OAuth 1: the request-token step failed.
    pub const TOKEN: &str = "token_err";
    pub const UNKNOWN: &str = "unknown_err";
    pub const STATE: &str = "state_err";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const INVALID_RETURN_TO: &str = "invalid_return_to";
    pub const CONNECT_SESSION: &str = "connect_session_err";

    pub const UNKNOWN_MESSAGE: &str = "Unkown error during the Oauth flow.";
    pub const TOKEN_MESSAGE: &str = "Error storing/retrieving the token.";
    pub const CALLBACK_MESSAGE: &str =
        "Did not get oauth_token and/or oauth_verifier in the callback.";
}
