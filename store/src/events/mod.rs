//! A generation's events as the store keeps them: its status, the append (history,
//! record and fan-out publish in one script, `lua/append_event.lua`), and the history
//! read from a resume point.

mod memory;
mod publish;
mod redis;

pub use self::publish::*;

use std::time::Duration;

use super::{Store, StoreResult};

pub use authstream_proto::GenerationStatus;

/// A record's status as stored, read once: `Pending` when the record has none (as
/// the store's scripts read it), and, like a `progress` that does not parse, `Pending`
/// when it is no known status (logged: only a corrupt record holds one).
pub(crate) fn stored_status(id: &str, raw: Option<&str>) -> GenerationStatus {
    match raw {
        None => GenerationStatus::Pending,
        Some(raw) => GenerationStatus::parse(raw).unwrap_or_else(|| {
            tracing::warn!(generation_id = %id, status = %raw, "corrupt generation record: unknown status, read as pending");
            GenerationStatus::Pending
        }),
    }
}

/// One event to append to a generation's history (see `Store::append_event`).
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub generation_id: &'a str,
    /// The JSON object streamed to clients.
    pub data: &'a str,
    pub status: GenerationStatus,
    pub progress: Option<f64>,
    pub stage: Option<&'a str>,
    pub now_ms: i64,
    pub max_len: usize,
    pub ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended { id: String },
    NoGeneration,
    Finished,
}

/// Events after a resume point, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPage {
    pub events: Vec<(String, String)>,
    /// The resume point was older than the kept history; `events` is all that is kept.
    pub reset: bool,
}

/// The payload published for each appended event:
/// `{"g":..,"id":..,"s":<status>,"d":<data>}`. The status travels with the event so
/// that no stream parses `d` to learn it (`s` is missing only from a replica that
/// predates it: the status is then read from `d`).
#[derive(Debug, serde::Deserialize)]
pub struct PublishedEvent {
    #[serde(rename = "g")]
    pub generation_id: String,
    pub id: String,
    #[serde(rename = "s", default)]
    pub status: Option<GenerationStatus>,
    #[serde(rename = "d")]
    pub data: Box<serde_json::value::RawValue>,
}

pub fn published_event_payload(
    generation_id: &str,
    id: &str,
    status: GenerationStatus,
    data: &str,
) -> String {
    // Generation ids, stream ids and statuses hold no characters that need JSON escaping.
    format!(r#"{{"g":"{generation_id}","id":"{id}","s":"{status}","d":{data}}}"#)
}

/// A Redis stream id `ms-seq`, comparable: two runs of ASCII digits, each within u64
/// (no sign, no spaces), and not the very last id (nothing can follow it, and Redis
/// refuses to read after it). Anything else is no event id at all.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    let number = |part: &str| {
        (!part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u64>().ok())
            .flatten()
    };
    Some((number(ms)?, number(seq)?)).filter(|&id| id != (u64::MAX, u64::MAX))
}

impl Store {
    /// Appends an event to a generation's history, updates its record and publishes
    /// it on the events channel, in one atomic step. Refused when the record is
    /// missing or the generation already ended.
    pub async fn append_event(&self, event: &NewEvent<'_>) -> StoreResult<AppendOutcome> {
        let record = self.keys.generation(event.generation_id);
        let history = self.keys.events(event.generation_id);
        let channel = self.keys.generation_channel(event.generation_id);
        let legacy = match self.legacy_fanout {
            true => self.keys.events_channel(),
            false => String::new(),
        };
        dispatch!(self.append_event(&record, &history, (&channel, &legacy), event))
    }

    /// The kept events of a generation after `after` (exclusive), or all of them.
    pub async fn read_events(
        &self,
        generation_id: &str,
        after: Option<&str>,
    ) -> StoreResult<EventPage> {
        let history = self.keys.events(generation_id);
        dispatch!(self.read_events(&history, after, None))
    }

    /// Like `read_events`, at most `limit` of them (`XRANGE … COUNT`): a stream holds
    /// one page of a long history at a time. Fewer than `limit` means no more for now.
    pub async fn read_events_page(
        &self,
        generation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<EventPage> {
        let history = self.keys.events(generation_id);
        dispatch!(self.read_events(&history, after, Some(limit.max(1))))
    }
}
