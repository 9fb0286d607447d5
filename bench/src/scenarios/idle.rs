//! `idle`: many open SSE streams that receive nothing. The server's resident memory
//! (`VmRSS`) is read before and after they open, its CPU time (`utime + stime`)
//! over an idle window, both from `/proc/<pid>`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};

use super::{SETUP_CONCURRENCY, Target};
use crate::load::{Sample, bounded};
use crate::options::Options;
use crate::report::ScenarioReport;

const OPEN_CONCURRENCY: usize = 64;
/// Time for the server to settle after set-up and after the opens.
const SETTLE: Duration = Duration::from_millis(500);
/// `/proc/<pid>/stat` counts in USER_HZ, 100 on every mainstream Linux.
const TICKS_PER_SEC: f64 = 100.0;

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
    let cpu_seconds = after.cpu_ticks.saturating_sub(settled.cpu_ticks) as f64 / TICKS_PER_SEC;
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

struct ProcSample {
    rss_kib: u64,
    cpu_ticks: u64,
}

impl ProcSample {
    fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces): utime and stime are
        // the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let cpu_ticks = tick(11)
            .zip(tick(12))
            .map(|(u, s)| u + s)
            .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
        Ok(Self { rss_kib, cpu_ticks })
    }
}
