//! `/integrations`: provider configs in current Nango's shapes (`@nangohq/node` 0.71's
//! `listIntegrations`, `getIntegration`, `createIntegration`, `updateIntegration`,
//! `deleteIntegration`). The same configs as 0.9's `/config`, under the name today's Nango gives
//! them, with errors in `{error: {code, message}}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::configs::ConfigKeyPath;
use super::current::{typed_body, Current, CurrentErrorBody, Success};
use super::{json_response, parse_query, path_id};
use crate::configs::{
    create_integration, display_name, edit_integration, needs_app, AppCredentials, IntegrationEdit,
    NewIntegration,
};
use crate::credentials::iso_millis;
use crate::error::ApiError;
use crate::providers::ProviderTemplate;
use crate::secret::Secret;
use crate::store::ProviderConfig;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations, post_integration))
        .routes(routes!(
            get_integration,
            patch_integration,
            delete_integration
        ))
}

/// An integration (`ApiPublicIntegration`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    /// The provider config key.
    pub unique_key: String,
    /// The provider template's name.
    pub provider: String,
    /// The integration's own name, else the template's display name, else its name.
    pub display_name: String,
    /// No logos are served here: always empty.
    pub logo: String,
    /// Provider webhooks are not forwarded by this server: always false.
    pub forward_webhooks: bool,
    /// The operator's values for the template's placeholders (as `/config` has them).
    #[schema(value_type = Object)]
    pub connection_config: Map<String, Value>,
    /// ISO 8601 with milliseconds.
    pub created_at: String,
    pub updated_at: String,
    /// With `include=credentials`: `{type, client_id, client_secret, scopes, webhook_secret}`,
    /// or null for a provider whose end users bring their own credentials (API key, Basic).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
    /// With `include=webhook`: null (provider webhooks are not received here).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub webhook_url: Option<Value>,
}

impl Integration {
    pub fn new(config: &ProviderConfig, template: Option<&ProviderTemplate>) -> Self {
        Integration {
            unique_key: config.unique_key.clone(),
            provider: config.provider.clone(),
            display_name: display_name(config, template),
            logo: String::new(),
            forward_webhooks: false,
            connection_config: config.connection_config.clone(),
            created_at: iso_millis(config.created_at),
            updated_at: iso_millis(config.updated_at),
            credentials: None,
            webhook_url: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub data: Vec<Integration>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationEnvelope {
    pub data: Integration,
}

/// An OAuth app's credentials in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationCredentials {
    /// The provider's auth mode: `OAUTH2`, `OAUTH1` or `OAUTH2_CC`.
    #[serde(rename = "type")]
    #[schema(example = "OAUTH2")]
    pub kind: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub client_id: String,
    #[schema(min_length = 1, max_length = 8192)]
    pub client_secret: String,
    /// Comma- or space-separated.
    #[serde(default)]
    #[schema(max_length = 8192)]
    pub scopes: Option<String>,
    /// Accepted for current Nango's clients; provider webhooks are not received here.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

impl From<IntegrationCredentials> for AppCredentials {
    fn from(c: IntegrationCredentials) -> Self {
        AppCredentials {
            mode: c.kind,
            client_id: c.client_id,
            client_secret: Secret::new(c.client_secret),
            scopes: c.scopes.unwrap_or_default(),
        }
    }
}

/// The body of `POST /integrations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegrationBody {
    /// A provider template of the catalog (`GET /providers`).
    #[schema(example = "github")]
    pub provider: String,
    /// The provider config key.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
        example = "github"
    )]
    pub unique_key: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub display_name: Option<String>,
    /// Required for OAUTH2, OAUTH1 and OAUTH2_CC providers; none for API_KEY and BASIC ones.
    #[serde(default)]
    pub credentials: Option<IntegrationCredentials>,
    /// Accepted; provider webhooks are not forwarded here.
    #[serde(default)]
    pub forward_webhooks: Option<bool>,
    /// The operator's values for the template's placeholders, as `POST /config` takes them.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub connection_config: Option<Value>,
}

/// The body of `PATCH /integrations/{provider_config_key}`: what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPatchBody {
    /// A new key; refused while connections use the integration.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub unique_key: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub credentials: Option<IntegrationCredentials>,
    #[serde(default)]
    pub forward_webhooks: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub connection_config: Option<Value>,
}

/// What `GET /integrations/{provider_config_key}` may include.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: the handler parses the query itself
pub struct IncludeQuery {
    /// `credentials` (the OAuth app's client id, secret and scopes) and/or `webhook`, repeated or
    /// comma-separated (`include[]=` is read too).
    include: Option<String>,
}

/// A request the route cannot take, in current Nango's code for its part of the request.
fn invalid(code: &'static str, e: ApiError) -> Current {
    match e {
        ApiError::UnknownProviderConfig => Current::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No integration has that key.".into(),
        ),
        ApiError::InvalidRequest(message) => Current::new(StatusCode::BAD_REQUEST, code, message),
        ApiError::UnknownProviderTemplate => Current::new(
            StatusCode::BAD_REQUEST,
            code,
            "Invalid provider: no provider template of that name (GET /providers lists them)."
                .into(),
        ),
        ApiError::DuplicateProviderConfig => Current::new(
            StatusCode::BAD_REQUEST,
            code,
            "Unique key already exists.".into(),
        ),
        ApiError::MissingBody => Current::new(StatusCode::BAD_REQUEST, code, e.to_string()),
        other => other.into(),
    }
}

fn key_param(path: Result<Path<String>, PathRejection>) -> Result<String, Current> {
    path_id(path, "provider_config_key").map_err(|e| invalid("invalid_uri_params", e))
}

fn answer(state: &AppState, config: &ProviderConfig) -> Response {
    let data = Integration::new(config, state.catalog.get(&config.provider));
    json_response(StatusCode::OK, &IntegrationEnvelope { data })
}

/// Every integration.
#[utoipa::path(
    get, path = "/integrations", tag = "integrations (current Nango)",
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = IntegrationList),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
    )
)]
async fn list_integrations(State(state): State<AppState>) -> Result<Response, Current> {
    let configs = state.store.list_configs().await.map_err(ApiError::from)?;
    let data = configs
        .iter()
        .map(|c| Integration::new(c, state.catalog.get(&c.provider)))
        .collect();
    Ok(json_response(StatusCode::OK, &IntegrationList { data }))
}

/// One integration; with `include=credentials`, its OAuth app.
#[utoipa::path(
    get, path = "/integrations/{provider_config_key}", tag = "integrations (current Nango)",
    params(ConfigKeyPath, IncludeQuery),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = IntegrationEnvelope),
        (status = 400, description = "A bad key (`invalid_uri_params`) or `include` (`invalid_query_params`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such integration (`not_found`).", body = CurrentErrorBody),
    )
)]
async fn get_integration(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Current> {
    let key = key_param(path)?;
    let params = parse_query(query.as_deref()).map_err(|e| invalid("invalid_query_params", e))?;
    let mut credentials = false;
    let mut webhook = false;
    for (name, value) in &params {
        if name != "include" && name != "include[]" {
            continue;
        }
        for item in value.split(',').map(str::trim) {
            match item {
                "credentials" => credentials = true,
                "webhook" => webhook = true,
                _ => {
                    return Err(Current::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_query_params",
                        "Param 'include' takes 'credentials' and 'webhook'.".into(),
                    ))
                }
            }
        }
    }
    let config = state
        .store
        .get_config(&key)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| invalid("", ApiError::UnknownProviderConfig))?;
    let template = state.catalog.get(&config.provider);
    let mut data = Integration::new(&config, template);
    if credentials {
        data.credentials = Some(match template {
            Some(template) if needs_app(template) => serde_json::json!({
                "type": template.auth_mode.as_str(),
                "client_id": config.oauth_client_id,
                "client_secret": config.oauth_client_secret.expose(),
                "scopes": if config.oauth_scopes.is_empty() { None } else { Some(&config.oauth_scopes) },
                "webhook_secret": null,
            }),
            _ => Value::Null,
        });
    }
    if webhook {
        data.webhook_url = Some(Value::Null);
    }
    Ok(json_response(StatusCode::OK, &IntegrationEnvelope { data }))
}

/// Creates an integration (a provider config).
#[utoipa::path(
    post, path = "/integrations", tag = "integrations (current Nango)",
    request_body(content = NewIntegrationBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = IntegrationEnvelope),
        (status = 400, description = "A missing or invalid field, an unknown provider, credentials that do not fit its auth mode, or the key is taken (`invalid_body`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn post_integration(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    let body: NewIntegrationBody = typed_body(body)?;
    let new = NewIntegration {
        unique_key: body.unique_key,
        provider: body.provider,
        display_name: body.display_name,
        credentials: body.credentials.map(AppCredentials::from),
        connection_config: body.connection_config,
    };
    check_display_name(new.display_name.as_deref())?;
    let config = create_integration(&state, new)
        .await
        .map_err(|e| invalid("invalid_body", e))?;
    Ok(answer(&state, &config))
}

/// Changes an integration: its key (while no connection uses it), display name, OAuth app or
/// connection config.
#[utoipa::path(
    patch, path = "/integrations/{provider_config_key}", tag = "integrations (current Nango)",
    params(ConfigKeyPath),
    request_body(content = IntegrationPatchBody, content_type = "application/json"),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = IntegrationEnvelope),
        (status = 400, description = "An invalid field, credentials that do not fit the provider's auth mode, a new key that is taken or on an integration with connections (`invalid_body`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such integration (`not_found`).", body = CurrentErrorBody),
        (status = 413, description = "The body is over 100 kB.", body = CurrentErrorBody),
    )
)]
async fn patch_integration(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Current> {
    let key = key_param(path)?;
    let body: IntegrationPatchBody = typed_body(body)?;
    check_display_name(body.display_name.as_deref())?;
    let edit = IntegrationEdit {
        unique_key: body.unique_key,
        display_name: body.display_name,
        credentials: body.credentials.map(AppCredentials::from),
        connection_config: body.connection_config,
    };
    let config = edit_integration(&state, &key, edit)
        .await
        .map_err(|e| invalid("invalid_body", e))?;
    Ok(answer(&state, &config))
}

fn check_display_name(name: Option<&str>) -> Result<(), Current> {
    match name {
        Some(name) if name.trim().is_empty() || name.chars().count() > 255 => Err(Current::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Param 'display_name' must be 1 to 255 characters.".into(),
        )),
        _ => Ok(()),
    }
}

/// Deletes an integration. Its connections are kept (as with `DELETE /config`): they answer the
/// unknown-config error until an integration with that key exists again.
#[utoipa::path(
    delete, path = "/integrations/{provider_config_key}", tag = "integrations (current Nango)",
    params(ConfigKeyPath),
    security(("secretKeyBasic" = []), ("secretKeyBearer" = [])),
    responses(
        (status = 200, body = Success),
        (status = 400, description = "A bad key (`invalid_uri_params`).", body = CurrentErrorBody),
        (status = 401, description = "Missing (`missing_auth_header`) or wrong (`unknown_account`) secret key.", body = CurrentErrorBody),
        (status = 404, description = "No such integration (`not_found`).", body = CurrentErrorBody),
    )
)]
async fn delete_integration(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Current> {
    let key = key_param(path)?;
    let deleted = state
        .store
        .delete_config(&key)
        .await
        .map_err(ApiError::from)?;
    if !deleted {
        return Err(invalid("", ApiError::UnknownProviderConfig));
    }
    Ok(json_response(StatusCode::OK, &Success { success: true }))
}
