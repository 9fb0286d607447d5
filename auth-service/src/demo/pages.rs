//! The demo page, its stylesheet and script, and the JavaScript client, served from
//! memory with strong ETags and a same-origin-only Content-Security-Policy.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;

use crate::state::AuthState;

/// A file served from memory, with a strong ETag of its content.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(digest.as_ref().get(..16).unwrap_or_default());
        Self {
            body,
            content_type,
            etag: format!("\"{tag}\""),
        }
    }
}

static INDEX_HTML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../static/index.html"),
        "text/html; charset=utf-8",
    )
});
static APP_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../static/app.css"),
        "text/css; charset=utf-8",
    )
});
static APP_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../static/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static CLIENT_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../../clients/js/authstream.js"),
        "text/javascript; charset=utf-8",
    )
});

#[utoipa::path(get, path = "/", tag = "demo", summary = "The demo page",
    responses((status = 200, description = "The demo page", body = String, content_type = "text/html"), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn index(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&INDEX_HTML, &state, &req)
}

#[utoipa::path(get, path = "/static/app.css", tag = "demo", summary = "The demo page's stylesheet",
    responses((status = 200, description = "The demo page's stylesheet", body = String, content_type = "text/css"), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn app_css(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&APP_CSS, &state, &req)
}

#[utoipa::path(get, path = "/static/app.js", tag = "demo", summary = "The demo page's script",
    responses((status = 200, description = "The demo page's script", body = String, content_type = "text/javascript"), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn app_js(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&APP_JS, &state, &req)
}

#[utoipa::path(get, path = "/clients/js/authstream.js", tag = "demo", summary = "The JavaScript client",
    responses((status = 200, description = "The JavaScript client (an ES module)", body = String, content_type = "text/javascript"), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn client_js(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&CLIENT_JS, &state, &req)
}

fn serve(asset: &Asset, state: &AuthState, req: &HttpRequest) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(&state.settings.stream_public_url),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    if fresh {
        return res.finish();
    }
    res.content_type(asset.content_type).body(asset.body)
}

/// Only this origin (and the stream service's, when `STREAM_PUBLIC_URL` names another
/// one): no inline script or style, no other site, no framing.
fn content_security_policy(stream_public_url: &str) -> String {
    let stream_origin = authstream_web::http::origin_of(stream_public_url)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{stream_origin}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use authstream_web::http::origin_of;

    #[test]
    fn the_policy_allows_only_this_origin_and_the_stream_service() {
        let own = content_security_policy("");
        assert!(own.contains("connect-src 'self';"));
        assert!(own.contains("script-src 'self';"));
        assert!(!own.contains("unsafe"));
        let split = content_security_policy("https://stream.example.com:8443/base");
        assert!(split.contains("connect-src 'self' https://stream.example.com:8443;"));
        assert_eq!(
            origin_of("http://localhost:8082"),
            Some("http://localhost:8082")
        );
        assert_eq!(origin_of("/relative"), None);
        assert_eq!(origin_of("http://evil; script-src *"), None);
        assert_eq!(origin_of("ftp://x"), None);
    }
}
