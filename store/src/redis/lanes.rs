//! The command connections, one per lane: each single-threaded runtime that sends
//! commands (each of actix's workers) has a connection of its own, and everything
//! else (the multi-threaded runtime of the background work) shares one.
//!
//! Why: a multiplexed connection reads and writes in a task on the runtime that
//! opened it. Shared by every worker, each command of a worker on another thread
//! crossed threads twice (to the connection's task and back), and Redis got its
//! commands in smaller batches: on two cores that cost a refresh about 20 µs of the
//! server's CPU and 6 µs of Redis's (BENCHMARKS.md). On its own lane a worker's
//! commands are written and their answers read on the worker's thread.

use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::Conn;

/// A lane: the thread of a single-threaded runtime, or `None` for the shared one.
pub(crate) type Lane = Option<ThreadId>;

/// The lane of the calling task.
pub(crate) fn lane() -> Lane {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::CurrentThread) => Some(std::thread::current().id()),
        _ => None,
    }
}

/// The connections of every lane. Each is connected on first use, so a Redis that is
/// down at start-up is not an error. Each reconnects by itself after an error; a
/// connection that a NAT or proxy forgot never errors, it only stays silent, so one
/// that answers nothing for a whole timeout is replaced.
pub(crate) struct Lanes {
    lanes: Mutex<Vec<LaneConnection>>,
    /// One connection is opened at a time.
    pub(crate) connecting: tokio::sync::Mutex<()>,
    since: Instant,
}

struct LaneConnection {
    lane: Lane,
    current: Option<(Conn, Instant)>,
    /// When it last answered: milliseconds after `since`.
    answered: u64,
}

impl Lanes {
    pub(crate) fn new() -> Self {
        Self {
            lanes: Mutex::new(Vec::new()),
            connecting: tokio::sync::Mutex::new(()),
            since: Instant::now(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The connection of `lane`, if it has one (a cheap handle).
    pub(crate) fn current(&self, lane: Lane) -> Option<Conn> {
        let lanes = self.lanes.lock();
        let this = lanes.iter().find(|l| l.lane == lane)?;
        this.current.as_ref().map(|(conn, _)| conn.clone())
    }

    /// `lane`'s new connection, as if it had just answered.
    pub(crate) fn connected(&self, lane: Lane, conn: Conn) {
        let answered = self.elapsed_ms();
        let mut lanes = self.lanes.lock();
        let current = Some((conn, Instant::now()));
        match lanes.iter_mut().find(|l| l.lane == lane) {
            Some(this) => (this.current, this.answered) = (current, answered),
            None => lanes.push(LaneConnection {
                lane,
                current,
                answered,
            }),
        }
    }

    pub(crate) fn answered(&self, lane: Lane) {
        let now = self.elapsed_ms();
        if let Some(this) = self.lanes.lock().iter_mut().find(|l| l.lane == lane) {
            this.answered = now;
        }
    }

    /// A request of `lane` timed out: its connection goes if nothing came back for
    /// `timeout` and it is older than that (a new one gets its chance).
    pub(crate) fn timed_out(&self, lane: Lane, timeout: Duration) {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let now = self.elapsed_ms();
        let mut lanes = self.lanes.lock();
        let Some(this) = lanes.iter_mut().find(|l| l.lane == lane) else {
            return;
        };
        if now.saturating_sub(this.answered) >= timeout_ms
            && this
                .current
                .as_ref()
                .is_some_and(|(_, created)| created.elapsed() >= timeout)
        {
            this.current = None;
            tracing::warn!("the store connection answered nothing for {timeout:?}: replacing it");
        }
    }
}
