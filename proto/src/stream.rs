//! The bodies of the stream service: generation statuses, the events a service
//! publishes, and the events a stream carries.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A generation's status: `pending`, then `processing`, until `completed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GenerationStatus {
    /// Created, nothing published yet.
    Pending,
    /// Under way.
    Processing,
    /// Done: the generation takes no more events.
    Completed,
    /// Failed: the generation takes no more events.
    Failed,
}

impl GenerationStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Processing,
        Self::Completed,
        Self::Failed,
    ];

    /// The status on the wire (and as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// The status named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Nothing can follow a completed or failed generation.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

impl fmt::Display for GenerationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One progress event to publish. Fields other than these pass through to the
/// streams; `event`, `generation_id` and `id` are the server's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEventBody {
    /// `pending`, `processing`, `completed` or `failed`; after `completed` or `failed`
    /// the generation takes no more events
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "processing"))]
    pub status: GenerationStatus,
    /// At most 128 characters
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "schema_extraction"))]
    pub stage: Option<String>,
    /// 0.0 to 1.0
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0.0, maximum = 1.0, example = 0.5)
    )]
    pub progress: Option<f64>,
    /// At most 1024 characters
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "Extracting schema..."))]
    pub message: Option<String>,
    /// Unix milliseconds; now when left out
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Whatever else the publisher sends, passed through to the streams.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Map<String, Value>,
}

impl NewEventBody {
    /// An event of `status` with nothing else.
    pub fn new(status: GenerationStatus) -> Self {
        Self {
            status,
            stage: None,
            progress: None,
            message: None,
            timestamp: None,
            extra: Map::new(),
        }
    }
}

/// `202` of a publish: the id of the stored event (what `Last-Event-ID` resumes after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    #[cfg_attr(feature = "openapi", schema(example = "1732212345678-0"))]
    pub id: String,
}

/// What a stream event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StreamEventKind {
    /// The first event of every stream.
    Connected,
    /// A published progress event.
    Progress,
    /// The resume point was older than the kept history: what follows is all that is
    /// kept.
    Reset,
}

/// One event on the stream (the `data:` of an SSE event, or a WebSocket text frame);
/// progress events carry the published fields too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamEvent {
    /// `connected`, `progress` or `reset`
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub event: StreamEventKind,
    pub generation_id: String,
    /// WebSocket frames of progress events (SSE carries it in `id:`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Progress events: the published status
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GenerationStatus>,
    /// Progress events: the published stage
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Progress events: 0.0 to 1.0
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Progress events: the published message
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Progress events: Unix milliseconds
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Progress events: whatever else the publisher sent.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Map<String, Value>,
}

impl StreamEvent {
    /// A control event (`connected`, `reset`): its kind and generation alone.
    pub fn control(event: StreamEventKind, generation_id: &str) -> Self {
        Self {
            event,
            generation_id: generation_id.to_owned(),
            id: None,
            status: None,
            stage: None,
            progress: None,
            message: None,
            timestamp: None,
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_events_hold_their_kind_and_generation_alone() {
        let event = StreamEvent::control(StreamEventKind::Connected, "g-1");
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"connected","generation_id":"g-1"}"#
        );
    }

    #[test]
    fn progress_events_keep_what_the_publisher_added() {
        let raw = r#"{"event":"progress","generation_id":"g","status":"processing","timestamp":5,"seq":3}"#;
        let event: StreamEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(event.status, Some(GenerationStatus::Processing));
        assert_eq!(event.extra["seq"], 3);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
    }
}
