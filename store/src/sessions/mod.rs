//! Sessions: the record (`SessionRecord`, typed once, for the auth service, the Lua
//! and the twin alike), saving a new one, and the refresh rotation in one atomic step
//! on the user's hash tag (`lua/rotate_session.lua`, twin in `memory.rs`).

mod memory;
mod record;
mod redis;

use std::time::Duration;

pub use self::record::SessionRecord;
use super::{Decision, KeySpend, Spend, Store, StoreResult};
use authstream_runtime::clock::UnixTime;

/// A new session for `Store::save_session`: its record (stored as it is) and the
/// lifetimes of the record and of the user's session index.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub record: &'a str,
    pub ttl: Duration,
    pub index_ttl: Duration,
}

/// A refresh of a session as `Store::rotate_session` applies it, in one atomic step
/// on the user's hash tag. The session record is the JSON object the auth service
/// stores; the step reads and writes its fields `created_at`, `refresh_jti`,
/// `previous_refresh_jti`, `rotated_at`, `access_jti`, `issued_at` and `last_seen_at`.
#[derive(Debug, Clone)]
pub struct SessionRotation<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    /// The `jti` of the refresh token presented.
    pub presented_jti: &'a str,
    /// The ids of the pair a rotation issues.
    pub access_jti: &'a str,
    pub refresh_jti: &'a str,
    pub now: UnixTime,
    /// How long the just-retired refresh token still gets the successor pair.
    pub grace: Duration,
    /// The session's absolute lifetime from its `created_at`.
    pub max_age: Duration,
    /// A refresh token's lifetime: the record lives that long after each rotation.
    pub refresh_ttl: Duration,
    /// The session's refresh budget (a key under the user's hash tag): a current or
    /// just-retired token spends one request of it before anything changes, and is
    /// `Limited` when there is none left. Other tokens never touch it.
    pub budget: Option<KeySpend<'a>>,
}

/// What `Store::rotate_session` did. `session` and `user` are the stored JSON of the
/// session record (after the rotation) and of the user record (`None`: no user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current: the session has a new pair.
    Rotated {
        session: String,
        user: Option<String>,
    },
    /// The presented token was just retired (within the grace): nothing changed.
    Grace {
        session: String,
        user: Option<String>,
    },
    /// Any other token of the session: nothing changed (the caller revokes it).
    Reused,
    /// No such session.
    Gone,
    /// The session is past its maximum age: nothing changed.
    Expired,
    /// The token was current or just retired, but the session's refresh budget is
    /// spent: nothing changed.
    Limited,
}

impl Store {
    /// Stores a new session and adds it to the user's session index (one script on
    /// the user's hash tag), with optional rate-limit decisions on another key sent
    /// in the same round trip. Answers how many sessions the index holds now, and the
    /// decisions.
    pub async fn save_session(
        &self,
        session: &NewSession<'_>,
        along: Option<Spend<'_>>,
    ) -> StoreResult<(usize, Vec<Decision>)> {
        let record = self.keys.session(session.user_id, session.session_id);
        let index = self.keys.sessions(session.user_id);
        dispatch!(self.save_session(&record, &index, session, along))
    }

    /// Applies the refresh rotation rules to a session in one atomic step (one
    /// script on the user's hash tag): past its maximum age it is `Expired`; the
    /// current refresh token rotates the pair (compare-and-swap is implied: the
    /// script runs alone), updates `last_seen_at`, the record's lifetime and the
    /// user's session index; the just-retired one within the grace gets `Grace`;
    /// any other is `Reused`. The user record comes back with the session, so the
    /// new pair needs no second read. With a budget, a current or just-retired token
    /// spends it first (`Limited` when spent): the decision comes back beside.
    pub async fn rotate_session(
        &self,
        rotation: &SessionRotation<'_>,
    ) -> StoreResult<(Rotation, Option<Decision>)> {
        let session = self.keys.session(rotation.user_id, rotation.session_id);
        let index = self.keys.sessions(rotation.user_id);
        let user = self.keys.user(rotation.user_id);
        dispatch!(self.rotate_session(&session, &index, &user, rotation))
    }
}
