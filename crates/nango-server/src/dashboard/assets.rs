//! The dashboard's stylesheet and scripts, embedded in the binary at build time. Pages link them
//! with a digest of their content in the URL, so they are cached for a year and a new build is
//! still fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

pub const CSS: &Asset = &Asset {
    name: "dashboard.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/dashboard.css"),
};

/// On every page: copy buttons, reveal buttons, the provider search.
pub const JS: &Asset = &Asset {
    name: "dashboard.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/dashboard.js"),
};

/// On an integration's page: "connect a test account" with the frontend SDK.
pub const CONNECT_JS: &Asset = &Asset {
    name: "connect.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/connect.js"),
};

/// The Connect UI page (`crate::connect_ui`): its stylesheet and script.
pub const CONNECT_UI_CSS: &Asset = &Asset {
    name: "connect-ui.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/connect-ui.css"),
};

pub const CONNECT_UI_JS: &Asset = &Asset {
    name: "connect-ui.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/connect-ui.js"),
};

const ALL: [&Asset; 5] = [CSS, JS, CONNECT_JS, CONNECT_UI_CSS, CONNECT_UI_JS];

/// The first 12 hex digits of each asset's SHA-256, in the order of `ALL`.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ALL.iter()
        .map(|a| hex::encode(&Sha256::digest(a.body.as_bytes())[..6]))
        .collect()
});

fn version(asset: &Asset) -> &'static str {
    ALL.iter()
        .position(|a| a.name == asset.name)
        .and_then(|i| VERSIONS.get(i))
        .map_or("0", String::as_str)
}

/// The URL pages link: `/dashboard/assets/<name>?v=<digest>`.
pub fn url(asset: &Asset) -> String {
    format!("/dashboard/assets/{}?v={}", asset.name, version(asset))
}

/// `GET /dashboard/assets/{name}`: open (assets hold no data), cached for a year.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ALL.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
