//! `idle`: many open SSE streams that receive nothing. The server's resident memory
//! (`VmRSS`) is read before and after they open, its CPU time (`utime + stime`)
//! over an idle window, both from `/proc/<pid>`.

use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::{SETUP_CONCURRENCY, Target};
use crate::load::{Sample, bounded};
use crate::options::Options;
use crate::proc::ProcSample;
use crate::report::ScenarioReport;

const OPEN_CONCURRENCY: usize = 64;
/// Time for the server to settle after set-up and after the opens.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(target: &Target, options: &Options) -> anyhow::Result<ScenarioReport> {
    let api = &target.api;
    let pid = target
        .server
        .pid
        .ok_or_else(|| anyhow!("idle reads /proc/<pid> of the server: pass --pid"))?;
    let streams = options.streams.unwrap_or(10_000);
    let generations = options.generations.unwrap_or(streams).clamp(1, streams);
    let users = target.users(options).await?;

    let jobs = (0..generations)
        .map(|g| {
            let api = api.clone();
            let access = users[g % users.len()].tokens.access_token.clone();
            async move {
                let id = api.create_generation(&access).await?;
                Ok::<_, String>((id, access))
            }
        })
        .collect();
    let generation_ids = bounded(SETUP_CONCURRENCY * 4, jobs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| anyhow!("setting up generations: {e}"))?;

    tokio::time::sleep(SETTLE).await;
    let before = ProcSample::read(pid)?;
    let opening = Instant::now();
    let jobs = (0..streams)
        .map(|k| {
            let api = api.clone();
            let (id, access) = generation_ids[k % generations].clone();
            async move {
                let t0 = Instant::now();
                let result = api.mint_and_open(&access, &id).await;
                (t0.elapsed(), result)
            }
        })
        .collect();
    let mut sample = Sample::default();
    let mut open = Vec::with_capacity(streams);
    for (latency, result) in bounded(OPEN_CONCURRENCY, jobs).await {
        sample.record(latency, result.as_ref().map(drop).map_err(Clone::clone));
        open.extend(result.ok());
    }
    sample.elapsed = opening.elapsed();

    tokio::time::sleep(SETTLE).await;
    let settled = ProcSample::read(pid)?;
    tokio::time::sleep(options.duration).await;
    let after = ProcSample::read(pid)?;
    let held = open.len();
    drop(open);

    let idle_seconds = options.duration.as_secs_f64();
    let cpu_seconds = after.cpu_seconds_since(&settled);
    let mut report = ScenarioReport::new("idle", "stream opened", streams, sample);
    report.detail("streams", held);
    report.detail("generations", generations);
    report.detail("rss_before_kib", before.rss_kib);
    report.detail("rss_after_kib", after.rss_kib);
    report.detail(
        "rss_per_stream_kib",
        after.rss_kib.saturating_sub(before.rss_kib) as f64 / held.max(1) as f64,
    );
    report.detail("idle_seconds", idle_seconds);
    report.detail(
        "idle_cpu_percent",
        if idle_seconds > 0.0 {
            100.0 * cpu_seconds / idle_seconds
        } else {
            0.0
        },
    );
    Ok(report)
}
