//! One generation's channel: the ring of events its streams have not all taken, a
//! stream's `Events` cursor into it, and the `Follow` that keeps it subscribed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use authstream_store::parse_event_id;
use parking_lot::Mutex;
use tokio::sync::{Notify, OnceCell, broadcast};

use super::{Control, HubEvent, Inner};

/// One generation's events, shared by its streams.
pub(super) struct Channel {
    pub(super) ring: Mutex<Ring>,
    /// Wakes the streams waiting for the next event.
    pub(super) arrived: Notify,
    /// Most events kept for one stream: one more than the limit, so that the limit
    /// itself is checked by the stream (`Events::queued`) before anything is lost.
    pub(super) max_kept: usize,
    /// Set once the store confirmed this replica's subscription to the generation.
    pub(super) subscribed: OnceCell<()>,
    /// Counts the follows, so a linger that began before the last one lets go of
    /// nothing.
    pub(super) follows: AtomicU64,
}

#[derive(Default)]
pub(super) struct Ring {
    /// Events some following stream has not taken yet, oldest first.
    pub(super) slots: VecDeque<Slot>,
    /// The position of `slots[0]`; positions count every event ever sent.
    pub(super) head: u64,
    pub(super) receivers: usize,
    /// The id of the newest event sent: one not newer (a second copy, from the other
    /// channel while upgrading) is dropped.
    pub(super) last: Option<(u64, u64)>,
}

pub(super) struct Slot {
    pub(super) event: HubEvent,
    /// Streams that were following when it came and have not taken it yet.
    pub(super) unread: usize,
}

impl Ring {
    pub(super) fn tail(&self) -> u64 {
        self.head + self.slots.len() as u64
    }

    /// Drops the events every stream has taken.
    pub(super) fn trim(&mut self) {
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
    pub(super) fn new(max_kept: usize) -> Self {
        Self {
            ring: Mutex::new(Ring::default()),
            arrived: Notify::new(),
            max_kept,
            subscribed: OnceCell::new(),
            follows: AtomicU64::new(0),
        }
    }

    pub(super) fn send(&self, event: HubEvent) {
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
    pub(super) channel: Arc<Channel>,
    pub(super) next: u64,
}

/// The stream fell further behind than the channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

impl Events {
    pub(super) fn subscribe(channel: Arc<Channel>) -> Self {
        let next = {
            let mut ring = channel.ring.lock();
            ring.receivers += 1;
            ring.tail()
        };
        Self { channel, next }
    }

    pub(super) fn try_recv(channel: &Channel, next: &mut u64) -> Result<Option<HubEvent>, Lagged> {
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
    pub(super) guard: FollowGuard,
}

pub(super) struct FollowGuard {
    pub(super) hub: Weak<Inner>,
    pub(super) generation_id: String,
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
