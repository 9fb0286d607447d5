//! `fanout`: streams over generations while events are published at a fixed rate.
//! Each event carries its sequence number and the moment it was sent, so every
//! stream checks it gets each event exactly once and in order, and measures
//! publish-to-receive latency (the publish request included).

use std::time::{Duration, Instant};

use anyhow::anyhow;
use authstream_client::{SseReader, StreamClient};
use authstream_proto::stream::NewEventBody;
use authstream_proto::{GenerationId, GenerationStatus};
use serde_json::Value;

use super::{Target, create_generations, failed, mint_and_open};
use crate::load::{Sample, bounded};
use crate::options::Options;
use crate::proc::ProcSample;
use crate::report::{Percentiles, ScenarioReport};

/// Streams opened at once while setting up.
const OPEN_CONCURRENCY: usize = 64;
/// How long streams may take to get the final event after the last publish.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(target: &Target, options: &Options) -> anyhow::Result<ScenarioReport> {
    let clients = &target.clients;
    let streams = options.streams.unwrap_or(1000);
    let generations = options.generations.unwrap_or(100).clamp(1, streams);
    let (id, secret) =
        target.server.service_client.clone().ok_or_else(|| {
            anyhow!("fanout publishes with a service client: pass --service-client")
        })?;
    let service_token = clients
        .auth
        .service_token(&id, &secret)
        .await
        .map_err(failed("POST /auth/service-token"))
        .map_err(|e| anyhow!(e))?
        .access_token;

    let generation_ids = create_generations(target, options, generations).await?;

    let jobs = (0..streams)
        .map(|k| {
            let clients = clients.clone();
            let (id, access) = generation_ids[k % generations].clone();
            async move { mint_and_open(&clients, &access, &id).await }
        })
        .collect();
    let opened = bounded(OPEN_CONCURRENCY, jobs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| anyhow!("opening streams: {e}"))?;

    let cpu_before = target.server.pid.and_then(|pid| ProcSample::read(pid).ok());
    let clock = Instant::now();
    let publish_end = clock + options.duration;
    let receivers: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(k, sse)| {
            (
                k % generations,
                tokio::spawn(receive(sse, clock, publish_end + DRAIN)),
            )
        })
        .collect();
    // Each generation gets rate / generations events per second, the generations
    // spread evenly over one period.
    let period = Duration::from_secs_f64(generations as f64 / options.rate);
    let publishers: Vec<_> = generation_ids
        .iter()
        .enumerate()
        .map(|(g, (id, _))| {
            let first = clock + period.mul_f64(g as f64 / generations as f64);
            tokio::spawn(publish(
                clients.stream.clone(),
                service_token.clone(),
                id.clone(),
                (first, period, publish_end),
                clock,
            ))
        })
        .collect();

    let mut published = Vec::with_capacity(generations);
    let mut sample = Sample::default();
    let mut publish_latencies = Vec::new();
    for task in publishers {
        let p = task.await.map_err(|e| anyhow!("a publisher died: {e}"))?;
        for e in p.errors {
            sample.error(e);
        }
        publish_latencies.extend(p.latencies_us);
        published.push(p.count);
    }
    let publish_seconds = clock.elapsed().as_secs_f64();
    let (mut expected, mut in_order, mut duplicates, mut gaps, mut incomplete) = (0, 0, 0, 0, 0);
    for (g, task) in receivers {
        let r = task.await.map_err(|e| anyhow!("a receiver died: {e}"))?;
        expected += published[g];
        in_order += r.in_order;
        duplicates += r.duplicates;
        gaps += r.gaps;
        if r.in_order != published[g] || !r.finished {
            incomplete += 1;
            sample.error(format!(
                "stream incomplete ({})",
                r.problem
                    .as_deref()
                    .unwrap_or("fewer events than published")
            ));
        }
        sample.latencies_us.extend(r.latencies_us);
    }
    for _ in 0..duplicates {
        sample.error("event delivered twice".to_owned());
    }
    for _ in 0..gaps {
        sample.error("event out of order or missing".to_owned());
    }
    sample.elapsed = Duration::from_secs_f64(publish_seconds);
    sample.server_cpu_seconds = cpu_before.and_then(|before| {
        let pid = target.server.pid?;
        Some(ProcSample::read(pid).ok()?.cpu_seconds_since(&before))
    });
    let events: u64 = published.iter().sum();
    let mut report = ScenarioReport::new("fanout", "event delivered", streams, sample);
    report.detail("streams", streams);
    report.detail("generations", generations);
    report.detail("rate_requested", options.rate);
    report.detail("rate_published", events as f64 / publish_seconds);
    report.detail("events_published", events);
    report.detail("deliveries_expected", expected);
    report.detail("deliveries_in_order", in_order);
    report.detail("duplicates", duplicates);
    report.detail("gaps", gaps);
    report.detail("streams_incomplete", incomplete);
    report.detail(
        "publish_p99_ms",
        Percentiles::of(&mut publish_latencies).p99,
    );
    Ok(report)
}

struct Published {
    /// Events stored (the final `completed` included).
    count: u64,
    errors: Vec<String>,
    latencies_us: Vec<u64>,
}

/// Publishes `seq` 0, 1, … every `period` from `first` until `end`, then `completed`.
async fn publish(
    stream: StreamClient,
    token: String,
    generation_id: GenerationId,
    (first, period, end): (Instant, Duration, Instant),
    clock: Instant,
) -> Published {
    let mut ticks = tokio::time::interval_at(first.into(), period);
    let mut out = Published {
        count: 0,
        errors: Vec::new(),
        latencies_us: Vec::new(),
    };
    loop {
        ticks.tick().await;
        let last = Instant::now() >= end;
        let sent = clock.elapsed();
        let mut event = NewEventBody::new(if last {
            GenerationStatus::Completed
        } else {
            GenerationStatus::Processing
        });
        event.progress = Some(if last { 1.0 } else { 0.5 });
        event.message = Some("bench".to_owned());
        event.extra.insert("seq".to_owned(), out.count.into());
        event
            .extra
            .insert("sent_us".to_owned(), (sent.as_micros() as u64).into());
        let published = stream
            .publish(&generation_id, &event)
            .bearer(&token)
            .checked()
            .await;
        match published {
            Ok(_) => out.count += 1,
            Err(e) => out.errors.push(failed("POST events")(e)),
        }
        out.latencies_us
            .push((clock.elapsed() - sent).as_micros() as u64);
        if last {
            return out;
        }
    }
}

#[derive(Default)]
struct Received {
    latencies_us: Vec<u64>,
    in_order: u64,
    duplicates: u64,
    gaps: u64,
    finished: bool,
    problem: Option<String>,
}

/// Reads events until the final one (or `deadline`), checking their sequence.
async fn receive(mut sse: SseReader, clock: Instant, deadline: Instant) -> Received {
    let mut r = Received::default();
    loop {
        let data = match tokio::time::timeout_at(deadline.into(), sse.next_frame()).await {
            Ok(Ok(Some(frame))) => frame.data,
            Ok(Ok(None)) => {
                r.problem = Some("the server ended it early".to_owned());
                return r;
            }
            Ok(Err(_)) => {
                r.problem = Some("stream: read failed".to_owned());
                return r;
            }
            Err(_) => {
                r.problem = Some("no final event in time".to_owned());
                return r;
            }
        };
        let now = clock.elapsed().as_micros() as u64;
        let event: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let (Some(seq), Some(sent)) = (
            event.get("seq").and_then(Value::as_u64),
            event.get("sent_us").and_then(Value::as_u64),
        ) else {
            r.problem = Some(format!(
                "unexpected event {}",
                event.get("event").unwrap_or(&Value::Null)
            ));
            return r;
        };
        match seq.cmp(&r.in_order) {
            std::cmp::Ordering::Equal => {
                r.in_order += 1;
                r.latencies_us.push(now.saturating_sub(sent));
            }
            std::cmp::Ordering::Less => r.duplicates += 1,
            std::cmp::Ordering::Greater => r.gaps += 1,
        }
        let status = event.get("status").and_then(Value::as_str);
        if status.and_then(GenerationStatus::parse) == Some(GenerationStatus::Completed) {
            r.finished = true;
            return r;
        }
    }
}
