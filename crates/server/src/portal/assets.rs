//! The portal's static files, embedded in the binary: vendored htmx (see
//! `assets/portal/VENDORED.md`), the stylesheet and the log-stream script. URLs carry a version, so
//! browsers may cache them for a year.

use crate::AppState;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub const HTMX_VERSION: &str = "2.0.11";
/// Changes whenever an asset can change: with the crate version.
pub const ASSET_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-htmx2.0.11-3");

const HTMX: &[u8] = include_bytes!("../../assets/portal/htmx.min.js");
const CSS: &[u8] = include_bytes!("../../assets/portal/portal.css");
const JS: &[u8] = include_bytes!("../../assets/portal/portal.js");

pub fn router() -> Router<AppState> {
    Router::new().route("/portal/assets/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        "portal.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}
