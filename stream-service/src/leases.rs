//! Places among a user's open streams (`STREAM_MAX_PER_USER`): held while a stream
//! lives, renewed together by one task, given back once it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use authstream_runtime::UnixTime;
use authstream_store::{ExpiringMember, Store};
use futures_util::StreamExt as _;
use parking_lot::Mutex;

/// How long a stream's place among its user's open streams lasts unless renewed:
/// the places of a replica that died are free again after this.
pub(super) const STREAM_LEASE: Duration = Duration::from_secs(60);

/// The places of every stream open in this process (`STREAM_MAX_PER_USER`, counted
/// in the store across replicas), renewed together by one task: one timer for all
/// streams, not a task and a timer each (an idle stream's memory is what it keeps).
#[derive(Clone)]
pub struct Leases(Arc<LeaseBook>);

struct LeaseBook {
    store: Store,
    /// Place number -> (the user's set of places, the place's id).
    held: Mutex<HashMap<u64, (String, String)>>,
    /// Places of closed streams not yet given back: the user's set -> place ids.
    released: Mutex<HashMap<String, Vec<String>>>,
    next: AtomicU64,
    renewing: Once,
}

impl Leases {
    pub fn new(store: Store) -> Self {
        Self(Arc::new(LeaseBook {
            store,
            held: Mutex::new(HashMap::new()),
            released: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            renewing: Once::new(),
        }))
    }

    /// The place `id` in `key`, taken by `Store::admit_stream`: renewed from now on.
    pub(super) fn hold(&self, key: String, id: String) -> StreamSlot {
        let book = &self.0;
        // Started by the first stream, inside the runtime; they end with the book.
        book.renewing.call_once(|| {
            drop(tokio::spawn(renew(Arc::downgrade(book))));
            drop(tokio::spawn(give_back(Arc::downgrade(book))));
        });
        let number = book.next.fetch_add(1, Ordering::Relaxed);
        book.held.lock().insert(number, (key, id));
        StreamSlot {
            leases: self.clone(),
            number,
        }
    }
}

impl Leases {
    /// The places of `key` (a user's set) given back since the last `GIVE_BACK_INTERVAL`,
    /// taken out of the book: the user's next admission here removes them in its own
    /// script, so a user's next stream finds its closed ones gone at no cost of its own.
    pub(super) fn take_released(&self, key: &str) -> Vec<String> {
        self.0.released.lock().remove(key).unwrap_or_default()
    }

    /// Places taken by `take_released` that the store did not get: for the next time.
    pub(super) fn keep_released(&self, key: String, places: Vec<String>) {
        if !places.is_empty() {
            self.0
                .released
                .lock()
                .entry(key)
                .or_default()
                .extend(places);
        }
    }
}

/// How long a closed stream's place waits to be given back with the user's next
/// admission in this process before it is given back on its own (one command per user
/// for all of theirs closed meanwhile).
const GIVE_BACK_INTERVAL: Duration = Duration::from_secs(1);

/// Every `GIVE_BACK_INTERVAL`, gives back the places of the streams closed meanwhile:
/// one `ZREM` per user, whatever the number of streams.
async fn give_back(book: Weak<LeaseBook>) {
    let mut every = tokio::time::interval(GIVE_BACK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(book) = book.upgrade() else { return };
        let released = std::mem::take(&mut *book.released.lock());
        futures_util::stream::iter(released)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |(key, places)| {
                let book = &book;
                async move {
                    if let Err(e) = book.store.expiring_remove_all(&key, &places).await {
                        tracing::debug!(error = %e, "cannot give back closed streams' places; they expire");
                    }
                }
            })
            .await;
    }
}

/// A stream's place among its user's open streams: renewed while the stream lives,
/// given back once it is dropped (with the user's next admission in this process, else
/// within `GIVE_BACK_INTERVAL`), and gone by itself within `STREAM_LEASE` if this
/// process dies.
pub struct StreamSlot {
    leases: Leases,
    number: u64,
}

/// Every `STREAM_LEASE / 3`, renews every place still held (the lease outlasts two
/// missed renewals).
async fn renew(book: Weak<LeaseBook>) {
    let mut every = tokio::time::interval(STREAM_LEASE / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(book) = book.upgrade() else { return };
        let numbers: Vec<u64> = book.held.lock().keys().copied().collect();
        let now = UnixTime::now();
        let expires_at = now.plus(STREAM_LEASE).millis();
        futures_util::stream::iter(numbers)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |number| {
                let book = &book;
                async move {
                    // A place given back meanwhile is not taken again.
                    let Some((key, id)) = book.held.lock().get(&number).cloned() else {
                        return;
                    };
                    if let Err(e) = book
                        .store
                        .expiring_add(ExpiringMember {
                            key: &key,
                            member: &id,
                            expires_at_ms: expires_at,
                            now_ms: now.millis(),
                        })
                        .await
                    {
                        tracing::debug!(error = %e, "cannot renew an open stream's place");
                    }
                }
            })
            .await;
    }
}

/// Renewals sent at once: they share one multiplexed connection.
const RENEWALS_IN_FLIGHT: usize = 64;

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let book = &self.leases.0;
        let Some((key, id)) = book.held.lock().remove(&self.number) else {
            return;
        };
        book.released.lock().entry(key).or_default().push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn open_places_are_renewed_by_one_task_and_given_back_when_dropped() {
        let store = Store::memory("leases");
        let leases = Leases::new(store.clone());
        let count = || async { store.expiring_count("k", UnixTime::now().millis()).await };
        let a = leases.hold("k".into(), "a".into());
        let _b = leases.hold("k".into(), "b".into());
        // `admit_stream` wrote the places; holding them writes nothing.
        assert_eq!(count().await.unwrap(), 0);

        // Half-way between two give-backs.
        tokio::time::sleep(STREAM_LEASE / 3 + GIVE_BACK_INTERVAL / 2).await;
        assert_eq!(count().await.unwrap(), 2, "both renewed");

        drop(a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            count().await.unwrap(),
            2,
            "not yet: it waits for a next admission"
        );
        assert_eq!(leases.take_released("k"), ["a"]);
        leases.keep_released("k".into(), vec!["a".into()]);
        tokio::time::sleep(GIVE_BACK_INTERVAL).await;
        assert_eq!(count().await.unwrap(), 1, "given back");
        assert!(leases.take_released("k").is_empty());
        tokio::time::sleep(STREAM_LEASE / 3).await;
        assert_eq!(count().await.unwrap(), 1, "not renewed once given back");
    }
}
