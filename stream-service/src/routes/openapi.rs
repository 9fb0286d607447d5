//! The stream service's OpenAPI 3.1 document. Its paths are the handlers that
//! `super::endpoints` registers (each `#[utoipa::path]` with the
//! `authstream_proto` bodies it answers with); what is said here is the rest: the title,
//! the tags, the shared components.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_actix_web::AppExt;

use authstream_web::openapi::SharedComponents;

#[derive(OpenApi)]
#[openapi(
    info(title = "authstream stream-service", description = "Live progress of generations over Server-Sent Events and WebSocket, opened with single-use stream tokens, resumable by event id; event publishing for services. Every error is `application/problem+json` with a stable `code`."),
    components(schemas(authstream_proto::stream::StreamEvent)),
    modifiers(&SharedComponents),
    tags(
        (name = "streams", description = "Following a generation's events"),
        (name = "events", description = "Publishing events (services)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct StreamApi;

/// The stream document without its paths: the title, the tags and the shared
/// components. The single-process `authstream` merges it into its own.
pub fn base() -> Document {
    StreamApi::openapi()
}

/// The whole document of the stream service: every route its server registers (the
/// stream routes, health, metrics and this document), built from the same registration
/// as the server (`super::endpoints`).
pub fn openapi() -> Document {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(super::endpoints)
        .split_for_parts();
    doc
}
