//! The operators' console (`/console`) and the responders' app (`/app`): static files compiled into
//! the binary, so running OneKey needs no Node.js and no file next to the binary. Both pages talk to
//! the JSON API under `/api/v1` and its SSE streams; strings come from the translation tables in
//! `i18n.js` (zh-CN by default, English second). Third-party libraries (Leaflet, its marker
//! clusters, ECharts) are vendored under `ui/vendor/` (see its README). The app is a PWA: a
//! manifest, icons and a service worker that keeps its shell for offline starts.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// One embedded file: path under `/assets/`, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const PNG: &str = "image/png";

static ASSETS: &[Asset] = &[
    asset!("console.html", "text/html; charset=utf-8"),
    asset!("app.html", "text/html; charset=utf-8"),
    asset!("style.css", CSS),
    asset!("api.js", JS),
    asset!("i18n.js", JS),
    asset!("kinds.js", JS),
    asset!("console.js", JS),
    asset!("queue.js", JS),
    asset!("incident.js", JS),
    asset!("map.js", JS),
    asset!("reports.js", JS),
    asset!("fleet.js", JS),
    asset!("admin.js", JS),
    asset!("app.js", JS),
    asset!("sw.js", JS),
    asset!("app.webmanifest", "application/manifest+json"),
    asset!("icon-192.png", PNG),
    asset!("icon-512.png", PNG),
    asset!("vendor/leaflet/leaflet.js", JS),
    asset!("vendor/leaflet/leaflet.css", CSS),
    asset!("vendor/leaflet/images/layers.png", PNG),
    asset!("vendor/leaflet/images/layers-2x.png", PNG),
    asset!("vendor/leaflet/images/marker-icon.png", PNG),
    asset!("vendor/leaflet/images/marker-icon-2x.png", PNG),
    asset!("vendor/leaflet/images/marker-shadow.png", PNG),
    asset!("vendor/markercluster/leaflet.markercluster.js", JS),
    asset!("vendor/markercluster/MarkerCluster.css", CSS),
    asset!("vendor/markercluster/MarkerCluster.Default.css", CSS),
    asset!("vendor/echarts/echarts.min.js", JS),
];

/// Routes: `/` (to the console), `/console`, `/app`, `/app-sw.js` (the app's service worker,
/// served from the root so that it may control `/app`), `/assets/{path}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(|| async { serve("console.html") }))
        .route("/app", get(|| async { serve("app.html") }))
        .route("/app-sw.js", get(|| async { serve("sw.js") }))
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>| async move { serve(&path) }),
        )
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The files change only with the binary; `no-cache` makes the browser revalidate after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_named_once_and_is_not_empty() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve("console.js").headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            serve("vendor/leaflet/leaflet.css").headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
    }
}
