//! The in-memory store for the single-process default: the same semantics as Redis
//! (expiry, atomic get-and-delete, compare-and-swap, capped event history, pub/sub),
//! one mutex, no I/O.
//!
//! This is the data model every concern's twin works on (`Data`, under one lock) and
//! the generic commands (`primitives`).

mod primitives;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{PubSubMessage, StoreResult};

/// A counter's value (0 when missing or not a number).
pub(crate) fn counter(d: &mut Data, key: &str, now: Instant) -> u64 {
    match d.live(key, now) {
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// The wall clock in microseconds, as Redis's `TIME` gives it.
pub(crate) fn wall_clock_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

pub(crate) enum Value {
    Str(String),
    Set(BTreeSet<String>),
    /// member -> score (an expiry time in ms)
    Expiring(BTreeMap<String, i64>),
    Hash(HashMap<String, String>),
    Stream(Stream),
}

#[derive(Default)]
pub(crate) struct Stream {
    pub(crate) entries: VecDeque<((u64, u64), String)>,
    pub(crate) last: (u64, u64),
}

impl Stream {
    /// Appends with the next id at `now_ms`, as `XADD *` does.
    pub(crate) fn push(&mut self, now_ms: i64, data: &str) -> (u64, u64) {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let id = if ms > self.last.0 {
            (ms, 0)
        } else {
            (self.last.0, self.last.1 + 1)
        };
        self.last = id;
        self.entries.push_back((id, data.to_owned()));
        id
    }
}

pub(crate) struct Entry {
    pub(crate) value: Value,
    pub(crate) expires_at: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct Data {
    pub(crate) entries: HashMap<String, Entry>,
    pub(crate) writes_since_sweep: usize,
}

impl Data {
    pub(crate) fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|t| t <= now))
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: &str, value: Value, ttl: Option<Duration>, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 256 {
            // Amortised cleanup so expired keys never pile up.
            self.writes_since_sweep = 0;
            self.entries
                .retain(|_, e| e.expires_at.is_none_or(|t| t > now));
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at: ttl.map(|d| now + d),
            },
        );
    }
}

#[derive(Clone)]
pub struct MemoryStore {
    pub(crate) data: Arc<Mutex<Data>>,
    pub(crate) sender: broadcast::Sender<PubSubMessage>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            data: Arc::new(Mutex::new(Data::default())),
            sender: broadcast::channel(4096).0,
        }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Data, Instant) -> T) -> StoreResult<T> {
        let now = Instant::now();
        Ok(f(&mut self.data.lock(), now))
    }

    pub(crate) fn update<T>(
        &self,
        key: &str,
        make: impl FnOnce() -> Value,
        f: impl FnOnce(&mut Value) -> T,
    ) -> StoreResult<Option<T>> {
        self.with(|d, now| {
            if d.live(key, now).is_none() {
                d.insert(key, make(), None, now);
            }
            let entry = d.entries.get_mut(key).map(|e| &mut e.value);
            entry.map(f)
        })
    }

    pub(crate) async fn debug_dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        self.with(|d, now| {
            d.entries
                .retain(|_, e| e.expires_at.is_none_or(|t| t > now));
            d.entries
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, e)| {
                    let v = match &e.value {
                        Value::Str(s) => s.clone(),
                        Value::Set(s) => format!("{s:?}"),
                        Value::Expiring(z) => format!("{:?}", z.keys().collect::<Vec<_>>()),
                        Value::Hash(h) => format!("{h:?}"),
                        Value::Stream(s) => format!("{:?}", s.entries),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
    }
}
