//! What one open stream sends, independent of the transport (SSE or WebSocket):
//! `connected`, maybe `reset`, the history after the resume point, then live events,
//! with duplicates dropped, until a terminal event, a revocation, the session's
//! absolute end, a lag or shutdown.

use std::collections::VecDeque;
use std::sync::Arc;

use authstream_proto::stream::{StreamEvent as WireEvent, StreamEventKind};
use authstream_runtime::UnixTime;
use authstream_store::events::StreamEvent;
use authstream_store::revocations::NoticeReason;
use authstream_store::{Store, parse_event_id};
use tokio::sync::{broadcast, watch};

use crate::hub::{Control, Follow, HubEvent, Lagged};
use crate::meters;

/// One message to the client.
#[derive(Debug, Clone)]
pub enum Frame {
    Connected,
    /// The resume point was older than the kept history: what follows is all that is kept.
    Reset,
    Event(Arc<StreamEvent>),
}

/// The JSON object of a control frame: its kind and generation alone.
fn control(kind: StreamEventKind, generation_id: &str) -> String {
    serde_json::to_string(&WireEvent::control(kind, generation_id)).unwrap_or_default()
}

impl Frame {
    /// The JSON object of a control frame (`connected`, `reset`) or the stored event.
    pub fn data(&self, generation_id: &str) -> String {
        match self {
            Self::Connected => control(StreamEventKind::Connected, generation_id),
            Self::Reset => control(StreamEventKind::Reset, generation_id),
            Self::Event(event) => event.data.to_string(),
        }
    }

    /// The SSE id: only progress events have one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Event(event) => Some(&event.id),
            _ => None,
        }
    }

    /// A WebSocket has no event ids: the id goes into the object as `"id"`.
    pub fn ws_text(&self, generation_id: &str) -> String {
        match self {
            Self::Event(event) => event.ws_text(),
            other => other.data(generation_id),
        }
    }

    /// The status came with the event: nothing is parsed here.
    fn is_terminal(&self) -> bool {
        matches!(self, Self::Event(event) if event.is_terminal())
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A `completed` or `failed` event was sent.
    Finished,
    /// The session or the user was revoked.
    Revoked,
    /// The session reached its absolute end (`SESSION_MAX_AGE_SECS` after its login).
    SessionEnded,
    /// The server dropped the stream without revoking anything; the client resumes.
    Disconnected,
    /// The client fell more than `SSE_MAX_QUEUED_EVENTS` behind.
    Lagged,
    ShuttingDown,
    StoreUnavailable,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Revoked => "revoked",
            Self::SessionEnded => "session_ended",
            Self::Disconnected => "disconnected",
            Self::Lagged => "lagged",
            Self::ShuttingDown => "shutting_down",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Who a stream belongs to, for revocation.
#[derive(Debug, Clone)]
pub struct Holder {
    pub user_id: String,
    pub session_id: String,
    /// Unix seconds: everything of the user issued before a revocation ends.
    pub issued_at_secs: i64,
    /// Unix milliseconds: the session's absolute end, carried by the stream token's
    /// grant (the auth service learnt it at mint), so no store read tells it.
    pub session_ends_at_ms: i64,
}

pub struct Feed {
    generation_id: String,
    holder: Holder,
    store: Store,
    follow: Follow,
    max_queued: usize,
    shutdown: watch::Receiver<bool>,
    pending: VecDeque<Frame>,
    last: Option<(u64, u64)>,
    last_id: Option<String>,
    finished: bool,
    /// The last history page was full: read the next one (after `last_id`) before
    /// any live event, so that a live event never overtakes the history.
    history_continues: bool,
    // Set before the store is asked, cleared after: `next` stays cancel-safe.
    needs_resync: bool,
    needs_recheck: bool,
    _open: OpenGauge,
}

enum Step {
    Shutdown,
    Control(Result<Control, broadcast::error::RecvError>),
    Event(Result<HubEvent, Lagged>),
}

pub struct FeedParts {
    pub generation_id: String,
    pub holder: Holder,
    pub store: Store,
    pub follow: Follow,
    pub max_queued: usize,
    pub shutdown: watch::Receiver<bool>,
    pub reset: bool,
    /// The first page of the history: at most `max_queued` events (a full page means
    /// more may follow).
    pub history: Vec<(String, String)>,
    pub resume_from: Option<String>,
    pub transport: &'static str,
}

impl Feed {
    pub fn new(parts: FeedParts) -> Self {
        let last = parts.resume_from.as_deref().and_then(parse_event_id);
        let mut feed = Self {
            generation_id: parts.generation_id,
            holder: parts.holder,
            store: parts.store,
            follow: parts.follow,
            max_queued: parts.max_queued,
            shutdown: parts.shutdown,
            pending: VecDeque::from([Frame::Connected]),
            // After a reset the kept history starts over, whatever was asked for.
            last: if parts.reset { None } else { last },
            last_id: if parts.reset {
                None
            } else {
                last.and(parts.resume_from)
            },
            finished: false,
            history_continues: parts.history.len() >= parts.max_queued,
            needs_resync: false,
            needs_recheck: false,
            _open: OpenGauge::new(parts.transport),
        };
        feed.follow
            .watch_session_end(feed.holder.session_ends_at_ms);
        if parts.reset {
            feed.pending.push_back(Frame::Reset);
        }
        feed.push_history(parts.history);
        feed
    }

    pub fn generation_id(&self) -> &str {
        &self.generation_id
    }

    fn push_history(&mut self, events: Vec<(String, String)>) {
        for (id, data) in events {
            self.push(Arc::new(StreamEvent::from_history(id, data)));
        }
    }

    /// Queues an event unless it was delivered already (history and live overlap).
    fn push(&mut self, event: Arc<StreamEvent>) {
        let Some(key) = parse_event_id(&event.id) else {
            return;
        };
        if self.last.is_some_and(|last| key <= last) {
            return;
        }
        self.last = Some(key);
        self.last_id = Some(event.id.clone());
        self.pending.push_back(Frame::Event(event));
    }

    /// The next frame, or why the stream ends. Cancel-safe.
    pub async fn next(&mut self) -> Result<Frame, End> {
        let end = loop {
            if let Some(frame) = self.pending.pop_front() {
                if frame.is_terminal() {
                    // Nothing can follow a terminal event.
                    self.finished = true;
                    self.pending.clear();
                }
                return Ok(frame);
            }
            if self.finished {
                break End::Finished;
            }
            if *self.shutdown.borrow() {
                break End::ShuttingDown;
            }
            if UnixTime::now().millis() >= self.holder.session_ends_at_ms {
                break End::SessionEnded;
            }
            if self.needs_recheck {
                let h = &self.holder;
                // Boxed, like the page read below: see there.
                match Box::pin(authstream_security::jwt::revoked(
                    &self.store,
                    &h.user_id,
                    "-",
                    Some(&h.session_id),
                    h.issued_at_secs,
                ))
                .await
                {
                    Ok(true) => break End::Revoked,
                    Ok(false) => self.needs_recheck = false,
                    Err(_) => break End::StoreUnavailable,
                }
                continue;
            }
            if self.needs_resync || self.history_continues {
                // One page at a time, read as the client drains the previous one. Boxed:
                // a store call's future is kilobytes, and every idle stream would
                // otherwise carry room for it.
                let page = match Box::pin(self.store.read_events_page(
                    &self.generation_id,
                    self.last_id.as_deref(),
                    self.max_queued,
                ))
                .await
                {
                    Ok(page) => page,
                    Err(_) => break End::StoreUnavailable,
                };
                self.needs_resync = false;
                self.history_continues = page.events.len() >= self.max_queued;
                if page.reset {
                    self.pending.push_back(Frame::Reset);
                }
                self.push_history(page.events);
                continue;
            }
            let step = tokio::select! {
                biased;
                _ = self.shutdown.changed() => Step::Shutdown,
                control = self.follow.control.recv() => Step::Control(control),
                event = self.follow.events.recv() => Step::Event(event),
            };
            match step {
                Step::Shutdown => {
                    // A closed channel means the state is gone: end as on shutdown.
                    if self.shutdown.has_changed().is_err() {
                        break End::ShuttingDown;
                    }
                }
                Step::Control(Ok(Control::Notice(notice))) => {
                    let h = &self.holder;
                    if notice.covers(&h.user_id, &h.session_id, &self.generation_id) {
                        match notice.reason {
                            // The view that sent it knows it now: the check says
                            // whether it covers this stream's issue time too.
                            NoticeReason::Revoked => self.needs_recheck = true,
                            NoticeReason::Disconnect => break End::Disconnected,
                        }
                    }
                }
                Step::Control(Ok(Control::Recheck))
                | Step::Control(Err(broadcast::error::RecvError::Lagged(_))) => {
                    self.needs_recheck = true;
                }
                // The loop compares this stream's own session end with the clock.
                Step::Control(Ok(Control::SessionsEnded)) => {}
                Step::Control(Err(broadcast::error::RecvError::Closed)) => {
                    break End::ShuttingDown;
                }
                Step::Event(Ok(HubEvent::Event(event))) => {
                    // More than the limit still waiting behind this one: too slow.
                    if self.follow.events.queued() > self.max_queued {
                        break End::Lagged;
                    }
                    self.push(event);
                }
                Step::Event(Ok(HubEvent::Resync)) => self.needs_resync = true,
                Step::Event(Err(Lagged)) => break End::Lagged,
            }
        };
        self.log_end(end);
        Err(end)
    }

    fn log_end(&self, end: End) {
        match end {
            End::Lagged => {
                meters::lagged_disconnect();
                tracing::info!(
                    generation_id = %self.generation_id,
                    max_queued = self.max_queued,
                    "stream cut off: the client fell too far behind; it can resume with Last-Event-ID"
                );
            }
            End::Revoked => tracing::info!(
                generation_id = %self.generation_id,
                user_id = %self.holder.user_id,
                "stream ended: session revoked"
            ),
            End::SessionEnded => tracing::info!(
                generation_id = %self.generation_id,
                user_id = %self.holder.user_id,
                "stream ended: its session reached its maximum age"
            ),
            End::Disconnected => tracing::info!(
                generation_id = %self.generation_id,
                user_id = %self.holder.user_id,
                "stream ended: disconnected by the server; the client resumes"
            ),
            _ => {
                tracing::debug!(generation_id = %self.generation_id, end = end.as_str(), "stream ended")
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.follow
            .forget_session_end(self.holder.session_ends_at_ms);
    }
}

/// Counts a stream as open for as long as it lives.
struct OpenGauge(&'static str);

impl OpenGauge {
    fn new(transport: &'static str) -> Self {
        meters::stream_opened(transport);
        Self(transport)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        meters::stream_closed(self.0);
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
