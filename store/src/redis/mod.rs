//! The Redis store: a multiplexed connection per worker for every command (it
//! pipelines concurrent requests and reconnects by itself, so no request waits for a
//! checkout; `lanes`),
//! one dedicated pub/sub connection per process that feeds an in-process broadcast, and
//! one dedicated connection that tails the revocation log.
//!
//! This is the core every concern's Redis side builds on: the connections, routing
//! on a Cluster, confirmed writes (`WAIT`), and the generic commands (`primitives`).

mod confirm;
mod lanes;
mod primitives;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use deadpool_redis::redis::{self, FromRedisValue};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use self::lanes::Lanes;
pub(crate) use self::primitives::{read_answer, read_command};
use super::pubsub::{PubSubState, Sharded};
use super::{StoreError, StoreResult};

/// Where the store's commands go: one Redis, or a Redis Cluster.
#[derive(Clone)]
pub(crate) enum Target {
    Single,
    /// The cluster, and a plain client of each seed for what needs one node's
    /// connection of its own (the subscription: a message published on any node of a
    /// cluster reaches the subscribers of every node).
    Cluster(Arc<(redis::cluster::ClusterClient, Vec<redis::Client>)>),
}

/// A connection that commands go over. On a Cluster every command is routed by the
/// slot of its key, and a pipeline is sent as one wave of concurrent commands, each
/// to its own slot's node (cluster-async would send a whole pipeline to one node).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    /// A connection of its own to one Redis (the revocation tail's).
    Dedicated(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => {
                let c = c.clone();
                Box::pin(async move {
                    let sent = pipeline.cmd_iter().map(|cmd| {
                        let mut c = c.clone();
                        async move { c.req_packed_command(cmd).await }
                    });
                    let replies = futures_util::future::try_join_all(sent).await?;
                    Ok(replies.into_iter().skip(offset).take(count).collect())
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    /// The command connections, one per worker (`lanes`).
    pub(crate) shared: Arc<Lanes>,
    /// On a Cluster, the connection of writes that must be confirmed by a replica:
    /// `WAIT` blocks the connection it is sent on, and counts the writes of that
    /// connection only, so such a write and its `WAIT` go over one of their own.
    pub(crate) confirming: Arc<Lanes>,
    /// Whether the master of a slot has replicas, as last asked (`ROLE`).
    pub(crate) replicated: Arc<Mutex<HashMap<u16, (bool, Instant)>>>,
    pub(crate) client: redis::Client,
    pub(crate) target: Target,
    pub(crate) timeout: Duration,
    pub(crate) pubsub: Arc<PubSubState>,
    /// The generations' channels (`SSUBSCRIBE`), on connections of their own.
    pub(crate) sharded: Arc<Sharded>,
}

/// `host:port`, bracketing an IPv6 host.
pub(crate) fn address(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// `rediss://`.
pub(crate) fn is_tls(info: &redis::ConnectionInfo) -> bool {
    matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. })
}

/// The host of a TCP or TLS address; empty for a unix socket.
pub(crate) fn host_of(addr: &redis::ConnectionAddr) -> &str {
    match addr {
        redis::ConnectionAddr::Tcp(host, _) | redis::ConnectionAddr::TcpTls { host, .. } => host,
        _ => "",
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `EX` seconds when the lifetime is whole seconds (stream tokens are configured in
/// seconds), else `PX` milliseconds.
pub(crate) fn expiry(d: Duration) -> (&'static str, u64) {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        ("EX", d.as_secs())
    } else {
        ("PX", ms(d))
    }
}

impl RedisStore {
    /// Connects lazily: a Redis that is down at start-up is not an error here.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Ok(Self::with_target(client, Target::Single, timeout))
    }

    /// A Redis Cluster, from its seeds (`host:port`, or `redis://` / `rediss://` URLs
    /// with an ACL user and password); connects lazily, as `connect`.
    pub fn connect_cluster(seeds: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let urls: Vec<String> = seeds
            .iter()
            .map(|seed| match seed.contains("://") {
                true => seed.clone(),
                false => format!("redis://{seed}"),
            })
            .collect();
        let seeds = urls
            .iter()
            .map(|url| redis::Client::open(url.as_str()).map_err(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        let client = seeds
            .first()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("no cluster seeds".into()))?;
        let cluster = redis::cluster::ClusterClientBuilder::new(urls.clone())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .build()
            .map_err(unavailable)?;
        Ok(Self::with_target(
            client,
            Target::Cluster(Arc::new((cluster, seeds))),
            timeout,
        ))
    }

    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(..))
    }

    pub(crate) fn with_target(client: redis::Client, target: Target, timeout: Duration) -> Self {
        // Before any `rediss://` connection.
        crate::tls::install_crypto_provider();
        let (sender, _) = broadcast::channel(4096);
        Self {
            shared: Arc::new(Lanes::new()),
            confirming: Arc::new(Lanes::new()),
            replicated: Arc::new(Mutex::new(HashMap::new())),
            client,
            target,
            timeout,
            pubsub: Arc::new(PubSubState {
                channels: Mutex::new(Vec::new()),
                sender,
                live: watch::channel(false).0,
                started: std::sync::Once::new(),
            }),
            sharded: Arc::new(Sharded::new()),
        }
    }

    pub(crate) async fn bounded<T>(
        &self,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => {
                if result.is_ok() {
                    self.shared.answered(lanes::lane());
                }
                result
            }
            Err(_) => {
                self.shared.timed_out(lanes::lane(), self.timeout);
                Err(StoreError::Unavailable("timed out".into()))
            }
        }
    }

    /// The calling worker's connection (`lanes`), connected on first use.
    pub(crate) async fn conn(&self) -> StoreResult<Conn> {
        let lane = lanes::lane();
        if let Some(conn) = self.shared.current(lane) {
            return Ok(conn);
        }
        let _one_at_a_time = self.shared.connecting.lock().await;
        if let Some(conn) = self.shared.current(lane) {
            return Ok(conn);
        }
        let conn = match &self.target {
            // One multiplexed connection per node, routing by slot, the topology
            // refreshed on MOVED / ASK and on connection errors.
            Target::Cluster(cluster) => Conn::Cluster(
                cluster
                    .0
                    .get_async_connection()
                    .await
                    .map_err(unavailable)?,
            ),
            Target::Single => {
                // No response timeout of its own: `bounded` is the one timeout, and
                // tells a silent connection from a slow answer.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                let manager = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(unavailable)?;
                Conn::Single(manager)
            }
        };
        self.shared.connected(lane, conn.clone());
        Ok(conn)
    }

    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            cmd.query_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    pub(crate) async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            pipe.query_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    /// Script invocations (`EVALSHA`) sent together in one pipeline, one reply each.
    /// A script Redis has lost (restarted, flushed) answers `NOSCRIPT`: only that one is
    /// invoked again (loading it), so nothing that ran is run twice.
    pub(crate) async fn invoke_all(
        &self,
        invocations: &[&redis::ScriptInvocation<'_>],
    ) -> StoreResult<Vec<redis::Value>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for inv in invocations {
            pipe.invoke_script(inv);
        }
        self.bounded(async {
            let mut conn = self.conn().await?;
            let mut replies: Vec<redis::Value> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            for (reply, inv) in replies.iter_mut().zip(invocations) {
                if let redis::Value::ServerError(e) = reply
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    *reply = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
            }
            Ok(replies)
        })
        .await
    }

    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            inv.invoke_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_expire_with_ex_and_the_rest_with_px() {
        assert_eq!(expiry(Duration::from_secs(60)), ("EX", 60));
        assert_eq!(expiry(Duration::from_millis(1500)), ("PX", 1500));
        assert_eq!(expiry(Duration::from_millis(200)), ("PX", 200));
        assert_eq!(expiry(Duration::ZERO), ("PX", 1));
    }
}
