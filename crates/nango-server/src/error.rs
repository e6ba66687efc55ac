//! `ApiError`: every REST error, with the status and message Nango 0.9 used, rendered once as
//! `{"error": "<message>", "type": "<type>"}`. Internal causes are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::credentials::FreshError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Missing request body.")]
    MissingBody,
    #[error("Missing param 'provider_config_key'.")]
    MissingProviderConfig,
    #[error("There is no Provider Configuration matching this key.")]
    UnknownProviderConfig,
    #[error("Missing param 'provider'.")]
    MissingProviderTemplate,
    #[error("No Provider Template matching the 'provider' parameter.")]
    UnknownProviderTemplate,
    #[error("No provider in the catalog has this name (GET /providers lists them).")]
    UnknownProvider,
    #[error("Missing param 'oauth_client_id'.")]
    MissingClientId,
    #[error("Missing param 'oauth_client_secret'.")]
    MissingClientSecret,
    #[error("Missing param 'oauth_scopes'.")]
    MissingScopes,
    #[error("Missing param 'connection_id'.")]
    MissingConnection,
    #[error("No connection matching params 'connection_id' and 'provider_config_key'.")]
    UnknownConnection,
    #[error("There is already a Provider Configuration matching the param 'provider_config_key'.")]
    DuplicateProviderConfig,
    #[error("Authentication failed. The request is missing the Authorization header.")]
    MissingAuthorization,
    #[error("Authentication failed. The provided secret key is invalid.")]
    InvalidSecretKey,
    /// Malformed input the era answered with a 500 or not at all; we say what is wrong.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Request body is too large (limit {limit_kb} kB).")]
    PayloadTooLarge { limit_kb: usize },
    /// A body that is not declared `application/json` where only JSON is accepted: a browser
    /// sends `text/plain` and form bodies cross-site without asking (no CORS preflight).
    #[error("The request body must be sent as Content-Type: application/json.")]
    UnsupportedMediaType,
    #[error("Cannot {method} {path}")]
    RouteNotFound { method: String, path: String },
    /// The provider refused to refresh the token (e.g. `invalid_grant`): the user must re-authorize.
    #[error("The provider refused to refresh the OAuth 2 credentials ({error}). The stored credentials were kept; the connection needs to be re-authorized (or refreshed with force_refresh=true once the cause is fixed).")]
    RefreshRejected { error: String },
    /// The provider could not be reached or failed (timeout, 5xx) while refreshing.
    #[error("The provider failed to refresh the OAuth 2 credentials ({reason}). The stored credentials were kept; try again later.")]
    RefreshUnavailable { reason: String },
    /// Entered credentials that the template refuses (missing, too long, wrong format).
    #[error("Invalid credentials: {0}")]
    InvalidCredentials(String),
    /// A route for one auth mode used with a config of another.
    #[error(
        "This provider config's auth mode is {mode}: its connections cannot be made this way."
    )]
    WrongAuthMode { mode: &'static str },
    /// The provider refused the client credentials grant (wrong client id or secret, scopes).
    #[error("The provider refused the client credentials ({error}).")]
    ClientCredentialsRejected { error: String },
    /// The provider could not be reached or failed while a token was being obtained.
    #[error("The provider failed to issue a token ({reason}); try again later.")]
    ProviderUnavailable { reason: String },
    /// The provider could not be reached or failed while a saved credential was being verified.
    #[error("The provider could not verify the credentials ({reason}); try again later.")]
    VerificationUnavailable { reason: String },
    /// A connect session token missing (when required), unknown, used, expired or for another
    /// connection.
    #[error("{0}")]
    ConnectSession(#[from] crate::connect_sessions::ConnectSessionError),
    /// `force_refresh=true` on credentials that cannot be refreshed: OAuth 2 without a refresh
    /// token, OAuth 1, an API key or a username and password.
    #[error("These credentials cannot be refreshed: they have no refresh token (OAuth 1 tokens, API keys and passwords never do). The stored credentials are unchanged; re-authorize the connection to get new ones.")]
    NotRefreshable,
    /// A header the route needs (the proxy's `Connection-Id`, `Provider-Config-Key`).
    #[error("Missing header '{name}'.")]
    MissingHeader { name: &'static str },
    /// The proxy cannot make the provider's URL or credentials for this connection (no
    /// `base_api_url`, a missing connection config value, a template that cannot sign).
    #[error("{0}")]
    ProxyTarget(String),
    /// The provider's API could not be reached while proxying (never says the URL: an API key
    /// may be in its query).
    #[error("The provider's API could not be reached ({0}).")]
    ProxyUnreachable(String),
    #[error("An unhandled error has occured.")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingAuthorization | InvalidSecretKey | ConnectSession(_) => StatusCode::UNAUTHORIZED,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RouteNotFound { .. } | UnknownProvider => StatusCode::NOT_FOUND,
            RefreshUnavailable { .. }
            | ProviderUnavailable { .. }
            | VerificationUnavailable { .. }
            | ProxyUnreachable(_) => StatusCode::BAD_GATEWAY,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Machine-readable name; the Nango error-table names where one exists (typos included).
    pub fn kind(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingBody => "missing_body",
            MissingProviderConfig => "missing_provider_config",
            UnknownProviderConfig => "unknown_provider_config",
            MissingProviderTemplate => "missing_provider_template",
            UnknownProviderTemplate => "unknown_provider_template",
            UnknownProvider => "unknown_provider",
            MissingClientId => "missing_client_id",
            MissingClientSecret => "missing_client_secret",
            MissingScopes => "missing_scopes",
            MissingConnection => "missing_connection",
            UnknownConnection => "unkown_connection",
            DuplicateProviderConfig => "duplicate_provider_config",
            MissingAuthorization => "missing_auth_header",
            InvalidSecretKey => "invalid_secret_key",
            InvalidRequest(_) => "invalid_request",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            RouteNotFound { .. } => "not_found",
            RefreshRejected { .. } => "refresh_rejected",
            RefreshUnavailable { .. } => "refresh_unavailable",
            NotRefreshable => "not_refreshable",
            ConnectSession(_) => "invalid_connect_session",
            InvalidCredentials(_) => "invalid_credentials",
            WrongAuthMode { .. } => "auth_mode_err",
            ClientCredentialsRejected { .. } => "client_credentials_rejected",
            ProviderUnavailable { .. } | VerificationUnavailable { .. } => "provider_unavailable",
            MissingHeader { .. } => "missing_header",
            ProxyTarget(_) => "proxy_target",
            ProxyUnreachable(_) => "provider_unreachable",
            Internal(_) => "server_error",
        }
    }
}

/// Every error of the REST API.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person (Nango 0.9's messages where it had one).
    pub error: String,
    /// What went wrong, for a program (e.g. `unknown_provider_config`, `invalid_secret_key`).
    #[serde(rename = "type")]
    pub kind: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed");
        }
        let body = json!({ "error": self.to_string(), "type": self.kind() });
        crate::http::json_response(self.status(), &body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

impl From<FreshError> for ApiError {
    fn from(e: FreshError) -> Self {
        match e {
            FreshError::UnknownConnection => ApiError::UnknownConnection,
            FreshError::UnknownConfig => ApiError::UnknownProviderConfig,
            FreshError::Rejected(error) => ApiError::RefreshRejected { error },
            FreshError::Unavailable(reason) => ApiError::RefreshUnavailable { reason },
            FreshError::NotRefreshable => ApiError::NotRefreshable,
            FreshError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}
