//! GCRA, the generic cell rate algorithm: its parameters, a decision, and the
//! in-process twin of the Lua (`lua/gcra_function.lua`), step for step, in integer
//! microseconds.

use std::time::Duration;

/// A quota as GCRA sees it, in integer microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval_us: i64,
    pub capacity_us: i64,
}

/// What a decision does to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Spend one request when there is room.
    Take,
    /// Only look: would one request fit now?
    Peek,
    /// Give one request back (a login that succeeded after all).
    GiveBack,
}

impl Cost {
    pub fn units(self) -> i64 {
        match self {
            Self::Take => 1,
            Self::Peek => 0,
            Self::GiveBack => -1,
        }
    }
}

/// One decision of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests still allowed right now, after this one.
    pub remaining: u32,
    /// Until the whole budget is back.
    pub reset_after_us: i64,
    /// Until one more request is allowed (zero when one is allowed now).
    pub retry_after_us: i64,
}

impl Decision {
    /// `Retry-After`: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after_us).max(1)
    }

    /// The `t` of the `RateLimit` header: on a refusal, when to retry; otherwise,
    /// when the whole budget is back. Whole seconds, rounded up.
    pub fn reset_secs(&self) -> u64 {
        if self.allowed {
            ceil_secs(self.reset_after_us)
        } else {
            self.retry_after_secs()
        }
    }
}

pub(crate) fn ceil_secs(us: i64) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(0).div_ceil(1_000_000)
}

/// What `gcra` does to the stored TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TatUpdate {
    Keep,
    /// Store `tat_us`, expiring in `ttl`.
    Set {
        tat_us: i64,
        ttl: Duration,
    },
    Delete,
}

/// The in-process twin of `lua/gcra.lua`, step for step.
pub fn gcra(
    stored_tat_us: Option<i64>,
    now_us: i64,
    gcra: Gcra,
    cost: Cost,
) -> (Decision, TatUpdate) {
    let Gcra {
        interval_us: interval,
        capacity_us: capacity,
    } = gcra;
    let tat = stored_tat_us.unwrap_or(0).max(now_us);
    let new_tat = (tat + cost.units() * interval).max(now_us);
    let remaining = |tat: i64| u32::try_from((capacity - (tat - now_us)) / interval).unwrap_or(0);
    match cost {
        Cost::Take if new_tat - now_us > capacity => (
            Decision {
                allowed: false,
                remaining: 0,
                reset_after_us: tat - now_us,
                retry_after_us: new_tat - capacity - now_us,
            },
            TatUpdate::Keep,
        ),
        Cost::Peek => {
            let allowed = tat + interval - now_us <= capacity;
            (
                Decision {
                    allowed,
                    remaining: remaining(tat),
                    reset_after_us: tat - now_us,
                    retry_after_us: if allowed {
                        0
                    } else {
                        tat + interval - capacity - now_us
                    },
                },
                TatUpdate::Keep,
            )
        }
        Cost::Take | Cost::GiveBack => {
            let update = if new_tat > now_us {
                let ttl_ms = u64::try_from(new_tat - now_us).unwrap_or(0).div_ceil(1000);
                TatUpdate::Set {
                    tat_us: new_tat,
                    ttl: Duration::from_millis(ttl_ms),
                }
            } else {
                TatUpdate::Delete
            };
            (
                Decision {
                    allowed: true,
                    remaining: remaining(new_tat),
                    reset_after_us: new_tat - now_us,
                    retry_after_us: 0,
                },
                update,
            )
        }
    }
}

/// The in-process twin of `lua/fields.lua`'s decisions: all or nothing, each budget
/// answered as the script answers it. `stored` holds each budget's TAT.
pub fn gcra_all(
    stored: &[Option<i64>],
    now_us: i64,
    budgets: &[Gcra],
    cost: Cost,
) -> Vec<(Decision, TatUpdate)> {
    let decided: Vec<_> = stored
        .iter()
        .zip(budgets)
        .map(|(tat, g)| gcra(*tat, now_us, *g, cost))
        .collect();
    if decided.iter().all(|(d, _)| d.allowed) {
        return decided;
    }
    decided
        .into_iter()
        .zip(stored.iter().zip(budgets))
        .map(|((d, _), (tat, g))| {
            if d.allowed {
                (gcra(*tat, now_us, *g, Cost::Peek).0, TatUpdate::Keep)
            } else {
                (d, TatUpdate::Keep)
            }
        })
        .collect()
}
