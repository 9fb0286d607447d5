//! The stream service's OpenAPI 3.1 document, generated from the `#[utoipa::path]`
//! attributes of its handlers and the `authstream_proto` bodies they answer with.

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use authstream_web::http::OperationsDoc;
use authstream_web::openapi::SharedComponents;

#[derive(OpenApi)]
#[openapi(
    info(title = "authstream stream-service", description = "Live progress of generations over Server-Sent Events and WebSocket, opened with single-use stream tokens, resumable by event id; event publishing for services. Every error is `application/problem+json` with a stable `code`."),
    paths(
        crate::routes::stream::open_stream,
        crate::routes::ws::open_ws,
        crate::routes::events::publish,
    ),
    components(schemas(authstream_proto::stream::StreamEvent)),
    modifiers(&SharedComponents),
    tags(
        (name = "streams", description = "Following a generation's events"),
        (name = "events", description = "Publishing events (services)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct StreamApi;

/// The document of the stream routes alone, without the routes every server has.
pub fn routes_document() -> Document {
    StreamApi::openapi()
}

/// The whole document of the stream service.
pub fn openapi() -> Document {
    let mut doc = routes_document();
    doc.merge(OperationsDoc::openapi());
    doc
}
