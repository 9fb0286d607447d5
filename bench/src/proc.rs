//! What `/proc/<pid>` says about the server: resident memory and CPU time.

use anyhow::{Context as _, anyhow};

/// `/proc/<pid>/stat` counts in USER_HZ, 100 on every mainstream Linux.
const TICKS_PER_SEC: f64 = 100.0;

pub struct ProcSample {
    pub rss_kib: u64,
    cpu_ticks: u64,
}

impl ProcSample {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
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

    /// CPU time (user and system) the process used since `earlier`.
    pub fn cpu_seconds_since(&self, earlier: &ProcSample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / TICKS_PER_SEC
    }
}
