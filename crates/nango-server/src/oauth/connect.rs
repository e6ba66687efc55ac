//! `GET /oauth/connect/:key`: validates the request, records the flow in the database (so any
//! replica, or this one after a restart, can finish it) and redirects to the provider.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value};

use super::flow_cookie::FlowBinding;
use super::flow_error as fe;
use super::notify::{finish_flow, FlowOutcome, FlowReply};
use super::oauth1::{self, OAuth1Error};
use super::{oauth2, pkce};
use crate::connect_sessions::{grant_flow, redeem, ConnectSessionError, IntegrationDefaults};
use crate::http::{connection_config_from_params, id_problem};
use crate::providers::{
    fill_params, interpolate_url, settle_connection_config, AuthMode, FlowValues,
    InterpolationError, ProviderTemplate, ValueSource, PARAMS_PREFIX,
};
use crate::secret::Secret;
use crate::store::{OAuthSession, ProviderConfig};
use crate::AppState;

/// What `/oauth/connect` was asked, read leniently (the published SDKs do not URL-encode).
struct ConnectRequest {
    connection_id: Option<String>,
    connect_session_token: Option<String>,
    ws_client_id: Option<String>,
    return_to: Option<String>,
    /// `params[name]=value` as `{"connectionConfig.params.name": "value"}`.
    connection_config: Map<String, Value>,
}

impl ConnectRequest {
    fn parse(query: Option<&str>) -> ConnectRequest {
        let mut connection_ids = Vec::new();
        let mut ws_client_id = None;
        let mut return_to = None;
        let mut connect_session_token = None;
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        for (name, value) in &pairs {
            match name.as_str() {
                "connection_id" => connection_ids.push(value.clone()),
                "ws_client_id" if !value.is_empty() => ws_client_id = Some(value.clone()),
                "return_to" if !value.is_empty() => return_to = Some(value.clone()),
                "connect_session_token" if !value.is_empty() => {
                    connect_session_token = Some(value.clone())
                }
                _ => {}
            }
        }
        let connection_config =
            connection_config_from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Nango joined a repeated connection_id with commas (qs turned it into an array).
        let connection_id = (!connection_ids.is_empty())
            .then(|| connection_ids.join(","))
            .filter(|id| !id.is_empty());
        ConnectRequest {
            connection_id,
            connect_session_token,
            ws_client_id,
            return_to,
            connection_config,
        }
    }
}

pub async fn start_flow(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut request = ConnectRequest::parse(query.as_deref());
    let mut reply = FlowReply {
        ws_client_id: request.ws_client_id.clone(),
        return_to: None,
    };
    let Ok(Path(provider_config_key)) = path else {
        let outcome = FlowOutcome::Failure {
            error_type: fe::INVALID_REQUEST,
            message: "The Provider Config key in the URL must be valid UTF-8.".into(),
            provider_config_key: None,
            connection_id: request.connection_id,
        };
        return finish_flow(&state, &reply, outcome).await;
    };
    // A return_to outside the allow-list is refused on the page, never followed: that would
    // make this server an open redirect.
    if let Some(return_to) = request.return_to.take() {
        let allowed = crate::config::origin_of(&return_to)
            .is_some_and(|origin| state.settings.redirect_allowlist.contains(&origin));
        if !allowed {
            let outcome = failure(
                fe::INVALID_RETURN_TO,
                "The return_to URL is not allowed: its origin must be listed in the server's NANGO_REDIRECT_ALLOWLIST.",
                &provider_config_key,
                request.connection_id.as_deref(),
            );
            return finish_flow(&state, &reply, outcome).await;
        }
        reply.return_to = Some(return_to.clone());
        request.return_to = Some(return_to);
    }
    // The flow's state and the browser's secret, which the callback will ask this browser for.
    let binding = match FlowBinding::new() {
        Ok(binding) => binding,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for an OAuth flow");
            let outcome = failure(
                fe::UNKNOWN,
                fe::UNKNOWN_MESSAGE,
                &provider_config_key,
                request.connection_id.as_deref(),
            );
            return finish_flow(&state, &reply, outcome).await;
        }
    };
    match redirect_to_provider(&state, &provider_config_key, request, &binding).await {
        Ok(location) => {
            let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            if let Some(cookie) =
                binding.set_cookie(&state.settings.callback_url, state.settings.oauth_state_ttl)
            {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(failure) => finish_flow(&state, &reply, failure).await,
    }
}

fn failure(
    error_type: &'static str,
    message: impl Into<String>,
    key: &str,
    connection_id: Option<&str>,
) -> FlowOutcome {
    FlowOutcome::Failure {
        error_type,
        message: message.into(),
        provider_config_key: Some(key.to_string()),
        connection_id: connection_id.map(String::from),
    }
}

async fn redirect_to_provider(
    state: &AppState,
    key: &str,
    mut request: ConnectRequest,
    binding: &FlowBinding,
) -> Result<String, FlowOutcome> {
    // A session of current Nango's kind names the connection itself and gives its defaults;
    // it is used up when the callback stores the connection, so a failed attempt keeps it.
    let grant = grant_flow(
        state,
        request.connect_session_token.as_deref(),
        key,
        request.connection_id.as_deref(),
    )
    .await
    .map_err(|e| session_failure(e, key, request.connection_id.as_deref()))?;
    if let Some(grant) = &grant {
        request.connection_id = Some(grant.connection_id.clone());
        for (name, value) in grant.defaults.connection_config.iter().flatten() {
            request.connection_config.insert(
                format!("{PARAMS_PREFIX}{name}"),
                Value::String(value.clone()),
            );
        }
    }
    let connect_session_hash = grant.as_ref().map(|g| g.token_hash.clone());
    let Some(connection_id) = request.connection_id.as_deref() else {
        return Err(failure(
            fe::MISSING_CONNECTION_ID,
            "Missing Connection ID.",
            key,
            None,
        ));
    };
    let cid = Some(connection_id);
    if let Some(problem) = id_problem("connection_id", connection_id) {
        return Err(failure(fe::INVALID_REQUEST, problem, key, cid));
    }
    check_browser_params_size(&request.connection_config)
        .map_err(|message| failure(fe::URL_PARAM, message, key, cid))?;
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "could not start the OAuth flow");
        failure(fe::UNKNOWN, fe::UNKNOWN_MESSAGE, key, cid)
    };
    let config = state
        .store
        .get_config(key)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| {
            failure(
                fe::PROVIDER_CONFIG,
                format!("Could not find a Provider Config matching the \"{key}\" key."),
                key,
                cid,
            )
        })?;
    let template = state.catalog.get(&config.provider).ok_or_else(|| {
        failure(
            fe::UNKNOWN_CONFIG_KEY,
            format!(
                "No Provider Configuration with key \"{}\".",
                config.provider
            ),
            key,
            cid,
        )
    })?;
    if !template.auth_mode.uses_browser_flow() {
        return Err(failure(
            fe::AUTH_MODE,
            format!(
                "Auth mode {} not supported.",
                auth_mode_name(template.auth_mode)
            ),
            key,
            cid,
        ));
    }

    // The operator's values win; a host comes from them only (docs/security.md).
    request.connection_config = settle_connection_config(
        template,
        &config.connection_config,
        &request.connection_config,
        ValueSource::Browser,
    )
    .map_err(|e| failure(fe::URL_PARAM, e.to_string(), key, cid))?;
    template
        .check_connection_values(&request.connection_config)
        .map_err(|message| failure(fe::URL_PARAM, message, key, cid))?;
    let interpolate = |url: &str| {
        interpolate_url(url, &request.connection_config).map_err(|e| {
            let message = match e {
                InterpolationError::MissingParams { .. } => format!(
                    "Missing Connection Config param(s) in Auth request to interpolate url {url}. Provided Connection Config: {}",
                    Value::Object(request.connection_config.clone())
                ),
                InterpolationError::UnsafeValue { name } => format!(
                    "Connection Config param '{name}' is not allowed in url {url}: only letters, digits, '.', '-' and '_' may be interpolated."
                ),
            };
            failure(fe::URL_PARAM, message, key, cid)
        })
    };
    let authorization_url = interpolate(&template.authorization_url)?;
    interpolate(&template.token_url)?;
    let invalid_authorization_url = |e: url::ParseError| {
        failure(
            fe::URL_PARAM,
            format!("The authorization URL {authorization_url} is not a valid URL: {e}."),
            key,
            cid,
        )
    };
    if template.auth_mode == AuthMode::OAuth1 {
        let request_url = interpolate(template.request_url.as_deref().unwrap_or_default())?;
        url::Url::parse(&authorization_url).map_err(invalid_authorization_url)?;
        // Validated: the connect session is used up before the provider is called.
        if grant.is_none() {
            redeem_connect_session(state, &request, key, connection_id).await?;
        }
        return redirect_to_oauth1_provider(
            state,
            &config,
            template,
            &request,
            connection_id,
            &authorization_url,
            &request_url,
            binding,
            connect_session_hash,
        )
        .await;
    }

    if let Some(grant_type) = template.token_params.get("grant_type") {
        if grant_type != "authorization_code" {
            return Err(failure(
                fe::GRANT_TYPE,
                format!("The grant type \"{grant_type}\" is not supported by this OAuth flow."),
                key,
                cid,
            ));
        }
    }

    let now = Utc::now();
    let code_verifier = if template.disable_pkce {
        None
    } else {
        Some(pkce::new_verifier().map_err(|e| internal(&e))?)
    };
    let session = OAuthSession {
        state: binding.state.clone(),
        created_at: now,
        expires_at: now
            + chrono::Duration::from_std(state.settings.oauth_state_ttl).unwrap_or_default(),
        provider_config_key: key.to_string(),
        provider: config.provider.clone(),
        connection_id: connection_id.to_string(),
        callback_url: state.settings.callback_url.clone(),
        code_verifier: code_verifier.clone().map(Secret::new),
        connection_config: request.connection_config.clone(),
        ws_client_id: request.ws_client_id.clone(),
        request_token_secret: None,
        return_to: request.return_to.clone(),
        browser_hash: Some(binding.hash()),
        connect_session_hash,
    };
    let mut params = authorization_params(&config, template, &session, code_verifier.as_deref())
        .map_err(|message| failure(fe::URL_PARAM, message, key, cid))?;
    if let Some(grant) = &grant {
        with_session_defaults(&mut params, &grant.defaults);
    }
    let location =
        oauth2::authorization_url(&authorization_url, params).map_err(invalid_authorization_url)?;
    // Validated: the connect session is used up before anything is stored.
    if grant.is_none() {
        redeem_connect_session(state, &request, key, connection_id).await?;
    }
    state
        .store
        .insert_oauth_session(&session)
        .await
        .map_err(|e| internal(&e))?;
    Ok(location)
}

/// Uses up the flow's connect session token (F21): called only once every parameter of the flow
/// is validated, so a mistake in them does not cost the user their token.
async fn redeem_connect_session(
    state: &AppState,
    request: &ConnectRequest,
    key: &str,
    connection_id: &str,
) -> Result<(), FlowOutcome> {
    redeem(
        state,
        request.connect_session_token.as_deref(),
        key,
        connection_id,
    )
    .await
    .map_err(|e| match e {
        // The database failed, not the request: a server fault, answered as one (500).
        ConnectSessionError::Unavailable => {
            failure(fe::UNKNOWN, fe::UNKNOWN_MESSAGE, key, Some(connection_id))
        }
        e => failure(fe::CONNECT_SESSION, e.to_string(), key, Some(connection_id)),
    })
}

fn session_failure(e: ConnectSessionError, key: &str, connection_id: Option<&str>) -> FlowOutcome {
    match e {
        ConnectSessionError::Unavailable => {
            failure(fe::UNKNOWN, fe::UNKNOWN_MESSAGE, key, connection_id)
        }
        e => failure(fe::CONNECT_SESSION, e.to_string(), key, connection_id),
    }
}

/// A session's authorization parameters (replacing the template's of the same name; the flow's
/// own were refused when the session was made) and user scopes (`user_scope`).
fn with_session_defaults(params: &mut Vec<(String, String)>, defaults: &IntegrationDefaults) {
    let extra = defaults
        .authorization_params
        .iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.clone()))
        .chain(
            defaults
                .user_scopes
                .iter()
                .map(|scopes| ("user_scope".to_string(), scopes.clone())),
        );
    for (name, value) in extra {
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some(param) => param.1 = value,
            None => params.push((name, value)),
        }
    }
}

/// At most this many bytes of `params[...]` names and values per flow (F12): they are stored
/// with the flow and then on the connection, so a browser must not be able to fill the database.
pub const MAX_BROWSER_PARAMS_BYTES: usize = 4096;

fn check_browser_params_size(connection_config: &Map<String, Value>) -> Result<(), String> {
    let size: usize = connection_config
        .iter()
        .map(|(name, value)| {
            let name = name
                .strip_prefix("connectionConfig.params.")
                .unwrap_or(name);
            name.len() + value.as_str().map_or(0, str::len)
        })
        .sum();
    if size > MAX_BROWSER_PARAMS_BYTES {
        return Err(format!(
            "The Connection Config params (params[...]) are too large: {size} bytes of names and values, at most {MAX_BROWSER_PARAMS_BYTES}."
        ));
    }
    Ok(())
}

/// OAuth 1.0a (§8 of the wire reference): gets a request token, keeps its secret in the flow
/// state, and sends the user to authorize it. The flow is found again by the `state` our callback
/// URL carries (`oauth_callback`), as Nango did; the state row is single-use and expires like an
/// OAuth 2 one.
#[allow(clippy::too_many_arguments)]
async fn redirect_to_oauth1_provider(
    state: &AppState,
    config: &ProviderConfig,
    template: &ProviderTemplate,
    request: &ConnectRequest,
    connection_id: &str,
    authorization_url: &str,
    request_url: &str,
    binding: &FlowBinding,
    connect_session_hash: Option<String>,
) -> Result<String, FlowOutcome> {
    let key = config.unique_key.as_str();
    let cid = Some(connection_id);
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "could not start the OAuth 1 flow");
        failure(fe::UNKNOWN, fe::UNKNOWN_MESSAGE, key, cid)
    };
    let key_failure = |e: &OAuth1Error| {
        failure(
            fe::PROVIDER_CONFIG,
            format!("Provider Config \"{key}\" cannot sign OAuth 1 requests: {e}"),
            key,
            cid,
        )
    };
    // Required for OAUTH1 templates when the catalog loads.
    let method = template
        .signature_method
        .ok_or_else(|| internal(&"the OAUTH1 template has no signature_method"))?;
    let signer = oauth1::Signer::new(
        method,
        &config.oauth_client_id,
        config.oauth_client_secret.expose(),
    )
    .map_err(|e| key_failure(&e))?;

    let session_state = binding.state.clone();
    let callback = oauth1::callback_with_state(&state.settings.callback_url, &session_state)
        .map_err(|e| internal(&e))?;
    let temporary = oauth1::request_token(
        state.http_for(template.public_hosts_only()),
        &signer,
        template.request_http_method,
        request_url,
        &callback,
        template
            .request_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        state.settings.provider_timeout,
    )
    .await
    .map_err(|e| {
        tracing::warn!(provider = %config.provider, error = %e, "the OAuth 1 request-token call failed");
        match e {
            OAuth1Error::Key(_) => key_failure(&e),
            e => failure(fe::TOKEN, format!("{} {e}", fe::TOKEN_MESSAGE), key, cid),
        }
    })?;
    let location = oauth1::authorization_url(
        authorization_url,
        &temporary.token,
        &template.scope_param(&config.oauth_scopes),
        template
            .authorization_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    )
    .map_err(|e| {
        failure(
            fe::URL_PARAM,
            format!("The authorization URL {authorization_url} is not a valid URL: {e}."),
            key,
            cid,
        )
    })?;

    let now = Utc::now();
    let session = OAuthSession {
        state: session_state,
        created_at: now,
        expires_at: now
            + chrono::Duration::from_std(state.settings.oauth_state_ttl).unwrap_or_default(),
        provider_config_key: key.to_string(),
        provider: config.provider.clone(),
        connection_id: connection_id.to_string(),
        callback_url: state.settings.callback_url.clone(),
        code_verifier: None,
        connection_config: request.connection_config.clone(),
        ws_client_id: request.ws_client_id.clone(),
        request_token_secret: Some(temporary.secret),
        return_to: request.return_to.clone(),
        browser_hash: Some(binding.hash()),
        connect_session_hash,
    };
    state
        .store
        .insert_oauth_session(&session)
        .await
        .map_err(|e| internal(&e))?;
    Ok(location)
}

/// Query of the authorize redirect, in Nango's order (§3.3 of the wire reference), with the
/// template's renamed parameters, filled placeholders and, if it says so, no empty values.
fn authorization_params(
    config: &ProviderConfig,
    template: &ProviderTemplate,
    session: &OAuthSession,
    code_verifier: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let scopes = template.scope_param(&config.oauth_scopes);
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), config.oauth_client_id.clone()),
        ("redirect_uri".into(), session.callback_url.clone()),
        ("scope".into(), scopes),
        ("state".into(), session.state.clone()),
    ];
    // A fresh random value per flow, like the PKCE verifier (and drawn the same way).
    let nonce = match template.wants_nonce() {
        true => Some(pkce::new_verifier().map_err(|e| format!("no random nonce: {e}"))?),
        false => None,
    };
    let flow = FlowValues {
        client_id: &config.oauth_client_id,
        nonce: nonce.as_deref(),
        redirect_uri: None,
    };
    let extra = fill_params(
        &template.authorization_params,
        &session.connection_config,
        flow,
    )
    .map_err(|e| format!("authorization_params: {e}"))?;
    params.extend(extra);
    if let Some(verifier) = code_verifier {
        params.push(("code_challenge".into(), pkce::challenge(verifier)));
        params.push(("code_challenge_method".into(), "S256".into()));
    }
    if template.omit_empty_params {
        params.retain(|(_, value)| !value.is_empty());
    }
    Ok(template.rename_params(params))
}

fn auth_mode_name(mode: AuthMode) -> &'static str {
    mode.as_str()
}

#[cfg(test)]
mod tests {
    use super::ConnectRequest;

    #[test]
    fn params_become_prefixed_connection_config_and_ids_are_joined() {
        let r = ConnectRequest::parse(Some(
            "connection_id=a&connection_id=b&params[subdomain]=acme&params[x][y]=z&ws_client_id=w",
        ));
        assert_eq!(r.connection_id.as_deref(), Some("a,b"));
        assert_eq!(r.ws_client_id.as_deref(), Some("w"));
        assert_eq!(
            serde_json::Value::Object(r.connection_config).to_string(),
            r#"{"connectionConfig.params.subdomain":"acme"}"#
        );
    }

    #[test]
    fn raw_characters_from_unencoding_sdks_are_tolerated() {
        let r = ConnectRequest::parse(Some("connection_id=user 1+é&params[subdomain]=a%20b"));
        assert_eq!(r.connection_id.as_deref(), Some("user 1 é"));
        assert_eq!(
            r.connection_config["connectionConfig.params.subdomain"],
            "a b"
        );
    }
}
