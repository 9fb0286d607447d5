//! `idle`: many open SSE streams that receive nothing. The server's resident memory
//! (`VmRSS`) is read before, halfway through and after they open, its CPU time
//! (`utime + stime`) over an idle window, both from `/proc/<pid>`.

use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::{Target, create_generations, mint_and_open};
use crate::load::{Sample, bounded};
use crate::options::Options;
use crate::proc::ProcSample;
use crate::report::ScenarioReport;

const OPEN_CONCURRENCY: usize = 64;
/// Time for the server to settle after set-up and after the opens.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(target: &Target, options: &Options) -> anyhow::Result<ScenarioReport> {
    let clients = &target.clients;
    let pid = target
        .server
        .pid
        .ok_or_else(|| anyhow!("idle reads /proc/<pid> of the server: pass --pid"))?;
    let streams = options.streams.unwrap_or(10_000);
    let generations = options.generations.unwrap_or(streams).clamp(1, streams);

    let generation_ids = create_generations(target, options, generations).await?;

    // Opened in two halves: the second half's growth is the marginal cost of a
    // stream, free of memory the set-up freed and the first half reused.
    tokio::time::sleep(SETTLE).await;
    let before = ProcSample::read(pid)?;
    let opening = Instant::now();
    let mut sample = Sample::default();
    let mut open = Vec::with_capacity(streams);
    let mut halfway = None;
    for half in [0..streams / 2, streams / 2..streams] {
        let jobs = half
            .map(|k| {
                let clients = clients.clone();
                let (id, access) = generation_ids[k % generations].clone();
                async move {
                    let t0 = Instant::now();
                    let result = mint_and_open(&clients, &access, &id).await;
                    (t0.elapsed(), result)
                }
            })
            .collect();
        for (latency, result) in bounded(OPEN_CONCURRENCY, jobs).await {
            sample.record(latency, result.as_ref().map(drop).map_err(Clone::clone));
            open.extend(result.ok());
        }
        if halfway.is_none() {
            tokio::time::sleep(SETTLE).await;
            halfway = Some((ProcSample::read(pid)?, open.len()));
        }
    }
    sample.elapsed = opening.elapsed();

    tokio::time::sleep(SETTLE).await;
    let settled = ProcSample::read(pid)?;
    tokio::time::sleep(options.duration).await;
    let after = ProcSample::read(pid)?;
    let held = open.len();
    drop(open);
    let (halfway, held_halfway) = halfway.ok_or_else(|| anyhow!("no streams"))?;
    let per_stream = |from: &ProcSample, to: &ProcSample, streams: usize| {
        to.rss_kib.saturating_sub(from.rss_kib) as f64 / streams.max(1) as f64
    };

    let idle_seconds = options.duration.as_secs_f64();
    let cpu_seconds = after.cpu_seconds_since(&settled);
    let mut report = ScenarioReport::new("idle", "stream opened", streams, sample);
    report.detail("streams", held);
    report.detail("generations", generations);
    report.detail("rss_before_kib", before.rss_kib);
    report.detail("rss_halfway_kib", halfway.rss_kib);
    report.detail("rss_after_kib", after.rss_kib);
    // The second half's growth per stream: the figure to compare.
    report.detail(
        "rss_per_stream_kib",
        per_stream(&halfway, &after, held - held_halfway),
    );
    report.detail("rss_per_stream_kib_all", per_stream(&before, &after, held));
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
