//! The task that owns the node connections: places every subscription where its
//! slot lives, again after a move, a lost connection or a topology change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::canary::{Canaries, CanaryName, CanaryNode};
use super::node::run_node;
use super::protocol::{Locate, Login, NodeEvent, Request};
use super::resp::SlotMap;
use super::resp::encode;
use crate::PubSubMessage;

pub(super) struct Want {
    pub(super) slot: u16,
    /// Where it was sent, and when; `None` while not placed.
    pub(super) node: Option<(String, Instant)>,
    pub(super) confirmed: bool,
    /// It was confirmed once: when confirmed again, its streams resynchronise.
    pub(super) lost: bool,
    pub(super) waiters: Vec<oneshot::Sender<()>>,
    /// A node's canary: not counted among the generations' subscriptions.
    pub(super) canary: bool,
}

pub(super) const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// One canary per master, on a channel in a slot it serves: a master new to the map
/// gets one; a canary whose node left the map, or whose slot moved away, goes (and
/// its node, if still a master, gets another).
pub(super) fn place_canaries(
    slots: &SlotMap,
    name: &CanaryName,
    wanted: &mut HashMap<Arc<str>, Want>,
    nodes: &HashMap<String, mpsc::UnboundedSender<Vec<u8>>>,
    canaries: &parking_lot::Mutex<Canaries>,
) {
    let masters: std::collections::BTreeSet<&str> =
        slots.0.values().map(|(_, addr)| addr.as_str()).collect();
    let mut book = canaries.lock();
    let gone: Vec<String> = book
        .nodes
        .iter()
        .filter(|(addr, c)| slots.node_of(crate::slot::key_slot(&c.channel)) != Some(addr.as_str()))
        .map(|(addr, _)| addr.clone())
        .collect();
    for addr in gone {
        let Some(canary) = book.nodes.remove(&addr) else {
            continue;
        };
        book.channels.remove(&canary.channel);
        if let Some(want) = wanted.remove(&canary.channel)
            && let Some((at, _)) = want.node
            && let Some(node) = nodes.get(&at)
        {
            let _ = node.send(encode(&[b"SUNSUBSCRIBE", canary.channel.as_bytes()]));
        }
        metrics::gauge!("authstream_stream_subscription_delivering", "node" => addr).set(0.0);
    }
    for addr in masters {
        if book.nodes.contains_key(addr) {
            continue;
        }
        // The first tag whose slot this master serves: a few tries for a master of a
        // third of the slots; bounded for one that serves a handful.
        let Some((channel, slot)) = (0..1_000_000u32).find_map(|k| {
            let channel = name(k);
            let slot = crate::slot::key_slot(&channel);
            (slots.node_of(slot) == Some(addr)).then_some((channel, slot))
        }) else {
            continue;
        };
        let channel: Arc<str> = channel.into();
        book.channels.insert(channel.clone(), addr.to_owned());
        book.nodes.insert(
            addr.to_owned(),
            CanaryNode {
                channel: channel.clone(),
                since: Instant::now(),
                subscribed: None,
                delivered: None,
                answers: false,
                answering_since: None,
            },
        );
        wanted.insert(
            channel,
            Want {
                slot,
                node: None,
                confirmed: false,
                lost: false,
                waiters: Vec::new(),
                canary: true,
            },
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn manage(
    mut inbox: mpsc::UnboundedReceiver<Request>,
    locate: Locate,
    login: Login,
    sender: broadcast::Sender<PubSubMessage>,
    timeout: Duration,
    counts: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
    canaries: Arc<parking_lot::Mutex<Canaries>>,
) {
    let (events_tx, mut events) = mpsc::unbounded_channel::<NodeEvent>();
    let mut canary_name: Option<CanaryName> = None;
    let mut wanted: HashMap<Arc<str>, Want> = HashMap::new();
    let mut nodes: HashMap<String, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut slots = SlotMap::default();
    // When the topology must be asked again (now when `None` entries wait).
    let mut stale = true;
    let mut backoff = Duration::from_millis(50);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh = Instant::now();
    let mut next_try = Instant::now();
    loop {
        let mut dirty = false;
        tokio::select! {
            request = inbox.recv() => match request {
                None => return,
                Some(Request::Subscribe { channel, slot, done }) => {
                    let want = wanted.entry(channel).or_insert(Want {
                        slot,
                        node: None,
                        confirmed: false,
                        lost: false,
                        waiters: Vec::new(),
                        canary: false,
                    });
                    if want.confirmed {
                        let _ = done.send(());
                    } else {
                        want.waiters.push(done);
                        dirty = true;
                    }
                }
                Some(Request::Unsubscribe { channel }) => {
                    if let Some(want) = wanted.remove(&channel)
                        && let Some((addr, _)) = want.node
                        && let Some(node) = nodes.get(&addr)
                    {
                        let _ = node.send(encode(&[b"SUNSUBSCRIBE", channel.as_bytes()]));
                    }
                }
                Some(Request::Canary { name }) => {
                    canary_name = Some(name);
                    stale = true;
                    dirty = true;
                }
            },
            event = events.recv() => match event {
                None => return,
                Some(NodeEvent::Subscribed(addr, channel)) => {
                    if let Some(want) = wanted.get_mut(&channel)
                        && want.node.as_ref().is_some_and(|(a, _)| *a == addr)
                    {
                        if want.canary {
                            if let Some(canary) = canaries.lock().nodes.get_mut(&addr)
                                && canary.channel == channel
                            {
                                canary.subscribed = Some(Instant::now());
                            }
                        } else if !want.confirmed && want.lost {
                            let _ = sender.send(PubSubMessage::Resubscribed {
                                channel: channel.clone(),
                            });
                        }
                        want.confirmed = true;
                        want.lost = false;
                        for waiter in want.waiters.drain(..) {
                            let _ = waiter.send(());
                        }
                        backoff = Duration::from_millis(50);
                        // Counted at once.
                        dirty = true;
                    }
                }
                Some(NodeEvent::Unsubscribed(addr, channel)) => {
                    // Asked for (the channel is no longer wanted there) or not: a slot
                    // moved away, and the channel is placed again.
                    if let Some(want) = wanted.get_mut(&channel)
                        && want.confirmed
                        && want.node.as_ref().is_some_and(|(a, _)| *a == addr)
                    {
                        tracing::info!(%channel, node = %addr, "sharded subscription ended by the server; placing it again");
                        lose(want);
                        stale = true;
                        dirty = true;
                    }
                }
                Some(NodeEvent::Moved(addr, slot, to)) => {
                    tracing::info!(slot, from = %addr, %to, "slot moved; subscribing there");
                    for want in wanted.values_mut() {
                        if want.slot == slot && want.node.as_ref().is_some_and(|(a, _)| *a == addr) {
                            lose(want);
                        }
                    }
                    // Until the map is asked again, the redirection is the best guess.
                    slots.0.retain(|start, (end, _)| !(*start <= slot && slot <= *end));
                    slots.0.insert(slot, (slot, to));
                    stale = true;
                    dirty = true;
                }
                Some(NodeEvent::Refused(addr, error)) => {
                    tracing::warn!(node = %addr, %error, "a sharded subscription was refused");
                    for want in wanted.values_mut() {
                        if !want.confirmed && want.node.as_ref().is_some_and(|(a, _)| *a == addr) {
                            want.node = None;
                        }
                    }
                    stale = true;
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Some(NodeEvent::Down(addr)) => {
                    nodes.remove(&addr);
                    metrics::gauge!("authstream_store_sharded_subscriptions", "node" => addr.clone())
                        .set(0.0);
                    for want in wanted.values_mut() {
                        if want.node.as_ref().is_some_and(|(a, _)| *a == addr) {
                            lose(want);
                        }
                    }
                    stale = true;
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            },
            _ = tick.tick() => {
                // A topology change the server told nobody about (a failover that
                // kept the connection, a slot moved while unsubscribed), and
                // subscriptions sent that were never answered.
                if last_refresh.elapsed() >= RECONCILE_EVERY && !wanted.is_empty() {
                    stale = true;
                }
                dirty = true;
            }
        }
        if !dirty || Instant::now() < next_try {
            continue;
        }
        let waiting = wanted.values().any(|w| {
            !w.confirmed
                && w.node
                    .as_ref()
                    .is_none_or(|(_, sent)| sent.elapsed() >= timeout)
        });
        // The canaries are placed once the masters are known.
        let waiting = waiting || (canary_name.is_some() && canaries.lock().nodes.is_empty());
        if stale && (waiting || last_refresh.elapsed() >= RECONCILE_EVERY) {
            last_refresh = Instant::now();
            match tokio::time::timeout(timeout, locate()).await {
                Ok(Ok(map)) => {
                    slots = map;
                    stale = false;
                    if let Some(name) = &canary_name {
                        place_canaries(&slots, name, &mut wanted, &nodes, &canaries);
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the slot map could not be read");
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(_) => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            // A subscription whose slot lives elsewhere now moves there.
            for (channel, want) in wanted.iter_mut() {
                let Some((addr, _)) = &want.node else {
                    continue;
                };
                if slots.node_of(want.slot).is_some_and(|now| now != addr) {
                    if let Some(node) = nodes.get(addr) {
                        let _ = node.send(encode(&[b"SUNSUBSCRIBE", channel.as_bytes()]));
                    }
                    lose(want);
                }
            }
        }
        // Places every waiting subscription, one SSUBSCRIBE per node and slot.
        let mut batches: HashMap<(String, u16), Vec<Arc<str>>> = HashMap::new();
        for (channel, want) in wanted.iter_mut() {
            if want.confirmed
                || want
                    .node
                    .as_ref()
                    .is_some_and(|(_, sent)| sent.elapsed() < timeout)
            {
                continue;
            }
            let Some(addr) = slots.node_of(want.slot) else {
                stale = true;
                continue;
            };
            want.node = Some((addr.to_owned(), Instant::now()));
            batches
                .entry((addr.to_owned(), want.slot))
                .or_default()
                .push(channel.clone());
        }
        for ((addr, _slot), channels) in batches {
            let node = nodes.entry(addr.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_node(
                    addr.clone(),
                    login.clone(),
                    rx,
                    events_tx.clone(),
                    sender.clone(),
                    timeout,
                    canaries.clone(),
                ));
                tx
            });
            let mut args: Vec<&[u8]> = vec![b"SSUBSCRIBE"];
            args.extend(channels.iter().map(|c| c.as_bytes()));
            let _ = node.send(encode(&args));
        }
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for want in wanted.values().filter(|w| w.confirmed && !w.canary) {
            if let Some((addr, _)) = &want.node {
                *per_node.entry(addr.clone()).or_default() += 1;
            }
        }
        for addr in nodes.keys() {
            let n = per_node.get(addr).copied().unwrap_or(0);
            metrics::gauge!("authstream_store_sharded_subscriptions", "node" => addr.clone())
                .set(n as f64);
        }
        *counts.lock() = per_node;
    }
}

pub(super) fn lose(want: &mut Want) {
    if want.confirmed {
        want.lost = true;
    }
    want.confirmed = false;
    want.node = None;
}
