//! Revocations as the store keeps them: the entry (`Revocation`), its markers and the
//! sessions it ends in one script (`lua/revoke.lua`), the sharded logs every process
//! tails (`tail.rs`) into its local view (`view.rs`), and the check against both.
//! Who may revoke what stays in `crate::revocations`.

mod memory;
mod redis;
mod revoke;
mod tail;
mod view;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use self::revoke::*;
pub use self::view::{FRESH_WITHIN, LEGACY_LOG, RevocationView, TAIL_POLL_INTERVAL};
use super::{Backend, Keys, Store, StoreResult};
use authstream_runtime::clock::UnixTime;

/// One revocation, as written to the log. `until_ms`: when every token it covers has
/// expired (Unix ms), after which it can be forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Revocation {
    Token {
        sub: String,
        jti: String,
        until_ms: i64,
    },
    Session {
        user_id: String,
        session_id: String,
        until_ms: i64,
    },
    /// Everything of the user issued before `not_before` (Unix seconds), and the
    /// sessions current at that moment (their tokens of that very second): those
    /// listed, and every session in the user's session index when it is written
    /// (`Store::revoke`), which the entry does not list.
    User {
        user_id: String,
        not_before: i64,
        sessions: Vec<String>,
        until_ms: i64,
    },
}

impl Revocation {
    /// The user (or service subject) whose tokens it covers: its log shard's key.
    pub fn subject(&self) -> &str {
        match self {
            Self::Token { sub, .. } => sub,
            Self::Session { user_id, .. } | Self::User { user_id, .. } => user_id,
        }
    }

    pub fn until_ms(&self) -> i64 {
        match self {
            Self::Token { until_ms, .. }
            | Self::Session { until_ms, .. }
            | Self::User { until_ms, .. } => *until_ms,
        }
    }

    /// The marker keys and values it writes, all under the subject's hash tag.
    pub fn markers(&self, keys: &Keys) -> Vec<(String, String)> {
        match self {
            Self::Token { sub, jti, .. } => vec![(keys.revoked_token(sub, jti), "1".into())],
            Self::Session {
                user_id,
                session_id,
                ..
            } => vec![(keys.revoked_session(user_id, session_id), "1".into())],
            Self::User {
                user_id,
                not_before,
                sessions,
                ..
            } => sessions
                .iter()
                .map(|sid| (keys.revoked_session(user_id, sid), "1".to_owned()))
                .chain([(keys.not_before(user_id), not_before.to_string())])
                .collect(),
        }
    }
}

/// Published on the stream-notices channel: the stream service ends every open
/// stream a notice covers, on every replica. `None` for the session or the
/// generation means all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNotice {
    #[serde(default)]
    pub reason: NoticeReason,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
}

/// Why streams are told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeReason {
    /// The session or user was revoked: the streams end for good.
    #[default]
    Revoked,
    /// The server drops the streams as a network failure would (the demo's cut):
    /// nothing is revoked, and clients resume.
    Disconnect,
}

impl StreamNotice {
    pub fn revoked(user_id: &str, session_id: Option<&str>) -> Self {
        Self {
            reason: NoticeReason::Revoked,
            user_id: user_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            generation_id: None,
        }
    }

    pub fn disconnect(user_id: &str, session_id: &str, generation_id: &str) -> Self {
        Self {
            reason: NoticeReason::Disconnect,
            user_id: user_id.to_owned(),
            session_id: Some(session_id.to_owned()),
            generation_id: Some(generation_id.to_owned()),
        }
    }

    pub fn covers(&self, user_id: &str, session_id: &str, generation_id: &str) -> bool {
        self.user_id == user_id
            && self.session_id.as_deref().is_none_or(|s| s == session_id)
            && self
                .generation_id
                .as_deref()
                .is_none_or(|g| g == generation_id)
    }
}

/// What one revocation writes (`Store::revoke`): its markers, and the session records
/// it ends (deleted, and removed from their user's session index), in one script.
#[derive(Debug, Clone, Default)]
pub(crate) struct RevocationWrite {
    pub(crate) markers: Vec<(String, String)>,
    /// How long the markers are kept.
    pub(crate) keep_for: Duration,
    /// The user's session index (none for a token).
    pub(crate) index: Option<String>,
    /// The records of the sessions named, and their ids.
    pub(crate) records: Vec<String>,
    pub(crate) session_ids: Vec<String>,
    /// A user revocation also ends every session in the index: the key prefixes of
    /// their records and of their revocation markers.
    pub(crate) all: Option<EveryIndexedSession>,
}

#[derive(Debug, Clone)]
pub(crate) struct EveryIndexedSession {
    pub(crate) record_prefix: String,
    pub(crate) marker_prefix: String,
}

/// How many revocation log entries one read takes at most.
pub const REVOCATION_PAGE: usize = 1000;

impl Store {
    /// Writes a revocation's markers (one script on the subject's hash tag: all of
    /// them or none), ends the session records it covers (a revoked session's; a
    /// revoked user's listed sessions and every session in the user's index, each
    /// marked revoked, deleted and taken out of the index, in the same script) and
    /// appends it to its user's revocation log (and the legacy log while on), in one
    /// round trip, then applies it to this process's view at once. Each log append is
    /// another part of the same wave (each log is one key, in its own slot): if one
    /// fails, the call fails, and the caller retries; the markers alone already refuse
    /// the tokens to every validation that asks the store.
    pub async fn revoke(&self, revocation: &Revocation, now: UnixTime) -> StoreResult<()> {
        let keep_for = now.until(UnixTime(revocation.until_ms()));
        if keep_for.is_zero() {
            // Every token it covers has expired already.
            return Ok(());
        }
        let write = match revocation {
            Revocation::Token { .. } => RevocationWrite::default(),
            Revocation::Session {
                user_id,
                session_id,
                ..
            } => self.ended_sessions(user_id, std::slice::from_ref(session_id)),
            Revocation::User {
                user_id, sessions, ..
            } => RevocationWrite {
                all: Some(EveryIndexedSession {
                    record_prefix: self.keys.session(user_id, ""),
                    marker_prefix: self.keys.revoked_session(user_id, ""),
                }),
                ..self.ended_sessions(user_id, sessions)
            },
        };
        let write = RevocationWrite {
            markers: revocation.markers(&self.keys),
            keep_for,
            ..write
        };
        let entry = serde_json::to_string(revocation).unwrap_or_default();
        let window = i64::try_from(self.revocation_window.as_millis()).unwrap_or(i64::MAX);
        let logs = self.revocation_logs_of(revocation.subject());
        let written = dispatch!(self.revoke(
            &write,
            &logs,
            &entry,
            now.millis(),
            now.millis().saturating_sub(window)
        ));
        // Applied even when the store failed: refusing more here is never unsafe.
        self.revocations.apply_local(revocation, now);
        written.map(drop)
    }

    pub(crate) fn ended_sessions(&self, user_id: &str, session_ids: &[String]) -> RevocationWrite {
        RevocationWrite {
            index: Some(self.keys.sessions(user_id)),
            records: session_ids
                .iter()
                .map(|sid| self.keys.session(user_id, sid))
                .collect(),
            session_ids: session_ids.to_vec(),
            ..RevocationWrite::default()
        }
    }

    /// The logs a revocation of `sub` is appended to: its shard's, and the legacy
    /// log while it is on.
    pub(crate) fn revocation_logs_of(&self, sub: &str) -> Vec<String> {
        let shard = self.keys.revocation_log(Keys::revocation_shard(sub));
        let legacy = self
            .revocations
            .legacy()
            .then(|| self.keys.legacy_revocation_log());
        [shard].into_iter().chain(legacy).collect()
    }

    /// The key of log `log` (a shard, or `revocation::LEGACY_LOG`).
    pub(crate) fn revocation_log(&self, log: usize) -> String {
        if log == LEGACY_LOG {
            self.keys.legacy_revocation_log()
        } else {
            self.keys.revocation_log(log)
        }
    }

    /// The logs to read for every revocation: each shard, and the legacy log while on.
    pub fn revocation_log_indexes(&self) -> Vec<usize> {
        self.revocations.tailed_logs()
    }

    /// Entries of log `log` (see `revocation_log_indexes`) after `after` (`0-0` for
    /// all), oldest first, at most `REVOCATION_PAGE` of them: `(id, entry)`.
    pub async fn revocations_after(
        &self,
        log: usize,
        after: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let log = self.revocation_log(log);
        dispatch!(self.read_log(&log, after, REVOCATION_PAGE))
    }

    /// Whether revocations also go to (and are read from) the one log of the release
    /// before: `REVOCATION_LEGACY_LOG`, on by default for one release. Without it, a
    /// process of the release before would miss every revocation made by this one.
    #[must_use]
    pub fn with_legacy_revocation_log(self, on: bool) -> Self {
        self.revocations.set_legacy(on);
        self
    }

    /// True when the token `jti` of `sub`, its session `sid`, or everything of `sub`
    /// issued at `iat` (Unix seconds) was revoked. No round trip while the local view
    /// is fresh; otherwise one `MGET` of the three markers (they share a hash tag).
    pub async fn revoked(
        &self,
        sub: &str,
        jti: &str,
        sid: Option<&str>,
        iat: i64,
    ) -> StoreResult<bool> {
        if let Some(verdict) = self.revocations.check(sub, jti, sid, iat) {
            metrics::counter!("authstream_revocation_checks_total", "source" => "local")
                .increment(1);
            return Ok(verdict);
        }
        self.revoked_in_store(sub, jti, sid, iat).await
    }

    /// `revoked`, always asking the store (one `MGET`): exact at once in every process,
    /// for where that matters more than the round trip (a stream token's session must
    /// be dead in every process the moment its revocation returns).
    pub async fn revoked_in_store(
        &self,
        sub: &str,
        jti: &str,
        sid: Option<&str>,
        iat: i64,
    ) -> StoreResult<bool> {
        metrics::counter!("authstream_revocation_checks_total", "source" => "store").increment(1);
        let mut lookup = vec![self.keys.not_before(sub), self.keys.revoked_token(sub, jti)];
        if let Some(sid) = sid {
            lookup.push(self.keys.revoked_session(sub, sid));
        }
        let found = self.mget(&lookup).await?;
        let not_before = found
            .first()
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok());
        Ok(not_before.is_some_and(|nbf| iat < nbf) || found.iter().skip(1).any(Option::is_some))
    }

    /// True while this process's view of revocations is known to be complete: in
    /// memory always; on Redis while every log was read within the freshness bound.
    pub fn revocations_fresh(&self) -> bool {
        self.revocations.is_fresh()
    }

    /// True while this process's view holds every revocation of `sub` (its log was
    /// read within the freshness bound).
    pub fn revocations_fresh_for(&self, sub: &str) -> bool {
        self.revocations.is_fresh_for(sub)
    }

    /// Revoked sessions and users, as this process learns of them, for open streams.
    pub fn revocation_notices(&self) -> broadcast::Receiver<StreamNotice> {
        self.revocations.notices()
    }

    /// Starts tailing the revocation logs into the local view (Redis, once per view;
    /// `start_background`).
    pub(crate) fn follow_revocations(&self) {
        if let Backend::Redis(redis) = &self.backend
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.revocations.start_tail(|view| {
                let logs = std::array::from_fn(|log| self.revocation_log(log));
                redis.tail_revocations(logs, view, REVOCATION_PAGE);
            });
        }
    }
}
