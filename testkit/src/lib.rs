//! Test support: a real `redis-server` on a free port (one per test process, shared by
//! its tests), a fresh key prefix per test, and a capture of the log output.
//!
//! One file per part: `redis` (the server and stores on it), `cluster`, `proxy`,
//! `logs`, `jwt` (a key set, signer and validator), `routes` (the served OpenAPI
//! document against its server), `tls` (a CA for `rediss://`), `turns` (on the
//! process-wide metrics recorder), `problem` (the one `assert_problem`); behind
//! features, `auth`, `stream`, `stack` and `browser` (each service, both, and the demo
//! page in Chromium, spawned on free ports with fixtures over the typed client); small
//! helpers here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "browser")]
pub mod browser;
mod cluster;
pub mod jwt;
mod logs;
mod problem;
mod proxy;
mod redis;
mod routes;
#[cfg(feature = "stack")]
pub mod stack;
#[cfg(feature = "stream")]
pub mod stream;
mod tls;
pub mod turns;

pub use cluster::{CLUSTER_PASSWORD, ClusterNode, RedisCluster};
pub use logs::*;
pub use problem::{PROBLEM_JSON, assert_problem};
pub use proxy::*;
pub use redis::*;
pub use routes::*;
pub use tls::*;

/// Rate limits no ordinary test reaches (the production defaults would refuse many
/// of them); tests of the limits set small quotas of their own.
pub const GENEROUS_RATE_LIMITS: [(&str, &str); 6] = [
    ("RATE_LIMIT_FREE", "100000/60s"),
    ("RATE_LIMIT_PAID", "100000/60s"),
    ("RATE_LIMIT_ANON", "100000/60s"),
    ("RATE_LIMIT_LOGIN", "100000/60s"),
    ("RATE_LIMIT_LOGIN_ACCOUNT", "100000/60s"),
    ("RATE_LIMIT_REFRESH", "100000/60s"),
];

/// The text of a response header; empty when it is absent.
pub fn header_text(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The sum of the Prometheus samples in `text` whose line starts with `prefix`, e.g.
/// `authstream_stream_opens_total{transport="sse",result="ok"}`.
pub fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The port a child says it listens on: the digits right after `announce` in `line`
/// (e.g. `listening on http://localhost:` in the `authstream` banner).
pub fn announced_port(line: &str, announce: &str) -> Option<u16> {
    let (_, rest) = line.split_once(announce)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Copies a child's output to `sink` line by line, on a thread of its own, and sends
/// the port of the first line that announces one (`announced_port`).
pub fn copy_output_noting_port(
    output: impl std::io::Read + Send + 'static,
    mut sink: impl std::io::Write + Send + 'static,
    announce: &'static str,
) -> std::sync::mpsc::Receiver<u16> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(output)
            .lines()
            .map_while(Result::ok)
        {
            writeln!(sink, "{line}").ok();
            if let Some(port) = announced_port(&line, announce)
                && let Some(tx) = tx.take()
            {
                tx.send(port).ok();
            }
        }
    });
    rx
}
