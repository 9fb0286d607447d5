//! The in-memory twin of the rate-limit scripts, on the wall clock as Redis's `TIME`
//! gives it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{Cost, Decision, Gcra, KeySpend, Spend, TatUpdate};
use crate::memory::{Data, Entry, MemoryStore, Value, wall_clock_us};
use crate::{Read, ReadAnswer, StoreResult};

/// The twin of `lua/gcra.lua` on the wall clock in microseconds, as Redis's `TIME`
/// gives it.
pub(crate) fn decide(d: &mut Data, key: &str, gcra: Gcra, cost: Cost, now: Instant) -> Decision {
    let now_us = wall_clock_us();
    let stored = match d.live(key, now) {
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => s.parse().ok(),
        _ => None,
    };
    let (decision, update) = super::gcra(stored, now_us, gcra, cost);
    match update {
        TatUpdate::Keep => {}
        TatUpdate::Set { tat_us, ttl } => {
            d.insert(key, Value::Str(tat_us.to_string()), Some(ttl), now);
        }
        TatUpdate::Delete => {
            d.entries.remove(key);
        }
    }
    decision
}

impl MemoryStore {
    /// The twin of `lua/fields.lua`, under the one lock.
    pub(crate) async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        let now_us = wall_clock_us();
        let decisions = self.with(|d, now| {
            let (mut fields, expires_at) = match d.live(spend.key, now) {
                Some(Entry {
                    value: Value::Hash(h),
                    expires_at,
                }) => (h.clone(), *expires_at),
                _ => (HashMap::new(), None),
            };
            let stored: Vec<Option<i64>> = spend
                .budgets
                .iter()
                .map(|b| fields.get(b.field).and_then(|v| v.parse().ok()))
                .collect();
            let gcras: Vec<Gcra> = spend.budgets.iter().map(|b| b.gcra).collect();
            let decided = super::gcra_all(&stored, now_us, &gcras, spend.cost);
            let mut longest = expires_at.map_or(Duration::ZERO, |t| t - now);
            for (budget, (_, update)) in spend.budgets.iter().zip(&decided) {
                match update {
                    TatUpdate::Keep => {}
                    TatUpdate::Set { tat_us, ttl } => {
                        fields.insert(budget.field.to_owned(), tat_us.to_string());
                        longest = longest.max(*ttl);
                    }
                    TatUpdate::Delete => {
                        fields.remove(budget.field);
                    }
                }
            }
            fields.retain(|_, tat| tat.parse::<i64>().is_ok_and(|t| t > now_us));
            if fields.is_empty() || longest.is_zero() {
                d.entries.remove(spend.key);
            } else {
                d.insert(spend.key, Value::Hash(fields), Some(longest), now);
            }
            decided.into_iter().map(|(decision, _)| decision).collect()
        })?;
        let found = match read {
            Some(read) => Some(self.read(read).await?),
            None => None,
        };
        Ok((decisions, found))
    }

    pub(crate) async fn rate_limit(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
    ) -> StoreResult<Decision> {
        self.with(|d, now| decide(d, key, gcra, cost, now))
    }

    pub(crate) async fn rate_limit_and_read(
        &self,
        KeySpend { key, gcra, cost }: KeySpend<'_>,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        Ok((
            self.rate_limit(key, gcra, cost).await?,
            self.read(read).await?,
        ))
    }
}
