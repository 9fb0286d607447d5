//! The authstream benchmark tool: starts the `authstream` binary on a fresh
//! `redis-server` (or drives a running one), runs scenarios with many concurrent
//! connections and reports throughput, latency percentiles and errors, each against
//! `/healthz` of the same run.

pub mod limits;
pub mod load;
pub mod options;
pub mod proc;
pub mod report;
pub mod scenarios;
pub mod server;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::Context as _;

use crate::options::{Options, Scenario};
use crate::report::ScenarioReport;
use crate::scenarios::Target;
use crate::server::{Algorithm, Server};

/// Runs `options.scenarios` in order (healthz first) and returns their reports.
pub async fn run(options: &Options) -> anyhow::Result<Vec<ScenarioReport>> {
    let binary = match (&options.external, &options.binary) {
        (Some(_), _) => None,
        (None, Some(binary)) => Some(binary.clone()),
        (None, None) => Some(
            tokio::task::spawn_blocking(server::build_binary)
                .await
                .context("building authstream")??,
        ),
    };
    let mut targets: HashMap<Algorithm, Target> = HashMap::new();
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for &scenario in &options.scenarios {
        let algorithm = match scenario {
            Scenario::ValidateHs256 => Algorithm::Hs256,
            _ => Algorithm::EdDsa,
        };
        let target = match targets.entry(algorithm) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let server = match (&options.external, &binary) {
                    (Some(external), _) => Server::external(external),
                    (None, Some(binary)) => {
                        let binary = binary.clone();
                        let env = options.server_env.clone();
                        let cluster = options.cluster;
                        tokio::task::spawn_blocking(move || {
                            Server::start(&binary, algorithm, cluster, &env)
                        })
                        .await??
                    }
                    (None, None) => anyhow::bail!("no server to drive"),
                };
                entry.insert(Target::new(server)?)
            }
        };
        let target = &*target;
        eprintln!(
            "bench: running {} against {}",
            scenario.name(),
            target.clients.auth.base()
        );
        let mut report = scenarios::run(scenario, target, options)
            .await
            .with_context(|| format!("scenario {}", scenario.name()))?;
        if let Some(healthz) = reports.first() {
            report.compare_with(healthz);
        } else {
            let own = report.clone();
            report.compare_with(&own);
        }
        reports.push(report);
    }
    Ok(reports)
}
