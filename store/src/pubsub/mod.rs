//! Sharded pub/sub (`SSUBSCRIBE`), owned: one dedicated RESP2 connection per node,
//! `SSUBSCRIBE` batched per slot, and every subscription placed again where its slot
//! lives after an unsolicited `sunsubscribe` (the slot moved), a `-MOVED`, a lost
//! connection or a topology change. redis 1.8.1's own `ssubscribe` is not fit (it
//! exists only on `ClusterConnection`, resubscribes across slots, and takes an
//! unsolicited `sunsubscribe` for the reply to whatever is in flight).
//!
//! The same code runs on one Redis (Redis 7 accepts the sharded commands there: every
//! slot lives at the one address) and on a Cluster (the slot map from `CLUSTER SLOTS`).
//! Messages go into the store's broadcast as `PubSubMessage::Message`; a channel
//! subscribed again after it was lost is announced as `PubSubMessage::Resubscribed`, so
//! its streams re-read the history after their last event.
//!
//! A per-node canary rides on the same connections (`watch_delivery`): a channel of
//! this replica's own in a slot each master serves, so that `/readyz` can tell a node
//! that is down (degraded) from this replica's subscription to it not delivering
//! (unready).
//!
//! Over `rediss://` the connections are TLS (`store::tls`), as the redis crate's.
//!
//! Also the process's one legacy subscription (`PUBLISH`/`SUBSCRIBE` on the events and
//! stream-notices channels, `redis.rs`) and the facade both feed (`Store::subscribe`).

mod canary;
mod manager;
mod memory;
mod node;
mod protocol;
mod redis;
pub mod resp;
mod sharded;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use self::canary::{CANARY_EVERY, Delivery, STALL_AFTER};
pub(crate) use self::redis::PubSubState;
pub use self::resp::{Frame, Malformed, Push, SlotMap, classify, encode, parse};
pub(crate) use self::sharded::Sharded;
use super::{Backend, Store, StoreResult};

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

impl Store {
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
}
