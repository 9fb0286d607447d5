//! The routes of the stream service: publishing events, and opening a generation's
//! stream (Server-Sent Events; the WebSocket URL for a WebSocket client).

use std::time::Duration;

use authstream_proto::auth::StreamTokenAnswer;
use authstream_proto::stream::{NewEventBody, Published};
use authstream_proto::{GenerationId, paths};
use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;

use crate::{Call, Client, SseReader, Stream};

/// How long a stream request may last, body included: a stream lives as long as its
/// reader wants it (the client's own timeout would cut it). [`Call::timeout`] sets
/// another.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

const OPEN: &str = "GET /generations/generate/{generation_id}/stream";

/// The query of a stream opening: the stream token (which may be left out when the
/// `as_resume` cookie is sent) and where to resume (the `Last-Event-ID` header wins
/// over `last_event_id`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StreamQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<&'a str>,
}

impl StreamQuery<'_> {
    /// `?token=…&last_event_id=…`, or nothing.
    fn to_query(self) -> String {
        match serde_urlencoded::to_string(self) {
            Ok(query) if !query.is_empty() => format!("?{query}"),
            _ => String::new(),
        }
    }
}

/// The routes of the stream service.
impl Client<Stream> {
    /// `POST /generations/{generation_id}/events` (Bearer, a service token with
    /// `events:publish`): `202`, the stored event's id.
    pub fn publish(&self, id: &GenerationId, event: &NewEventBody) -> Call<Published> {
        let request = self
            .request(Method::POST, &paths::generation_events(id))
            .json(event);
        Call::json(
            "POST /generations/{generation_id}/events",
            request,
            StatusCode::ACCEPTED,
        )
    }

    /// Opens a generation's stream with a stream token. Awaited: the events past a
    /// `200` (a `204`, resumed at the end of a finished generation, is an error with
    /// that status); sent: the raw response.
    pub fn open(&self, id: &GenerationId, token: &str) -> Call<SseReader> {
        self.open_with(
            id,
            StreamQuery {
                token: Some(token),
                last_event_id: None,
            },
        )
    }

    /// Opens a generation's stream resuming after `last_event_id`, sent as the
    /// `Last-Event-ID` header as a browser does.
    pub fn open_after(
        &self,
        id: &GenerationId,
        token: &str,
        last_event_id: &str,
    ) -> Call<SseReader> {
        self.open(id, token).header("last-event-id", last_event_id)
    }

    /// Opens a generation's stream with this query (add a cookie or a header on the
    /// call).
    pub fn open_with(&self, id: &GenerationId, query: StreamQuery<'_>) -> Call<SseReader> {
        let path = format!("{}{}", paths::generation_stream(id), query.to_query());
        // A stream token or the resume cookie opens it: never the client's Bearer token.
        Call::events(OPEN, stream_request(self.http().get(self.url(&path))))
    }

    /// Opens the stream a minted token is for, at its `stream_url` (absolute, or a
    /// path of this client's base).
    pub fn open_minted(&self, minted: &StreamTokenAnswer) -> Call<SseReader> {
        let query = StreamQuery {
            token: Some(&minted.sse_token),
            last_event_id: None,
        };
        let url = match is_absolute(&minted.stream_url) {
            true => format!("{}{}", minted.stream_url, query.to_query()),
            false => self.url(&format!("{}{}", minted.stream_url, query.to_query())),
        };
        Call::events(OPEN, stream_request(self.http().get(url)))
    }

    /// The WebSocket URL of a generation's stream with a stream token (`ws://` or
    /// `wss://` after the base's scheme), for a WebSocket client.
    pub fn ws_url(&self, id: &GenerationId, token: &str) -> String {
        let query = StreamQuery {
            token: Some(token),
            last_event_id: None,
        };
        let url = self.url(&format!("{}{}", paths::generation_ws(id), query.to_query()));
        match url.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some(("http", rest)) => format!("ws://{rest}"),
            _ => url,
        }
    }
}

/// A stream request: asks for events, may last.
fn stream_request(request: RequestBuilder) -> RequestBuilder {
    request
        .header(ACCEPT, "text/event-stream")
        .timeout(STREAM_TIMEOUT)
}

fn is_absolute(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::StreamClient;

    #[test]
    fn stream_queries_escape_what_needs_it() {
        let query = StreamQuery {
            token: Some("abc-_9"),
            last_event_id: Some("1-0 2"),
        };
        assert_eq!(query.to_query(), "?token=abc-_9&last_event_id=1-0+2");
        assert_eq!(StreamQuery::default().to_query(), "");
    }

    #[test]
    fn the_websocket_url_follows_the_base_scheme() {
        let id = GenerationId::parse("g-1").unwrap();
        let client = StreamClient::new(reqwest::Client::new(), "https://stream.example/");
        assert_eq!(
            client.ws_url(&id, "t"),
            "wss://stream.example/generations/generate/g-1/ws?token=t"
        );
    }
}
