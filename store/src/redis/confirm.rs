//! Confirmed writes on a Cluster (`WAIT` on a connection of their own) and the
//! masters' health for `/readyz`.

use std::time::{Duration, Instant};

use deadpool_redis::redis::{self, FromRedisValue};

use super::unavailable;
use super::{Conn, RedisStore, Target};
use crate::{StoreError, StoreResult};

impl RedisStore {
    /// This store on the connection of confirmed writes (itself on one Redis).
    pub(crate) fn confirming(&self) -> Self {
        match self.target {
            Target::Single => self.clone(),
            Target::Cluster(_) => Self {
                shared: self.confirming.clone(),
                ..self.clone()
            },
        }
    }

    /// On a Cluster, waits until a replica of the master of each of `keys`' slots
    /// holds every write made so far on this connection (`WAIT 1`, on the connection
    /// that wrote: call it on `confirming()`), where that master has replicas. A
    /// write a failover could lose is reported as unavailable (503): a retry is safe.
    /// Nothing on one Redis.
    pub(crate) async fn confirm(&self, keys: &[&str]) -> StoreResult<()> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        if !self.is_cluster() {
            return Ok(());
        }
        let slots: std::collections::BTreeSet<u16> =
            keys.iter().map(|k| crate::slot::key_slot(k)).collect();
        let wait_ms = u64::try_from(self.timeout.as_millis() / 2)
            .unwrap_or(500)
            .max(1);
        self.bounded(async {
            let Conn::Cluster(conn) = self.conn().await? else {
                return Ok(());
            };
            let waits = slots.into_iter().map(|slot| {
                let mut conn = conn.clone();
                async move {
                    let to_master = || {
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                            slot,
                            SlotAddr::Master,
                        )))
                    };
                    if !self.has_replicas(slot, &mut conn, to_master()).await? {
                        return Ok(());
                    }
                    let mut wait = redis::cmd("WAIT");
                    wait.arg(1).arg(wait_ms);
                    let reply = conn
                        .route_command(wait, to_master())
                        .await
                        .map_err(unavailable)?;
                    let acked = i64::from_redis_value(reply).map_err(unavailable)?;
                    if acked < 1 {
                        return Err(StoreError::Unavailable(
                            "no replica confirmed the write in time".into(),
                        ));
                    }
                    Ok(())
                }
            });
            futures_util::future::try_join_all(waits).await.map(drop)
        })
        .await
    }

    /// Whether the master of `slot` has replicas: `ROLE`, asked at most once a second.
    pub(crate) async fn has_replicas(
        &self,
        slot: u16,
        conn: &mut redis::cluster_async::ClusterConnection,
        route: redis::cluster_routing::RoutingInfo,
    ) -> StoreResult<bool> {
        if let Some((known, at)) = self.replicated.lock().get(&slot)
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(*known);
        }
        let role = conn
            .route_command(redis::cmd("ROLE"), route)
            .await
            .map_err(unavailable)?;
        // `master`, its offset, and one entry per replica.
        let replicas = match role {
            redis::Value::Array(parts) => match parts.get(2) {
                Some(redis::Value::Array(replicas)) => !replicas.is_empty(),
                _ => false,
            },
            _ => false,
        };
        self.replicated
            .lock()
            .insert(slot, (replicas, Instant::now()));
        Ok(replicas)
    }

    /// The masters that serve slots (`CLUSTER NODES`, asked of any node that
    /// answers), each pinged on its own within the timeout.
    pub(crate) async fn masters(&self) -> StoreResult<Vec<crate::NodeHealth>> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let Conn::Cluster(conn) = self.conn().await? else {
            return Ok(Vec::new());
        };
        let mut text = None;
        for _ in 0..3 {
            let asked = tokio::time::timeout(
                self.timeout,
                conn.clone().route_command(
                    redis::cmd("CLUSTER").arg("NODES").to_owned(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                ),
            )
            .await;
            if let Ok(Ok(reply)) = asked {
                text = String::from_redis_value(reply).ok();
                break;
            }
        }
        let text = text.ok_or_else(|| StoreError::Unavailable("no cluster node answers".into()))?;
        let masters: Vec<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let serves = fields.len() > 8;
                let master = fields.get(2).is_some_and(|f| f.contains("master"));
                let address = fields.get(1)?.split('@').next()?;
                let (host, port) = address.rsplit_once(':')?;
                let port: u16 = port.parse().ok()?;
                (serves && master).then(|| (host.to_owned(), port))
            })
            .collect();
        let pings = masters.into_iter().map(|(host, port)| {
            let mut conn = conn.clone();
            async move {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                let answered = tokio::time::timeout(
                    self.timeout,
                    conn.route_command(redis::cmd("PING"), route),
                )
                .await;
                crate::NodeHealth {
                    node: format!("{host}:{port}"),
                    up: matches!(answered, Ok(Ok(_))),
                    delivering: None,
                }
            }
        });
        Ok(futures_util::future::join_all(pings).await)
    }
}
