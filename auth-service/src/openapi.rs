//! The auth service's OpenAPI 3.1 document. Its paths are the handlers that
//! `crate::routes::endpoints` registers (each `#[utoipa::path]` with the schemas of its
//! bodies, the `authstream_proto` types the handlers answer with); what is said here is
//! the rest: the title, the tags, the shared components.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_actix_web::AppExt;

use authstream_web::openapi::SharedComponents;

#[derive(OpenApi)]
#[openapi(
    info(title = "authstream auth-service", description = "Users, sessions, JWTs, service clients, generation ownership and single-use stream tokens. Every error is `application/problem+json` with a stable `code`."),
    components(schemas(authstream_proto::feed::FeedRevocation)),
    modifiers(&SharedComponents),
    tags(
        (name = "accounts", description = "Registration, login, refresh, logout"),
        (name = "sessions", description = "The caller's sessions and profile"),
        (name = "tokens", description = "Validation, revocation, service tokens, keys"),
        (name = "admin", description = "Administration (role admin or scope users:admin)"),
        (name = "generations", description = "Generation ownership and stream tokens"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct AuthApi;

#[derive(OpenApi)]
#[openapi(tags((name = "demo", description = "The demo page and its simulated generation (DEMO=true only)")))]
struct DemoApi;

/// The auth document without its paths: the title, the tags (the demo tag when the demo
/// routes are on) and the shared components. The single-process `authstream` starts
/// its document from it.
pub fn base(demo: bool) -> Document {
    let mut doc = AuthApi::openapi();
    if demo {
        doc.merge(DemoApi::openapi());
    }
    doc
}

/// The whole document of the auth service: every route its server registers (the
/// auth routes, the demo routes when they are on, health, metrics and this document),
/// built from the same registration as the server (`crate::routes::endpoints`).
pub fn document(demo: bool) -> Document {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(base(demo))
        .configure(|cfg| crate::routes::endpoints(cfg, demo))
        .split_for_parts();
    doc
}
