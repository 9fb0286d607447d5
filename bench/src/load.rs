//! The closed-loop driver: each connection runs its step again and again, a warm-up
//! first (not recorded), then the measured time; every step's latency is kept.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::proc::ProcSample;

/// One connection's work.
pub trait Worker: Send + 'static {
    /// One operation; an error is a short description (method, path, status, code).
    fn step(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Sample {
    /// Microseconds, one per operation (successful or not).
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    /// Each distinct error with its count.
    pub error_kinds: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// CPU time the server used over the measured time, when its pid is known.
    pub server_cpu_seconds: Option<f64>,
    /// The same for the Redis the tool started and for the tool itself: on one
    /// machine the three share the cores.
    pub redis_cpu_seconds: Option<f64>,
    pub tool_cpu_seconds: Option<f64>,
}

/// The processes whose CPU time a run reads from `/proc`.
#[derive(Debug, Clone)]
pub struct Watched {
    pub server: Option<u32>,
    /// The redis-server processes the tool started: one, or every node of a cluster
    /// (their CPU times are added up).
    pub redis: Vec<u32>,
}

impl Watched {
    /// The server, the Redis processes, the tool.
    fn groups(&self) -> [Vec<u32>; 3] {
        [
            self.server.into_iter().collect(),
            self.redis.clone(),
            vec![std::process::id()],
        ]
    }
}

/// The CPU seconds of `pids` together between two readings of each.
fn cpu_of(before: &[Option<ProcSample>], after: &[Option<ProcSample>]) -> Option<f64> {
    if before.is_empty() {
        return None;
    }
    before
        .iter()
        .zip(after)
        .map(|(before, after)| Some(after.as_ref()?.cpu_seconds_since(before.as_ref()?)))
        .sum()
}

impl Sample {
    pub fn record(&mut self, latency: Duration, result: Result<(), String>) {
        self.latencies_us.push(latency.as_micros() as u64);
        if let Err(e) = result {
            self.error(e);
        }
    }

    pub fn error(&mut self, e: String) {
        self.errors += 1;
        *self.error_kinds.entry(e).or_default() += 1;
    }

    pub fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        for (e, n) in other.error_kinds {
            *self.error_kinds.entry(e).or_default() += n;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
    }
}

/// Runs every worker on its own task for `warmup`, then for `duration` recorded; the
/// server's CPU time over the recorded part is read from `/proc/<server_pid>`.
pub async fn drive<W: Worker>(
    workers: Vec<W>,
    warmup: Duration,
    duration: Duration,
    watched: Watched,
) -> Sample {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let cpu = tokio::spawn(async move {
        let groups = watched.groups();
        let read = || {
            groups.clone().map(|pids| {
                pids.into_iter()
                    .map(|pid| ProcSample::read(pid).ok())
                    .collect::<Vec<_>>()
            })
        };
        tokio::time::sleep_until(measure_from.into()).await;
        let before = read();
        tokio::time::sleep_until(end.into()).await;
        let after = read();
        [0, 1, 2].map(|k| cpu_of(&before[k], &after[k]))
    });
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut sample = Sample::default();
                while Instant::now() < measure_from {
                    let _ = worker.step().await;
                }
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let result = worker.step().await;
                    sample.record(t0.elapsed(), result);
                }
                sample
            })
        })
        .collect();
    let mut total = Sample::default();
    for task in tasks {
        match task.await {
            Ok(sample) => total.merge(sample),
            Err(e) => total.error(format!("a worker died: {e}")),
        }
    }
    total.elapsed = measure_from.elapsed();
    if let Ok([server, redis, tool]) = cpu.await {
        total.server_cpu_seconds = server;
        total.redis_cpu_seconds = redis;
        total.tool_cpu_seconds = tool;
    }
    total
}

/// Runs `jobs` with at most `concurrency` at once (set-up: users, generations, streams).
pub async fn bounded<T, F>(concurrency: usize, jobs: Vec<F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    use futures_util::StreamExt as _;
    futures_util::stream::iter(jobs)
        .buffered(concurrency.max(1))
        .collect()
        .await
}
