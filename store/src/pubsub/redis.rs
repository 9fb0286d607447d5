//! Pub/sub on Redis: publishing, the process's one legacy subscription, and the
//! owned sharded subscriber set up on this store's connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{self, FromRedisValue};
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use super::canary::{CanaryName, Delivery};
use super::protocol::{Locate, Login};
use super::resp::SlotMap;
use crate::redis::{Conn, RedisStore, Target, address, unavailable};
use crate::{PubSubMessage, StoreError, StoreResult};

pub(crate) struct PubSubState {
    pub(crate) channels: Mutex<Vec<String>>,
    pub(crate) sender: broadcast::Sender<PubSubMessage>,
    /// True while the subscription is live; the task starts on the first subscriber.
    pub(crate) live: watch::Sender<bool>,
    pub(crate) started: std::sync::Once,
}

impl RedisStore {
    pub(crate) fn set_channels(&self, channels: Vec<String>) {
        *self.pubsub.channels.lock() = channels;
    }

    pub(crate) async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        self.query::<()>(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    pub(crate) async fn subscribe(&self) -> StoreResult<broadcast::Receiver<PubSubMessage>> {
        let receiver = self.pubsub.sender.subscribe();
        self.pubsub.started.call_once(|| {
            let clients = match &self.target {
                Target::Single => vec![self.client.clone()],
                Target::Cluster(cluster) => cluster.1.clone(),
            };
            tokio::spawn(run_subscription(clients, self.pubsub.clone(), self.timeout));
        });
        let mut live = self.pubsub.live.subscribe();
        tokio::time::timeout(self.timeout, live.wait_for(|up| *up))
            .await
            .map_err(|_| StoreError::Unavailable("subscription not live".into()))?
            .map_err(unavailable)?;
        Ok(receiver)
    }

    /// Subscribes this process to a generation's channel (`SSUBSCRIBE` on the node of
    /// its slot) and returns once the node confirmed it.
    pub(crate) async fn subscribe_channel(&self, channel: &str) -> StoreResult<()> {
        let slot = crate::slot::key_slot(channel);
        self.sharded
            .subscribe(channel, slot, self.timeout, self.sharded_setup())
            .await
    }

    /// What the sharded subscriptions' task needs, made when it starts.
    fn sharded_setup(
        &self,
    ) -> impl FnOnce() -> (Locate, Login, broadcast::Sender<PubSubMessage>, Duration) + use<> {
        let store = self.clone();
        move || {
            let info = store.client.get_connection_info();
            let login = Login {
                username: info
                    .redis_settings()
                    .username()
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                password: info.redis_settings().password().map(str::to_owned),
                tls: crate::redis::is_tls(info),
            };
            let single = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port)
                | redis::ConnectionAddr::TcpTls { host, port, .. } => Ok(address(host, *port)),
                _ => Err("a unix socket is not supported for the sharded subscriptions"),
            };
            let host = crate::redis::host_of(info.addr()).to_owned();
            let sender = store.pubsub.sender.clone();
            let timeout = store.timeout;
            let locate: Locate = Arc::new(move || {
                let store = store.clone();
                let single = single.clone();
                let host = host.clone();
                Box::pin(async move {
                    if !store.is_cluster() {
                        return single
                            .map(SlotMap::single)
                            .map_err(|e| StoreError::Unavailable(e.into()));
                    }
                    let reply: redis::Value =
                        store.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
                    SlotMap::from_cluster_slots(&reply, &host)
                        .ok_or_else(|| unavailable("unreadable CLUSTER SLOTS reply"))
                })
            });
            (locate, login, sender, timeout)
        }
    }

    /// Starts this process's canary (once): a channel of its own on every master,
    /// subscribed through the generations' connections, and `SPUBLISH`ed to each
    /// master every `CANARY_EVERY` through the shared connection.
    pub(crate) fn watch_delivery(&self, name: CanaryName) {
        if !self.sharded.watch_delivery(name, self.sharded_setup()) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(super::canary::CANARY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent: u64 = 0;
            loop {
                tick.tick().await;
                sent += 1;
                let payload = sent.to_string();
                let publishes = store.sharded.canary_targets().into_iter().map(
                    |(node, channel)| {
                        let (store, payload) = (&store, &payload);
                        async move {
                            let answered = store.publish_at(&node, &channel, payload).await;
                            if let Err(e) = &answered {
                                tracing::debug!(%node, error = %e, "the canary was not published");
                            }
                            (node, answered.is_ok())
                        }
                    },
                );
                let answers = futures_util::future::join_all(publishes).await;
                store.sharded.canary_answers(&answers);
            }
        });
    }

    /// `SPUBLISH` on the shared connection, to the node at `node` itself on a
    /// Cluster (the question is whether that node answers). Not a request's round trip.
    pub(crate) async fn publish_at(
        &self,
        node: &str,
        channel: &str,
        payload: &str,
    ) -> StoreResult<()> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let mut spublish = redis::cmd("SPUBLISH");
        spublish.arg(channel).arg(payload);
        if !self.is_cluster() {
            return self.query::<i64>(&spublish).await.map(drop);
        }
        let (host, port) = node
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| unavailable("not a host:port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        self.bounded(async {
            let Conn::Cluster(mut conn) = self.conn().await? else {
                return Ok(());
            };
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            let reply = conn
                .route_command(spublish, route)
                .await
                .map_err(unavailable)?;
            i64::from_redis_value(reply).map(drop).map_err(unavailable)
        })
        .await
    }

    /// Each master's canary delivery, from memory; `None` without a canary.
    pub(crate) fn delivery(&self) -> Option<Vec<Delivery>> {
        self.sharded.delivery()
    }

    /// Ends this process's subscription to a generation's channel.
    pub(crate) fn unsubscribe_channel(&self, channel: &str) {
        self.sharded.unsubscribe(channel);
    }

    /// Confirmed sharded subscriptions per node address.
    pub(crate) fn sharded_subscriptions(&self) -> HashMap<String, usize> {
        self.sharded.per_node()
    }
}

/// Keeps one subscription alive for the life of the process, reconnecting with backoff.
pub(crate) async fn run_subscription(
    clients: Vec<redis::Client>,
    state: Arc<PubSubState>,
    timeout: Duration,
) {
    let mut connected_before = false;
    let mut backoff = Duration::from_millis(50);
    // On a cluster, each attempt tries the next seed: a dead node is passed over.
    for client in clients.iter().cycle() {
        let channels = state.channels.lock().clone();
        let attempt = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            for channel in &channels {
                pubsub.subscribe(channel).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match attempt {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(50);
                if connected_before {
                    tracing::info!("store subscription re-established");
                    let _ = state.sender.send(PubSubMessage::Reconnected);
                }
                connected_before = true;
                state.live.send_replace(true);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    // No receivers is fine: nobody is streaming right now.
                    let _ = state.sender.send(PubSubMessage::Message {
                        channel: msg.get_channel_name().into(),
                        payload: payload.into(),
                    });
                }
                state.live.send_replace(false);
                tracing::warn!("store subscription lost, reconnecting");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "store subscription failed"),
            Err(_) => tracing::debug!("store subscription timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
