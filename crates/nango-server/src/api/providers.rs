//! `/providers`: browsing the provider catalog (built-in templates and the operator's file), so
//! an app or the CLI can show which providers exist, what each needs from a connection
//! (`connection_config`) and where its documentation is. Templates hold no secrets, so these
//! routes are open like the OAuth flow's.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorBody;
use super::{json_response, parse_query, path_id, query_value, MAX_ID_LEN};
use crate::error::ApiError;
use crate::providers::{AuthMode, ProviderTemplate};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers))
        .routes(routes!(get_provider))
}

/// One line of `GET /providers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSummary<'a> {
    /// What a provider config's `provider` field names.
    pub name: &'a str,
    pub display_name: Option<&'a str>,
    pub auth_mode: AuthMode,
    pub categories: &'a [String],
    /// The provider's own OAuth documentation.
    pub docs: Option<&'a str>,
    /// For a name that stands for another provider (e.g. Nango's name for it), that provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<&'a str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList<'a> {
    pub providers: Vec<ProviderSummary<'a>>,
    /// The same providers as current Nango's clients read them (`ApiProvider`: the whole
    /// template, as `ProviderTemplate`, with its `name` and `logo_url`).
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<ProviderData<'a>>,
}

/// A template with its name, as current Nango answers it (`ApiProvider`).
#[derive(Debug, Serialize)]
pub struct ProviderData<'a> {
    pub name: &'a str,
    /// No logos are served here: always empty.
    pub logo_url: &'static str,
    #[serde(flatten)]
    pub template: &'a ProviderTemplate,
}

/// A whole template, with its name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDetail<'a> {
    pub name: &'a str,
    /// For a name that stands for another provider (e.g. Nango's name for it), that provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<&'a str>,
    pub template: &'a ProviderTemplate,
    /// The same for current Nango's clients (`{data: ApiProvider}`: the template, as
    /// `ProviderTemplate`, with its `name` and `logo_url`).
    #[schema(value_type = Object)]
    pub data: ProviderData<'a>,
}

/// Filters of `GET /providers`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a schema: parsed by `list_providers`
pub struct ProviderSearch {
    /// Case-insensitive text found in the name, the display name or a category.
    #[param(max_length = 255)]
    search: Option<String>,
    /// Only providers of these auth modes: one or more of OAUTH2, OAUTH1, OAUTH2_CC, API_KEY and
    /// BASIC, comma-separated (case-insensitive).
    #[param(example = "API_KEY,BASIC")]
    auth_mode: Option<String>,
}

/// The auth modes a comma-separated `auth_mode` parameter names.
fn auth_modes(value: &str) -> Result<Vec<AuthMode>, ApiError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|mode| !mode.is_empty())
        .map(|mode| {
            AuthMode::ALL
                .into_iter()
                .find(|known| known.as_str().eq_ignore_ascii_case(mode))
                .ok_or_else(|| {
                    let known: Vec<&str> = AuthMode::ALL.iter().map(|m| m.as_str()).collect();
                    ApiError::InvalidRequest(format!(
                        "Param 'auth_mode' must be one of {} (comma-separated).",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// A provider name in the path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a schema: the handler reads the path itself to answer bad names in JSON
pub struct ProviderName {
    #[param(min_length = 1, max_length = 255, example = "github")]
    name: String,
}

fn matches(name: &str, template: &ProviderTemplate, needle: &str) -> bool {
    let found = |text: &str| text.to_lowercase().contains(needle);
    found(name)
        || template.display_name.as_deref().is_some_and(found)
        || template.categories.iter().any(|c| found(c))
}

/// The providers of the catalog, by name.
#[utoipa::path(
    get, path = "/providers", tag = "providers",
    params(ProviderSearch),
    responses(
        (status = 200, body = ProviderList),
        (status = 400, description = "A bad query string, or an unknown auth mode.", body = ErrorBody),
    )
)]
async fn list_providers(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(query.as_deref())?;
    let search = query_value(&query, "search").unwrap_or_default();
    // The limit is on what was sent (the schema's maxLength), not on what trimming leaves.
    if search.chars().count() > MAX_ID_LEN {
        return Err(ApiError::InvalidRequest(format!(
            "Param 'search' is too long (at most {MAX_ID_LEN} characters)."
        )));
    }
    let needle = search.trim().to_lowercase();
    let modes = auth_modes(query_value(&query, "auth_mode").unwrap_or_default())?;
    let found: Vec<(&str, &ProviderTemplate)> = state
        .catalog
        .iter()
        .filter(|(_, template)| modes.is_empty() || modes.contains(&template.auth_mode))
        .filter(|(name, template)| needle.is_empty() || matches(name, template, &needle))
        .collect();
    let providers = found
        .iter()
        .map(|&(name, template)| ProviderSummary {
            name,
            display_name: template.display_name.as_deref(),
            auth_mode: template.auth_mode,
            categories: &template.categories,
            docs: template.docs.as_deref(),
            alias_of: template.alias_of.as_deref(),
        })
        .collect();
    let data = found
        .iter()
        .map(|&(name, template)| ProviderData {
            name,
            logo_url: "",
            template,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ProviderList { providers, data },
    ))
}

/// One provider's template: URLs, parameters, quirks and the connection config it needs.
#[utoipa::path(
    get, path = "/providers/{name}", tag = "providers",
    params(ProviderName),
    responses(
        (status = 200, body = ProviderDetail),
        (status = 400, description = "A bad name.", body = ErrorBody),
        (status = 404, description = "No provider of that name.", body = ErrorBody),
    )
)]
async fn get_provider(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path_id(path, "name")?;
    let (name, template) = state
        .catalog
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or(ApiError::UnknownProvider)?;
    Ok(json_response(
        StatusCode::OK,
        &ProviderDetail {
            name,
            alias_of: template.alias_of.as_deref(),
            template,
            data: ProviderData {
                name,
                logo_url: "",
                template,
            },
        },
    ))
}
