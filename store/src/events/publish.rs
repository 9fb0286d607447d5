//! Generation events as a type: the statuses, the progress event a publisher (the
//! publish route or the demo simulation) appends through ONE function, and the event
//! as streams carry it, its status known from publish on so that delivery never
//! parses JSON again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::GenerationStatus;
use crate::{AppendOutcome, NewEvent, Store, StoreError};
use authstream_runtime::clock::UnixTime;

/// The streamed object of a progress event: the known fields first, then whatever
/// else the publisher sent (`extra`).
#[derive(Debug, Clone, Serialize)]
pub struct ProgressEvent<'a> {
    event: &'static str,
    pub generation_id: &'a str,
    pub status: GenerationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Unix milliseconds.
    pub timestamp: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'a> ProgressEvent<'a> {
    pub fn new(generation_id: &'a str, status: GenerationStatus, timestamp: i64) -> Self {
        Self {
            event: "progress",
            generation_id,
            status,
            stage: None,
            progress: None,
            message: None,
            timestamp,
            extra: Map::new(),
        }
    }
}

/// Where appended events are kept: how many, and for how long after the last change.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    pub max_len: usize,
    pub ttl: Duration,
}

/// Appends `event` to its generation's history, updates the record and fans it out
/// to every stream of every replica, in one store step. The one way an event is
/// published.
pub async fn publish(
    store: &Store,
    event: &ProgressEvent<'_>,
    limits: HistoryLimits,
    now: UnixTime,
) -> Result<AppendOutcome, StoreError> {
    let data = serde_json::to_string(event).map_err(|e| StoreError::Internal(e.to_string()))?;
    let outcome = store
        .append_event(&NewEvent {
            generation_id: event.generation_id,
            data: &data,
            status: event.status,
            progress: event.progress,
            stage: event.stage.as_deref(),
            now_ms: now.millis(),
            max_len: limits.max_len,
            ttl: limits.ttl,
        })
        .await?;
    Ok(outcome)
}

/// One event of a generation as streams carry it: its id in the history, its status
/// (`None` only for an entry without a known one) and its JSON object exactly as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub id: String,
    pub status: Option<GenerationStatus>,
    pub data: Box<str>,
}

impl StreamEvent {
    /// An event read from the history (or published without its status): the status
    /// is read from its object, once.
    pub fn from_history(id: String, data: String) -> Self {
        #[derive(Deserialize)]
        struct Status {
            status: GenerationStatus,
        }
        let status = serde_json::from_str::<Status>(&data).ok().map(|s| s.status);
        Self {
            id,
            status,
            data: data.into_boxed_str(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_some_and(GenerationStatus::is_terminal)
    }

    /// The WebSocket text: a WebSocket has no event ids, so the id goes into the
    /// object as `"id"`, spliced in front of the stored object without parsing it.
    pub fn ws_text(&self) -> String {
        match self.data.strip_prefix('{') {
            // Stream ids (`<ms>-<seq>`) need no JSON escaping.
            Some(rest) => {
                let separator = if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                format!(r#"{{"id":"{}"{separator}{rest}"#, self.id)
            }
            None => self.data.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_two_are_terminal() {
        for status in GenerationStatus::ALL {
            assert_eq!(GenerationStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(GenerationStatus::parse("done"), None);
        let terminal: Vec<_> = GenerationStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [GenerationStatus::Completed, GenerationStatus::Failed]
        );
    }

    #[test]
    fn a_progress_event_serialises_known_fields_first() {
        let mut event = ProgressEvent::new("g-1", GenerationStatus::Processing, 5);
        event.progress = Some(0.5);
        event.extra.insert("current_file".into(), "a.rs".into());
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"progress","generation_id":"g-1","status":"processing","progress":0.5,"timestamp":5,"current_file":"a.rs"}"#
        );
    }

    #[test]
    fn the_websocket_text_is_the_object_with_its_id_and_parses_as_json() {
        let data = r#"{"event":"progress","status":"completed","n":[1,{"a":"}"}]}"#;
        let event = StreamEvent::from_history("7-1".into(), data.into());
        assert!(event.is_terminal());
        let text = event.ws_text();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let mut expected: Value = serde_json::from_str(data).unwrap();
        expected["id"] = "7-1".into();
        assert_eq!(parsed, expected);
        let empty = StreamEvent {
            id: "1-0".into(),
            status: Some(GenerationStatus::Pending),
            data: "{ }".into(),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&empty.ws_text()).unwrap(),
            serde_json::json!({"id": "1-0"})
        );
    }

    #[test]
    fn a_history_entry_without_a_known_status_is_streamed_as_it_is_and_ends_nothing() {
        for data in ["{}", r#"{"status":"x"}"#, "nope"] {
            let event = StreamEvent::from_history("1-0".into(), data.into());
            assert_eq!((event.status, &*event.data), (None, data));
            assert!(!event.is_terminal());
        }
    }
}
