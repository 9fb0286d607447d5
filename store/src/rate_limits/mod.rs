//! Rate limits as the store keeps them: GCRA on one key (`gcra`, and its Lua in
//! `lua/gcra.lua`), budgets among the fields of one hash (`lua/fields.lua`), and a
//! decision sent along with a read. The quotas, policies and the limiter the request
//! path asks stay in `crate::rate_limit`: this module only decides and persists.

mod gcra;
mod memory;
mod redis;

pub use self::gcra::{Cost, Decision, Gcra, TatUpdate, gcra, gcra_all};
pub(crate) use self::memory::decide;
pub(crate) use self::redis::{to_decision, to_decisions};
use super::{Read, ReadAnswer, Store, StoreResult};

/// A rate-limit decision on one key, sent along with another operation (the
/// rotation's per-session budget): the key, its GCRA parameters and the cost.
#[derive(Debug, Clone, Copy)]
pub struct KeySpend<'a> {
    pub key: &'a str,
    pub gcra: Gcra,
    pub cost: Cost,
}

/// One budget among the fields of a hash of budgets (`lua/fields.lua`).
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    pub field: &'a str,
    pub gcra: Gcra,
}

/// Rate-limit decisions on the budgets of one hash, all or nothing
/// (`Store::rate_limit_fields`), alone or along with another operation.
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub key: &'a str,
    pub budgets: &'a [Budget<'a>],
    pub cost: Cost,
}

impl Store {
    /// A rate-limit decision (as `rate_limit`) and one read, sent together: one round
    /// trip. The read is made whatever the decision (it changes nothing); on a refusal
    /// the caller drops it.
    pub async fn rate_limit_and_read(
        &self,
        spend: KeySpend<'_>,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        dispatch!(self.rate_limit_and_read(spend, read))
    }

    /// Decisions on budgets kept as the fields of one hash, all or nothing (one
    /// script on its key: `lua/fields.lua` on Redis, `gcra_all`
    /// in memory), with an optional read sent in the same round trip. One decision
    /// per budget, in order.
    pub async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        dispatch!(self.rate_limit_fields(spend, read))
    }

    /// One GCRA rate-limit decision on `key`, atomic, on the store's own clock
    /// (`lua/gcra.lua` on Redis, `gcra` in memory).
    pub async fn rate_limit(&self, key: &str, gcra: Gcra, cost: Cost) -> StoreResult<Decision> {
        dispatch!(self.rate_limit(key, gcra, cost))
    }
}
