//! `GET /oauth/callback`: consumes the flow state (once, before it expires), exchanges the code
//! (OAuth 2) or the verified request token (OAuth 1), stores the connection and only then tells
//! the frontend it succeeded.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value};

use super::flow_cookie;
use super::flow_error as fe;
use super::notify::{finish_flow as notify_frontend, FlowOutcome, FlowReply};
use super::oauth1;
use super::oauth2::{ExchangeCall, MetadataCall, TokenCall};
use crate::connect_sessions::ConnectSessionError;
use crate::credentials::{
    parse_oauth2_response, Credentials, OAuth1Credentials, OAuth2Credentials,
};
use crate::http::query_value;
use crate::providers::{
    fill_params, settle_connection_config, settled_url, stored_url, AuthMode, FlowValues,
    MetadataRequest, ProviderTemplate, TokenExchange, ValueSource,
};
use crate::store::{ConnectionFields, OAuthSession, Owner, ProviderConfig};
use crate::AppState;

pub async fn finish_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let state_param = query_value(&query, "state").unwrap_or_default();
    let mut response = finish_bound_flow(&state, &headers, &query, state_param).await;
    // Whatever the outcome, the flow's cookie has served its purpose.
    if !state_param.is_empty() {
        if let Some(clear) = flow_cookie::clear_cookie(state_param, &state.settings.callback_url) {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    response
}

async fn finish_bound_flow(
    state: &AppState,
    headers: &HeaderMap,
    query: &[(String, String)],
    state_param: &str,
) -> Response {
    let session = match state
        .store
        .take_oauth_session(state_param, Utc::now())
        .await
    {
        Ok(Some(session)) => session,
        Ok(None) => {
            // Unknown, reused or expired: no socket to tell, so the page carries the error.
            state.metrics.observe_flow("unknown", fe::STATE);
            let shown: String = state_param.chars().take(100).collect();
            return notify_frontend(
                state,
                &FlowReply::default(),
                FlowOutcome::Failure {
                    error_type: fe::STATE,
                    message: format!("Invalid state parameter passed in the callback: {shown}"),
                    provider_config_key: None,
                    connection_id: None,
                },
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the OAuth flow state");
            state.metrics.observe_flow("unknown", fe::UNKNOWN);
            return notify_frontend(
                state,
                &FlowReply::default(),
                FlowOutcome::Failure {
                    error_type: fe::UNKNOWN,
                    message: fe::UNKNOWN_MESSAGE.into(),
                    provider_config_key: None,
                    connection_id: None,
                },
            )
            .await;
        }
    };

    // The state is used up even when the browser cannot prove it started the flow: the code
    // that came back with it was issued to a browser that may be a victim's, and must never be
    // exchanged later by whoever holds the cookie (the flow's starter).
    if !flow_cookie::presented(headers, &session.state, session.browser_hash.as_deref()) {
        tracing::warn!(
            provider_config_key = %session.provider_config_key,
            "OAuth callback refused: the browser did not present the flow's cookie"
        );
        state.metrics.observe_flow(&session.provider, fe::STATE);
        // Told to the starter's socket (a legitimate SDK learns it failed), never redirected to
        // the starter's return_to: the browser here may not be the starter's.
        let reply = FlowReply {
            ws_client_id: session.ws_client_id.clone(),
            return_to: None,
        };
        return notify_frontend(
            state,
            &reply,
            FlowOutcome::Failure {
                error_type: fe::STATE,
                message: BROWSER_MISMATCH_MESSAGE.into(),
                provider_config_key: Some(session.provider_config_key.clone()),
                connection_id: Some(session.connection_id.clone()),
            },
        )
        .await;
    }

    // Only an OAuth 1 flow has a request-token secret.
    let completed = if session.request_token_secret.is_some() {
        complete_oauth1(state, &session, query).await
    } else {
        complete_oauth2(state, &session, query).await
    };
    state.metrics.observe_flow(
        &session.provider,
        match &completed {
            Ok(()) => "success",
            Err((error_type, _)) => error_type,
        },
    );
    if let Err((error_type, message)) = &completed {
        authorization_failed(state, &session, error_type, message).await;
    }
    let outcome = match completed {
        Ok(()) => FlowOutcome::Success {
            provider_config_key: session.provider_config_key.clone(),
            connection_id: session.connection_id.clone(),
        },
        Err((error_type, message)) => FlowOutcome::Failure {
            error_type,
            message,
            provider_config_key: Some(session.provider_config_key.clone()),
            connection_id: Some(session.connection_id.clone()),
        },
    };
    let reply = FlowReply {
        ws_client_id: session.ws_client_id.clone(),
        return_to: session.return_to.clone(),
    };
    notify_frontend(state, &reply, outcome).await
}

/// Current Nango's `creation` webhook with `success: false` (sent in that format only), with the
/// end user and tags of the flow's connect session when it has one.
async fn authorization_failed(
    state: &AppState,
    session: &OAuthSession,
    error_type: &str,
    message: &str,
) {
    let owner = match &session.connect_session_hash {
        Some(hash) => crate::connect_sessions::session_owner(state, hash)
            .await
            .map(|owner| crate::webhooks::owner_json(&owner)),
        None => None,
    };
    crate::webhooks::emit(
        state,
        crate::webhooks::EventKind::AuthorizationFailed,
        &session.provider_config_key,
        &session.connection_id,
        serde_json::json!({"error_type": error_type, "error": message, "owner": owner}),
    )
    .await;
}

/// The page of a callback whose browser did not start the flow (no cookie, or another one).
pub const BROWSER_MISMATCH_MESSAGE: &str = "This authorization was not started in this browser (the flow's cookie is missing or does not match): start the connection again from the app.";

type FlowFailure = (&'static str, String);

fn unknown(context: &str, detail: &dyn std::fmt::Display) -> FlowFailure {
    tracing::warn!(error = %detail, "{context}");
    (fe::UNKNOWN, fe::UNKNOWN_MESSAGE.into())
}

async fn complete_oauth2(
    state: &AppState,
    session: &OAuthSession,
    query: &[(String, String)],
) -> Result<(), FlowFailure> {
    let param = |name: &str| query_value(query, name);
    let (config, template) = config_and_template(state, session).await?;
    let Some(code) = param(template.code_param()).filter(|c| !c.is_empty()) else {
        // Nango's sentence first (clients match on it), then what the provider said, so a user
        // who denied access can be told so.
        let mut message = fe::CALLBACK_MESSAGE.to_string();
        if let Some(error) = param("error") {
            let error: String = error.chars().take(100).collect();
            message.push_str(&format!(" The provider returned: {error}"));
            if let Some(description) = param("error_description") {
                let description: String = description.chars().take(300).collect();
                message.push_str(&format!(" ({description})"));
            }
            message.push('.');
        }
        return Err((fe::CALLBACK, message));
    };
    // Settled once: the token URL and the token parameters are filled from the same values.
    let values = settle_connection_config(
        template,
        &config.connection_config,
        &session.connection_config,
        ValueSource::Stored,
    )
    .map_err(|e| unknown("could not fill in the token URL", &e))?;
    let (token_url, public_only) = settled_url(template, &values, &template.token_url)
        .map_err(|e| unknown("could not fill in the token URL", &e))?;

    let mut params = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code.to_string()),
        ("redirect_uri".to_string(), session.callback_url.clone()),
    ];
    let flow = FlowValues {
        client_id: &config.oauth_client_id,
        nonce: None,
        redirect_uri: None,
    };
    let extra = fill_params(&template.token_params, &values, flow)
        .map_err(|e| unknown("could not fill in token_params", &e))?;
    params.extend(
        extra
            .into_iter()
            .filter(|(k, _)| k.as_str() != "grant_type"),
    );
    if let Some(verifier) = &session.code_verifier {
        params.push(("code_verifier".into(), verifier.expose().clone()));
    }
    let raw = TokenCall {
        template,
        token_url: &token_url,
        client_id: &config.oauth_client_id,
        client_secret: config.oauth_client_secret.expose(),
        params,
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(public_only))
    .await
    .map_err(|e| unknown("the code exchange failed", &e))?;

    let mut metadata = Map::new();
    for name in &template.redirect_uri_metadata {
        if let Some(value) = param(name) {
            metadata.insert(name.clone(), Value::String(value.to_string()));
        }
    }
    for name in &template.token_response_metadata {
        if let Some(value @ Value::String(_)) = raw.get(name) {
            metadata.insert(name.clone(), value.clone());
        }
    }
    let mut credentials = parse_oauth2_response(raw, Utc::now(), &template.token_response)
        .map_err(|e| unknown("the token response was unusable", &e))?;
    if let Some(exchange) = &template.long_lived_token {
        // No connection is stored with the short-lived token: the flow fails instead.
        credentials = exchange_for_long_lived(
            state,
            template,
            exchange,
            &config,
            &values,
            credentials,
        )
        .await
        .map_err(|e| {
            tracing::warn!(provider = %config.provider, error = %e, "the long-lived token exchange failed");
            (fe::UNKNOWN, format!("{} The long-lived token exchange failed: {e}", fe::UNKNOWN_MESSAGE))
        })?;
    }
    if let Some(request) = &template.metadata_request {
        let fetched = fetch_metadata(state, template, request, &values, &credentials)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %config.provider, error = %e, "the metadata request failed");
                (fe::UNKNOWN, format!("{} The metadata request failed: {e}", fe::UNKNOWN_MESSAGE))
            })?;
        metadata.extend(fetched);
    }

    let owner = owner_of_flow(state, session).await?;
    let connection = state
        .store
        .upsert_connection(&ConnectionFields {
            provider_config_key: session.provider_config_key.clone(),
            connection_id: session.connection_id.clone(),
            credentials: Credentials::OAuth2(credentials),
            connection_config: session.connection_config.clone(),
            metadata,
            obtained_at: Utc::now(),
            owner,
        })
        .await
        .map_err(|e| unknown("could not store the connection", &e))?;
    crate::webhooks::connection_stored(state, &connection).await;
    Ok(())
}

/// For a flow under a connect session of current Nango's kind: uses the session up (of two
/// flows under one session only the first stores a connection) and gives the end user and tags
/// the connection gets. `None` (keep a replaced connection's) for any other flow.
async fn owner_of_flow(
    state: &AppState,
    session: &OAuthSession,
) -> Result<Option<Owner>, (&'static str, String)> {
    let Some(hash) = &session.connect_session_hash else {
        return Ok(None);
    };
    match crate::connect_sessions::use_up(state, hash).await {
        Ok(owner) => Ok(Some(owner)),
        Err(ConnectSessionError::Unavailable) => Err((fe::UNKNOWN, fe::UNKNOWN_MESSAGE.into())),
        Err(_) => Err((
            fe::CONNECT_SESSION,
            "The connect session expired or has already made a connection: nothing was stored. Start again with a new session.".into(),
        )),
    }
}

/// Trades the code exchange's short-lived token for a long-lived one (`long_lived_token`), keeping
/// the first response's refresh token when the exchange gives none.
async fn exchange_for_long_lived(
    state: &AppState,
    template: &ProviderTemplate,
    exchange: &TokenExchange,
    config: &ProviderConfig,
    values: &Map<String, Value>,
    short_lived: OAuth2Credentials,
) -> Result<OAuth2Credentials, String> {
    let url =
        crate::providers::interpolate_url(&exchange.url, values).map_err(|e| e.to_string())?;
    ExchangeCall {
        template,
        exchange,
        url: &url,
        token: &short_lived,
        client_id: &config.oauth_client_id,
        client_secret: config.oauth_client_secret.expose(),
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(template.public_hosts_only()))
    .await
    .map_err(|e| e.to_string())
}

/// The connection metadata a template's `metadata_request` reads with the new token.
async fn fetch_metadata(
    state: &AppState,
    template: &ProviderTemplate,
    request: &MetadataRequest,
    values: &Map<String, Value>,
    credentials: &OAuth2Credentials,
) -> Result<Map<String, Value>, String> {
    let url = crate::providers::interpolate_url(&request.url, values).map_err(|e| e.to_string())?;
    MetadataCall {
        request,
        url: &url,
        access_token: &credentials.access_token,
        timeout: state.settings.provider_timeout,
    }
    .send(state.http_for(template.public_hosts_only()))
    .await
    .map_err(|e| e.to_string())
}

/// The flow's provider config and its template, as they are now.
async fn config_and_template<'a>(
    state: &'a AppState,
    session: &OAuthSession,
) -> Result<(ProviderConfig, &'a ProviderTemplate), FlowFailure> {
    let config = state
        .store
        .get_config(&session.provider_config_key)
        .await
        .map_err(|e| unknown("could not read the provider config", &e))?
        .ok_or_else(|| {
            (
                fe::PROVIDER_CONFIG,
                format!(
                    "Could not find a Provider Config matching the \"{}\" key.",
                    session.provider_config_key
                ),
            )
        })?;
    let template = state.catalog.get(&config.provider).ok_or_else(|| {
        (
            fe::UNKNOWN_CONFIG_KEY,
            format!(
                "No Provider Configuration with key \"{}\".",
                config.provider
            ),
        )
    })?;
    Ok((config, template))
}

/// OAuth 1.0a (§8 of the wire reference): trades the authorized request token and its verifier
/// for token credentials, signed with the request-token secret kept in the flow state.
async fn complete_oauth1(
    state: &AppState,
    session: &OAuthSession,
    query: &[(String, String)],
) -> Result<(), FlowFailure> {
    let param = |name: &str| query_value(query, name).filter(|v| !v.is_empty());
    // A user who denied access comes back without a verifier (Twitter adds `denied=<token>`).
    let (Some(request_token), Some(verifier)) = (param("oauth_token"), param("oauth_verifier"))
    else {
        return Err((fe::CALLBACK, fe::CALLBACK_MESSAGE.into()));
    };
    let (config, template) = config_and_template(state, session).await?;
    let Some(method) = template
        .signature_method
        .filter(|_| template.auth_mode == AuthMode::OAuth1)
    else {
        return Err(unknown(
            "the provider template is no longer OAUTH1",
            &config.provider,
        ));
    };
    let (token_url, public_only) = stored_url(
        template,
        &config.connection_config,
        &session.connection_config,
        &template.token_url,
    )
    .map_err(|e| unknown("could not fill in the token URL", &e))?;
    let signer = oauth1::Signer::new(
        method,
        &config.oauth_client_id,
        config.oauth_client_secret.expose(),
    )
    .map_err(|e| {
        (
            fe::PROVIDER_CONFIG,
            format!(
                "Provider Config \"{}\" cannot sign OAuth 1 requests: {e}",
                config.unique_key
            ),
        )
    })?;
    let request_token_secret = session
        .request_token_secret
        .as_ref()
        .map(|s| s.expose().as_str())
        .unwrap_or_default();
    let tokens = oauth1::access_token(
        state.http_for(public_only),
        &signer,
        template.token_http_method,
        &token_url,
        request_token,
        request_token_secret,
        verifier,
        template
            .token_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        state.settings.provider_timeout,
    )
    .await
    .map_err(|e| {
        tracing::warn!(provider = %config.provider, error = %e, "the OAuth 1 access-token call failed");
        (fe::UNKNOWN, format!("{} {e}", fe::UNKNOWN_MESSAGE))
    })?;

    let mut metadata = Map::new();
    for name in &template.redirect_uri_metadata {
        if let Some(value) = param(name) {
            metadata.insert(name.clone(), Value::String(value.to_string()));
        }
    }
    let owner = owner_of_flow(state, session).await?;
    let connection = state
        .store
        .upsert_connection(&ConnectionFields {
            provider_config_key: session.provider_config_key.clone(),
            connection_id: session.connection_id.clone(),
            credentials: Credentials::OAuth1(OAuth1Credentials {
                oauth_token: tokens.token,
                oauth_token_secret: tokens.secret,
                raw: Value::Object(tokens.raw),
            }),
            connection_config: session.connection_config.clone(),
            metadata,
            obtained_at: Utc::now(),
            owner,
        })
        .await
        .map_err(|e| unknown("could not store the connection", &e))?;
    crate::webhooks::connection_stored(state, &connection).await;
    Ok(())
}
