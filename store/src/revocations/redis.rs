//! Revocations on Redis: the script, the log appends beside it, and a log read.

use std::sync::Weak;

use deadpool_redis::redis::{self};

use super::tail::{read_log_on, run_revocation_tail};
use super::{RevocationView, RevocationWrite};
use crate::redis::{RedisStore, ms};
use crate::{REVOCATION_LOG_SHARDS, StoreResult};

/// `Store::revoke`: the markers and the sessions ended (sent with `EVAL`, in the
/// same pipeline as the log appends).
const REVOKE: &str = include_str!("lua/revoke.lua");

impl RedisStore {
    pub(crate) async fn revoke(
        &self,
        write: &RevocationWrite,
        logs: &[String],
        entry: &str,
        _now_ms: i64,
        oldest_kept_ms: i64,
    ) -> StoreResult<String> {
        let (markers, keep_for) = (&write.markers, write.keep_for);
        // Redis numbers log entries by its own clock (`XADD *`).
        let mut pipe = redis::pipe();
        let indexed = write.index.is_some();
        let revoke = pipe
            .cmd("EVAL")
            .arg(REVOKE)
            .arg(markers.len() + write.records.len() + usize::from(indexed));
        for (key, _) in markers {
            revoke.arg(key);
        }
        revoke.arg(&write.records);
        if let Some(index) = &write.index {
            revoke.arg(index);
        }
        revoke.arg(markers.len());
        for (_, value) in markers {
            revoke.arg(value).arg(ms(keep_for));
        }
        revoke.arg(&write.session_ids);
        if let Some(all) = &write.all {
            revoke
                .arg(&all.record_prefix)
                .arg(&all.marker_prefix)
                .arg(ms(keep_for));
        }
        revoke.ignore();
        for log in logs {
            pipe.cmd("XADD")
                .arg(log)
                .arg("MINID")
                .arg(oldest_kept_ms.max(0))
                .arg("*")
                .arg("r")
                .arg(entry);
        }
        // Confirmed by a replica of each master written (on a Cluster): a failover
        // cannot undo a revocation that answered success.
        let confirming = self.confirming();
        let ids: Vec<String> = confirming.pipe(&pipe).await?;
        let id = ids.into_iter().next().unwrap_or_default();
        let mut written: Vec<&str> = logs.iter().map(String::as_str).collect();
        written.extend(markers.first().map(|(key, _)| key.as_str()));
        written.extend(write.records.first().map(String::as_str));
        confirming.confirm(&written).await?;
        Ok(id)
    }

    pub(crate) async fn read_log(
        &self,
        log: &str,
        after: &str,
        count: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            read_log_on(&mut conn, log, after, count).await
        })
        .await
    }

    /// Tails the revocation logs (`logs`, by index: the shards, then the legacy log)
    /// into `view` on a connection of its own, for as long as the view lives.
    pub(crate) fn tail_revocations(
        &self,
        logs: [String; REVOCATION_LOG_SHARDS + 1],
        view: Weak<RevocationView>,
        page: usize,
    ) {
        tokio::spawn(run_revocation_tail(
            self.client.clone(),
            self.target.clone(),
            self.timeout,
            logs,
            view,
            page,
        ));
    }
}
