//! What the revocation feed sends: a `Position` in the logs, one `FeedRevocation`,
//! a log `Entry` ready to send, and the `Item`s the tail broadcasts.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use shared::revocation::Revocation;
use shared::store::parse_event_id;

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
/// item of a `reset`'s snapshot). Only ids that are already in the tokens: no email.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedRevocation {
    /// The feed position just after this entry (the event's `id:`; opaque: send it
    /// back as `Last-Event-ID`)
    pub id: String,
    /// `token`: the token `jti` of `sub`; `session`: every token with `sid` of `sub`;
    /// `user`: every token of `sub` issued (`iat`) before `not_before`, and every token
    /// of the sessions in `sids`
    pub kind: String,
    /// The tokens' `sub`: a user id, or `service:<client id>` for a service token
    pub sub: String,
    /// `token` only
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `session` only
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `user` only: Unix seconds, compared with `iat`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// `user` only: sessions it names (it also ends every other session the user
    /// had, whose tokens `not_before` covers except those of that very second)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sids: Option<Vec<String>>,
    /// Unix milliseconds: when every token it covers has expired (plus the leeway);
    /// after that it can be forgotten
    pub until: i64,
}

impl FeedRevocation {
    pub(super) fn new(id: &str, revocation: Revocation) -> Self {
        let base = |kind: &str, sub: String, until: i64| Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            sub,
            jti: None,
            sid: None,
            not_before: None,
            sids: None,
            until,
        };
        match revocation {
            Revocation::Token { sub, jti, until_ms } => Self {
                jti: Some(jti),
                ..base("token", sub, until_ms)
            },
            Revocation::Session {
                user_id,
                session_id,
                until_ms,
            } => Self {
                sid: Some(session_id),
                ..base("session", user_id, until_ms)
            },
            Revocation::User {
                user_id,
                not_before,
                sessions,
                until_ms,
            } => Self {
                not_before: Some(not_before),
                sids: Some(sessions),
                ..base("user", user_id, until_ms)
            },
        }
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
