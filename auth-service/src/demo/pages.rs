//! The demo page, its stylesheet and scripts, and the JavaScript client's modules, served
//! from memory with strong ETags and a same-origin-only Content-Security-Policy: the
//! page at `/`, and each directory's files from a fixed table behind one route with the
//! file's name as its parameter (`/static/{file}`, `/clients/js/{file}`).

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, route, web};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
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

/// A fixed set of files under one directory, served by name (`GET /dir/{file}`).
struct Files(Vec<(&'static str, Asset)>);

impl Files {
    fn new(files: &[(&'static str, &'static str, &'static str)]) -> Self {
        Self(
            files
                .iter()
                .map(|&(name, body, content_type)| (name, Asset::new(body, content_type)))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&Asset> {
        self.0
            .iter()
            .find_map(|(file, asset)| (*file == name).then_some(asset))
    }
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

static INDEX_HTML: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../../static/index.html"), HTML));

/// `/static/{file}`: the page's stylesheet, and its script `app.js` with the modules it
/// imports (each names the others by a path relative to this directory).
static STATIC_FILES: LazyLock<Files> = LazyLock::new(|| {
    Files::new(&[
        ("app.css", include_str!("../../static/app.css"), CSS),
        ("app.js", include_str!("../../static/app.js"), JAVASCRIPT),
        ("ui.js", include_str!("../../static/ui.js"), JAVASCRIPT),
        (
            "sessions.js",
            include_str!("../../static/sessions.js"),
            JAVASCRIPT,
        ),
        (
            "stream-view.js",
            include_str!("../../static/stream-view.js"),
            JAVASCRIPT,
        ),
    ])
});

/// `/clients/js/{file}`: the JavaScript client, its entry point `authstream.js` and the
/// modules it re-exports from.
static CLIENT_FILES: LazyLock<Files> = LazyLock::new(|| {
    Files::new(&[
        (
            "authstream.js",
            include_str!("../../../clients/js/authstream.js"),
            JAVASCRIPT,
        ),
        (
            "errors.js",
            include_str!("../../../clients/js/errors.js"),
            JAVASCRIPT,
        ),
        (
            "generation-stream.js",
            include_str!("../../../clients/js/generation-stream.js"),
            JAVASCRIPT,
        ),
        (
            "auth-client.js",
            include_str!("../../../clients/js/auth-client.js"),
            JAVASCRIPT,
        ),
    ])
});

#[utoipa::path(get, tag = "demo", summary = "The demo page",
    responses((status = 200, description = "The demo page", body = String, content_type = "text/html"), (status = 304, description = "Not modified (If-None-Match)")))]
#[route("/", method = "GET", method = "HEAD")]
pub async fn index(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&INDEX_HTML, &state, &req)
}

#[utoipa::path(get, tag = "demo", summary = "The demo page's stylesheet and scripts",
    params(("file" = String, Path, description = "`app.css`, the stylesheet; `app.js`, the page's script (an ES module), or a module it imports: `ui.js`, `sessions.js`, `stream-view.js`")),
    responses(
        (status = 200, description = "The file", content((String = "text/css"), (String = "text/javascript"))),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, response = authstream_web::openapi::NotFound)
    )
)]
#[route("/static/{file}", method = "GET", method = "HEAD")]
pub async fn static_file(
    state: web::Data<AuthState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve_file(&STATIC_FILES, &file, &state, &req)
}

#[utoipa::path(get, tag = "demo", summary = "The JavaScript client",
    params(("file" = String, Path, description = "`authstream.js`, the client's entry point (an ES module), or a module it re-exports from: `errors.js`, `generation-stream.js`, `auth-client.js`")),
    responses(
        (status = 200, description = "The module", body = String, content_type = "text/javascript"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, response = authstream_web::openapi::NotFound)
    )
)]
#[route("/clients/js/{file}", method = "GET", method = "HEAD")]
pub async fn client_file(
    state: web::Data<AuthState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve_file(&CLIENT_FILES, &file, &state, &req)
}

/// One of `files` by name; any other name is the 404 of a route that does not exist.
fn serve_file(
    files: &Files,
    name: &str,
    state: &AuthState,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    files
        .get(name)
        .map(|asset| serve(asset, state, req))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such route"))
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
    use std::collections::BTreeSet;

    use super::*;
    use authstream_web::http::origin_of;

    /// The served file at a URL path: the page, or one of a directory's files.
    fn served(path: &str) -> Option<&'static Asset> {
        if path == "/" {
            return Some(&INDEX_HTML);
        }
        if let Some(name) = path.strip_prefix("/static/") {
            return STATIC_FILES.get(name);
        }
        path.strip_prefix("/clients/js/")
            .and_then(|name| CLIENT_FILES.get(name))
    }

    /// The URL paths a file loads: a module's `from '...'`, the page's `src` and `href`
    /// (a `data:` URL aside), each resolved against the file's own path.
    fn references(path: &str, body: &str) -> Vec<String> {
        let dir = &path[..=path.rfind('/').unwrap()];
        let mut found = Vec::new();
        for (open, close) in [(" from '", '\''), ("src=\"", '"'), ("href=\"", '"')] {
            for (at, _) in body.match_indices(open) {
                let rest = &body[at + open.len()..];
                let target = &rest[..rest.find(close).unwrap()];
                if target.starts_with("data:") {
                    continue;
                }
                let resolved = match target.strip_prefix("./") {
                    Some(relative) => format!("{dir}{relative}"),
                    None => target.to_owned(),
                };
                assert!(resolved.starts_with('/'), "{path} loads {target}");
                found.push(resolved);
            }
        }
        found
    }

    #[test]
    fn every_file_the_page_loads_is_served_and_every_served_file_is_loaded() {
        let mut seen = BTreeSet::new();
        let mut pending = vec!["/".to_owned()];
        while let Some(path) = pending.pop() {
            let asset = served(&path).unwrap_or_else(|| panic!("{path} is loaded but not served"));
            if seen.insert(path.clone()) {
                pending.extend(references(&path, asset.body));
            }
        }
        let every: BTreeSet<String> = std::iter::once("/".to_owned())
            .chain(
                STATIC_FILES
                    .0
                    .iter()
                    .map(|(name, _)| format!("/static/{name}")),
            )
            .chain(
                CLIENT_FILES
                    .0
                    .iter()
                    .map(|(name, _)| format!("/clients/js/{name}")),
            )
            .collect();
        assert_eq!(seen, every);
        for (name, asset) in STATIC_FILES.0.iter().chain(&CLIENT_FILES.0) {
            let expected = if name.ends_with(".css") {
                CSS
            } else {
                JAVASCRIPT
            };
            assert_eq!(asset.content_type, expected, "{name}");
        }
        assert!(served("/static/nope.js").is_none());
        assert!(served("/clients/js/authstream.d.ts").is_none());
    }

    #[test]
    fn the_document_names_every_file_of_each_directory() {
        let doc = serde_json::to_value(crate::openapi::document(true)).unwrap();
        for (route, files) in [
            ("/static/{file}", &*STATIC_FILES),
            ("/clients/js/{file}", &*CLIENT_FILES),
        ] {
            let description = doc["paths"][route]["get"]["parameters"][0]["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{route} has a described parameter"));
            for (name, _) in &files.0 {
                assert!(
                    description.contains(&format!("`{name}`")),
                    "{route}: {name}"
                );
            }
        }
    }

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
