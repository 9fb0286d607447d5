//! The revocation feed (`GET /auth/revocations`) followed into an in-memory view.
//!
//! The view of what is revoked is here; following the feed over HTTP (service tokens,
//! reconnects) is in `connection`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authstream_proto::Scope;
use authstream_proto::feed::{FeedHeartbeat, FeedReset, FeedRevocation, RevocationKind};
use parking_lot::{Mutex, RwLock};

use crate::Claims;

mod connection;

pub(crate) use connection::{Connector, follow};

/// Reconnect when no event came for this long (heartbeats come every ~10 ms).
const IDLE: Duration = Duration::from_secs(1);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often entries past their `until` are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// The scope the feed needs.
const SCOPE: Scope = Scope::RevocationsRead;

/// One `revocation` event (also each entry of a `reset`).
type Revocation = FeedRevocation;
type Reset = FeedReset;
type Heartbeat = FeedHeartbeat;

/// What is revoked, each until its `until` (Unix ms).
#[derive(Default)]
struct View {
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    /// `sub` → (`not_before`, `until`): the latest user revocation.
    users: HashMap<String, (i64, i64)>,
}

impl View {
    fn apply(&mut self, r: Revocation) {
        let keep = |map: &mut HashMap<String, i64>, key: String, until: i64| {
            let at = map.entry(key).or_insert(until);
            *at = (*at).max(until);
        };
        match r.kind {
            RevocationKind::Token => {
                if let Some(jti) = r.jti {
                    keep(&mut self.tokens, jti, r.until);
                }
            }
            RevocationKind::Session => {
                if let Some(sid) = r.sid {
                    keep(&mut self.sessions, sid, r.until);
                }
            }
            RevocationKind::User => {
                for sid in r.sids.unwrap_or_default() {
                    keep(&mut self.sessions, sid, r.until);
                }
                if let Some(not_before) = r.not_before {
                    let at = self.users.entry(r.sub).or_insert((not_before, r.until));
                    *at = (at.0.max(not_before), at.1.max(r.until));
                }
            }
        }
    }

    /// The token, its session, or its user's tokens up to `not_before` (that second
    /// included: the feed cannot tell a token of that very second from a newer one).
    fn revoked(&self, claims: &Claims) -> bool {
        self.tokens.contains_key(&claims.reg.jti)
            || claims
                .sid
                .as_ref()
                .is_some_and(|sid| self.sessions.contains_key(sid))
            || self
                .users
                .get(&claims.reg.sub)
                .is_some_and(|(not_before, _)| claims.reg.iat <= *not_before)
    }

    fn prune(&mut self, now_ms: i64) {
        self.tokens.retain(|_, until| *until > now_ms);
        self.sessions.retain(|_, until| *until > now_ms);
        self.users.retain(|_, (_, until)| *until > now_ms);
    }
}

/// The view and how current it is.
pub(crate) struct Feed {
    view: RwLock<View>,
    base: Instant,
    /// Nanoseconds after `base` of the last heartbeat; 0 before the first.
    last_heartbeat: AtomicU64,
    /// The last feed position applied (opaque): where a new connection resumes.
    position: Mutex<Option<String>>,
    last_prune: Mutex<Instant>,
}

impl Feed {
    pub(crate) fn new() -> Self {
        let base = Instant::now();
        Self {
            view: RwLock::new(View::default()),
            base,
            last_heartbeat: AtomicU64::new(0),
            position: Mutex::new(None),
            last_prune: Mutex::new(base),
        }
    }

    /// True when a heartbeat came within `bound`.
    pub(crate) fn fresh(&self, bound: Duration) -> bool {
        let last = self.last_heartbeat.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now.saturating_sub(last) < u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn revoked(&self, claims: &Claims) -> bool {
        self.view.read().revoked(claims)
    }

    fn position(&self) -> Option<String> {
        self.position.lock().clone()
    }

    /// Applies one event; true for a heartbeat.
    fn handle(&self, event: &eventsource_stream::Event) -> bool {
        match event.event.as_str() {
            "revocation" => match serde_json::from_str::<Revocation>(&event.data) {
                Ok(r) => {
                    self.view.write().apply(r);
                    if !event.id.is_empty() {
                        *self.position.lock() = Some(event.id.clone());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable revocation"),
            },
            "reset" => match serde_json::from_str::<Reset>(&event.data) {
                Ok(reset) => {
                    let mut view = View::default();
                    for r in reset.revocations {
                        view.apply(r);
                    }
                    *self.view.write() = view;
                    *self.position.lock() = Some(reset.position);
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable reset"),
            },
            "heartbeat" => match serde_json::from_str::<Heartbeat>(&event.data) {
                Ok(hb) => {
                    *self.position.lock() = Some(hb.position);
                    let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    self.last_heartbeat.store(now.max(1), Ordering::Release);
                    self.prune_now_and_then();
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable heartbeat"),
            },
            _ => {}
        }
        false
    }

    fn prune_now_and_then(&self) {
        let mut last = self.last_prune.lock();
        if last.elapsed() >= PRUNE_EVERY {
            *last = Instant::now();
            self.view.write().prune(unix_ms());
        }
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, jti: &str, sid: &str, iat: i64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "a", "aud": "a", "sub": sub, "iat": iat, "nbf": iat, "exp": iat + 60,
            "jti": jti, "token_type": "access", "sid": sid,
        }))
        .unwrap()
    }

    fn revocation(json: serde_json::Value) -> Revocation {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn tokens_sessions_and_users_are_revoked_until_their_until() {
        let mut view = View::default();
        view.apply(revocation(serde_json::json!(
            {"id": "1-0", "kind": "token", "sub": "u", "jti": "j1", "until": 2000}
        )));
        view.apply(revocation(serde_json::json!(
            {"id": "2-0", "kind": "session", "sub": "u", "sid": "s1", "until": 2000}
        )));
        view.apply(revocation(serde_json::json!(
            {"id": "3-0", "kind": "user", "sub": "v", "not_before": 100, "sids": ["s9"], "until": 2000}
        )));
        assert!(view.revoked(&claims("u", "j1", "s0", 1)));
        assert!(view.revoked(&claims("u", "j2", "s1", 1)));
        assert!(!view.revoked(&claims("u", "j2", "s2", 1)));
        assert!(view.revoked(&claims("v", "j3", "s3", 99)));
        assert!(
            view.revoked(&claims("v", "j3", "s3", 100)),
            "that very second"
        );
        assert!(!view.revoked(&claims("v", "j3", "s3", 101)));
        assert!(
            view.revoked(&claims("w", "j4", "s9", 101)),
            "a listed session"
        );
        view.prune(2000);
        assert!(!view.revoked(&claims("u", "j1", "s1", 1)));
        assert!(!view.revoked(&claims("v", "j3", "s3", 99)));
    }
}
