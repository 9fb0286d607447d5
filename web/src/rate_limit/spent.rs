//! An in-process view of budgets known to be spent, so that a request that would only
//! be refused is refused without asking the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Decision, Limit, Policy, Quota};

/// Budgets this process saw refused, each until the instant it comes back: a request
/// on a path where the budget is spent only *after* a failed store lookup (a refused
/// stream open, a failed service-token attempt) asks `refused_until` first, and is
/// answered 429 at no store cost while a budget is listed.
///
/// - `note(key, retry_after, now)`: the budget `key` (the store key of
///   `RateLimiter::budget`, so that it is keyed exactly as the store keys it) was
///   refused at `now`, and comes back `retry_after` later (the refused decision's
///   `retry_after_us`). A later note replaces an earlier one.
/// - `refused_until(key, now)`: `Some(instant it comes back)` while `key` is listed
///   and that instant is after `now`; `None` otherwise (an entry past its instant is
///   dropped on the way).
/// - `Limit::refused(policy, quota, left)`: the 429 for the answer's `Retry-After` and
///   `RateLimit` headers (`record_limit`, then `check`).
///
/// Time is passed in (`Instant`), so tests need no clock. The view is bounded: at most
/// `capacity` keys (`DEFAULT_CAPACITY`, 100 000: a few MiB at most); past it, expired
/// entries go first, then the ones that come back soonest. Forgetting an entry costs
/// only store lookups (the store still refuses, and the next refusal notes it again):
/// it never lets a request through that the store would refuse. Each process has its
/// own view; the budget itself lives in the store.
pub struct SpentBudgets {
    book: Mutex<Book>,
    capacity: usize,
}

#[derive(Default)]
struct Book {
    until: HashMap<Arc<str>, Instant>,
    /// The same entries, soonest back first.
    by_time: BTreeSet<(Instant, Arc<str>)>,
}

impl Book {
    fn remove(&mut self, key: &str) {
        if let Some((key, at)) = self.until.remove_entry(key) {
            self.by_time.remove(&(at, key));
        }
    }

    /// Drops the entry that comes back soonest.
    fn pop_soonest(&mut self) -> bool {
        match self.by_time.pop_first() {
            Some((_, key)) => {
                self.until.remove(&key);
                true
            }
            None => false,
        }
    }
}

impl SpentBudgets {
    /// The bound of `Default`.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// At most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            book: Mutex::new(Book::default()),
            capacity: capacity.max(1),
        }
    }

    /// `key`'s budget was refused at `now` and comes back `retry_after` later.
    pub fn note(&self, key: &str, retry_after: Duration, now: Instant) {
        let at = now.checked_add(retry_after);
        let mut book = self.book.lock();
        book.remove(key);
        // Expired first: they are due to go anyway.
        while book.by_time.first().is_some_and(|(first, _)| *first <= now) {
            book.pop_soonest();
        }
        while book.until.len() >= self.capacity && book.pop_soonest() {}
        let Some(at) = at.filter(|at| *at > now) else {
            return;
        };
        let key: Arc<str> = Arc::from(key);
        book.until.insert(key.clone(), at);
        book.by_time.insert((at, key));
    }

    /// When `key`'s budget comes back, while that is after `now`.
    pub fn refused_until(&self, key: &str, now: Instant) -> Option<Instant> {
        let mut book = self.book.lock();
        let at = *book.until.get(key)?;
        if at > now {
            return Some(at);
        }
        book.remove(key);
        None
    }

    /// How many keys are listed (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.book.lock().until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SpentBudgets {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Limit {
    /// A refusal of `policy` made without the store (a `SpentBudgets` hit): nothing
    /// left, and the next request fits in `left`.
    pub fn refused(policy: Policy, quota: Quota, left: Duration) -> Self {
        let left_us = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
        Self {
            policy,
            quota,
            decision: Decision {
                allowed: false,
                remaining: 0,
                reset_after_us: left_us,
                retry_after_us: left_us,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_noted_budget_is_refused_until_it_comes_back() {
        let spent = SpentBudgets::default();
        let t0 = Instant::now();
        assert_eq!(spent.refused_until("a", t0), None);
        spent.note("a", 10 * SECOND, t0);
        assert_eq!(spent.refused_until("a", t0), Some(t0 + 10 * SECOND));
        assert_eq!(
            spent.refused_until("a", t0 + 9 * SECOND),
            Some(t0 + 10 * SECOND)
        );
        assert_eq!(spent.refused_until("b", t0), None, "only that key");
        assert_eq!(spent.refused_until("a", t0 + 10 * SECOND), None, "back");
        assert!(spent.is_empty(), "dropped once back");
        // A later note replaces the earlier one, shorter or longer.
        spent.note("a", 10 * SECOND, t0);
        spent.note("a", 2 * SECOND, t0 + SECOND);
        assert_eq!(spent.refused_until("a", t0 + SECOND), Some(t0 + 3 * SECOND));
        assert_eq!(spent.len(), 1);
        // Nothing to wait for: nothing listed.
        spent.note("c", Duration::ZERO, t0);
        assert_eq!(spent.refused_until("c", t0), None);
    }

    #[test]
    fn the_view_is_bounded_and_forgets_expired_entries_first() {
        let spent = SpentBudgets::new(3);
        let t0 = Instant::now();
        spent.note("soon", SECOND, t0);
        spent.note("late", 100 * SECOND, t0);
        spent.note("later", 200 * SECOND, t0);
        assert_eq!(spent.len(), 3);
        // Full, "soon" has expired: it goes, the others stay.
        spent.note("new", 50 * SECOND, t0 + 2 * SECOND);
        assert_eq!(spent.len(), 3);
        assert_eq!(spent.refused_until("soon", t0), None);
        for key in ["late", "later", "new"] {
            assert!(spent.refused_until(key, t0 + 2 * SECOND).is_some(), "{key}");
        }
        // Full of live entries: the one back soonest goes.
        spent.note("newest", 300 * SECOND, t0 + 3 * SECOND);
        assert_eq!(spent.len(), 3);
        assert_eq!(spent.refused_until("new", t0 + 3 * SECOND), None);
        for key in ["late", "later", "newest"] {
            assert!(spent.refused_until(key, t0 + 3 * SECOND).is_some(), "{key}");
        }
    }

    #[test]
    fn a_refusal_without_the_store_reads_as_a_429_with_its_headers() {
        let quota = Quota::parse("30/60s").unwrap();
        let limit = Limit::refused(Policy::Anon, quota, Duration::from_millis(1_500));
        assert_eq!(limit.state_item(), r#""anon";r=0;t=2"#);
        assert_eq!(limit.policy_item(), r#""anon";q=30;w=60"#);
        let refused = limit.check().unwrap_err();
        assert_eq!((refused.status(), refused.retry_after_secs), (429, Some(2)));
    }
}
