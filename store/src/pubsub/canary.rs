//! The per-node canary: a channel of this replica's own in a slot each master
//! serves, published to every second, so that `/readyz` tells a node that is down
//! (degraded) from this replica's subscription to it not delivering (unready).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The canary channel with hash tag number `k` (`Keys::canary_channel`).
pub(crate) type CanaryName = Arc<dyn Fn(u32) -> String + Send + Sync>;

/// How often the canary is published to each node.
pub const CANARY_EVERY: Duration = Duration::from_secs(1);

/// A node that answers the canary's publishes while this replica's subscription to it
/// delivered nothing for this long (counted from its last (re)subscription, or from
/// when the node answered again) is stalled: `/readyz` answers 503.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// Delivered within this (three canaries): the subscription is delivering now.
pub(super) const DELIVERING_WITHIN: Duration = Duration::from_secs(3);

/// What the canary knows of one master.
#[derive(Debug, Clone)]
pub(super) struct CanaryNode {
    pub(super) channel: Arc<str>,
    /// When the canary began to be wanted on this node.
    pub(super) since: Instant,
    /// When its subscription was last confirmed.
    pub(super) subscribed: Option<Instant>,
    pub(super) delivered: Option<Instant>,
    /// Whether the node answered the last publish, and since when it answers.
    pub(super) answers: bool,
    pub(super) answering_since: Option<Instant>,
}

impl CanaryNode {
    pub(super) fn delivery(&self, node: &str, now: Instant) -> Delivery {
        let delivering = self
            .delivered
            .is_some_and(|at| now.saturating_duration_since(at) <= DELIVERING_WITHIN);
        // A new subscription, or a node back from an outage, gets the whole window.
        let fresh = [
            Some(self.since),
            self.subscribed,
            self.delivered,
            self.answering_since,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.since);
        Delivery {
            node: node.to_owned(),
            answers: self.answers,
            delivering,
            stalled: self.answers
                && !delivering
                && now.saturating_duration_since(fresh) > STALL_AFTER,
        }
    }
}

/// One master as this replica's canary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `host:port`, as the slot map names it.
    pub node: String,
    /// The node answered the last canary publish.
    pub answers: bool,
    /// This replica's subscription delivered a canary within the last 3 s.
    pub delivering: bool,
    /// The node answers, but the subscription delivered nothing for `STALL_AFTER`.
    pub stalled: bool,
}

/// The canaries of every master, shared by the manager (which places them), the node
/// connections (which see them delivered) and the publisher.
#[derive(Default)]
pub(super) struct Canaries {
    pub(super) watched: bool,
    pub(super) nodes: BTreeMap<String, CanaryNode>,
    /// Channel → node.
    pub(super) channels: HashMap<Arc<str>, String>,
}

impl Canaries {
    /// A message on `channel` came through `addr`'s connection: true when it was a
    /// canary (which goes no further).
    pub(super) fn delivered(&mut self, addr: &str, channel: &str) -> bool {
        let Some(node) = self.channels.get(channel) else {
            return false;
        };
        if node == addr
            && let Some(canary) = self.nodes.get_mut(node)
        {
            canary.delivered = Some(Instant::now());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_stalled_only_when_it_answers_and_the_whole_window_passed_undelivered() {
        let start = Instant::now();
        let node = CanaryNode {
            channel: "c".into(),
            since: start,
            subscribed: None,
            delivered: None,
            answers: true,
            answering_since: Some(start),
        };
        let at = |secs: u64| start + Duration::from_secs(secs);
        let seen = |n: &CanaryNode, secs| n.delivery("a:1", at(secs));
        assert!(!seen(&node, 9).stalled, "within the window");
        assert!(seen(&node, 11).stalled, "never delivered");
        let down = CanaryNode {
            answers: false,
            ..node.clone()
        };
        assert!(
            !seen(&down, 60).stalled,
            "a node that does not answer is down"
        );
        let delivered = CanaryNode {
            delivered: Some(at(20)),
            ..node.clone()
        };
        assert!(seen(&delivered, 22).delivering);
        assert!(!seen(&delivered, 25).delivering && !seen(&delivered, 25).stalled);
        assert!(seen(&delivered, 31).stalled);
        let resubscribed = CanaryNode {
            subscribed: Some(at(28)),
            ..delivered.clone()
        };
        assert!(
            !seen(&resubscribed, 31).stalled,
            "a new subscription's window"
        );
        assert!(seen(&resubscribed, 39).stalled);
        let back = CanaryNode {
            answering_since: Some(at(35)),
            ..resubscribed
        };
        assert!(!seen(&back, 39).stalled, "a node back from an outage");
    }
}
