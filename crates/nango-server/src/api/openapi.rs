//! The OpenAPI 3.1 document of the REST API, served at `/openapi.json`.
//!
//! It is generated from the same annotations that register the routes (`utoipa_axum::routes!`
//! takes each handler's path from its `#[utoipa::path]`), so a route cannot exist without its
//! documentation nor the other way round. The copy in the repository (`docs/openapi.json`) is
//! checked against it by a test.
//!
//! The browser routes of the OAuth flow (`/oauth/connect/...`, `/oauth/callback`, the WebSocket on
//! `/`) are not part of it: they answer HTML pages and redirects to a browser, with the status
//! codes of Nango 0.9 (500 on a failed flow), not JSON to an API client.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::error::ErrorBody;
use crate::AppState;

/// Title, description and security schemes; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "nango-rs REST API",
        description = "Self-hosted OAuth token broker, wire-compatible with Nango 0.9. \
            `/config` and `/connection` require the server's secret key (when one is set) as the \
            HTTP Basic username or as a Bearer token. Errors are `{\"error\": <message>, \"type\": <type>}`, \
            except on the routes of current Nango's contract (`/connections/...`, `/integrations/...`, \
            current-style connect sessions), which answer \
            `{\"error\": {\"code\": <code>, \"message\": <message>}}` as today's Nango does. \
            The OAuth flow itself runs in the browser on `/oauth/connect/{provider_config_key}` \
            and `/oauth/callback` (HTML pages, not part of this API).",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    modifiers(&SecretKeySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "configs", description = "Provider configs: which provider template, which OAuth app."),
        (name = "connections", description = "Connections: the credentials of one end user at one provider config."),
        (name = "connections (current Nango)", description = "The same connections on current Nango's paths and shapes (`@nangohq/node` 0.71)."),
        (name = "integrations (current Nango)", description = "Provider configs on current Nango's paths and shapes (`@nangohq/node` 0.71)."),
        (name = "providers", description = "The provider catalog: which providers exist and how each does OAuth."),
        (name = "server", description = "Health, this document and the frontend SDK."),
    )
)]
pub struct ApiDoc;

/// Names of the security schemes the secured operations list (as literals there: the
/// attribute macro takes no constants).
pub const SECRET_KEY_BASIC: &str = "secretKeyBasic";
pub const SECRET_KEY_BEARER: &str = "secretKeyBearer";
pub const CONNECT_SESSION_BEARER: &str = "connectSessionBearer";

struct SecretKeySchemes;

impl Modify for SecretKeySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("The secret key as the username, with an empty password.".into());
        components.add_security_scheme(SECRET_KEY_BASIC, SecurityScheme::Http(basic));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("The secret key as a Bearer token.".into());
        components.add_security_scheme(SECRET_KEY_BEARER, SecurityScheme::Http(bearer));
        let mut session = Http::new(HttpAuthScheme::Bearer);
        session.description =
            Some("A connect session token (`POST /connect/sessions`) as a Bearer token.".into());
        components.add_security_scheme(CONNECT_SESSION_BEARER, SecurityScheme::Http(session));
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(crate::openapi_document);
    &DOCUMENT
}

/// The document as the pretty-printed JSON served and kept in `docs/openapi.json`.
pub fn document_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut json = document().to_pretty_json().unwrap_or_default();
        json.push('\n');
        json
    });
    &JSON
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "server",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the REST API.", content_type = "application/json", body = Object),
    )
)]
async fn openapi_json() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        document_json(),
    )
        .into_response()
}

/// Documents the answer every operation behind the secret key may give besides its own: 429
/// `rate_limited` once an address has sent too many wrong keys this minute (`guard`), which the
/// gate answers before the route runs.
pub fn document_wrong_key_limit(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description(
            "Too many wrong secret keys from this address this minute (`rate_limited`); try again after the time the message gives.",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                operation
                    .responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
}
