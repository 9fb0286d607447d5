//! Rate-limit decisions on Redis: one script each, on the budget's key.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, Script};

use super::{Cost, Decision, Gcra, KeySpend, Spend};
use crate::redis::RedisStore;
use crate::redis::unavailable;
use crate::redis::{read_answer, read_command};
use crate::{Read, ReadAnswer, StoreResult};

/// One decision on one key (`Store::rate_limit`).
pub(crate) static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/gcra_function.lua"),
        include_str!("lua/gcra.lua")
    ))
});

/// Decisions on the budgets of one hash, all or nothing (`Store::rate_limit_fields`).
pub(crate) static FIELDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/gcra_function.lua"),
        include_str!("lua/fields.lua")
    ))
});

impl RedisStore {
    pub(crate) async fn rate_limit(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
    ) -> StoreResult<Decision> {
        Ok(to_decision(
            self.invoke(self.gcra_invocation(key, gcra, cost)).await?,
        ))
    }

    /// The GCRA script and the read in one pipeline. A script Redis has lost answers
    /// `NOSCRIPT` and ran nothing: it alone is invoked again (loading it).
    pub(crate) async fn rate_limit_and_read(
        &self,
        KeySpend { key, gcra, cost }: KeySpend<'_>,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        let inv = self.gcra_invocation(key, gcra, cost);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.invoke_script(&inv);
        pipe.add_command(read_command(read));
        let (decision, found): (redis::Value, redis::Value) = self
            .bounded(async {
                let mut conn = self.conn().await?;
                let (mut decision, found): (redis::Value, redis::Value) =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                if let redis::Value::ServerError(e) = &decision
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    decision = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
                Ok((decision, found))
            })
            .await?;
        let decision = redis::from_redis_value(decision).map_err(unavailable)?;
        Ok((to_decision(decision), read_answer(read, found)?))
    }

    /// `lua/fields.lua`, and the read in the same pipeline.
    pub(crate) async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        let inv = self.fields_invocation(spend);
        let Some(read) = read else {
            return Ok((to_decisions(self.invoke(inv).await?)?, None));
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.invoke_script(&inv);
        pipe.add_command(read_command(read));
        let (decisions, found): (redis::Value, redis::Value) = self
            .bounded(async {
                let mut conn = self.conn().await?;
                let (mut decisions, found): (redis::Value, redis::Value) =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                if let redis::Value::ServerError(e) = &decisions
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    decisions = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
                Ok((decisions, found))
            })
            .await?;
        Ok((to_decisions(decisions)?, Some(read_answer(read, found)?)))
    }

    pub(crate) fn fields_invocation(&self, spend: &Spend<'_>) -> redis::ScriptInvocation<'_> {
        let mut inv = FIELDS.prepare_invoke();
        inv.key(spend.key).arg(spend.cost.units());
        for budget in spend.budgets {
            inv.arg(budget.field)
                .arg(budget.gcra.interval_us)
                .arg(budget.gcra.capacity_us);
        }
        inv
    }

    pub(crate) fn gcra_invocation(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
    ) -> redis::ScriptInvocation<'_> {
        let mut inv = GCRA.prepare_invoke();
        inv.key(key)
            .arg(gcra.interval_us)
            .arg(gcra.capacity_us)
            .arg(cost.units());
        inv
    }
}

/// Appends one write to a pipeline; its reply is ignored.
/// The GCRA script's answer: allowed, remaining, reset after µs, retry after µs.
/// Four numbers per budget, as `lua/fields.lua` answers.
pub(crate) fn to_decisions(reply: redis::Value) -> StoreResult<Vec<Decision>> {
    let numbers: Vec<i64> = redis::from_redis_value(reply).map_err(unavailable)?;
    Ok(numbers
        .chunks_exact(4)
        .map(|d| to_decision((d[0], d[1], d[2], d[3])))
        .collect())
}

pub(crate) fn to_decision(
    (allowed, remaining, reset_after_us, retry_after_us): (i64, i64, i64, i64),
) -> Decision {
    Decision {
        allowed: allowed == 1,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_after_us,
        retry_after_us,
    }
}
