//! `GET /generations/generate/{generation_id}/stream?token=`: Server-Sent Events.
//! The handler reads what an open needs from the request (`open_request`, shared
//! with `ws.rs`) and calls the rule, `crate::open::open` (`open/mod.rs`).

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_web_lab::sse;
use authstream_runtime::UnixTime;
use authstream_web::ApiError;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::feed::Feed;
use crate::open::{self, Open, OpenRequest, RESUME_COOKIE, StreamSlot, Transport};
use crate::state::StreamState;

/// What `retry:` tells a browser to wait before reconnecting.
const RETRY: Duration = Duration::from_secs(3);

#[utoipa::path(
    tag = "streams", summary = "Follow a generation's events (Server-Sent Events)",
    params(
        ("generation_id" = String, Path, description = "The generation to follow"),
        OpenStreamParams
    ),
    security(("stream_token" = []), ("resume_cookie" = [])),
    responses(
        (status = 200, description = "The event stream: kept history, then live events, until the terminal event; sets the `as_resume` cookie", content_type = "text/event-stream", body = String),
        (status = 204, description = "Resumed at the terminal event of a finished generation: nothing more will come"),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable),
    )
)]
#[get("/generations/generate/{generation_id}/stream")]
pub async fn open_stream(
    state: web::Data<StreamState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let now = UnixTime::now();
    let opened = match open_for(&state, &req, &path, &query, Transport::Sse, now).await? {
        // Tells a browser's EventSource to stop reconnecting.
        Open::Finished => {
            return Ok(HttpResponse::NoContent()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish());
        }
        Open::Stream(opened) => *opened,
    };
    let body = sse::Sse::from_stream(events(opened.feed, opened.slot))
        .with_retry_duration(RETRY)
        .with_keep_alive(state.settings().keepalive);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Proxies such as nginx must pass events on as they come.
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(ContentEncoding::Identity)
        .cookie(opened.cookie)
        .body(body))
}

/// The feed as SSE events: unnamed, so `EventSource.onmessage` sees each; progress
/// events carry their id. The stream ends when the feed does; dropping it (the
/// client went away) drops the feed, its hub subscription and its place (`slot`).
fn events(
    feed: Feed,
    slot: StreamSlot,
) -> impl futures_util::Stream<Item = Result<sse::Event, Infallible>> {
    futures_util::stream::unfold((feed, slot), |(mut feed, slot)| async move {
        let frame = feed.next().await.ok()?;
        let mut data = sse::Data::new(frame.data(feed.generation_id()));
        // Stored ids are `ms-seq`; anything else would break the event stream framing.
        if let Some(id) = frame.id().filter(|id| !id.contains(['\r', '\n', '\0'])) {
            data = data.id(id.to_owned());
        }
        Some((Ok(sse::Event::Data(data)), (feed, slot)))
    })
}

/// The query of a stream open.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub token: Option<String>,
    pub last_event_id: Option<String>,
}

/// What a stream open needs from its request: the rule never sees the request.
fn open_request(
    state: &StreamState,
    req: &HttpRequest,
    generation_id: &str,
    query: &StreamQuery,
) -> OpenRequest {
    let headers = req.headers();
    OpenRequest {
        generation_id: generation_id.to_owned(),
        token: query.token.clone(),
        resume_cookie: req.cookie(RESUME_COOKIE).map(|c| c.value().to_owned()),
        last_event_id: headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .or(query.last_event_id.as_deref())
            .map(str::to_owned),
        client_ip: state.settings.common.trusted_proxies.client_ip(req),
        origin: headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
        host: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Opens the stream a route was asked for (`crate::open::open`), and writes the
/// rate-limit decisions it made into the answer's headers.
pub(super) async fn open_for(
    state: &StreamState,
    req: &HttpRequest,
    generation_id: &str,
    query: &StreamQuery,
    transport: Transport,
    now: UnixTime,
) -> Result<Open, ApiError> {
    let request = open_request(state, req, generation_id, query);
    let mut decisions = Vec::new();
    let opened = open::open(state, &request, transport, now, &mut decisions).await;
    for limit in decisions {
        authstream_web::http::record_limit(req, limit);
    }
    opened
}

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
