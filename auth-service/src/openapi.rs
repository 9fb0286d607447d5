//! The auth service's OpenAPI 3.1 document, generated from the `#[utoipa::path]`
//! attributes of its handlers and the schemas of its bodies (the `authstream_proto`
//! types the handlers answer with).

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use authstream_web::http::OperationsDoc;
use authstream_web::openapi::SharedComponents;

#[derive(OpenApi)]
#[openapi(
    info(title = "authstream auth-service", description = "Users, sessions, JWTs, service clients, generation ownership and single-use stream tokens. Every error is `application/problem+json` with a stable `code`."),
    paths(
        crate::routes::account::register,
        crate::routes::account::login,
        crate::routes::tokens::refresh,
        crate::routes::account::logout,
        crate::routes::account::logout_all,
        crate::routes::sessions::list,
        crate::routes::sessions::revoke,
        crate::routes::me::get,
        crate::routes::me::patch,
        crate::routes::tokens::validate_post,
        crate::routes::tokens::validate_get,
        crate::routes::tokens::revoke,
        crate::routes::tokens::introspect_form,
        crate::routes::revocations::follow,
        crate::routes::discovery::oauth_metadata,
        crate::routes::discovery::openid_configuration,
        crate::routes::service_tokens::issue,
        crate::routes::admin::revoke_user,
        crate::routes::admin::update_user,
        crate::routes::admin::clear_login_failures,
        crate::routes::generations::create,
        crate::routes::generations::get,
        crate::routes::stream_tokens::mint,
        crate::routes::stream_tokens::stats,
        crate::routes::jwks::jwks,
    ),
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
#[openapi(
    paths(
        crate::demo::index,
        crate::demo::static_file,
        crate::demo::client_file,
        crate::demo::simulate,
        crate::demo::disconnect,
    ),
    tags((name = "demo", description = "The demo page and its simulated generation (DEMO=true only)"))
)]
struct DemoApi;

/// The document of the auth routes (and the demo routes when they are on), without the
/// routes every server has.
pub fn routes_document(demo: bool) -> Document {
    let mut doc = AuthApi::openapi();
    if demo {
        doc.merge(DemoApi::openapi());
    }
    doc
}

/// The whole document of the auth service: its routes, health, metrics and this document.
pub fn document(demo: bool) -> Document {
    let mut doc = routes_document(demo);
    doc.merge(OperationsDoc::openapi());
    doc
}
