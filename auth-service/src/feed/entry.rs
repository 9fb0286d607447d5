//! What the revocation feed sends: a `Position` in the logs, one `FeedRevocation`,
//! a log `Entry` ready to send, and the `Item`s the tail broadcasts.

use std::fmt;
use std::sync::Arc;

pub use authstream_proto::feed::{FeedRevocation, RevocationKind};
use authstream_store::parse_event_id;
use authstream_store::revocations::Revocation;

/// A log entry id, comparable.
pub type LogId = (u64, u64);

/// Where a reader of every log stands: the last id read of each log, in the order of
/// `Store::revocation_log_indexes`. Written as the ids joined by commas
/// (`<ms>-<seq>,<ms>-<seq>,…`); clients treat it as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position(Vec<LogId>);

impl Position {
    /// Nothing read of any of `logs` logs.
    pub fn start(logs: usize) -> Self {
        Self(vec![(0, 0); logs])
    }

    /// A position as written, or `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        text.split(',')
            .map(parse_event_id)
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// The last id read of log `log` (by its place in the position).
    pub fn of(&self, log: usize) -> LogId {
        self.0.get(log).copied().unwrap_or((0, 0))
    }

    /// Whether the entry `key` of log `log` is at or before this position.
    pub fn covers(&self, log: usize, key: LogId) -> bool {
        key <= self.of(log)
    }

    pub(super) fn advance(&mut self, log: usize, key: LogId) {
        if let Some(at) = self.0.get_mut(log) {
            *at = key;
        }
    }

    /// Each log at the later of the two.
    pub fn max(&self, other: &Self) -> Self {
        if self.0.len() != other.0.len() {
            return self.clone();
        }
        Self(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(a, b)| *a.max(b))
                .collect(),
        )
    }

    pub fn logs(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (ms, seq)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{ms}-{seq}")?;
        }
        Ok(())
    }
}

/// One revocation as the feed sends it (the `data` of a `revocation` event, and each
/// item of a `reset`'s snapshot): the wire type, from a log entry.
pub fn feed_revocation(id: &str, revocation: Revocation) -> FeedRevocation {
    let base = |kind: RevocationKind, sub: String, until: i64| FeedRevocation {
        id: id.to_owned(),
        kind,
        sub,
        jti: None,
        sid: None,
        not_before: None,
        sids: None,
        until,
    };
    match revocation {
        Revocation::Token { sub, jti, until_ms } => FeedRevocation {
            jti: Some(jti),
            ..base(RevocationKind::Token, sub, until_ms)
        },
        Revocation::Session {
            user_id,
            session_id,
            until_ms,
        } => FeedRevocation {
            sid: Some(session_id),
            ..base(RevocationKind::Session, user_id, until_ms)
        },
        Revocation::User {
            user_id,
            not_before,
            sessions,
            until_ms,
        } => FeedRevocation {
            not_before: Some(not_before),
            sids: Some(sessions),
            ..base(RevocationKind::User, user_id, until_ms)
        },
    }
}

/// One log entry, ready to send.
#[derive(Debug)]
pub struct Entry {
    /// Its log's place in a `Position`, and its id there.
    pub log: usize,
    pub key: LogId,
    /// The position just after it.
    pub id: String,
    pub until: i64,
    /// The token it revokes (`token` entries), to end a subscriber's own feed.
    pub jti: Option<String>,
    /// The `FeedRevocation` as JSON.
    pub json: String,
}

/// What the tail broadcasts.
#[derive(Debug, Clone)]
pub enum Item {
    Entry(Arc<Entry>),
    /// Every log was read to its end (`position`) by reads sent at `time` (Unix ms).
    Heartbeat {
        position: Arc<Position>,
        time: i64,
    },
}

impl Item {
    pub fn heartbeat_json(position: &Position, time: i64) -> String {
        // Log ids are digits, `-` and `,`: nothing to escape.
        format!(r#"{{"position":"{position}","time":{time}}}"#)
    }
}
