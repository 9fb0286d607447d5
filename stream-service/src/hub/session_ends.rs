//! The absolute ends of the sessions of the streams open here, for one timer.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The absolute ends of the sessions of the streams open here, for the one timer of
/// `forward_revocations`: end (Unix milliseconds) -> how many open streams end then.
/// A few words per distinct end, nothing per stream.
#[derive(Default)]
pub(super) struct SessionEnds {
    pub(super) ends: Mutex<BTreeMap<i64, usize>>,
    /// An earlier end than the timer waits for was added.
    pub(super) sooner: Notify,
}

impl SessionEnds {
    pub(super) fn add(&self, end_ms: i64) {
        let mut ends = self.ends.lock();
        let sooner = ends
            .first_key_value()
            .is_none_or(|(first, _)| end_ms < *first);
        *ends.entry(end_ms).or_default() += 1;
        if sooner {
            self.sooner.notify_one();
        }
    }

    pub(super) fn remove(&self, end_ms: i64) {
        let mut ends = self.ends.lock();
        if let Some(count) = ends.get_mut(&end_ms) {
            *count -= 1;
            if *count == 0 {
                ends.remove(&end_ms);
            }
        }
    }

    pub(super) fn next(&self) -> Option<i64> {
        self.ends.lock().first_key_value().map(|(end, _)| *end)
    }

    /// Forgets the ends up to `now_ms`; true when there were any.
    pub(super) fn pass(&self, now_ms: i64) -> bool {
        let mut ends = self.ends.lock();
        let later = ends.split_off(&now_ms.saturating_add(1));
        let passed = !ends.is_empty();
        *ends = later;
        passed
    }
}
