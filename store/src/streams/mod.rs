//! Stream tokens and resume grants as the store keeps them: the mint (the user's side
//! and the generation's, one script each), the open (the generation's side takes the
//! grant and reads the history, the user's side admits the stream), the refusals, and
//! the statistics (`stats`). Scripts in `lua/`, twins in `memory.rs`.

mod grant;
mod memory;
mod redis;
mod stats;
mod tokens;

pub use self::tokens::*;

use std::time::Duration;

pub(crate) use self::grant::Granting;
pub use self::stats::{
    PendingStats, STATS_FLUSH_INTERVAL, Stats, StatsFlush, expiry_second, flush_stats,
    record_consumed, record_issued, record_rejected, stats,
};
use super::{Decision, EventPage, Gcra, GenerationStatus, Store, StoreResult};

/// A token's state marker (`Keys::stream_token_state`): `issued` at mint, `used` once
/// consumed. It lives twice the token's lifetime, so that a token presented after
/// its expiry, or again, is told apart from one never issued, and then goes too.
pub(crate) const ISSUED: &str = "issued";

pub(crate) const USED: &str = "used";

/// Why a presented stream token was not accepted (for logs and metrics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued (or so long ago that its state marker is gone too).
    Unknown,
    /// Issued, never consumed, and past its lifetime.
    Expired,
    /// Already consumed once: a replay.
    Replay,
    /// A grant of the other kind (a resume grant presented as a token, or the reverse).
    WrongKind,
}

impl Refusal {
    /// What a missing grant's state marker says.
    pub(crate) fn of_marker(marker: Option<&str>) -> Self {
        match marker {
            Some(USED) => Self::Replay,
            Some(ISSUED) => Self::Expired,
            _ => Self::Unknown,
        }
    }

    /// The name the store's open script gives a refusal.
    pub(crate) fn named(name: &str) -> Self {
        match name {
            "replay" => Self::Replay,
            "expired" => Self::Expired,
            "wrong_kind" => Self::WrongKind,
            _ => Self::Unknown,
        }
    }
}

/// What a stream open asks of its generation's slot, in one step (`Store::open_stream`).
#[derive(Debug, Clone, Copy)]
pub struct StreamOpening<'a> {
    pub generation_id: &'a str,
    /// The digest of the presented stream token: tried first.
    pub token: Option<&'a str>,
    /// The digest of the presented resume cookie: tried when there is no token or it
    /// was refused (a browser reconnecting to the URL of a used token).
    pub cookie: Option<&'a str>,
    /// The resume point, a well-formed event id (`parse_event_id`).
    pub after: Option<&'a str>,
    /// At most this many events of the history (`read_events_page`).
    pub page_size: usize,
    /// The digest of the next resume grant's secret.
    pub next_resume: &'a str,
    /// How long the next resume grant lives at most (never past its session).
    pub resume_ttl: Duration,
    pub now_ms: i64,
}

/// What `Store::open_stream` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOpened {
    /// Nothing was taken: why the token (else the cookie) was refused.
    Refused(Refusal),
    /// A grant was taken (used up, whatever follows): its stored JSON, whether it was
    /// the cookie's, and what was found beside it.
    Taken {
        grant: String,
        via_cookie: bool,
        found: GrantFound,
    },
}

/// What the generation's slot held for a taken grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantFound {
    /// No generation record.
    Gone,
    /// Another user's generation, and the grant is not an admin's.
    NotOwner,
    /// The grant's session has reached its end.
    SessionEnded,
    /// The next resume grant's digest was taken (once in 2^256).
    Collision,
    /// The record, the first page of history after the resume point, and the next
    /// resume grant, stored for `resume_ttl`.
    Open {
        owner_id: String,
        status: GenerationStatus,
        page: EventPage,
        resume_ttl: Duration,
    },
}

/// What a stream open asks of its user's slot, in one step (`Store::admit_stream`).
#[derive(Debug, Clone, Copy)]
pub struct StreamAdmission<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    /// The grant's issue time, Unix seconds (a user-wide revocation since refuses it).
    pub issued_at_secs: i64,
    /// The user's rate-limit budget and its GCRA parameters: one request is taken.
    pub rate_limit_key: &'a str,
    pub gcra: Gcra,
    /// For a resume: the generation's owner. The session must still exist and the
    /// user's roles are read again (a demoted admin loses other users' generations).
    pub recheck_owner: Option<&'a str>,
    /// The stream's place among the user's open streams.
    pub place: &'a str,
    pub place_expires_at_ms: i64,
    pub max_streams: usize,
    pub now_ms: i64,
    /// Places of the user's closed streams to give back first, whatever the decision.
    pub released: &'a [String],
}

/// What `Store::admit_stream` decided, in the order it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    RateLimited,
    Revoked,
    SessionEnded,
    NotOwner,
    TooManyStreams,
    /// The place is taken: give it back with `expiring_remove` on `Keys::open_streams`.
    Admitted,
}

/// The user's side of a stream token mint (`Store::mint_stream_token`): one request
/// of the rate-limit budget, and the session record read.
#[derive(Debug, Clone, Copy)]
pub struct MintAdmission<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub rate_limit_key: &'a str,
    pub gcra: Gcra,
}

/// The generation's side of a stream token mint: the grant stored under its digest,
/// if the generation exists and is the user's (or the user is an admin).
#[derive(Debug, Clone, Copy)]
pub struct NewStreamToken<'a> {
    pub generation_id: &'a str,
    pub user_id: &'a str,
    pub admin: bool,
    pub digest: &'a str,
    /// The grant's JSON.
    pub grant: &'a str,
    pub ttl: Duration,
}

/// What the generation's side of a mint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minted {
    Stored,
    /// No generation record.
    Gone,
    NotOwner,
    /// The digest was taken (once in 2^256): try another secret.
    Collision,
}

/// What `Store::mint_stream_token` answered, for the sides it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MintOutcome {
    /// The rate-limit decision and the session record (`None`: no session).
    pub admission: Option<(Decision, Option<String>)>,
    pub minted: Option<Minted>,
}

impl Store {
    /// The generation's side of a stream open in ONE atomic step on its hash tag:
    /// takes the token (else the cookie) with `GETDEL`, marking it used, then reads the
    /// record and the history after the resume point, and stores the next resume grant.
    pub async fn open_stream(&self, opening: &StreamOpening<'_>) -> StoreResult<StreamOpened> {
        let g = opening.generation_id;
        // A grant not presented is never touched; its keys only fill their places.
        let (token, cookie) = (opening.token.unwrap_or("-"), opening.cookie.unwrap_or("-"));
        let keys = [
            self.keys.stream_token(g, token),
            self.keys.stream_token_state(g, token),
            self.keys.stream_token(g, cookie),
            self.keys.stream_token_state(g, cookie),
            self.keys.generation(g),
            self.keys.events(g),
            self.keys.stream_token(g, opening.next_resume),
            self.keys.stream_token_state(g, opening.next_resume),
        ];
        dispatch!(self.open_stream(&keys, opening))
    }

    /// The user's side of a stream open in ONE atomic step on their hash tag: the
    /// places of the user's closed streams given back, then the rate limit, revocation, for a resume the session and the role, and a place among the
    /// user's open streams. The decision is the rate limit's (for the headers).
    pub async fn admit_stream(
        &self,
        admission: &StreamAdmission<'_>,
    ) -> StoreResult<(Decision, Admission)> {
        let (user, session) = (admission.user_id, admission.session_id);
        let keys = [
            admission.rate_limit_key.to_owned(),
            self.keys.not_before(user),
            self.keys.revoked_session(user, session),
            self.keys.session(user, session),
            self.keys.user(user),
            self.keys.open_streams(user),
        ];
        dispatch!(self.admit_stream(&keys, admission))
    }

    /// A stream token mint in ONE round trip: the user's side (rate limit, session
    /// read) and the generation's side (ownership, `SET NX`) are one script each, on
    /// their own hash tags, sent together in one pipeline. The two are not atomic
    /// together: a token stored beside a refusal is never handed out and expires.
    pub async fn mint_stream_token(
        &self,
        admission: Option<&MintAdmission<'_>>,
        token: Option<&NewStreamToken<'_>>,
    ) -> StoreResult<MintOutcome> {
        if admission.is_none() && token.is_none() {
            return Ok(MintOutcome::default());
        }
        let user_keys = admission.map(|a| {
            [
                a.rate_limit_key.to_owned(),
                self.keys.session(a.user_id, a.session_id),
            ]
        });
        let token_keys = token.map(|t| {
            [
                self.keys.generation(t.generation_id),
                self.keys.stream_token(t.generation_id, t.digest),
                self.keys.stream_token_state(t.generation_id, t.digest),
            ]
        });
        let user = admission.zip(user_keys.as_ref());
        let token = token.zip(token_keys.as_ref());
        dispatch!(self.mint_stream_token(user, token))
    }
}
