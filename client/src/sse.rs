//! Server-Sent Events: [`SseParser`] turns bytes into [`SseFrame`]s (the WHATWG event
//! stream format, frames split across chunks anywhere), and [`SseReader`] reads them
//! from a response: raw frames for any feed, or [`SseEvent`]s of a generation's
//! stream with their data parsed as a [`StreamEvent`].

use std::time::Duration;

use authstream_proto::stream::StreamEvent;
use futures_util::Stream;
use reqwest::Response;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// One event as sent: its `id:` (the last one seen, as a browser keeps it), its
/// `event:` name (`message` when none) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl SseFrame {
    /// The data parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.data)
    }
}

/// One event of a generation's stream, its data parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The event's `id:` (progress events: what `Last-Event-ID` resumes after).
    pub id: String,
    /// The event's `event:` name.
    pub event: String,
    pub data: StreamEvent,
}

/// The event stream format's parser, fed with bytes as they come.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    read: usize,
    started: bool,
    data: String,
    event: String,
    last_event_id: String,
    retry: Option<Duration>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes received.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.read > 0 {
            self.buffer.drain(..self.read);
            self.read = 0;
        }
        self.buffer.extend_from_slice(bytes);
        if !self.started && self.buffer.len() >= 3 {
            self.started = true;
            if self.buffer.starts_with(b"\xEF\xBB\xBF") {
                self.buffer.drain(..3);
            }
        }
    }

    /// The next complete event among the bytes pushed, if any.
    pub fn next_frame(&mut self) -> Option<SseFrame> {
        while let Some(line) = self.next_line() {
            if line.is_empty() {
                if let Some(frame) = self.dispatch() {
                    return Some(frame);
                }
                continue;
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                "event" => value.clone_into(&mut self.event),
                "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id),
                "retry" => {
                    if let Ok(ms) = value.parse::<u64>() {
                        self.retry = Some(Duration::from_millis(ms));
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The last `id:` received (what a reconnection sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection delay the server asked for (`retry:`), if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The next whole line (without its end: `\r\n`, `\n` or `\r`); a `\r` at the end
    /// of what was received waits for the next byte.
    fn next_line(&mut self) -> Option<Vec<u8>> {
        let rest = &self.buffer[self.read..];
        let end = rest.iter().position(|b| *b == b'\n' || *b == b'\r')?;
        let skip = match rest[end] {
            b'\r' => match rest.get(end + 1) {
                Some(b'\n') => 2,
                Some(_) => 1,
                None => return None,
            },
            _ => 1,
        };
        let line = rest[..end].to_vec();
        self.read += end + skip;
        Some(line)
    }

    /// The event the blank line ends, unless it has no data.
    fn dispatch(&mut self) -> Option<SseFrame> {
        let mut data = std::mem::take(&mut self.data);
        let event = std::mem::take(&mut self.event);
        if data.is_empty() {
            return None;
        }
        data.pop();
        Some(SseFrame {
            id: self.last_event_id.clone(),
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
        })
    }
}

/// The events of a Server-Sent Events response, read as they come. Dropping it
/// closes the connection.
///
/// ```no_run
/// # async fn demo(stream: authstream_client::StreamClient, id: authstream_proto::GenerationId, token: &str) -> Result<(), authstream_client::ClientError> {
/// let mut events = stream.open(&id, token).await?;
/// while let Some(e) = events.next().await? {
///     println!("{} {:?} {:?}", e.id, e.data.event, e.data.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SseReader {
    route: &'static str,
    response: Response,
    parser: SseParser,
}

impl SseReader {
    /// Reads the events of `response` (a `200` of a stream route); `route` names it
    /// in errors.
    pub fn new(route: &'static str, response: Response) -> Self {
        Self {
            route,
            response,
            parser: SseParser::new(),
        }
    }

    /// The response's headers (the `as_resume` cookie of a generation's stream).
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The last `id:` received.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The next event as sent; `None` when the server ended the stream.
    pub async fn next_frame(&mut self) -> Result<Option<SseFrame>, ClientError> {
        loop {
            if let Some(frame) = self.parser.next_frame() {
                return Ok(Some(frame));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.parser.push(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => return Err(ClientError::transport(self.route, e)),
            }
        }
    }

    /// The next event of a generation's stream, its data parsed; `None` when the
    /// server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        let Some(frame) = self.next_frame().await? else {
            return Ok(None);
        };
        let data = frame
            .json::<StreamEvent>()
            .map_err(|e| ClientError::body(self.route, None, &e))?;
        Ok(Some(SseEvent {
            id: frame.id,
            event: frame.event,
            data,
        }))
    }

    /// The frames as a [`Stream`], ending after the first error.
    pub fn into_frames(self) -> impl Stream<Item = Result<SseFrame, ClientError>> + Send {
        futures_util::stream::unfold(Some(self), |reader| async move {
            let mut reader = reader?;
            match reader.next_frame().await {
                Ok(Some(frame)) => Some((Ok(frame), Some(reader))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The events of a generation's stream as a [`Stream`], ending after the first
    /// error.
    pub fn into_events(self) -> impl Stream<Item = Result<SseEvent, ClientError>> + Send {
        futures_util::stream::unfold(Some(self), |reader| async move {
            let mut reader = reader?;
            match reader.next().await {
                Ok(Some(event)) => Some((Ok(event), Some(reader))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests;
