//! One module per resource. The two stream routes (`stream`: SSE, `ws`: WebSocket)
//! read what an open needs from the request here (`open_request`) and call
//! `crate::open::open`.

pub mod events;
pub mod openapi;
pub mod stream;
pub mod ws;

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::Deserialize;
use shared::{ApiError, UnixTime};

use crate::open::{self, Open, OpenRequest, RESUME_COOKIE, Transport};
use crate::startup::StreamState;

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
async fn open_stream(
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
        shared::http::record_limit(req, limit);
    }
    opened
}
