//! Revocations: writing them, and knowing them without asking the store.
//!
//! Every revocation (token, session, user) writes its markers under the subject's hash
//! tag and is appended to its user's revocation log (a Redis stream; one of
//! `REVOCATION_LOG_SHARDS`, by user, `Keys::revocation_shard`) in the same round trip.
//! Each process keeps a local view of what is revoked: the process that revokes
//! applies it at once, and every process tails every log (a read of each every
//! `TAIL_POLL_INTERVAL`, concurrently, on a connection of its own). Each answer proves
//! the view is complete for that log's users as of that moment; a user's verdict comes
//! from the view only while the last answer of the user's log is at most
//! `FRESH_WITHIN` old, and otherwise the check asks the store (`Store::revoked`), which
//! answers 503 when it is down: never a verdict that could not be checked. So while one
//! log's master is replaced, only that shard's users wait for the store.
//! Open streams learn of revoked sessions and users from the same view
//! (`Store::revocation_notices`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::broadcast;

use super::{Revocation, StreamNotice};
use crate::{Keys, REVOCATION_LOG_SHARDS};
use authstream_runtime::clock::UnixTime;

/// The tail's index of the legacy log (`Keys::legacy_revocation_log`), after the shards.
pub const LEGACY_LOG: usize = REVOCATION_LOG_SHARDS;

/// Every log a view can tail: the shards, then the legacy log.
pub(crate) const LOGS: usize = REVOCATION_LOG_SHARDS + 1;

/// How old the tail's last answer may be for the local view to be trusted: the
/// bound within which a revocation reaches every other process.
pub const FRESH_WITHIN: Duration = Duration::from_millis(50);

/// How often the tail reads the log. (A blocking `XREAD` would deliver sooner, but an
/// idle Redis ends a short block only at its `hz` tick, every 100 ms by default: too
/// rarely to prove freshness.)
pub const TAIL_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Revoked sessions and users are rare; this only needs to absorb a burst.
pub(crate) const NOTICE_CAPACITY: usize = 1024;

/// What this process knows is revoked, with how current that knowledge is.
pub struct RevocationView {
    pub(crate) revoked: RwLock<Revoked>,
    pub(crate) liveness: Liveness,
    pub(crate) notices: broadcast::Sender<StreamNotice>,
    pub(crate) tail: Once,
    /// Revocations applied locally since the last prune.
    pub(crate) applied: AtomicU64,
}

/// Where nothing tails a log (the in-memory store), expired revocations are dropped
/// every this many local revocations.
pub(crate) const PRUNE_EVERY: u64 = 1024;

#[derive(Default)]
pub(crate) struct Revoked {
    /// jti -> (subject, until ms)
    pub(crate) tokens: HashMap<String, (String, i64)>,
    /// session id -> (user, until ms)
    pub(crate) sessions: HashMap<String, (String, i64)>,
    /// user -> (not before, Unix seconds; until ms)
    pub(crate) users: HashMap<String, (i64, i64)>,
}

pub(crate) enum Liveness {
    /// Every revocation passes through this process (the in-memory store).
    Complete,
    /// Complete, for each log's users, as of the tail's last answer from that log:
    /// milliseconds after `since`, plus one (zero: not now). The legacy log counts
    /// while `legacy` is on (its entries cover every user).
    Tailed {
        since: Instant,
        heard: [AtomicU64; LOGS],
        legacy: AtomicBool,
    },
}

impl RevocationView {
    /// A view that sees every revocation as it is made.
    pub fn complete() -> Self {
        Self::new(Liveness::Complete)
    }

    /// A view kept current by tailing the revocation logs; stale for a log's users
    /// until the tail has read all of that log.
    pub fn tailed() -> Self {
        Self::new(Liveness::Tailed {
            since: Instant::now(),
            heard: std::array::from_fn(|_| AtomicU64::new(0)),
            legacy: AtomicBool::new(false),
        })
    }

    /// Whether the legacy log is tailed (and counts for every user's freshness).
    pub fn set_legacy(&self, on: bool) {
        if let Liveness::Tailed { legacy, .. } = &self.liveness {
            legacy.store(on, Ordering::Release);
        }
    }

    /// True while the legacy log is written and tailed (never for a complete view:
    /// no process of an older release shares it).
    pub fn legacy(&self) -> bool {
        matches!(&self.liveness, Liveness::Tailed { legacy, .. } if legacy.load(Ordering::Acquire))
    }

    /// The logs to read: every shard, and the legacy log while it is on.
    pub fn tailed_logs(&self) -> Vec<usize> {
        (0..REVOCATION_LOG_SHARDS)
            .chain(self.legacy().then_some(LEGACY_LOG))
            .collect()
    }

    pub(crate) fn new(liveness: Liveness) -> Self {
        Self {
            revoked: RwLock::new(Revoked::default()),
            liveness,
            notices: broadcast::channel(NOTICE_CAPACITY).0,
            tail: Once::new(),
            applied: AtomicU64::new(0),
        }
    }

    /// True when the view holds every revocation made more than `FRESH_WITHIN` ago,
    /// of every user.
    pub fn is_fresh(&self) -> bool {
        (0..REVOCATION_LOG_SHARDS).all(|shard| self.is_fresh_for_shard(shard))
    }

    /// True when the view holds every revocation of `sub` made more than
    /// `FRESH_WITHIN` ago: its log (and the legacy log, while on) was read since.
    pub fn is_fresh_for(&self, sub: &str) -> bool {
        self.is_fresh_for_shard(Keys::revocation_shard(sub))
    }

    pub(crate) fn is_fresh_for_shard(&self, shard: usize) -> bool {
        match &self.liveness {
            Liveness::Complete => true,
            Liveness::Tailed {
                since,
                heard,
                legacy,
            } => {
                let now = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                let fresh = |log: usize| match heard[log].load(Ordering::Acquire) {
                    0 => false,
                    heard => now.saturating_sub(heard - 1) < FRESH_WITHIN.as_millis() as u64,
                };
                fresh(shard) && (!legacy.load(Ordering::Acquire) || fresh(LEGACY_LOG))
            }
        }
    }

    /// The verdict of the local view, or `None` when it is not fresh for `sub` (ask
    /// the store).
    pub fn check(&self, sub: &str, jti: &str, sid: Option<&str>, iat: i64) -> Option<bool> {
        if !self.is_fresh_for(sub) {
            return None;
        }
        let r = self.revoked.read();
        let of_sub = |entry: Option<&(String, i64)>| entry.is_some_and(|(owner, _)| owner == sub);
        let not_before = r.users.get(sub).map(|(nbf, _)| *nbf);
        let revoked = not_before.is_some_and(|nbf| iat < nbf)
            || of_sub(r.tokens.get(jti))
            || sid.is_some_and(|sid| of_sub(r.sessions.get(sid)));
        // Issued in the very second its user was revoked: before or after the
        // revocation? Only the session markers in the store tell (a user revocation
        // ends the sessions it finds in the store, which its log entry may not list).
        if !revoked && not_before == Some(iat) {
            return None;
        }
        Some(revoked)
    }

    /// Adds a revocation; revoked sessions and users new to the view are told to open
    /// streams (the log brings back what this process applied itself: told once).
    pub fn apply(&self, revocation: &Revocation) {
        let notice = {
            let mut r = self.revoked.write();
            match revocation {
                Revocation::Token { sub, jti, until_ms } => {
                    r.tokens.insert(jti.clone(), (sub.clone(), *until_ms));
                    None
                }
                Revocation::Session {
                    user_id,
                    session_id,
                    until_ms,
                } => r
                    .sessions
                    .insert(session_id.clone(), (user_id.clone(), *until_ms))
                    .is_none()
                    .then(|| StreamNotice::revoked(user_id, Some(session_id))),
                Revocation::User {
                    user_id,
                    not_before,
                    sessions,
                    until_ms,
                } => {
                    let mut new = false;
                    for sid in sessions {
                        new |= r
                            .sessions
                            .insert(sid.clone(), (user_id.clone(), *until_ms))
                            .is_none();
                    }
                    let entry = r.users.entry(user_id.clone()).or_insert((i64::MIN, 0));
                    new |= *not_before > entry.0;
                    *entry = ((*not_before).max(entry.0), (*until_ms).max(entry.1));
                    new.then(|| StreamNotice::revoked(user_id, None))
                }
            }
        };
        if let Some(notice) = notice {
            // No receivers is fine: no stream is open here.
            let _ = self.notices.send(notice);
        }
    }

    /// Adds a revocation made in this process at `now`, now and then dropping those
    /// whose tokens have all expired.
    pub fn apply_local(&self, revocation: &Revocation, now: UnixTime) {
        self.apply(revocation);
        if self.applied.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune(now.millis());
        }
    }

    /// Adds a revocation as read from the log.
    pub fn apply_logged(&self, entry: &str) {
        match serde_json::from_str::<Revocation>(entry) {
            Ok(revocation) => self.apply(&revocation),
            Err(_) => tracing::warn!("ignoring an unreadable revocation log entry"),
        }
    }

    /// The tail has read log `log` (a shard, or `LEGACY_LOG`) to its end with a read
    /// sent at `asked` (the view is complete as of then, not as of when the answer
    /// came).
    pub fn heard(&self, log: usize, asked: Instant) {
        if let Liveness::Tailed { since, heard, .. } = &self.liveness
            && let Some(heard) = heard.get(log)
        {
            let at = asked.saturating_duration_since(*since).as_millis();
            let at = u64::try_from(at).unwrap_or(u64::MAX);
            if heard.fetch_max(at.saturating_add(1), Ordering::AcqRel) == 0 {
                metrics::gauge!("authstream_revocation_feed_up", "log" => log_label(log)).set(1.0);
            }
        }
    }

    /// The tail could not read log `log`: its users are stale until it has read the
    /// log again.
    pub fn lost(&self, log: usize) {
        if let Liveness::Tailed { heard, .. } = &self.liveness
            && let Some(heard) = heard.get(log)
        {
            heard.store(0, Ordering::Release);
            metrics::gauge!("authstream_revocation_feed_up", "log" => log_label(log)).set(0.0);
        }
    }

    /// Forgets revocations of tokens that have all expired at `now_ms`.
    pub fn prune(&self, now_ms: i64) {
        let mut r = self.revoked.write();
        r.tokens.retain(|_, (_, until)| *until > now_ms);
        r.sessions.retain(|_, (_, until)| *until > now_ms);
        r.users.retain(|_, (_, until)| *until > now_ms);
    }

    pub fn notices(&self) -> broadcast::Receiver<StreamNotice> {
        self.notices.subscribe()
    }

    /// Runs `spawn` once for a tailed view, handing it a weak reference (the tail ends
    /// when the view goes).
    pub fn start_tail(self: &Arc<Self>, spawn: impl FnOnce(Weak<Self>)) {
        if matches!(self.liveness, Liveness::Tailed { .. }) {
            self.tail.call_once(|| spawn(Arc::downgrade(self)));
        }
    }
}

/// The metric label of a log: its shard number, or `legacy` (a closed set).
pub(crate) fn log_label(log: usize) -> &'static str {
    const LABELS: [&str; LOGS] = ["0", "1", "2", "3", "4", "5", "6", "7", "legacy"];
    LABELS.get(log).copied().unwrap_or("legacy")
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
