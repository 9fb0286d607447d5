//! The store both services share: Redis in production (one node or a Cluster), an
//! in-memory twin for the single-process default. Both pass one conformance suite
//! (`tests/store/store_conformance.rs`).
//!
//! Every operation is bounded by the configured timeout; a store that does not answer
//! in time is `StoreError::Unavailable`, which the services answer with 503.
//!
//! Each operation is one sequential round trip to Redis (a command, a script or a
//! pipeline), counted here for both backends alike in
//! `authstream_store_round_trips_total{op}`, so that a test on either store sees what a
//! request costs. (On Redis, `read_events` from a point outside the kept history reads
//! once more; it counts as one.)
//!
//! One module per concern, each holding its record and argument types, its part of
//! the `Store` facade, its Redis side (with its Lua scripts in `lua/`) and its
//! in-memory twin, so that one rule changes in one room: `sessions`, `streams`,
//! `events`, `revocations`, `rate_limits`, `pubsub`. `primitives` are the generic
//! commands the services build on; `redis` and `memory` are the two backends' cores
//! (connections, routing, confirmed writes; the data model), which the concerns extend.
//! The store imports nothing of the services' policy: it persists what they decide.

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
            $crate::Backend::Redis(s) => s.$method($($arg),*).await,
            $crate::Backend::Memory(s) => s.$method($($arg),*).await,
        }
    };
}

pub mod events;
pub mod generations;
mod keys;
mod memory;
pub mod primitives;
pub mod pubsub;
pub mod rate_limits;
mod redis;
pub mod revocations;
pub mod sessions;
pub mod slot;
pub mod streams;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use self::events::{
    AppendOutcome, EventPage, GenerationStatus, NewEvent, PublishedEvent, parse_event_id,
    published_event_payload,
};
pub use self::keys::{Keys, REVOCATION_LOG_SHARDS};
pub use self::memory::MemoryStore;
pub use self::primitives::{ExpiringMember, Read, ReadAnswer, Taken, Write};
pub use self::pubsub::{Delivery, PubSubMessage, STALL_AFTER};
pub use self::rate_limits::{Budget, Cost, Decision, Gcra, KeySpend, Spend};
pub use self::redis::RedisStore;
pub use self::revocations::{REVOCATION_PAGE, Revocation, RevocationView, StreamNotice};
pub use self::sessions::{NewSession, Rotation, SessionRecord, SessionRotation};
use self::streams::PendingStats;
pub use self::streams::{
    Admission, GrantFound, MintAdmission, MintOutcome, Minted, NewStreamToken, Refusal, Stats,
    StatsFlush, StreamAdmission, StreamOpened, StreamOpening,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// What no retry mends: a record that does not serialize, a random source that
    /// fails, stream token collisions. The services answer 500.
    #[error("store: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

#[derive(Clone)]
enum Backend {
    Redis(Box<RedisStore>),
    Memory(MemoryStore),
}

/// Revocations matter for as long as the longest-lived token, plus leeway (the
/// default lifetimes); services set theirs with `Store::with_revocation_window`.
const DEFAULT_REVOCATION_WINDOW: Duration = Duration::from_secs(604_800 + 5);

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

impl Store {
    pub fn redis(store: RedisStore, prefix: &str) -> Self {
        let keys = Keys::new(prefix);
        store.set_channels(vec![keys.events_channel(), keys.notices_channel()]);
        Self {
            backend: Backend::Redis(Box::new(store)),
            keys,
            revocations: Arc::new(RevocationView::tailed()),
            revocation_window: DEFAULT_REVOCATION_WINDOW,
            round_trips: Arc::default(),
            stream_stats: Arc::default(),
            legacy_fanout: true,
        }
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

    /// Starts this store's background work, once for a store and its clones: the tail
    /// of the revocation logs that keeps the local view fresh (Redis; in memory every
    /// revocation is applied as it is made), and the flush of the stream token
    /// statistics every `STATS_FLUSH_INTERVAL`. Each service calls it as it builds its
    /// application; nothing else starts them. Inside a Tokio runtime only.
    ///
    /// Without it the store stays exact (a validation asks the store whenever the
    /// view is not fresh) but pays a round trip for it, and statistics wait in memory.
    pub fn start_background(&self) {
        self.follow_revocations();
        self.stream_stats.follow(self);
    }

    /// The stream token statistics this process has counted and not yet flushed.
    pub(crate) fn stream_stats(&self) -> &PendingStats {
        &self.stream_stats
    }

    /// How many handles of this store (it and its clones) hold its statistics.
    pub(crate) fn stream_stats_handles(&self) -> usize {
        Arc::strong_count(&self.stream_stats)
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
