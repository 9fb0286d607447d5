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
//! `rediss://` is not supported here (plain TCP only): the stream service refuses it
//! at start-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::{PubSubMessage, StoreError, StoreResult};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Frame>>),
}

/// The reply is not RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Longest bulk string or array accepted from a server (a message payload is an event).
const MAX_LEN: usize = 512 * 1024 * 1024;

/// Parses one frame from the start of `buf`: the frame and how many bytes it took, or
/// `None` when `buf` does not hold a whole frame yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, Malformed> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn number(text: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(Malformed("bad number"))
}

fn length(n: i64) -> Result<Option<usize>, Malformed> {
    match n {
        -1 => Ok(None),
        n if n < -1 => Err(Malformed("negative length")),
        n => {
            let n = usize::try_from(n).map_err(|_| Malformed("length too large"))?;
            if n > MAX_LEN {
                return Err(Malformed("length too large"));
            }
            Ok(Some(n))
        }
    }
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Frame, usize)>, Malformed> {
    if depth > 8 {
        return Err(Malformed("nested too deep"));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let text_string = || String::from_utf8_lossy(text).into_owned();
    match kind {
        b'+' => Ok(Some((Frame::Simple(text_string()), next))),
        b'-' => Ok(Some((Frame::Error(text_string()), next))),
        b':' => Ok(Some((Frame::Integer(number(text)?), next))),
        b'$' => match length(number(text)?)? {
            None => Ok(Some((Frame::Bulk(None), next))),
            Some(n) => {
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err(Malformed("bulk string not terminated"));
                }
                Ok(Some((
                    Frame::Bulk(Some(buf[next..next + n].to_vec())),
                    next + n + 2,
                )))
            }
        },
        b'*' => match length(number(text)?)? {
            None => Ok(Some((Frame::Array(None), next))),
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(64));
                let mut at = next;
                for _ in 0..n {
                    match parse_at(buf, at, depth + 1)? {
                        Some((item, after)) => {
                            items.push(item);
                            at = after;
                        }
                        None => return Ok(None),
                    }
                }
                Ok(Some((Frame::Array(Some(items)), at)))
            }
        },
        _ => Err(Malformed("unknown reply type")),
    }
}

/// One command as a RESP2 array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What a subscribed connection receives, in the terms of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    Message {
        channel: String,
        payload: String,
    },
    Subscribed(String),
    Unsubscribed(String),
    /// `-MOVED <slot> <host:port>`: the slot lives elsewhere.
    Moved {
        slot: u16,
        addr: String,
    },
    Error(String),
    Pong,
    Other,
}

fn text(frame: Option<&Frame>) -> Option<String> {
    match frame? {
        Frame::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Frame::Simple(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn classify(frame: &Frame) -> Push {
    match frame {
        Frame::Error(e) => {
            let mut words = e.split_whitespace();
            if words.next() == Some("MOVED")
                && let (Some(slot), Some(addr)) = (words.next(), words.next())
                && let Ok(slot) = slot.parse()
            {
                return Push::Moved {
                    slot,
                    addr: addr.to_owned(),
                };
            }
            Push::Error(e.clone())
        }
        Frame::Array(Some(items)) => {
            let kind = text(items.first()).map(|k| k.to_ascii_lowercase());
            match (kind.as_deref(), text(items.get(1))) {
                (Some("smessage" | "message"), Some(channel)) => match text(items.get(2)) {
                    Some(payload) => Push::Message { channel, payload },
                    None => Push::Other,
                },
                (Some("ssubscribe"), Some(channel)) => Push::Subscribed(channel),
                (Some("sunsubscribe"), Some(channel)) => Push::Unsubscribed(channel),
                (Some("pong"), _) => Push::Pong,
                _ => Push::Other,
            }
        }
        Frame::Simple(s) if s.eq_ignore_ascii_case("pong") => Push::Pong,
        _ => Push::Other,
    }
}

/// Where a node is and how to log in.
#[derive(Clone, Debug)]
pub(super) struct Login {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Finds which node serves each slot: `None` means the topology is unknown now.
pub(super) type Locate =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, StoreResult<SlotMap>> + Send + Sync>;

/// Slot ranges (start → (end, master address)).
#[derive(Clone, Debug, Default)]
pub struct SlotMap(pub BTreeMap<u16, (u16, String)>);

impl SlotMap {
    /// Every slot at one address (a single Redis).
    pub fn single(addr: String) -> Self {
        Self(BTreeMap::from([(0, (16383, addr))]))
    }

    pub fn node_of(&self, slot: u16) -> Option<&str> {
        self.0
            .range(..=slot)
            .next_back()
            .filter(|(_, (end, _))| slot <= *end)
            .map(|(_, (_, addr))| addr.as_str())
    }

    /// From a `CLUSTER SLOTS` reply; `seed_host` stands in for an empty node IP.
    pub fn from_cluster_slots(reply: &redis::Value, seed_host: &str) -> Option<Self> {
        use redis::Value;
        let Value::Array(ranges) = reply else {
            return None;
        };
        let int = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok(),
            _ => None,
        };
        let string = |v: &Value| match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let mut map = BTreeMap::new();
        for range in ranges {
            let Value::Array(range) = range else {
                return None;
            };
            let (start, end) = (int(range.first()?)?, int(range.get(1)?)?);
            let Value::Array(master) = range.get(2)? else {
                return None;
            };
            let host = string(master.first()?)?;
            let host = if host.is_empty() || host == "?" {
                seed_host.to_owned()
            } else {
                host
            };
            let port = match master.get(1)? {
                Value::Int(p) => *p,
                _ => return None,
            };
            map.insert(start, (end, format!("{host}:{port}")));
        }
        Some(Self(map))
    }
}

enum Request {
    Subscribe {
        channel: Arc<str>,
        slot: u16,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        channel: Arc<str>,
    },
    /// Keep a canary subscribed on every master (`name(k)`: the channel of hash tag k).
    Canary {
        name: CanaryName,
    },
}

/// The canary channel with hash tag number `k` (`Keys::canary_channel`).
pub(super) type CanaryName = Arc<dyn Fn(u32) -> String + Send + Sync>;

/// How often the canary is published to each node.
pub const CANARY_EVERY: Duration = Duration::from_secs(1);

/// A node that answers the canary's publishes while this replica's subscription to it
/// delivered nothing for this long (counted from its last (re)subscription, or from
/// when the node answered again) is stalled: `/readyz` answers 503.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// Delivered within this (three canaries): the subscription is delivering now.
const DELIVERING_WITHIN: Duration = Duration::from_secs(3);

/// What the canary knows of one master.
#[derive(Debug, Clone)]
struct CanaryNode {
    channel: Arc<str>,
    /// When the canary began to be wanted on this node.
    since: Instant,
    /// When its subscription was last confirmed.
    subscribed: Option<Instant>,
    delivered: Option<Instant>,
    /// Whether the node answered the last publish, and since when it answers.
    answers: bool,
    answering_since: Option<Instant>,
}

impl CanaryNode {
    fn delivery(&self, node: &str, now: Instant) -> Delivery {
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
struct Canaries {
    watched: bool,
    nodes: BTreeMap<String, CanaryNode>,
    /// Channel → node.
    channels: HashMap<Arc<str>, String>,
}

impl Canaries {
    /// A message on `channel` came through `addr`'s connection: true when it was a
    /// canary (which goes no further).
    fn delivered(&mut self, addr: &str, channel: &str) -> bool {
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

/// The handle the store keeps: requests go to one task that owns every connection.
pub(super) struct Sharded {
    requests: mpsc::UnboundedSender<Request>,
    inbox: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
    /// Confirmed subscriptions per node (for metrics and tests).
    counts: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
    canaries: Arc<parking_lot::Mutex<Canaries>>,
}

impl Sharded {
    pub(super) fn new() -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        Self {
            requests,
            inbox: parking_lot::Mutex::new(Some(inbox)),
            counts: Arc::default(),
            canaries: Arc::default(),
        }
    }

    /// Starts the task on the first use (inside a runtime).
    fn start(
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

/// What a node connection reports to the manager.
enum NodeEvent {
    Subscribed(String, Arc<str>),
    Unsubscribed(String, Arc<str>),
    Moved(String, u16, String),
    Refused(String, String),
    /// The connection is gone (or never came): everything on it must be placed again.
    Down(String),
}

struct Want {
    slot: u16,
    /// Where it was sent, and when; `None` while not placed.
    node: Option<(String, Instant)>,
    confirmed: bool,
    /// It was confirmed once: when confirmed again, its streams resynchronise.
    lost: bool,
    waiters: Vec<oneshot::Sender<()>>,
    /// A node's canary: not counted among the generations' subscriptions.
    canary: bool,
}

const PING_EVERY: Duration = Duration::from_secs(5);
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

#[allow(clippy::too_many_arguments)]
async fn manage(
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

/// One canary per master, on a channel in a slot it serves: a master new to the map
/// gets one; a canary whose node left the map, or whose slot moved away, goes (and
/// its node, if still a master, gets another).
fn place_canaries(
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
        .filter(|(addr, c)| slots.node_of(super::slot::key_slot(&c.channel)) != Some(addr.as_str()))
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
            let slot = super::slot::key_slot(&channel);
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

fn lose(want: &mut Want) {
    if want.confirmed {
        want.lost = true;
    }
    want.confirmed = false;
    want.node = None;
}

/// One node's subscription connection, until it fails or the manager goes.
async fn run_node(
    addr: String,
    login: Login,
    mut commands: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::UnboundedSender<NodeEvent>,
    sender: broadcast::Sender<PubSubMessage>,
    timeout: Duration,
    canaries: Arc<parking_lot::Mutex<Canaries>>,
) {
    let outcome = serve_node(
        &addr,
        &login,
        &mut commands,
        &events,
        &sender,
        timeout,
        &canaries,
    )
    .await;
    match outcome {
        Ok(()) => {}
        Err(e) => tracing::warn!(node = %addr, error = %e, "sharded subscription connection lost"),
    }
    let _ = events.send(NodeEvent::Down(addr));
}

async fn serve_node(
    addr: &str,
    login: &Login,
    commands: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<NodeEvent>,
    sender: &broadcast::Sender<PubSubMessage>,
    timeout: Duration,
    canaries: &parking_lot::Mutex<Canaries>,
) -> Result<(), String> {
    let mut socket = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    if let Some(password) = &login.password {
        let auth = match &login.username {
            Some(user) => encode(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
            None => encode(&[b"AUTH", password.as_bytes()]),
        };
        socket.write_all(&auth).await.map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(timeout, read_frame(&mut socket, &mut buf))
            .await
            .map_err(|_| "AUTH timed out".to_owned())??;
        if reply != Frame::Simple("OK".into()) {
            return Err(format!("AUTH refused: {reply:?}"));
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut heard = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => socket.write_all(&command).await.map_err(|e| e.to_string())?,
                None => return Ok(()),
            },
            _ = ping.tick() => {
                if heard.elapsed() > PING_EVERY * 2 + timeout {
                    return Err("the node answered nothing".into());
                }
                socket.write_all(&encode(&[b"PING"])).await.map_err(|e| e.to_string())?;
            }
            read = socket.read(&mut chunk) => {
                let n = read.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed by the node".into());
                }
                heard = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                while let Some((frame, used)) = parse(&buf[at..]).map_err(|e| e.0.to_owned())? {
                    at += used;
                    let event = match classify(&frame) {
                        Push::Message { channel, payload } => {
                            // A canary is noted and goes no further (cheap test first:
                            // most messages are events).
                            if channel.contains("{canary:")
                                && canaries.lock().delivered(addr, &channel)
                            {
                                continue;
                            }
                            // No receivers is fine: nobody is streaming right now.
                            let _ = sender.send(PubSubMessage::Message {
                                channel: channel.into(),
                                payload: payload.into(),
                            });
                            continue;
                        }
                        Push::Subscribed(c) => NodeEvent::Subscribed(addr.to_owned(), c.into()),
                        Push::Unsubscribed(c) => NodeEvent::Unsubscribed(addr.to_owned(), c.into()),
                        Push::Moved { slot, addr: to } => NodeEvent::Moved(addr.to_owned(), slot, to),
                        Push::Error(e) => NodeEvent::Refused(addr.to_owned(), e),
                        Push::Pong | Push::Other => continue,
                    };
                    let _ = events.send(event);
                }
                buf.drain(..at);
            }
        }
    }
}

async fn read_frame(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Frame, String> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((frame, used)) = parse(buf).map_err(|e| e.0.to_owned())? {
            buf.drain(..used);
            return Ok(frame);
        }
        let n = socket.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed by the node".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(
            parse(b"+OK\r\n").unwrap(),
            Some((Frame::Simple("OK".into()), 5))
        );
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            Some((Frame::Error("ERR no".into()), 9))
        );
        assert_eq!(parse(b":-12\r\n").unwrap(), Some((Frame::Integer(-12), 6)));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n").unwrap(),
            Some((Frame::Bulk(Some(b"a\r\n".to_vec())), 9)),
            "a bulk string may hold CRLF"
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Frame::Bulk(None), 5)));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((Frame::Array(None), 5)));
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n*1\r\n:1\r\n").unwrap(),
            Some((
                Frame::Array(Some(vec![
                    Frame::Bulk(Some(b"x".to_vec())),
                    Frame::Array(Some(vec![Frame::Integer(1)]))
                ])),
                19
            ))
        );
    }

    #[test]
    fn a_partial_reply_waits_for_more_at_every_cut() {
        let whole = b"*3\r\n$8\r\nsmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n+OK\r\n";
        let first = whole.len() - 5;
        for cut in 0..first {
            assert_eq!(parse(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (frame, used) = parse(whole).unwrap().unwrap();
        assert_eq!(used, first);
        assert_eq!(
            classify(&frame),
            Push::Message {
                channel: "chan".into(),
                payload: "hello".into()
            }
        );
        assert_eq!(
            parse(&whole[used..]).unwrap(),
            Some((Frame::Simple("OK".into()), 5))
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b"$1\r\nab\r\n").is_err());
        assert!(parse(b"$99999999999\r\n").is_err());
    }

    #[test]
    fn pushes_are_told_apart() {
        let push = |items: &[&str]| {
            Frame::Array(Some(
                items
                    .iter()
                    .map(|s| Frame::Bulk(Some(s.as_bytes().to_vec())))
                    .collect(),
            ))
        };
        assert_eq!(
            classify(&push(&["ssubscribe", "c"])),
            Push::Subscribed("c".into())
        );
        assert_eq!(
            classify(&push(&["sunsubscribe", "c"])),
            Push::Unsubscribed("c".into())
        );
        assert_eq!(classify(&push(&["pong", ""])), Push::Pong);
        assert_eq!(
            classify(&Frame::Error("MOVED 866 127.0.0.1:7002".into())),
            Push::Moved {
                slot: 866,
                addr: "127.0.0.1:7002".into()
            }
        );
        assert_eq!(
            classify(&Frame::Error("NOPERM x".into())),
            Push::Error("NOPERM x".into())
        );
        assert_eq!(
            encode(&[b"SSUBSCRIBE", b"a"]),
            b"*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\na\r\n".to_vec()
        );
    }

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

    #[test]
    fn the_slot_map_finds_each_slots_node() {
        let mut map = SlotMap::default();
        map.0.insert(0, (5460, "a:1".into()));
        map.0.insert(5461, (10922, "b:2".into()));
        assert_eq!(map.node_of(0), Some("a:1"));
        assert_eq!(map.node_of(5461), Some("b:2"));
        assert_eq!(map.node_of(10923), None);
        assert_eq!(SlotMap::single("x:1".into()).node_of(16383), Some("x:1"));
    }
}
