//! Stream token statistics: counted in process, flushed once a second in one script
//! on the `{stats}` hash tag (`lua/stream_stats.lua`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::{Store, StoreResult};

/// How often each process adds its counted statistics to the store's counters.
pub const STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Stream token statistics counted in this process, added to the store in the
/// background every `STATS_FLUSH_INTERVAL` (ONE script on the `{stats}` slot, whatever
/// the number of tokens), so that no mint or open waits for them and no token costs a
/// write of its own. Shared by every clone of a `Store`.
///
/// `active` is kept without any state per token: tokens are counted by the second their
/// lifetime ends in (`expiry_second`). A mint adds one to its second, a consumption
/// takes one from it (the grant carries its expiry, so any replica knows the second);
/// the store sums, per second, what every replica flushed, and `active` is the sum over
/// the seconds still to come. An expired token leaves the count when its second
/// begins, by itself: nothing is written when a token expires.
#[derive(Default)]
pub struct PendingStats {
    pub(crate) counts: Mutex<Counts>,
    pub(crate) flushing: AtomicBool,
    /// One flush at a time: a reader's flush waits for a background flush that already
    /// took the counts, so what it reads afterwards includes them.
    pub(crate) flush_turn: tokio::sync::Mutex<()>,
}

/// What this process counted since its last flush.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) issued: u64,
    pub(crate) consumed: u64,
    pub(crate) rejected: u64,
    /// Expiry second -> tokens minted minus tokens consumed with that expiry.
    pub(crate) live: HashMap<i64, i64>,
}

impl Counts {
    pub(crate) fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// Puts counts that could not be flushed back, for the next flush.
    pub(crate) fn restore(&mut self, failed: Self) {
        self.issued += failed.issued;
        self.consumed += failed.consumed;
        self.rejected += failed.rejected;
        for (second, delta) in failed.live {
            *self.live.entry(second).or_default() += delta;
        }
        self.live.retain(|_, delta| *delta != 0);
    }
}

/// The second a token expiring at `expires_at` is counted in: it stops counting as
/// active when that second begins (at most one second before its actual expiry, never
/// after it).
pub fn expiry_second(expires_at: authstream_runtime::UnixTime) -> i64 {
    expires_at.millis().div_euclid(1000)
}

impl PendingStats {
    pub(crate) fn issued(&self, expires_at: authstream_runtime::UnixTime) {
        let mut counts = self.counts.lock();
        counts.issued += 1;
        *counts.live.entry(expiry_second(expires_at)).or_default() += 1;
    }

    pub(crate) fn consumed(&self, expires_at: authstream_runtime::UnixTime) {
        let mut counts = self.counts.lock();
        counts.consumed += 1;
        let second = expiry_second(expires_at);
        let left = counts.live.entry(second).or_default();
        *left -= 1;
        if *left == 0 {
            counts.live.remove(&second);
        }
    }

    pub(crate) fn rejected(&self) {
        self.counts.lock().rejected += 1;
    }

    /// Starts the background flush once per store (`Store::start_background`).
    pub(crate) fn follow(&self, store: &crate::Store) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.flushing.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(STATS_FLUSH_INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // This task's handle is the last one: the store is gone, and with it
                // whatever could count more. A last flush, then the task ends.
                let last = store.stream_stats_handles() == 1;
                if let Err(e) = flush(&store, authstream_runtime::UnixTime::now(), false).await {
                    tracing::debug!(error = %e, "cannot flush the stream token statistics yet");
                }
                if last {
                    break;
                }
            }
        });
    }
}

/// What one flush adds to the store's statistics (`Store::flush_stream_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsFlush {
    pub issued: u64,
    pub consumed: u64,
    pub rejected: u64,
    /// (expiry second, change in live tokens). Seconds already begun at `now_ms` are
    /// left out by the store: their tokens count no more.
    pub live: Vec<(i64, i64)>,
    pub now_ms: i64,
}

impl StatsFlush {
    pub fn is_empty(&self) -> bool {
        self.issued == 0 && self.consumed == 0 && self.rejected == 0 && self.live.is_empty()
    }
}

/// Adds what this process counted since the last flush to the store's statistics, in
/// one round trip (none when there is nothing). On failure the counts wait for the next.
pub async fn flush_stats(
    store: &crate::Store,
    now: authstream_runtime::UnixTime,
) -> Result<(), crate::StoreError> {
    flush(store, now, false).await.map(drop)
}

/// The flush, and with `read` the statistics after it, in the same round trip.
pub(crate) async fn flush(
    store: &crate::Store,
    now: authstream_runtime::UnixTime,
    read: bool,
) -> Result<Option<Stats>, crate::StoreError> {
    let pending = store.stream_stats();
    let _turn = pending.flush_turn.lock().await;
    let counts = pending.counts.lock().take();
    let mut live: Vec<(i64, i64)> = counts.live.iter().map(|(s, d)| (*s, *d)).collect();
    live.sort_unstable();
    let batch = StatsFlush {
        issued: counts.issued,
        consumed: counts.consumed,
        rejected: counts.rejected,
        live,
        now_ms: now.millis(),
    };
    let result = if read {
        store.flush_and_read_stream_stats(&batch).await.map(Some)
    } else if batch.is_empty() {
        Ok(None)
    } else {
        store.flush_stream_stats(&batch).await.map(|()| None)
    };
    if result.is_err() {
        pending.counts.lock().restore(counts);
    }
    result
}

/// Counts a stream token minted by `Store::mint_stream_token`, expiring at
/// `expires_at` (in this process; flushed in the background).
pub fn record_issued(store: &crate::Store, expires_at: authstream_runtime::UnixTime) {
    store.stream_stats().issued(expires_at);
}

/// Counts a stream token, expiring at `expires_at`, taken by a stream open (in this
/// process; flushed in the background).
pub fn record_consumed(store: &crate::Store, expires_at: authstream_runtime::UnixTime) {
    store.stream_stats().consumed(expires_at);
}

/// Counts a refused stream open (in this process; flushed in the background).
pub fn record_rejected(store: &crate::Store) {
    store.stream_stats().rejected();
}

/// Stream token statistics: counts only, no user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}

/// The store's statistics at `now`, this process's pending counts added first in the
/// same round trip (so a process sees its own mints and opens at once, and other
/// processes' within `STATS_FLUSH_INTERVAL`).
pub async fn stats(
    store: &crate::Store,
    now: authstream_runtime::UnixTime,
) -> Result<Stats, crate::StoreError> {
    Ok(flush(store, now, true).await?.unwrap_or_default())
}

impl Store {
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
    pub(crate) fn stream_stats_keys(&self) -> [String; 4] {
        ["issued", "consumed", "rejected", "live"].map(|name| self.keys.stream_stats(name))
    }
}
