//! The revocation feed behind `GET /auth/revocations`: one tail of the revocation logs
//! per process, shared by every subscriber through a broadcast channel.
//!
//! The tail reads every log (the shards by user, and the legacy log while it is on:
//! `Store::revocation_log_indexes`, `Store::revocations_after`), all at once, every
//! `POLL_INTERVAL` while at least one subscriber is connected, keeps a copy of the
//! retained logs in memory (the entries of the last revocation window, as the logs
//! themselves keep them), broadcasts each new entry, and after every wave that reached
//! the end of every log a heartbeat with the position. A position is the last id read
//! of each log (`Position`); each event's id is the position just after it, so a
//! `Last-Event-ID` resumes exactly on any replica. A subscriber starts from that copy
//! (the entries after its `Last-Event-ID`, or a `reset` with a snapshot), then follows
//! the broadcast: no store round trip per subscriber.
//!
//! What is sent (positions, entries, the broadcast items) is in `entry`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use authstream_runtime::UnixTime;
use authstream_store::revocations::Revocation;
use authstream_store::{REVOCATION_PAGE, Store, parse_event_id};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

mod entry;

pub use entry::{Entry, FeedRevocation, Item, LogId, Position, feed_revocation};

/// How often the tail reads the log (as the process-local view's tail does: an idle
/// Redis ends a short blocking read only at its `hz` tick, too rarely for the heartbeat).
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long the tail waits after a failed read before the next.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(50);

/// How many events a subscriber may fall behind (about ten seconds of heartbeats)
/// before it is disconnected; it resumes by `Last-Event-ID`.
pub const MAX_QUEUED: usize = 1024;

/// How often the copy of the log drops the entries the log has trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// The tail's copy of the retained logs, in the order it read them.
struct Copy {
    entries: VecDeque<Arc<Entry>>,
    /// The last id read of each log.
    position: Position,
    /// Read to the end at least once.
    ready: bool,
    trimmed_at: i64,
}

impl Copy {
    /// Whether the copy holds every entry after `last`: of each log, `last` is where
    /// the copy stands, or within what it still holds.
    fn continues(&self, last: &Position) -> bool {
        last.logs() == self.position.logs()
            && (0..last.logs()).all(|log| {
                let (at, now) = (last.of(log), self.position.of(log));
                at == now
                    || self
                        .entries
                        .iter()
                        .find(|e| e.log == log)
                        .is_some_and(|first| first.key <= at && at < now)
            })
    }
}

/// Where a new subscriber starts.
pub enum Start {
    /// Its `Last-Event-ID` is within the copy: the entries after it.
    Resume(Vec<Arc<Entry>>),
    /// No id, or one the copy cannot continue from: a snapshot (the `reset` event's
    /// data) and the position it covers.
    Reset { json: String, position: String },
}

/// A subscriber: where it starts, then the broadcast.
pub struct Subscription {
    pub start: Start,
    pub receiver: broadcast::Receiver<Item>,
    /// Entries up to this position are in `start` (or were trimmed): skip them when
    /// they come again through the broadcast.
    pub delivered: Position,
}

/// The process's revocation feed.
pub struct RevocationFeed {
    store: Store,
    /// The logs read, by `Store::revocation_log_indexes` (fixed for the process).
    logs: Vec<usize>,
    /// How long the log keeps entries (`MINID` on every append).
    window: Duration,
    copy: Mutex<Copy>,
    sender: broadcast::Sender<Item>,
    ready: watch::Sender<bool>,
    running: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl RevocationFeed {
    pub fn new(store: Store, window: Duration) -> Arc<Self> {
        let logs = store.revocation_log_indexes();
        Arc::new(Self {
            copy: Mutex::new(Copy {
                entries: VecDeque::new(),
                position: Position::start(logs.len()),
                ready: false,
                trimmed_at: 0,
            }),
            store,
            logs,
            window,
            sender: broadcast::channel(MAX_QUEUED).0,
            ready: watch::channel(false).0,
            running: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
        })
    }

    /// Ends every feed (shutdown): subscribers are told to go, the tail stops.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// A new subscriber from `last` (its `Last-Event-ID`), once the tail has read the
    /// log to its end; `None` when that took longer than `wait` (the store is down).
    pub async fn subscribe(
        self: &Arc<Self>,
        last: Option<Position>,
        wait: Duration,
    ) -> Option<Subscription> {
        let receiver = self.sender.subscribe();
        self.ensure_tail();
        let mut ready = self.ready.subscribe();
        tokio::time::timeout(wait, ready.wait_for(|r| *r))
            .await
            .ok()?
            .ok()?;
        let now = UnixTime::now().millis();
        let copy = self.copy.lock();
        let start = match last.filter(|last| copy.continues(last)) {
            Some(last) => Start::Resume(
                copy.entries
                    .iter()
                    .filter(|e| !last.covers(e.log, e.key))
                    .cloned()
                    .collect(),
            ),
            None => {
                let items: Vec<&str> = copy
                    .entries
                    .iter()
                    .filter(|e| e.until > now)
                    .map(|e| e.json.as_str())
                    .collect();
                Start::Reset {
                    json: format!(
                        r#"{{"position":"{}","time":{now},"revocations":[{}]}}"#,
                        copy.position,
                        items.join(",")
                    ),
                    position: copy.position.to_string(),
                }
            }
        };
        Some(Subscription {
            start,
            receiver,
            delivered: copy.position.clone(),
        })
    }

    /// Broadcasts `item` as the tail would (tests of slow followers).
    #[cfg(test)]
    pub(crate) fn send(&self, item: Item) {
        let _ = self.sender.send(item);
    }

    /// Starts the tail unless it runs.
    fn ensure_tail(self: &Arc<Self>) {
        if !self.running.swap(true, Ordering::SeqCst) {
            tokio::spawn(Arc::clone(self).tail());
        }
    }

    /// Reads the log while anyone listens, until shutdown.
    async fn tail(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut failing = false;
        loop {
            if *shutdown.borrow() {
                self.running.store(false, Ordering::SeqCst);
                return;
            }
            if self.sender.receiver_count() == 0 {
                self.running.store(false, Ordering::SeqCst);
                // A subscriber that came meanwhile saw it running: carry on for it,
                // unless it started a tail of its own.
                if self.sender.receiver_count() == 0 || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
            let asked = UnixTime::now();
            let after = self.copy.lock().position.clone();
            let reads = self.logs.iter().enumerate().map(|(place, &log)| {
                let (ms, seq) = after.of(place);
                let store = &self.store;
                async move { store.revocations_after(log, &format!("{ms}-{seq}")).await }
            });
            let pages = futures_util::future::join_all(reads).await;
            let pause = match pages.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(pages) => {
                    if failing {
                        tracing::info!("revocation feed: reading the logs again");
                        failing = false;
                    }
                    let caught_up = pages.iter().all(|page| page.len() < REVOCATION_PAGE);
                    self.take(pages, caught_up, asked);
                    caught_up.then_some(POLL_INTERVAL)
                }
                Err(e) => {
                    // What the logs that answered hold comes with the next wave that
                    // reads them all: entries stay in order per log.
                    if !failing {
                        tracing::warn!(error = %e, "revocation feed: cannot read every log; no heartbeats until it can");
                        failing = true;
                    }
                    Some(RETRY_AFTER_FAILURE)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Adds what a wave of reads returned (a page per log) to the copy and broadcasts
    /// it, then (when every read reached the end of its log) a heartbeat.
    fn take(&self, pages: Vec<Vec<(String, String)>>, caught_up: bool, asked: UnixTime) {
        let mut copy = self.copy.lock();
        let entries = pages
            .into_iter()
            .enumerate()
            .flat_map(|(log, page)| page.into_iter().map(move |entry| (log, entry)));
        for (log, (log_id, raw)) in entries {
            let Some(key) = parse_event_id(&log_id) else {
                continue;
            };
            copy.position.advance(log, key);
            let id = copy.position.to_string();
            let Ok(revocation) = serde_json::from_str::<Revocation>(&raw) else {
                tracing::warn!("revocation feed: ignoring an unreadable log entry");
                continue;
            };
            let until = revocation.until_ms();
            let jti = match &revocation {
                Revocation::Token { jti, .. } => Some(jti.clone()),
                _ => None,
            };
            let wire = feed_revocation(&id, revocation);
            let Ok(json) = serde_json::to_string(&wire) else {
                continue;
            };
            let entry = Arc::new(Entry {
                log,
                key,
                id,
                until,
                jti,
                json,
            });
            copy.entries.push_back(entry.clone());
            if copy.ready {
                // No receivers is fine: the tail stops at its next turn.
                let _ = self.sender.send(Item::Entry(entry));
            }
        }
        if !caught_up {
            return;
        }
        if !copy.ready {
            copy.ready = true;
            self.ready.send_replace(true);
        }
        let _ = self.sender.send(Item::Heartbeat {
            position: Arc::new(copy.position.clone()),
            time: asked.millis(),
        });
        // Drops what the log has trimmed (or will at its next append): entries older
        // than the window, as `MINID` does.
        let now = asked.millis();
        if now - copy.trimmed_at > TRIM_EVERY.as_millis() as i64 {
            copy.trimmed_at = now;
            let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
            let oldest = u64::try_from(now.saturating_sub(window)).unwrap_or(0);
            while copy.entries.front().is_some_and(|e| e.key.0 < oldest) {
                copy.entries.pop_front();
            }
        }
    }
}
