//! The stream service's OpenAPI 3.1 document, generated from the `#[utoipa::path]`
//! attributes of its handlers and the `authstream_proto` bodies they answer with.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, OpenApi};

use shared::openapi::{OperationsDoc, SharedComponents};

/// The query and header parameters of both ways to open a stream (SSE and WebSocket);
/// `generation_id` is named in each route's attribute.
pub struct OpenStreamParams;

impl IntoParams for OpenStreamParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let param = |name: &str, location: ParameterIn, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(location)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        vec![
            param(
                "token",
                ParameterIn::Query,
                "A single-use stream token from the auth service (never a JWT); may be left \
                 out when the `as_resume` cookie is sent",
            ),
            param(
                "last_event_id",
                ParameterIn::Query,
                "Resume after this event id (the `Last-Event-ID` header takes precedence)",
            ),
            param(
                "Last-Event-ID",
                ParameterIn::Header,
                "Resume after this event id (a browser's EventSource sends it)",
            ),
        ]
    }
}

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
