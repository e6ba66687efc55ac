//! `GET /sdk/frontend.js`: the frontend SDK of `sdks/frontend/`, embedded in the binary at build
//! time, so an app can load it with a script tag from its own broker instead of a CDN.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The module exactly as it is in the repository; its first lines carry its version.
pub const FRONTEND_SDK: &str = include_str!("../../../../sdks/frontend/index.js");

/// A strong validator of the embedded file: the browser revalidates its copy on every load
/// (`no-cache`) and gets a 304 while it is current. The URL carries no version, so a long
/// `max-age` would keep serving an old SDK (with its bugs or holes) for a year after an upgrade.
static FRONTEND_SDK_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = Sha256::digest(FRONTEND_SDK.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    // Quoted hex is always a valid header value; the fallback only keeps clippy's no-panic rule.
    HeaderValue::from_str(&format!("\"{hex}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"frontend-sdk\""))
});

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(frontend_sdk))
}

/// The frontend SDK, an ES module: `import Nango from '<server>/sdk/frontend.js'`.
#[utoipa::path(
    get,
    path = "/sdk/frontend.js",
    tag = "server",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer.")),
    responses(
        (status = 200, description = "The module; its first lines name its version.", content_type = "text/javascript", body = String,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The copy the browser has is current.",
            headers(("ETag" = String), ("Cache-Control" = String))),
    )
)]
async fn frontend_sdk(request_headers: HeaderMap) -> Response {
    let etag = FRONTEND_SDK_ETAG.clone();
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let revalidated = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    if revalidated {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (StatusCode::OK, headers, FRONTEND_SDK).into_response()
    }
}
