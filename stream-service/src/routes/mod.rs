//! One module per resource. The two stream routes (`stream`: SSE, `ws`: WebSocket)
//! read what an open needs from the request (`stream::open_request`) and call
//! `crate::open::open`.

pub mod events;
pub mod openapi;
pub mod stream;
pub mod ws;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every stream route: registering a handler here is what documents it. Each
/// handler carries `#[utoipa::path]` over its actix route macro, and
/// `ServiceConfig::service` both mounts it and adds its operation (and the schemas it
/// refers to) to the OpenAPI document built from the same call (`openapi::openapi`):
/// there is no second list. The order here is the order of the paths in the document.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stream::open_stream)
        .service(ws::open_ws)
        .service(events::publish);
}

/// Registers every route of the stream service's server: the stream routes
/// (`configure`, which the single-process binary registers next to the auth
/// routes), then health, metrics, the API document and Swagger UI. Registering a
/// handler here is what documents it: the server and `openapi::openapi` both
/// call this.
pub fn endpoints(cfg: &mut ServiceConfig) {
    configure(cfg);
    authstream_web::http::operations(cfg);
}
