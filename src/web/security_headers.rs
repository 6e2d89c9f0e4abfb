//! Security headers on every response: a content security policy that allows only the server's own
//! scripts, styles and connections and no framing (`frame-ancestors 'none'`, also
//! `X-Frame-Options: DENY`), `nosniff`, no referrer, and HSTS when the web port serves HTTPS.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy of the console and the app (ES modules from `/assets`, inline
/// `style` attributes, SVG maps drawn in the page, `data:` favicon), with the map's tile server
/// (`[console.map] tile_url`) allowed as an image source when one is configured.
pub fn csp(tile_url: &str) -> HeaderValue {
    let tiles = tile_origin(tile_url)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:{tiles}; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
        )
    })
}

/// `scheme://host[:port]` of a tile URL template (`{s}` subdomains become a wildcard).
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split('/').next()?.replace("{s}", "*");
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*' | '[' | ']'));
    ok.then(|| format!("{scheme}://{host}"))
}

/// Adds the headers.
pub async fn add(https: bool, csp: HeaderValue, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tile_server_is_an_allowed_image_source() {
        let with = csp("https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png");
        assert!(
            with.to_str()
                .unwrap_or("")
                .contains("img-src 'self' data: https://*.tiles.example.org:8443;")
        );
        let without = csp("");
        assert!(
            without
                .to_str()
                .unwrap_or("")
                .contains("img-src 'self' data:;")
        );
        // Nothing that could end the directive early.
        assert!(tile_origin("http://evil; script-src *").is_none());
        assert!(tile_origin("javascript:alert(1)").is_none());
    }
}
