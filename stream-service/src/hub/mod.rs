//! Fan-out. A generation's events come on its own channel, in its slot
//! (`SSUBSCRIBE`, on one connection per store node, owned by the store): this replica
//! subscribes to a generation when its first stream here opens, and lets go
//! `linger` after its last one closed, so a reconnect does not churn. Everything
//! arrives through ONE store broadcast per process, which feeds a map generation id
//! → channel, so the number of Redis connections does not grow with the number of
//! open streams, and a slow stream only ever lags on its own position. While
//! `STREAM_LEGACY_FANOUT` is on, the one channel of the release before is listened
//! to as well; an event whose id is not newer than the last one of its generation
//! is dropped, so each comes once.
//! Revocation notices go to every open stream through one broadcast: revoked
//! sessions and users from the store's revocation view, and while that view is not
//! fresh, a recheck every `STALE_RECHECK_INTERVAL`. The same task keeps one timer for
//! the absolute ends (`SESSION_MAX_AGE_SECS`) of the sessions of every open stream,
//! not a timer per stream.
//!
//! A generation's channel holds no buffer up front: an event is kept only until every
//! stream that was following when it came has taken it, and at most `capacity` + 1 of
//! them (a stream further behind is cut off, and resumes by `Last-Event-ID`). An idle
//! generation costs a few words, however large `SSE_MAX_QUEUED_EVENTS` is.
//!
//! Files: `channel` (a generation's ring and a stream's cursor), `session_ends`,
//! `tasks` (the pump and the revocation forwarding), `tests`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use authstream_store::events::StreamEvent;
use authstream_store::revocations::StreamNotice;
use authstream_store::{Store, StoreError};
use parking_lot::Mutex;
use tokio::sync::{OnceCell, broadcast};

mod channel;
mod session_ends;
mod tasks;
#[cfg(test)]
mod tests;

use channel::{Channel, FollowGuard};
pub use channel::{Events, Follow, Lagged};
use session_ends::SessionEnds;
use tasks::{forward_revocations, pump};

#[derive(Debug, Clone)]
pub enum HubEvent {
    Event(Arc<StreamEvent>),
    /// Messages may have been missed (the subscription reconnected or the hub
    /// lagged): re-read the history after the last delivered id.
    Resync,
}

#[derive(Debug, Clone)]
pub enum Control {
    Notice(Arc<StreamNotice>),
    /// Notices may have been missed: check the store.
    Recheck,
    /// The absolute end of some open stream's session has come: each stream compares
    /// its own session's end with the clock.
    SessionsEnded,
}

/// Revocation notices are rare; this only needs to absorb a burst.
const CONTROL_CAPACITY: usize = 1024;

/// While this process cannot show its revocation view is fresh, every open stream
/// rechecks its session in the store this often, and ends if it was revoked.
pub const STALE_RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// How long a generation stays subscribed after its last stream here closed, unless
/// `STREAM_SUBSCRIPTION_LINGER_MS` says otherwise.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    capacity: usize,
    generations: Mutex<HashMap<String, Arc<Channel>>>,
    control: broadcast::Sender<Control>,
    started: OnceCell<()>,
    session_ends: Arc<SessionEnds>,
    linger: Duration,
    /// Events on the channel of the release before are delivered too.
    legacy: bool,
}

impl Hub {
    /// `capacity`: how many events a stream may fall behind before it is cut off.
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                generations: Mutex::new(HashMap::new()),
                control: broadcast::channel(CONTROL_CAPACITY).0,
                started: OnceCell::new(),
                session_ends: Arc::default(),
                linger: DEFAULT_LINGER,
                legacy: store.legacy_fanout(),
                store,
            }),
        }
    }

    /// How long a generation stays subscribed after its last stream here closed.
    /// Call before the first `follow`.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.linger = linger;
        }
        self
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Follows a generation. Returns once the store subscriptions are live (the
    /// process's, and this generation's channel: subscribed on its first stream
    /// here), so that nothing published after this returns is missed; unavailable
    /// otherwise.
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
                    inner.session_ends.clone(),
                ));
                Ok::<_, StoreError>(())
            })
            .await?;
        // Waits for the (shared) subscription to be live again after an outage.
        inner.store.subscribe().await.map(drop)?;
        let control = inner.control.subscribe();
        let (events, channel) = {
            let mut generations = inner.generations.lock();
            let channel = generations
                .entry(generation_id.to_owned())
                .or_insert_with(|| Arc::new(Channel::new(inner.capacity + 1)))
                .clone();
            channel.follows.fetch_add(1, Ordering::SeqCst);
            (Events::subscribe(channel.clone()), channel)
        };
        let follow = Follow {
            events,
            control,
            guard: FollowGuard {
                hub: Arc::downgrade(&self.inner),
                generation_id: generation_id.to_owned(),
            },
        };
        // The first follower subscribes; the others wait for the same confirmation.
        // On failure the follow drops, and the next one tries again.
        channel
            .subscribed
            .get_or_try_init(|| inner.store.subscribe_generation(generation_id))
            .await?;
        inner.count_subscriptions();
        Ok(follow)
    }

    /// How many generations have at least one open stream here (for tests).
    pub fn followed_generations(&self) -> usize {
        self.inner
            .generations
            .lock()
            .values()
            .filter(|c| c.ring.lock().receivers > 0)
            .count()
    }

    /// How many generations this replica is subscribed to (open streams, or
    /// lingering after the last one).
    pub fn subscribed_generations(&self) -> usize {
        self.inner.subscribed_generations()
    }
}
