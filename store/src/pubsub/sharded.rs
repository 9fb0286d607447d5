//! The handle the store keeps on the owned sharded subscriber: requests go to one task
//! (`manager.rs`) that owns every node connection (`node.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::canary::{Canaries, CanaryName, Delivery};
use super::manager::manage;
use super::protocol::{Locate, Login, Request};
use crate::{PubSubMessage, StoreError, StoreResult};

/// The handle the store keeps: requests go to one task that owns every connection.
pub(crate) struct Sharded {
    pub(super) requests: mpsc::UnboundedSender<Request>,
    pub(super) inbox: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
    /// Confirmed subscriptions per node (for metrics and tests).
    pub(super) counts: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
    pub(super) canaries: Arc<parking_lot::Mutex<Canaries>>,
}

impl Sharded {
    pub(crate) fn new() -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        Self {
            requests,
            inbox: parking_lot::Mutex::new(Some(inbox)),
            counts: Arc::default(),
            canaries: Arc::default(),
        }
    }

    /// Starts the task on the first use (inside a runtime).
    pub(super) fn start(
        &self,
        locate: impl FnOnce() -> (Locate, Login, broadcast::Sender<PubSubMessage>, Duration),
    ) {
        if let Some(inbox) = self.inbox.lock().take() {
            let (locate, login, sender, timeout) = locate();
            tokio::spawn(manage(
                inbox,
                locate,
                login,
                sender,
                timeout,
                self.counts.clone(),
                self.canaries.clone(),
            ));
        }
    }

    /// Subscribes to `channel` (in `slot`) and waits until the node confirmed it.
    pub(super) async fn subscribe(
        &self,
        channel: &str,
        slot: u16,
        timeout: Duration,
        start: impl FnOnce() -> (Locate, Login, broadcast::Sender<PubSubMessage>, Duration),
    ) -> StoreResult<()> {
        self.start(start);
        let (done, confirmed) = oneshot::channel();
        self.requests
            .send(Request::Subscribe {
                channel: channel.into(),
                slot,
                done,
            })
            .map_err(|_| StoreError::Unavailable("the subscriber has stopped".into()))?;
        match tokio::time::timeout(timeout, confirmed).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(StoreError::Unavailable(
                "sharded subscription not confirmed".into(),
            )),
        }
    }

    /// Ends the subscription to `channel` (without waiting).
    pub(super) fn unsubscribe(&self, channel: &str) {
        let _ = self.requests.send(Request::Unsubscribe {
            channel: channel.into(),
        });
    }

    /// Confirmed subscriptions per node address (the canaries not counted).
    pub(super) fn per_node(&self) -> HashMap<String, usize> {
        self.counts.lock().clone()
    }

    /// Keeps a canary subscribed on every master, on the connections of the
    /// generations' channels. Once per store; true the first time.
    pub(super) fn watch_delivery(
        &self,
        name: CanaryName,
        start: impl FnOnce() -> (Locate, Login, broadcast::Sender<PubSubMessage>, Duration),
    ) -> bool {
        {
            let mut canaries = self.canaries.lock();
            if canaries.watched {
                return false;
            }
            canaries.watched = true;
        }
        self.start(start);
        let _ = self.requests.send(Request::Canary { name });
        true
    }

    /// Each master's canary channel, to publish on.
    pub(super) fn canary_targets(&self) -> Vec<(String, Arc<str>)> {
        self.canaries
            .lock()
            .nodes
            .iter()
            .map(|(node, c)| (node.clone(), c.channel.clone()))
            .collect()
    }

    /// Records which nodes answered the canary's publishes, and exports each node's
    /// delivery (`authstream_stream_subscription_delivering{node}`).
    pub(super) fn canary_answers(&self, answers: &[(String, bool)]) {
        let now = Instant::now();
        let mut canaries = self.canaries.lock();
        for (node, answered) in answers {
            if let Some(canary) = canaries.nodes.get_mut(node) {
                if *answered && !canary.answers {
                    canary.answering_since = Some(now);
                }
                canary.answers = *answered;
            }
        }
        for (node, canary) in &canaries.nodes {
            let delivering = canary.delivery(node, now).delivering;
            metrics::gauge!("authstream_stream_subscription_delivering", "node" => node.clone())
                .set(if delivering { 1.0 } else { 0.0 });
        }
    }

    /// Each master's delivery, from memory; `None` when no canary is watched.
    pub(super) fn delivery(&self) -> Option<Vec<Delivery>> {
        let canaries = self.canaries.lock();
        let now = Instant::now();
        canaries.watched.then(|| {
            canaries
                .nodes
                .iter()
                .map(|(node, c)| c.delivery(node, now))
                .collect()
        })
    }
}
