//! `GET /generations/generate/{generation_id}/ws?token=`: the same events as JSON
//! text frames over a WebSocket.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use authstream_runtime::UnixTime;
use authstream_web::ApiError;

use super::stream::{StreamQuery, open_for};
use crate::feed::{End, Feed};
use crate::open::{self, Open, Transport};
use crate::state::StreamState;

#[utoipa::path(
    tag = "streams", summary = "Follow a generation's events (WebSocket)",
    params(
        ("generation_id" = String, Path, description = "The generation to follow"),
        crate::routes::stream::OpenStreamParams
    ),
    security(("stream_token" = []), ("resume_cookie" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol: the same events as JSON text frames"),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable),
    )
)]
#[get("/generations/generate/{generation_id}/ws")]
pub async fn open_ws(
    state: web::Data<StreamState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let now = UnixTime::now();
    // The handshake is checked first, so that a plain GET does not use up a token.
    let (mut response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::field("upgrade", "a WebSocket upgrade request is required"))?;
    match open_for(&state, &req, &path, &query, Transport::WebSocket, now).await? {
        Open::Finished => {
            actix_web::rt::spawn(async move {
                let _ = session.close(Some(close(End::Finished))).await;
            });
        }
        Open::Stream(opened) => {
            response
                .add_cookie(&opened.cookie)
                .map_err(ApiError::internal)?;
            let keepalive = state.settings().keepalive;
            let open::Opened { feed, slot, .. } = *opened;
            actix_web::rt::spawn(async move {
                run(feed, session, messages, keepalive).await;
                // The place among the user's open streams is given back once it ends.
                drop(slot);
            });
        }
    }
    Ok(response)
}

fn close(end: End) -> CloseReason {
    let code = match end {
        End::Finished => CloseCode::Normal,
        End::Revoked | End::SessionEnded => CloseCode::Policy,
        End::ShuttingDown | End::Disconnected => CloseCode::Away,
        End::Lagged | End::StoreUnavailable => CloseCode::Again,
    };
    CloseReason {
        code,
        description: Some(end.as_str().to_owned()),
    }
}

enum Step {
    Frame(Result<crate::feed::Frame, End>),
    Client(Option<Result<Message, actix_ws::ProtocolError>>),
    Ping,
}

/// Sends the feed until it ends or the client goes; answers pings and pings back.
async fn run(
    mut feed: Feed,
    mut session: Session,
    mut messages: MessageStream,
    keepalive: Duration,
) {
    let mut ping = tokio::time::interval(keepalive);
    ping.reset();
    let end = loop {
        // `Feed::next` is cancel-safe, so losing this race to a ping loses nothing.
        let step = tokio::select! {
            frame = feed.next() => Step::Frame(frame),
            message = messages.recv() => Step::Client(message),
            _ = ping.tick() => Step::Ping,
        };
        let sent = match step {
            Step::Frame(Ok(frame)) => session.text(frame.ws_text(feed.generation_id())).await,
            Step::Frame(Err(end)) => break Some(end),
            Step::Client(Some(Ok(Message::Ping(bytes)))) => session.pong(&bytes).await,
            Step::Client(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => break None,
            Step::Client(Some(Ok(_))) => Ok(()),
            Step::Ping => session.ping(b"").await,
        };
        if sent.is_err() {
            break None;
        }
    };
    // `None`: the client is gone or closed first; nothing to say.
    let _ = session.close(end.map(close)).await;
}
