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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use shared::UnixTime;
use shared::events::StreamEvent;
use shared::revocation::StreamNotice;
use shared::store::{PubSubMessage, PublishedEvent, Store, StoreError, parse_event_id};
use tokio::sync::{Notify, OnceCell, broadcast};

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

/// The absolute ends of the sessions of the streams open here, for the one timer of
/// `forward_revocations`: end (Unix milliseconds) -> how many open streams end then.
/// A few words per distinct end, nothing per stream.
#[derive(Default)]
struct SessionEnds {
    ends: Mutex<BTreeMap<i64, usize>>,
    /// An earlier end than the timer waits for was added.
    sooner: Notify,
}

impl SessionEnds {
    fn add(&self, end_ms: i64) {
        let mut ends = self.ends.lock();
        let sooner = ends
            .first_key_value()
            .is_none_or(|(first, _)| end_ms < *first);
        *ends.entry(end_ms).or_default() += 1;
        if sooner {
            self.sooner.notify_one();
        }
    }

    fn remove(&self, end_ms: i64) {
        let mut ends = self.ends.lock();
        if let Some(count) = ends.get_mut(&end_ms) {
            *count -= 1;
            if *count == 0 {
                ends.remove(&end_ms);
            }
        }
    }

    fn next(&self) -> Option<i64> {
        self.ends.lock().first_key_value().map(|(end, _)| *end)
    }

    /// Forgets the ends up to `now_ms`; true when there were any.
    fn pass(&self, now_ms: i64) -> bool {
        let mut ends = self.ends.lock();
        let later = ends.split_off(&now_ms.saturating_add(1));
        let passed = !ends.is_empty();
        *ends = later;
        passed
    }
}

/// One generation's events, shared by its streams.
struct Channel {
    ring: Mutex<Ring>,
    /// Wakes the streams waiting for the next event.
    arrived: Notify,
    /// Most events kept for one stream: one more than the limit, so that the limit
    /// itself is checked by the stream (`Events::queued`) before anything is lost.
    max_kept: usize,
    /// Set once the store confirmed this replica's subscription to the generation.
    subscribed: OnceCell<()>,
    /// Counts the follows, so a linger that began before the last one lets go of
    /// nothing.
    follows: AtomicU64,
}

#[derive(Default)]
struct Ring {
    /// Events some following stream has not taken yet, oldest first.
    slots: VecDeque<Slot>,
    /// The position of `slots[0]`; positions count every event ever sent.
    head: u64,
    receivers: usize,
    /// The id of the newest event sent: one not newer (a second copy, from the other
    /// channel while upgrading) is dropped.
    last: Option<(u64, u64)>,
}

struct Slot {
    event: HubEvent,
    /// Streams that were following when it came and have not taken it yet.
    unread: usize,
}

impl Ring {
    fn tail(&self) -> u64 {
        self.head + self.slots.len() as u64
    }

    /// Drops the events every stream has taken.
    fn trim(&mut self) {
        while self.slots.front().is_some_and(|s| s.unread == 0) {
            self.slots.pop_front();
            self.head += 1;
        }
        if self.slots.is_empty() && self.slots.capacity() > 16 {
            // A burst is over: give its memory back.
            self.slots = VecDeque::new();
        }
    }
}

impl Channel {
    fn new(max_kept: usize) -> Self {
        Self {
            ring: Mutex::new(Ring::default()),
            arrived: Notify::new(),
            max_kept,
            subscribed: OnceCell::new(),
            follows: AtomicU64::new(0),
        }
    }

    fn send(&self, event: HubEvent) {
        {
            let mut ring = self.ring.lock();
            if let HubEvent::Event(e) = &event {
                let Some(id) = parse_event_id(&e.id) else {
                    return;
                };
                if ring.last.is_some_and(|last| id <= last) {
                    return;
                }
                ring.last = Some(id);
            }
            if ring.receivers == 0 {
                return;
            }
            let unread = ring.receivers;
            ring.slots.push_back(Slot { event, unread });
            if ring.slots.len() > self.max_kept {
                // Whoever has not taken it finds its position gone: it lagged.
                ring.slots.pop_front();
                ring.head += 1;
            }
        }
        self.arrived.notify_waiters();
    }
}

/// A stream's position in its generation's events.
pub struct Events {
    channel: Arc<Channel>,
    next: u64,
}

/// The stream fell further behind than the channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

impl Events {
    fn subscribe(channel: Arc<Channel>) -> Self {
        let next = {
            let mut ring = channel.ring.lock();
            ring.receivers += 1;
            ring.tail()
        };
        Self { channel, next }
    }

    fn try_recv(channel: &Channel, next: &mut u64) -> Result<Option<HubEvent>, Lagged> {
        let mut ring = channel.ring.lock();
        if *next < ring.head {
            // It was following when every kept event came: it takes none of them.
            for slot in ring.slots.iter_mut() {
                slot.unread -= 1;
            }
            *next = ring.tail();
            ring.trim();
            return Err(Lagged);
        }
        let index = (*next - ring.head) as usize;
        let Some(slot) = ring.slots.get_mut(index) else {
            return Ok(None);
        };
        slot.unread -= 1;
        let event = slot.event.clone();
        *next += 1;
        ring.trim();
        Ok(Some(event))
    }

    /// The next event of the generation. Cancel-safe: an event is taken only when
    /// this returns it.
    pub async fn recv(&mut self) -> Result<HubEvent, Lagged> {
        let Self { channel, next } = self;
        loop {
            // Registered before looking, so an event sent in between still wakes it.
            let arrived = channel.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(event) = Self::try_recv(channel, next)? {
                return Ok(event);
            }
            arrived.await;
        }
    }

    /// How many events wait for this stream.
    pub fn queued(&self) -> usize {
        let ring = self.channel.ring.lock();
        ring.tail().saturating_sub(self.next.max(ring.head)) as usize
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut ring = self.channel.ring.lock();
        ring.receivers -= 1;
        let from = self.next.saturating_sub(ring.head) as usize;
        for slot in ring.slots.iter_mut().skip(from) {
            slot.unread -= 1;
        }
        ring.trim();
    }
}

/// An open stream's view of the hub: its generation's events and the control
/// messages. Dropping the last one of a generation removes its channel.
pub struct Follow {
    pub events: Events,
    pub control: broadcast::Receiver<Control>,
    // Declared last so that it drops after `events`.
    guard: FollowGuard,
}

struct FollowGuard {
    hub: Weak<Inner>,
    generation_id: String,
}

impl Follow {
    /// This stream's session ends at `end_ms` (Unix milliseconds): from then on a
    /// `Control::SessionsEnded` comes within the timer's precision. Given back with
    /// `forget_session_end` when the stream ends.
    pub fn watch_session_end(&self, end_ms: i64) {
        if let Some(hub) = self.guard.hub.upgrade() {
            hub.session_ends.add(end_ms);
        }
    }

    pub fn forget_session_end(&self, end_ms: i64) {
        if let Some(hub) = self.guard.hub.upgrade() {
            hub.session_ends.remove(end_ms);
        }
    }
}

impl Drop for FollowGuard {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let channel = {
            let generations = hub.generations.lock();
            match generations.get(&self.generation_id) {
                Some(c) if c.ring.lock().receivers == 0 => c.clone(),
                _ => return,
            }
        };
        let follows = channel.follows.load(Ordering::SeqCst);
        let generation_id = self.generation_id.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !hub.linger.is_zero() => {
                let linger = hub.linger;
                let hub = self.hub.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(linger).await;
                    if let Some(hub) = hub.upgrade() {
                        hub.let_go(&generation_id, &channel, follows);
                    }
                });
            }
            _ => hub.let_go(&generation_id, &channel, follows),
        }
    }
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

impl Inner {
    fn subscribed_generations(&self) -> usize {
        self.generations
            .lock()
            .values()
            .filter(|c| c.subscribed.initialized())
            .count()
    }

    /// `authstream_stream_subscribed_generations`: generations this replica is
    /// subscribed to.
    fn count_subscriptions(&self) {
        metrics::gauge!("authstream_stream_subscribed_generations")
            .set(self.subscribed_generations() as f64);
    }

    /// The linger of a generation's last stream is over: unless a stream followed it
    /// since, the channel goes and so does the subscription.
    fn let_go(&self, generation_id: &str, channel: &Arc<Channel>, follows: u64) {
        {
            let mut generations = self.generations.lock();
            let idle = generations
                .get(generation_id)
                .is_some_and(|c| Arc::ptr_eq(c, channel))
                && channel.ring.lock().receivers == 0
                && channel.follows.load(Ordering::SeqCst) == follows;
            if !idle {
                return;
            }
            generations.remove(generation_id);
            // Under the lock: a follow that comes next subscribes after this.
            if channel.subscribed.initialized() {
                self.store.unsubscribe_generation(generation_id);
            }
        }
        self.count_subscriptions();
    }

    /// The subscription to one generation's channel was lost and is back: its
    /// streams re-read the history after their last event.
    fn resync_channel(&self, channel: &str) {
        let Some(generation_id) = self.store.keys().generation_of_channel(channel) else {
            return;
        };
        let channel = self.generations.lock().get(generation_id).cloned();
        if let Some(channel) = channel {
            channel.send(HubEvent::Resync);
        }
    }

    fn dispatch_event(&self, payload: &str) {
        let Ok(published) = serde_json::from_str::<PublishedEvent>(payload) else {
            tracing::warn!("ignoring an unreadable message on the events channel");
            return;
        };
        let channel = self
            .generations
            .lock()
            .get(&published.generation_id)
            .cloned();
        if let Some(channel) = channel {
            let data = published.data.get();
            // Parsed once here for every stream of the process, and only when the
            // publisher predates the status in the message.
            let event = match published.status {
                Some(status) => StreamEvent {
                    id: published.id,
                    status: Some(status),
                    data: data.into(),
                },
                None => StreamEvent::from_history(published.id, data.to_owned()),
            };
            channel.send(HubEvent::Event(Arc::new(event)));
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
        let channels: Vec<_> = self.generations.lock().values().cloned().collect();
        for channel in channels {
            channel.send(HubEvent::Resync);
        }
        let _ = self.control.send(Control::Recheck);
    }
}

/// Tells the streams of revoked sessions and users, every stream to recheck while
/// the revocation view is not fresh, and every stream when a session of one of them
/// reaches its absolute end, for as long as the hub lives.
async fn forward_revocations(
    hub: Weak<Inner>,
    mut notices: broadcast::Receiver<StreamNotice>,
    store: Store,
    session_ends: Arc<SessionEnds>,
) {
    let mut recheck = tokio::time::interval(STALE_RECHECK_INTERVAL);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Wall-clock ends as a timer: recomputed on every turn (at least every
        // `STALE_RECHECK_INTERVAL`), so a clock that steps is followed.
        let next_end = session_ends.next().map(|end| {
            let left = u64::try_from(end.saturating_sub(UnixTime::now().millis())).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(left).min(LONGEST_WAIT)
        });
        let control = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(notice) => Some(Control::Notice(Arc::new(notice))),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Control::Recheck),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = recheck.tick() => (!store.revocations_fresh()).then_some(Control::Recheck),
            () = session_ends.sooner.notified() => None,
            () = sleep_until_some(next_end) => {
                session_ends.pass(UnixTime::now().millis()).then_some(Control::SessionsEnded)
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        if let Some(control) = control {
            // No receivers is fine: no stream is open.
            let _ = hub.control.send(control);
        }
    }
}

/// The longest the session-end timer sleeps before it looks again (a later end, or
/// one decades away, is simply waited for in steps).
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
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
                if *channel == *notices_channel {
                    hub.dispatch_notice(&payload);
                } else if *channel == *events_channel {
                    if hub.legacy {
                        hub.dispatch_event(&payload);
                    }
                } else if store.keys().generation_of_channel(&channel).is_some() {
                    hub.dispatch_event(&payload);
                }
            }
            Ok(PubSubMessage::Reconnected) => hub.resync_all(),
            Ok(PubSubMessage::Resubscribed { channel }) => hub.resync_channel(&channel),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use shared::events::GenerationStatus;

    use super::*;

    fn event(n: u64) -> HubEvent {
        HubEvent::Event(Arc::new(StreamEvent {
            id: format!("{n}-0"),
            status: Some(GenerationStatus::Processing),
            data: "{}".into(),
        }))
    }

    fn id(event: HubEvent) -> String {
        match event {
            HubEvent::Event(e) => e.id.clone(),
            HubEvent::Resync => "resync".to_owned(),
        }
    }

    fn kept(channel: &Channel) -> usize {
        channel.ring.lock().slots.len()
    }

    #[test]
    fn every_follower_gets_each_event_once_and_it_goes_when_all_took_it() {
        let channel = Arc::new(Channel::new(10));
        channel.send(event(0)); // nobody follows: not kept
        assert_eq!(kept(&channel), 0);
        let (mut a, mut b) = (
            Events::subscribe(channel.clone()),
            Events::subscribe(channel.clone()),
        );
        channel.send(event(1));
        channel.send(event(2));
        assert_eq!((a.queued(), b.queued()), (2, 2));
        let mut got_a = Vec::new();
        while let Some(e) = Events::try_recv(&a.channel, &mut a.next).unwrap() {
            got_a.push(id(e));
        }
        assert_eq!(got_a, ["1-0", "2-0"]);
        assert_eq!(kept(&channel), 2, "b has not taken them");
        let first = Events::try_recv(&b.channel, &mut b.next).unwrap().unwrap();
        assert_eq!(id(first), "1-0");
        assert_eq!(kept(&channel), 1);
        // A follower joining now starts with what comes next.
        let mut c = Events::subscribe(channel.clone());
        assert_eq!(c.queued(), 0);
        channel.send(event(3));
        assert_eq!(
            id(Events::try_recv(&c.channel, &mut c.next).unwrap().unwrap()),
            "3-0"
        );
        drop(b);
        drop(a);
        assert_eq!(kept(&channel), 0, "nobody else waits for them");
    }

    #[test]
    fn a_follower_behind_by_more_than_is_kept_lags_alone() {
        let channel = Arc::new(Channel::new(3));
        let (mut slow, mut fast) = (
            Events::subscribe(channel.clone()),
            Events::subscribe(channel.clone()),
        );
        for n in 0..5 {
            channel.send(event(n));
            assert_eq!(
                id(Events::try_recv(&fast.channel, &mut fast.next)
                    .unwrap()
                    .unwrap()),
                format!("{n}-0")
            );
        }
        assert_eq!(kept(&channel), 3, "at most max_kept");
        assert_eq!(slow.queued(), 3);
        assert!(matches!(
            Events::try_recv(&slow.channel, &mut slow.next),
            Err(Lagged)
        ));
        assert_eq!(kept(&channel), 0, "the lagged one gave up its share");
        drop(slow);
        channel.send(event(5));
        assert_eq!(kept(&channel), 1);
        assert_eq!(channel.ring.lock().receivers, 1);
    }

    #[test]
    fn an_event_not_newer_than_the_last_one_is_dropped() {
        // While upgrading, each event comes twice (its generation's channel and the
        // old one), in either order.
        let channel = Arc::new(Channel::new(10));
        let mut follower = Events::subscribe(channel.clone());
        for n in [1, 1, 2, 1, 3, 2, 3] {
            channel.send(event(n));
        }
        channel.send(HubEvent::Resync);
        let mut got = Vec::new();
        while let Some(e) = Events::try_recv(&follower.channel, &mut follower.next).unwrap() {
            got.push(id(e));
        }
        assert_eq!(got, ["1-0", "2-0", "3-0", "resync"]);
    }

    /// A publisher of the release before sends on the one old channel only: heard
    /// while `STREAM_LEGACY_FANOUT` is on, ignored once it is off; the generation's
    /// own channel is heard either way, and a copy on both is one event.
    #[tokio::test]
    async fn the_old_channel_is_heard_only_while_upgrading() {
        for legacy in [true, false] {
            let store = Store::memory("t").with_legacy_fanout(legacy);
            let hub = Hub::new(store.clone(), 8);
            let mut follow = hub.follow("g").await.unwrap();
            let message = |n: u64| format!(r#"{{"g":"g","id":"{n}-0","s":"processing","d":{{}}}}"#);
            let old = store.keys().events_channel();
            let own = store.keys().generation_channel("g");
            store.publish(&old, &message(1)).await.unwrap();
            store.publish(&own, &message(2)).await.unwrap();
            store.publish(&old, &message(2)).await.unwrap();
            store.publish(&own, &message(3)).await.unwrap();
            let mut got = Vec::new();
            while got.len() < if legacy { 3 } else { 2 } {
                let event = tokio::time::timeout(Duration::from_secs(2), follow.events.recv())
                    .await
                    .unwrap()
                    .unwrap();
                got.push(id(event));
            }
            let want: &[&str] = if legacy {
                &["1-0", "2-0", "3-0"]
            } else {
                &["2-0", "3-0"]
            };
            assert_eq!(got, want, "legacy {legacy}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(follow.events.queued(), 0, "nothing doubled");
        }
    }

    #[tokio::test]
    async fn recv_waits_for_the_next_event() {
        let channel = Arc::new(Channel::new(4));
        let mut follower = Events::subscribe(channel.clone());
        let waiting = tokio::spawn(async move { follower.recv().await.map(id) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        channel.send(event(7));
        assert_eq!(waiting.await.unwrap(), Ok("7-0".to_owned()));
        assert_eq!(kept(&channel), 0);
    }
}
