//! Turns on the process-wide Prometheus recorder.
//!
//! Under nextest every test is a process of its own; under plain `cargo test` the tests
//! of a binary are threads of one process and share the one recorder
//! (`telemetry::metrics_handle`). Most tests read metrics as deltas or under labels
//! only they produce; a test that counts a series every test moves (`free` rate-limit
//! decisions, refused stream opens by reason) cannot, and takes its turn [`alone`]:
//! every app a test starts holds a [`shared`] turn, so a test alone runs while no other
//! test of the process has an app running. Under nextest nobody ever waits.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static RECORDER: RwLock<()> = RwLock::const_new(());

#[derive(Debug)]
enum Guard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

thread_local! {
    /// The turn this test's thread holds: a test that starts a second app (a replica,
    /// a second process on one Redis) must not queue behind a test waiting to be alone
    /// while it holds a turn already.
    static HELD: RefCell<Weak<Guard>> = const { RefCell::new(Weak::new()) };
}

/// A turn on the recorder, held as long as it lives.
#[derive(Debug, Clone)]
pub struct MetricsTurn(#[allow(dead_code)] Arc<Guard>);

fn held() -> Option<Arc<Guard>> {
    HELD.with(|h| h.borrow().upgrade())
}

fn hold(guard: Guard) -> MetricsTurn {
    let guard = Arc::new(guard);
    HELD.with(|h| *h.borrow_mut() = Arc::downgrade(&guard));
    MetricsTurn(guard)
}

/// A turn beside every other test's, for an app a test starts (the test helpers' `spawn_app`).
pub async fn shared() -> MetricsTurn {
    match held() {
        Some(turn) => MetricsTurn(turn),
        None => hold(Guard::Shared(RECORDER.read().await)),
    }
}

/// The recorder to this test alone, until the turn is dropped: taken first thing in
/// the test, before it starts any app.
pub async fn alone() -> MetricsTurn {
    match held() {
        Some(turn) if matches!(*turn, Guard::Alone(_)) => MetricsTurn(turn),
        Some(_) => panic!("take the recorder alone before starting an app"),
        None => hold(Guard::Alone(RECORDER.write().await)),
    }
}
