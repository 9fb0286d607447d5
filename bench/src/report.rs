//! The report: one row per scenario, as a table for people and JSON for machines.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::load::Sample;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// In milliseconds, from microsecond samples (nearest rank).
    pub fn of(latencies_us: &mut [u64]) -> Self {
        latencies_us.sort_unstable();
        let at = |q: f64| -> f64 {
            if latencies_us.is_empty() {
                return 0.0;
            }
            let rank =
                ((q * latencies_us.len() as f64).ceil() as usize).clamp(1, latencies_us.len());
            latencies_us[rank - 1] as f64 / 1000.0
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The scenario against `healthz` of the same run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    /// Its throughput divided by healthz's.
    pub throughput: f64,
    /// Its p99 divided by healthz's.
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    /// What one operation is, e.g. `request` or `event delivered`.
    pub unit: String,
    pub connections: usize,
    pub seconds: f64,
    pub operations: u64,
    pub errors: u64,
    /// Operations per second.
    pub throughput: f64,
    pub latency_ms: Percentiles,
    pub vs_healthz: Option<Ratios>,
    /// Up to five distinct errors with their counts.
    pub error_samples: Vec<(String, u64)>,
    /// What the scenario measures besides (fan-out completeness, memory per stream).
    pub details: Map<String, Value>,
}

impl ScenarioReport {
    pub fn new(scenario: &str, unit: &str, connections: usize, mut sample: Sample) -> Self {
        let seconds = sample.elapsed.as_secs_f64();
        let operations = sample.latencies_us.len() as u64;
        let mut details = Map::new();
        // What the server spent per operation: a figure that other load on the
        // machine disturbs far less than throughput.
        for (name, cpu) in [
            ("server_cpu_us_per_op", sample.server_cpu_seconds),
            ("redis_cpu_us_per_op", sample.redis_cpu_seconds),
            ("tool_cpu_us_per_op", sample.tool_cpu_seconds),
        ] {
            if let Some(cpu) = cpu.filter(|_| operations > 0) {
                details.insert(name.to_owned(), (cpu * 1e6 / operations as f64).into());
            }
        }
        let mut error_samples: Vec<_> = sample.error_kinds.into_iter().collect();
        error_samples.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        error_samples.truncate(5);
        Self {
            scenario: scenario.to_owned(),
            unit: unit.to_owned(),
            connections,
            seconds,
            operations,
            errors: sample.errors,
            throughput: if seconds > 0.0 {
                operations as f64 / seconds
            } else {
                0.0
            },
            latency_ms: Percentiles::of(&mut sample.latencies_us),
            vs_healthz: None,
            error_samples,
            details,
        }
    }

    pub fn detail(&mut self, name: &str, value: impl Into<Value>) {
        self.details.insert(name.to_owned(), value.into());
    }

    pub fn compare_with(&mut self, healthz: &ScenarioReport) {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        self.vs_healthz = Some(Ratios {
            throughput: ratio(self.throughput, healthz.throughput),
            p99: ratio(self.latency_ms.p99, healthz.latency_ms.p99),
        });
    }
}

pub fn table(reports: &[ScenarioReport]) -> String {
    let mut out = format!(
        "{:<15} {:>5} {:>9} {:>7} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
        "scenario",
        "conns",
        "ops",
        "errors",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "x thru",
        "x p99",
        "unit"
    );
    for r in reports {
        let (thru, p99) = r
            .vs_healthz
            .map(|v| (format!("{:.3}", v.throughput), format!("{:.2}", v.p99)))
            .unwrap_or_else(|| ("-".to_owned(), "-".to_owned()));
        out.push_str(&format!(
            "{:<15} {:>5} {:>9} {:>7} {:>11.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>8}  {}\n",
            r.scenario,
            r.connections,
            r.operations,
            r.errors,
            r.throughput,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.max,
            thru,
            p99,
            r.unit
        ));
    }
    for r in reports {
        if !r.details.is_empty() {
            out.push_str(&format!(
                "{}: {}\n",
                r.scenario,
                Value::Object(r.details.clone())
            ));
        }
        for (error, count) in &r.error_samples {
            out.push_str(&format!("{}: {count} x {error}\n", r.scenario));
        }
    }
    out
}

pub fn json(reports: &[ScenarioReport]) -> String {
    serde_json::json!({ "scenarios": reports }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_milliseconds() {
        let mut us: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        let p = Percentiles::of(&mut us);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let empty = Percentiles::of(&mut []);
        assert_eq!(empty.max, 0.0);
    }
}
