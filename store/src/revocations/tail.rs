//! The revocation tail: every log read every `TAIL_POLL_INTERVAL`, concurrently, on
//! connections of its own that follow each log's master.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{self};

use super::{RevocationView, TAIL_POLL_INTERVAL};
use crate::redis::{Conn, Target, unavailable};
use crate::{REVOCATION_LOG_SHARDS, StoreResult};
use authstream_runtime::clock::UnixTime;

/// Log entries after `after`, oldest first: `(id, entry)`.
pub(crate) async fn read_log_on(
    conn: &mut impl ConnectionLike,
    log: &str,
    after: &str,
    count: usize,
) -> StoreResult<Vec<(String, String)>> {
    type Entries = Vec<(String, Vec<(String, String)>)>;
    let entries: Entries = redis::cmd("XRANGE")
        .arg(log)
        .arg(format!("({after}"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    Ok(entries
        .into_iter()
        .filter_map(|(id, fields)| {
            let (_, entry) = fields.into_iter().find(|(f, _)| f == "r")?;
            Some((id, entry))
        })
        .collect())
}

/// Tails every revocation log the view wants (`RevocationView::tailed_logs`) into it:
/// one loop per log, each on its own schedule, so that a log whose master is being
/// replaced holds up only its own users' freshness. On one Redis the loops share one
/// connection of their own; on a Cluster each loop has a plain connection to its log's
/// node (not the cluster connection, which stops every request while it relearns the
/// topology), found from `CLUSTER SLOTS` and found again when a read fails.
pub(crate) async fn run_revocation_tail(
    client: redis::Client,
    target: Target,
    timeout: Duration,
    logs: [String; REVOCATION_LOG_SHARDS + 1],
    view: Weak<RevocationView>,
    page: usize,
) {
    let conn = Arc::new(TailConnection {
        client,
        target,
        timeout,
        current: tokio::sync::Mutex::new((0, None)),
        slots: parking_lot::Mutex::new(Located::default()),
    });
    let loops = logs
        .into_iter()
        .enumerate()
        .map(|(log, key)| tail_log(log, key, conn.clone(), view.clone(), page));
    futures_util::future::join_all(loops).await;
}

/// The tail's connections.
pub(crate) struct TailConnection {
    pub(crate) client: redis::Client,
    pub(crate) target: Target,
    pub(crate) timeout: Duration,
    /// One Redis: the shared connection and its number (which connection a failed
    /// read was on).
    pub(crate) current: tokio::sync::Mutex<(u64, Option<Conn>)>,
    /// A Cluster: where each slot lives.
    pub(crate) slots: parking_lot::Mutex<Located>,
}

#[derive(Default)]
pub(crate) struct Located {
    pub(crate) map: crate::pubsub::SlotMap,
    /// A read failed since it was asked: ask again.
    pub(crate) stale: bool,
    pub(crate) asked_at: Option<Instant>,
}

/// How often at most the tail asks a Cluster where the slots live.
pub(crate) const RELOCATE_EVERY: Duration = Duration::from_millis(200);

impl TailConnection {
    /// A connection that reads `key`, and its number for `failed`.
    pub(crate) async fn get(&self, key: &str) -> Option<(u64, Conn)> {
        let connect = |client: redis::Client| async move {
            let connected = tokio::time::timeout(self.timeout, async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg("authstream-revocations")
                    .exec_async(&mut conn)
                    .await?;
                Ok::<_, redis::RedisError>(conn)
            })
            .await;
            connected.ok()?.ok().map(Conn::Dedicated)
        };
        if let Target::Cluster(cluster) = &self.target {
            let connected = match self.node_of(key, &cluster.1).await {
                Some(node) => connect(node).await,
                None => None,
            };
            if connected.is_none() {
                // The node that was said to serve it does not answer: ask again.
                self.slots.lock().stale = true;
            }
            return Some((0, connected?));
        }
        let mut current = self.current.lock().await;
        if let (number, Some(conn)) = &*current {
            return Some((*number, conn.clone()));
        }
        let conn = connect(self.client.clone()).await?;
        current.0 += 1;
        current.1 = Some(conn.clone());
        Some((current.0, conn))
    }

    /// A read on connection `number` failed: the next `get` connects again (once, for
    /// every loop that was on it). On a Cluster, the slots are asked again.
    pub(crate) async fn failed(&self, number: u64) {
        if matches!(self.target, Target::Cluster(_)) {
            self.slots.lock().stale = true;
            return;
        }
        let mut current = self.current.lock().await;
        if current.0 == number {
            current.1 = None;
        }
    }

    /// A client of the master serving `key`'s slot, asking where that is when it is
    /// not known (or a read failed since), at most every `RELOCATE_EVERY`.
    pub(crate) async fn node_of(
        &self,
        key: &str,
        seeds: &[redis::Client],
    ) -> Option<redis::Client> {
        let slot = crate::slot::key_slot(key);
        let ask = {
            let slots = self.slots.lock();
            (slots.stale || slots.asked_at.is_none())
                && slots
                    .asked_at
                    .is_none_or(|at| at.elapsed() >= RELOCATE_EVERY)
        };
        if ask {
            self.locate(seeds).await;
        }
        let addr = self.slots.lock().map.node_of(slot)?.to_owned();
        client_at(seeds.first()?, &addr)
    }

    /// Asks where the slots live (`CLUSTER SLOTS`) of the nodes last known, then of
    /// the seeds, keeping the first answer.
    pub(crate) async fn locate(&self, seeds: &[redis::Client]) {
        let known: Vec<redis::Client> = {
            let mut slots = self.slots.lock();
            slots.asked_at = Some(Instant::now());
            let mut addrs: Vec<&str> = slots.map.0.values().map(|(_, a)| a.as_str()).collect();
            addrs.sort_unstable();
            addrs.dedup();
            addrs
                .into_iter()
                .filter_map(|addr| client_at(seeds.first()?, addr))
                .collect()
        };
        for node in known.iter().chain(seeds) {
            let asked = tokio::time::timeout(self.timeout, async {
                let mut conn = node.get_multiplexed_async_connection().await?;
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async::<redis::Value>(&mut conn)
                    .await
            })
            .await;
            let host = crate::redis::host_of(node.get_connection_info().addr());
            if let Ok(Ok(reply)) = asked
                && let Some(map) = crate::pubsub::SlotMap::from_cluster_slots(&reply, host)
            {
                let mut slots = self.slots.lock();
                slots.map = map;
                slots.stale = false;
                return;
            }
        }
    }
}

/// A client of the node at `addr` (`host:port`), logging in as `template` does, over
/// TLS (with its parameters) when it does.
pub(crate) fn client_at(template: &redis::Client, addr: &str) -> Option<redis::Client> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = port.parse().ok()?;
    let info = template.get_connection_info().clone();
    let at = match info.addr() {
        redis::ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => redis::ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => redis::ConnectionAddr::Tcp(host, port),
    };
    redis::Client::open(info.set_addr(at)).ok()
}

/// Reads log `log` into the view, from the start, then every `TAIL_POLL_INTERVAL`
/// from the last id read (at once while pages come full). Each read that reaches the
/// end of the log marks its users fresh; a failed one marks them stale, and the log is
/// read from the start again (a promoted replica, or a Redis that lost its data,
/// numbers its log by its own clock, maybe below what was read before; applying an
/// entry twice changes nothing). The legacy log's loop waits while it is off.
pub(crate) async fn tail_log(
    log: usize,
    key: String,
    conn: Arc<TailConnection>,
    view: Weak<RevocationView>,
    page: usize,
) {
    let mut last_id = "0-0".to_owned();
    let mut backoff = Duration::from_millis(50);
    let mut failing = false;
    let mut pruned_at = UnixTime::now();
    let mut connection: Option<(u64, Conn)> = None;
    loop {
        match view.upgrade() {
            None => return,
            Some(view) if !view.tailed_logs().contains(&log) => {
                drop(view);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Some(_) => {}
        }
        let asked = Instant::now();
        if connection.is_none() {
            connection = conn.get(&key).await;
        }
        let read = match &mut connection {
            Some((number, c)) => {
                let read =
                    tokio::time::timeout(conn.timeout, read_log_on(c, &key, &last_id, page)).await;
                match read {
                    Ok(Ok(entries)) => Some(entries),
                    _ => {
                        conn.failed(*number).await;
                        connection = None;
                        None
                    }
                }
            }
            None => None,
        };
        let Some(view) = view.upgrade() else { return };
        let Some(entries) = read else {
            view.lost(log);
            if !failing {
                tracing::warn!(
                    log,
                    "revocation log tail lost; its users' checks ask the store until it is back"
                );
                failing = true;
            }
            "0-0".clone_into(&mut last_id);
            drop(view);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        failing = false;
        backoff = Duration::from_millis(50);
        for (_, entry) in &entries {
            view.apply_logged(entry);
        }
        if let Some((id, _)) = entries.last() {
            last_id.clone_from(id);
        }
        if entries.len() == page {
            continue;
        }
        view.heard(log, asked);
        let now = UnixTime::now();
        if log == 0 && now.millis() - pruned_at.millis() > 10_000 {
            view.prune(now.millis());
            pruned_at = now;
        }
        drop(view);
        tokio::time::sleep(TAIL_POLL_INTERVAL).await;
    }
}
