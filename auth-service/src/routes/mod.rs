//! One module per resource; handlers are short verbs.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod discovery;
pub(crate) mod generations;
pub(crate) mod jwks;
pub(crate) mod me;
pub(crate) mod revocations;
pub(crate) mod service_tokens;
pub(crate) mod sessions;
pub(crate) mod stream_tokens;
pub(crate) mod tokens;

pub use crate::state::{SessionEnds, session_ends};

use actix_web::HttpRequest;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::state::AuthState;

/// Registers every route of the auth API: registering a handler here is what documents
/// it. Each handler carries `#[utoipa::path]` over its actix route macro, and
/// `ServiceConfig::service` both mounts it and adds its operation (and the schemas it
/// refers to) to the OpenAPI document built from the same call
/// (`crate::openapi::document`): there is no second list. The order here is the order
/// of the paths in the document.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(account::register)
        .service(account::login)
        .service(tokens::refresh)
        .service(account::logout)
        .service(account::logout_all)
        .service(sessions::list)
        .service(sessions::revoke)
        .service(me::get)
        .service(me::patch)
        .service(tokens::validate_post)
        .service(tokens::validate_get)
        .service(tokens::revoke)
        .service(tokens::introspect_form)
        .service(revocations::follow)
        .service(discovery::oauth_metadata)
        .service(discovery::openid_configuration)
        .service(service_tokens::issue)
        .service(admin::revoke_user)
        .service(admin::update_user)
        .service(admin::clear_login_failures)
        .service(generations::create)
        .service(generations::get)
        .service(stream_tokens::mint)
        .service(stream_tokens::stats)
        .service(jwks::jwks);
}

/// The client address as configured (`TRUSTED_PROXIES`), as text.
fn client_ip(state: &AuthState, req: &HttpRequest) -> Option<String> {
    client_addr(state, req).map(|ip| ip.to_string())
}

/// The client address, `TRUSTED_PROXIES` applied.
fn client_addr(state: &AuthState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    state.settings.common.trusted_proxies.client_ip(req)
}

/// Registers every auth route, and the demo routes when `demo` is on (not the routes
/// every server has): registering a handler here is what documents it. The
/// single-process `authstream` registers the stream routes beside these.
pub fn register(cfg: &mut ServiceConfig, demo: bool) {
    configure(cfg);
    if demo {
        crate::demo::configure(cfg);
    }
}

/// Registers every route of the auth service's server: the auth routes (`register`),
/// then health, metrics, the API document and Swagger UI. Registering a handler here is
/// what documents it: the server and `crate::openapi::document` both call this.
pub fn endpoints(cfg: &mut ServiceConfig, demo: bool) {
    register(cfg, demo);
    authstream_web::http::operations(cfg);
}
