//! The store both services share: Redis in production, an in-memory twin for the
//! single-process default. Both pass one conformance suite (`tests/shared/store_conformance.rs`).
//!
//! Every operation is bounded by the configured timeout; a store that does not answer
//! in time is `StoreError::Unavailable`, which the services answer with 503.
//!
//! Each operation is one sequential round trip to Redis (a command, a script or a
//! pipeline), counted here for both backends alike in
//! `authstream_store_round_trips_total{op}`, so that a test on either store sees what a
//! request costs. (On Redis, `read_events` from a point outside the kept history reads
//! once more; it counts as one.)

mod keys;
mod memory;
mod redis;
pub mod sharded;
pub mod slot;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

pub use self::keys::{Keys, REVOCATION_LOG_SHARDS};
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
pub use self::sharded::{Delivery, STALL_AFTER};
use crate::clock::UnixTime;
use crate::error::{ApiError, ErrorCode};
use crate::events::GenerationStatus;
use crate::rate_limit::{Cost, Decision, Gcra};
use crate::revocation::{Revocation, RevocationView, StreamNotice};
use crate::stream_token::{PendingStats, Refusal, Stats, StatsFlush};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store unavailable");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable, try again shortly",
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A message from the store's publish/subscribe fan-out.
#[derive(Debug, Clone)]
pub enum PubSubMessage {
    Message {
        channel: Arc<str>,
        payload: Arc<str>,
    },
    /// The subscription was re-established; messages may have been missed meanwhile.
    Reconnected,
    /// The subscription to this one channel (a generation's) was lost and is live
    /// again, maybe on another node; its messages may have been missed meanwhile.
    Resubscribed { channel: Arc<str> },
}

/// One write of a batch (`Store::write_all`).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Set {
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    },
    /// `SET key value NX EX ttl` (`PX` below whole seconds); `write_all` tells
    /// whether every one of these created its key.
    SetNx {
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    },
    IncrBy {
        key: &'a str,
        by: i64,
    },
    ExpiringAdd {
        key: &'a str,
        member: &'a str,
        expires_at_ms: i64,
        now_ms: i64,
    },
    ExpiringRemove {
        key: &'a str,
        member: &'a str,
    },
}

/// What `Store::get_del_marking` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Value(String),
    /// No value; the marker as it was, if any.
    Missing {
        marker: Option<String>,
    },
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

/// A read sent in the same round trip as a rate-limit decision
/// (`Store::rate_limit_and_read`), or alone (`Store::read`).
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    Get(&'a str),
    HashGetAll(&'a str),
    SetMembers(&'a str),
}

/// What a `Read` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAnswer {
    Value(Option<String>),
    Hash(HashMap<String, String>),
    Members(Vec<String>),
}

impl ReadAnswer {
    /// The value of a `Read::Get`.
    pub fn into_value(self) -> Option<String> {
        match self {
            Self::Value(v) => v,
            _ => None,
        }
    }

    /// The fields of a `Read::HashGetAll` (empty: no such hash).
    pub fn into_hash(self) -> HashMap<String, String> {
        match self {
            Self::Hash(h) => h,
            _ => HashMap::new(),
        }
    }

    /// The members of a `Read::SetMembers`.
    pub fn into_members(self) -> Vec<String> {
        match self {
            Self::Members(m) => m,
            _ => Vec::new(),
        }
    }
}

/// What one revocation writes (`Store::revoke`): its markers, and the session records
/// it ends (deleted, and removed from their user's session index), in one script.
#[derive(Debug, Clone, Default)]
struct RevocationWrite {
    markers: Vec<(String, String)>,
    /// How long the markers are kept.
    keep_for: Duration,
    /// The user's session index (none for a token).
    index: Option<String>,
    /// The records of the sessions named, and their ids.
    records: Vec<String>,
    session_ids: Vec<String>,
    /// A user revocation also ends every session in the index: the key prefixes of
    /// their records and of their revocation markers.
    all: Option<EveryIndexedSession>,
}

#[derive(Debug, Clone)]
struct EveryIndexedSession {
    record_prefix: String,
    marker_prefix: String,
}

/// One Cluster master in `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeHealth {
    /// `host:port`, as the cluster names it.
    pub node: String,
    pub up: bool,
    /// On a stream replica: its subscription to this node delivered the canary
    /// within the last 3 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivering: Option<bool>,
}

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

/// A rate-limit decision on one key, sent along with another operation (the
/// rotation's per-session budget): the key, its GCRA parameters and the cost.
#[derive(Debug, Clone, Copy)]
pub struct KeySpend<'a> {
    pub key: &'a str,
    pub gcra: Gcra,
    pub cost: Cost,
}

/// One budget among the fields of a hash of budgets (`rate_limit::FIELDS_SCRIPT`).
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    pub field: &'a str,
    pub gcra: Gcra,
}

/// Rate-limit decisions on the budgets of one hash, all or nothing
/// (`Store::rate_limit_fields`), alone or along with another operation.
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub key: &'a str,
    pub budgets: &'a [Budget<'a>],
    pub cost: Cost,
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

#[derive(Clone)]
enum Backend {
    Redis(Box<RedisStore>),
    Memory(MemoryStore),
}

/// Revocations matter for as long as the longest-lived token, plus leeway (the
/// default lifetimes); services set theirs with `Store::with_revocation_window`.
const DEFAULT_REVOCATION_WINDOW: Duration = Duration::from_secs(604_800 + 5);

/// How many revocation log entries one read takes at most.
pub const REVOCATION_PAGE: usize = 1000;

/// The store handle; cheap to clone. Clones share one local view of revocations.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    keys: Keys,
    revocations: Arc<RevocationView>,
    revocation_window: Duration,
    /// Round trips made through this handle and its clones (see `round_trips`).
    round_trips: Arc<AtomicU64>,
    /// Stream token statistics counted here, flushed in the background.
    stream_stats: Arc<PendingStats>,
    /// `STREAM_LEGACY_FANOUT`: appends also publish on `Keys::events_channel`.
    legacy_fanout: bool,
}

/// One round trip: counted, then sent to the backend.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        $self.round_trip(stringify!($method));
        dispatch_uncounted!($self.$method($($arg),*))
    }};
}

/// For what waits on no request (a subscription, the test dump).
macro_rules! dispatch_uncounted {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Redis(s) => s.$method($($arg),*).await,
            Backend::Memory(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    pub fn redis(store: RedisStore, prefix: &str) -> Self {
        let keys = Keys::new(prefix);
        store.set_channels(vec![keys.events_channel(), keys.notices_channel()]);
        let store = Self {
            backend: Backend::Redis(Box::new(store)),
            keys,
            revocations: Arc::new(RevocationView::tailed()),
            revocation_window: DEFAULT_REVOCATION_WINDOW,
            round_trips: Arc::default(),
            stream_stats: Arc::default(),
            legacy_fanout: true,
        };
        store.follow_revocations();
        store
    }

    /// In this process only: every revocation is applied to the local view as it is
    /// made, so the view is always complete.
    pub fn memory(prefix: &str) -> Self {
        Self {
            backend: Backend::Memory(MemoryStore::new()),
            keys: Keys::new(prefix),
            revocations: Arc::new(RevocationView::complete()),
            revocation_window: DEFAULT_REVOCATION_WINDOW,
            round_trips: Arc::default(),
            stream_stats: Arc::default(),
            legacy_fanout: true,
        }
    }

    /// How long revocation log entries are kept: the longest token lifetime plus leeway.
    #[must_use]
    pub fn with_revocation_window(mut self, window: Duration) -> Self {
        self.revocation_window = window;
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Counts one sequential round trip of `op`, what a request waits for.
    fn round_trip(&self, op: &'static str) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("authstream_store_round_trips_total", "op" => op).increment(1);
    }

    /// How many round trips this handle and its clones have made (the metric
    /// `authstream_store_round_trips_total` counts every handle of the process).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The stream token statistics this process has counted and not yet flushed; the
    /// first use starts the background flush.
    pub(crate) fn stream_stats(&self) -> &PendingStats {
        self.stream_stats.follow(self);
        &self.stream_stats
    }

    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(r) if r.is_cluster() => "redis-cluster",
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }

    /// Readiness: an error when the store cannot be reached as a whole; otherwise,
    /// on a Cluster, each master that serves slots and whether it answered (one
    /// electing a new master is down while the rest serve: degraded, not unready).
    /// Empty for one Redis or memory once they answer.
    pub async fn nodes(&self) -> StoreResult<Vec<NodeHealth>> {
        match &self.backend {
            Backend::Redis(s) if s.is_cluster() => {
                let nodes = s.masters().await?;
                for node in &nodes {
                    metrics::gauge!("authstream_store_node_up", "node" => node.node.clone())
                        .set(if node.up { 1.0 } else { 0.0 });
                }
                if !nodes.is_empty() && nodes.iter().all(|n| !n.up) {
                    return Err(StoreError::Unavailable("no cluster node answers".into()));
                }
                Ok(nodes)
            }
            _ => self.ping().await.map(|()| Vec::new()),
        }
    }

    pub async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self.get(key))
    }

    pub async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.mget(keys))
    }

    /// `SET key value [PX ttl]`.
    pub async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<()> {
        dispatch!(self.set(key, value, ttl))
    }

    /// `SET key value NX EX ttl` (`PX` when `ttl` is not whole seconds): true when
    /// this call created the key.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self.set_nx(key, value, ttl))
    }

    /// `SET key value NX` with no expiry: true when this call created the key.
    pub async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        dispatch!(self.set_nx_no_expiry(key, value))
    }

    /// `GETDEL`: the value, and the key is gone, atomically.
    pub async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self.get_del(key))
    }

    /// One atomic step: `GETDEL key`; when it held a value, `marker` (if it exists)
    /// becomes `mark`, keeping its expiry. Answers the value, and on a miss the marker
    /// as it was. `key` and `marker` must share a hash tag.
    pub async fn get_del_marking(&self, key: &str, marker: &str, mark: &str) -> StoreResult<Taken> {
        dispatch!(self.get_del_marking(key, marker, mark))
    }

    pub async fn del(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self.del(key))
    }

    pub async fn exists(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self.exists(key))
    }

    /// `PTTL`: how long the key has left; `None` when it is missing or never expires.
    pub async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        dispatch!(self.pttl(key))
    }

    /// Replaces the value only if it is still `expected`; `new = None` deletes it.
    /// `ttl = None` keeps no expiry. True when the swap happened.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: Option<&str>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        dispatch!(self.compare_and_swap(key, expected, new, ttl))
    }

    /// Several writes in one round trip (a pipeline on Redis), for bookkeeping that
    /// must not cost a round trip each. Not atomic: each write stands on its own, and
    /// all are applied. True when every `Write::SetNx` among them created its key.
    pub async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        if writes.is_empty() {
            return Ok(true);
        }
        dispatch!(self.write_all(writes))
    }

    /// `write_all` for work no request waits for (a periodic flush): not counted as a
    /// request's round trip.
    pub async fn write_all_in_background(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        if writes.is_empty() {
            return Ok(true);
        }
        dispatch_uncounted!(self.write_all(writes))
    }

    pub async fn incr(&self, key: &str) -> StoreResult<i64> {
        dispatch!(self.incr(key))
    }

    /// Adds a member and (re)sets the whole set's expiry.
    pub async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        dispatch!(self.set_add(key, member, ttl))
    }

    pub async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        dispatch!(self.set_remove(key, member))
    }

    pub async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        dispatch!(self.set_members(key))
    }

    /// Adds a member that stops counting at `expires_at_ms`, dropping the members
    /// expired at `now_ms`, so the set never outgrows what is live; the set itself
    /// expires with its longest-lived member.
    pub async fn expiring_add(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self.expiring_add(key, member, expires_at_ms, now_ms))
    }

    /// `expiring_add` that admits a NEW member only while fewer than `max` live ones
    /// are in the set, in one atomic step (so replicas racing for the last place
    /// cannot both get it). A member already in the set is always renewed. True when
    /// the member is in the set now.
    pub async fn expiring_add_capped(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
        max: usize,
    ) -> StoreResult<bool> {
        dispatch!(self.expiring_add_capped(key, member, expires_at_ms, now_ms, max))
    }

    pub async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        dispatch!(self.expiring_remove(key, member))
    }

    /// Removes these members (one command), for work no request waits for (closed
    /// streams' places given back in the background): not counted as a request's
    /// round trip.
    pub async fn expiring_remove_all(&self, key: &str, members: &[String]) -> StoreResult<()> {
        if members.is_empty() {
            return Ok(());
        }
        dispatch_uncounted!(self.expiring_remove_all(key, members))
    }

    /// Drops members expired at `now_ms` and counts the rest.
    pub async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
        dispatch!(self.expiring_count(key, now_ms))
    }

    /// Adds a process's stream token statistics to the store's (one script on the
    /// `{stats}` slot), for the periodic flush no request waits for: not counted as a
    /// request's round trip.
    pub async fn flush_stream_stats(&self, flush: &StatsFlush) -> StoreResult<()> {
        let keys = self.stream_stats_keys();
        dispatch_uncounted!(self.stream_stats(&keys, flush, false)).map(drop)
    }

    /// `flush_stream_stats`, then the statistics at `flush.now_ms`, in one round trip.
    pub async fn flush_and_read_stream_stats(&self, flush: &StatsFlush) -> StoreResult<Stats> {
        let keys = self.stream_stats_keys();
        dispatch!(self.stream_stats(&keys, flush, true))
    }

    /// The counters `issued`, `consumed`, `rejected` and the hash of live tokens by
    /// expiry second, under one hash tag.
    fn stream_stats_keys(&self) -> [String; 4] {
        ["issued", "consumed", "rejected", "live"].map(|name| self.keys.stream_stats(name))
    }

    /// Creates a hash with these fields unless the key exists. True when created.
    pub async fn hash_create(
        &self,
        key: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> StoreResult<bool> {
        dispatch!(self.hash_create(key, fields, ttl))
    }

    /// All fields of a hash; empty when it does not exist.
    pub async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        dispatch!(self.hash_get_all(key))
    }

    /// A rate-limit decision (as `rate_limit`) and one read, sent together: one round
    /// trip. The read is made whatever the decision (it changes nothing); on a refusal
    /// the caller drops it.
    pub async fn rate_limit_and_read(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        dispatch!(self.rate_limit_and_read(key, gcra, cost, read))
    }

    /// Decisions on budgets kept as the fields of one hash, all or nothing (one
    /// script on its key: `rate_limit::FIELDS_SCRIPT` on Redis, `rate_limit::gcra_all`
    /// in memory), with an optional read sent in the same round trip. One decision
    /// per budget, in order.
    pub async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        dispatch!(self.rate_limit_fields(spend, read))
    }

    /// One `Read`, alone.
    pub async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        dispatch!(self.read(read))
    }

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

    /// One GCRA rate-limit decision on `key`, atomic, on the store's own clock
    /// (`rate_limit::GCRA_SCRIPT` on Redis, `rate_limit::gcra` in memory).
    pub async fn rate_limit(&self, key: &str, gcra: Gcra, cost: Cost) -> StoreResult<Decision> {
        dispatch!(self.rate_limit(key, gcra, cost))
    }

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

    pub async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        dispatch!(self.publish(channel, payload))
    }

    /// Subscribes this process to one generation's events (`SSUBSCRIBE` on its slot's
    /// node, on a connection of its own per node); returns once the node confirmed,
    /// so nothing published after this returns is missed. Its messages come through
    /// `subscribe`'s receiver. Not counted: once per generation and process.
    pub async fn subscribe_generation(&self, generation_id: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Redis(s) => {
                s.subscribe_channel(&self.keys.generation_channel(generation_id))
                    .await
            }
            Backend::Memory(_) => Ok(()),
        }
    }

    /// Ends this process's subscription to a generation's events.
    pub fn unsubscribe_generation(&self, generation_id: &str) {
        if let Backend::Redis(s) = &self.backend {
            s.unsubscribe_channel(&self.keys.generation_channel(generation_id));
        }
    }

    /// Checks this process's subscriptions per node from now on (the stream service
    /// does): a canary channel on every master, subscribed like the generations'
    /// channels and published to every second. Redis only; inside a runtime.
    pub fn watch_delivery(&self) {
        if let Backend::Redis(s) = &self.backend
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let keys = self.keys.clone();
            let replica = uuid::Uuid::new_v4().simple().to_string();
            let replica = replica.get(..12).unwrap_or(&replica).to_owned();
            s.watch_delivery(Arc::new(move |k| keys.canary_channel(k, &replica)));
        }
    }

    /// Each master's canary delivery as last seen, from memory (no round trip);
    /// `None` when `watch_delivery` was not called (or not on Redis).
    pub fn delivery(&self) -> Option<Vec<Delivery>> {
        match &self.backend {
            Backend::Redis(s) => s.delivery(),
            Backend::Memory(_) => None,
        }
    }

    /// This process's confirmed generation subscriptions, per node address.
    pub fn generation_subscriptions(&self) -> std::collections::HashMap<String, usize> {
        match &self.backend {
            Backend::Redis(s) => s.sharded_subscriptions(),
            Backend::Memory(_) => std::collections::HashMap::new(),
        }
    }

    /// Whether appends also publish on the channel of the release before (and
    /// streams listen there): `STREAM_LEGACY_FANOUT`, on by default for one release.
    pub fn with_legacy_fanout(mut self, on: bool) -> Self {
        self.legacy_fanout = on;
        if let Backend::Redis(s) = &self.backend {
            // After the upgrade nobody publishes there: not listened to.
            let mut channels = vec![self.keys.notices_channel()];
            if on {
                channels.push(self.keys.events_channel());
            }
            s.set_channels(channels);
        }
        self
    }

    pub fn legacy_fanout(&self) -> bool {
        self.legacy_fanout
    }

    /// Every message of the events and stream-notices channels, through one shared
    /// subscription per process. Resolves once the subscription is live, so nothing
    /// published after this returns is missed.
    pub async fn subscribe(&self) -> StoreResult<broadcast::Receiver<PubSubMessage>> {
        dispatch_uncounted!(self.subscribe())
    }

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

    fn ended_sessions(&self, user_id: &str, session_ids: &[String]) -> RevocationWrite {
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
    fn revocation_logs_of(&self, sub: &str) -> Vec<String> {
        let shard = self.keys.revocation_log(Keys::revocation_shard(sub));
        let legacy = self
            .revocations
            .legacy()
            .then(|| self.keys.legacy_revocation_log());
        [shard].into_iter().chain(legacy).collect()
    }

    /// The key of log `log` (a shard, or `revocation::LEGACY_LOG`).
    fn revocation_log(&self, log: usize) -> String {
        if log == crate::revocation::LEGACY_LOG {
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
        self.follow_revocations();
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
        self.follow_revocations();
        self.revocations.notices()
    }

    /// Starts tailing the revocation log into the local view (Redis, once per view),
    /// when called inside a runtime; otherwise the first check starts it.
    fn follow_revocations(&self) {
        if let Backend::Redis(redis) = &self.backend
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.revocations.start_tail(|view| {
                let logs = std::array::from_fn(|log| self.revocation_log(log));
                redis.tail_revocations(logs, view, REVOCATION_PAGE);
            });
        }
    }

    /// Every key under this store's prefix with its value (for tests of leaks and of
    /// what is stored; scans on Redis).
    pub async fn debug_dump(&self) -> StoreResult<Vec<(String, String)>> {
        dispatch_uncounted!(self.debug_dump(self.keys.prefix()))
    }

    /// The keys of `debug_dump`, sorted.
    pub async fn debug_keys(&self) -> StoreResult<Vec<String>> {
        let mut keys: Vec<String> = self
            .debug_dump()
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        Ok(keys)
    }
}
