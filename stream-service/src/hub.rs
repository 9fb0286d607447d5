//! Fan-out. ONE store subscription per process feeds a map generation id →
//! `broadcast::Sender`, so the number of Redis connections does not grow with the
//! number of open streams, and a slow stream only ever lags on its own receiver.
//! Revocation notices go to every open stream through one more broadcast: revoked
//! sessions and users from the store's revocation view, and while that view is not
//! fresh, a recheck every `STALE_RECHECK_INTERVAL`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use shared::revocation::StreamNotice;
use shared::store::{PubSubMessage, PublishedEvent, Store, StoreError};
use tokio::sync::{OnceCell, broadcast};

/// One event of a generation's history, as streamed.
#[derive(Debug)]
pub struct StoredEvent {
    pub id: String,
    /// The JSON object, exactly as stored.
    pub data: String,
}

#[derive(Debug, Clone)]
pub enum HubEvent {
    Event(Arc<StoredEvent>),
    /// Messages may have been missed (the subscription reconnected or the hub
    /// lagged): re-read the history after the last delivered id.
    Resync,
}

#[derive(Debug, Clone)]
pub enum Control {
    Notice(Arc<StreamNotice>),
    /// Notices may have been missed: check the store.
    Recheck,
}

/// Revocation notices are rare; this only needs to absorb a burst.
const CONTROL_CAPACITY: usize = 1024;

/// While this process cannot show its revocation view is fresh, every open stream
/// rechecks its session in the store this often, and ends if it was revoked.
pub const STALE_RECHECK_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    capacity: usize,
    generations: Mutex<HashMap<String, broadcast::Sender<HubEvent>>>,
    control: broadcast::Sender<Control>,
    started: OnceCell<()>,
}

/// An open stream's view of the hub: its generation's events and the control
/// messages. Dropping the last one of a generation removes its sender.
pub struct Follow {
    pub events: broadcast::Receiver<HubEvent>,
    pub control: broadcast::Receiver<Control>,
    // Declared last so that it drops after `events`.
    _guard: FollowGuard,
}

struct FollowGuard {
    hub: Weak<Inner>,
    generation_id: String,
}

impl Drop for FollowGuard {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let mut generations = hub.generations.lock();
        if generations
            .get(&self.generation_id)
            .is_some_and(|s| s.receiver_count() == 0)
        {
            generations.remove(&self.generation_id);
        }
    }
}

impl Hub {
    /// `capacity`: how many events a stream may fall behind before it is cut off.
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                capacity: capacity.max(1),
                generations: Mutex::new(HashMap::new()),
                control: broadcast::channel(CONTROL_CAPACITY).0,
                started: OnceCell::new(),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Follows a generation. Returns once the store subscription is live, so that
    /// nothing published after this returns is missed; unavailable otherwise.
    pub async fn follow(&self, generation_id: &str) -> Result<Follow, StoreError> {
        let inner = &self.inner;
        inner
            .started
            .get_or_try_init(|| async {
                // The pump is started lazily, from inside a runtime, by the first stream.
                let messages = inner.store.subscribe().await?;
                tokio::spawn(pump(
                    Arc::downgrade(&self.inner),
                    messages,
                    inner.store.clone(),
                ));
                tokio::spawn(forward_revocations(
                    Arc::downgrade(&self.inner),
                    inner.store.revocation_notices(),
                    inner.store.clone(),
                ));
                Ok::<_, StoreError>(())
            })
            .await?;
        // Waits for the (shared) subscription to be live again after an outage.
        inner.store.subscribe().await.map(drop)?;
        let control = inner.control.subscribe();
        let events = {
            let mut generations = inner.generations.lock();
            generations
                .entry(generation_id.to_owned())
                // One more than the limit, so the limit itself is checked by the
                // stream (`Receiver::len`) before anything is lost.
                .or_insert_with(|| broadcast::channel(inner.capacity + 1).0)
                .subscribe()
        };
        Ok(Follow {
            events,
            control,
            _guard: FollowGuard {
                hub: Arc::downgrade(&self.inner),
                generation_id: generation_id.to_owned(),
            },
        })
    }

    /// How many generations have at least one open stream here (for tests).
    pub fn followed_generations(&self) -> usize {
        self.inner.generations.lock().len()
    }
}

impl Inner {
    fn dispatch_event(&self, payload: &str) {
        let Ok(event) = serde_json::from_str::<PublishedEvent>(payload) else {
            tracing::warn!("ignoring an unreadable message on the events channel");
            return;
        };
        let sender = self.generations.lock().get(&event.generation_id).cloned();
        if let Some(sender) = sender {
            let event = StoredEvent {
                id: event.id,
                data: event.data.get().to_owned(),
            };
            // No receivers left is fine: the last stream just went.
            let _ = sender.send(HubEvent::Event(Arc::new(event)));
        }
    }

    fn dispatch_notice(&self, payload: &str) {
        match serde_json::from_str::<StreamNotice>(payload) {
            Ok(notice) => {
                let _ = self.control.send(Control::Notice(Arc::new(notice)));
            }
            Err(_) => tracing::warn!("ignoring an unreadable stream notice"),
        }
    }

    fn resync_all(&self) {
        for sender in self.generations.lock().values() {
            let _ = sender.send(HubEvent::Resync);
        }
        let _ = self.control.send(Control::Recheck);
    }
}

/// Tells the streams of revoked sessions and users, and every stream to recheck while
/// the revocation view is not fresh, for as long as the hub lives.
async fn forward_revocations(
    hub: Weak<Inner>,
    mut notices: broadcast::Receiver<StreamNotice>,
    store: Store,
) {
    let mut recheck = tokio::time::interval(STALE_RECHECK_INTERVAL);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let control = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(notice) => Some(Control::Notice(Arc::new(notice))),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Control::Recheck),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = recheck.tick() => (!store.revocations_fresh()).then_some(Control::Recheck),
        };
        let Some(hub) = hub.upgrade() else { return };
        if let Some(control) = control {
            // No receivers is fine: no stream is open.
            let _ = hub.control.send(control);
        }
    }
}

/// Moves messages from the store subscription to the streams, for as long as the hub lives.
async fn pump(hub: Weak<Inner>, mut messages: broadcast::Receiver<PubSubMessage>, store: Store) {
    let events_channel = store.keys().events_channel();
    let notices_channel = store.keys().notices_channel();
    loop {
        let message = messages.recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match message {
            Ok(PubSubMessage::Message { channel, payload }) => {
                if *channel == *events_channel {
                    hub.dispatch_event(&payload);
                } else if *channel == *notices_channel {
                    hub.dispatch_notice(&payload);
                }
            }
            Ok(PubSubMessage::Reconnected) => hub.resync_all(),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "the stream hub fell behind the store; resynchronising"
                );
                hub.resync_all();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
