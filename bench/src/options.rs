//! Command-line flags, read once. Unknown flags and bad values stop the run with a
//! message naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

pub const USAGE: &str = "\
usage: bench <scenario>... [flags]

scenarios (healthz, the baseline, always runs first):
  healthz         GET /healthz
  validate        GET /auth/validate with a user's access token (EdDSA), many users
  verify          the same tokens verified in this process by authstream-verify (JWKS and
                  revocation feed; the service client needs revocations:read): tool_cpu
                  is the CPU per verification
  validate-hs256  the same against a server signing with HS256
  refresh         POST /auth/refresh, each connection rotating its own session
  mint-open       mint a stream token, open the SSE stream, read `connected`, close
  publish         POST /generations/{id}/events, each connection to its own generation
  revoke          POST /auth/revoke of an access token (each connection its own session's;
                  every request writes the revocation again)
  fanout          --streams over --generations, --rate events/s published for --duration:
                  publish-to-receive latency, every event exactly once and in order
  idle            --streams open SSE streams over --generations: server resident memory
                  and CPU per stream (from /proc/<pid>)
  login           POST /auth/login (Argon2id bound; runs last, as it opens sessions)
  all             every scenario above

flags:
  --connections N      concurrent connections (default 64)
  --duration SECS      measured time per scenario, fractions allowed (default 10)
  --warmup SECS        unmeasured time before it (default 1)
  --users N            users registered for the token scenarios (default 64)
  --streams N          streams of fanout (default 1000) and idle (default 10000)
  --generations N      generations of fanout (default 100) and idle (default: one per stream)
  --rate N             events published per second in fanout, over all generations (default 1000)
  --json PATH          also write the JSON report there
  --binary PATH        the authstream binary to start (default: built by cargo, same profile)
  --server-env K=V     extra environment for the started server (repeatable)
  --cluster M:R        start a Redis Cluster of M masters with R replicas each (password on
                       every node) instead of one redis-server: the server gets
                       REDIS_CLUSTER_NODES; redis_cpu adds up every node
  --url URL            drive a running server instead of starting one (no redis-server started)
  --service-client ID:SECRET   its service client (fanout publishes with it)
  --pid PID            its process id (idle reads /proc/PID)
";

/// In run order. `login` runs last: every login opens a session, and a limit on
/// sessions per user would otherwise end the sessions the other scenarios use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    Healthz,
    Validate,
    Verify,
    ValidateHs256,
    Refresh,
    MintOpen,
    Publish,
    Revoke,
    Fanout,
    Idle,
    Login,
}

impl Scenario {
    pub const ALL: [Self; 11] = [
        Self::Healthz,
        Self::Validate,
        Self::Verify,
        Self::ValidateHs256,
        Self::Refresh,
        Self::MintOpen,
        Self::Publish,
        Self::Revoke,
        Self::Fanout,
        Self::Idle,
        Self::Login,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Healthz => "healthz",
            Self::Validate => "validate",
            Self::Verify => "verify",
            Self::ValidateHs256 => "validate-hs256",
            Self::Login => "login",
            Self::Refresh => "refresh",
            Self::MintOpen => "mint-open",
            Self::Publish => "publish",
            Self::Revoke => "revoke",
            Self::Fanout => "fanout",
            Self::Idle => "idle",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A running server to drive instead of starting one.
#[derive(Debug, Clone)]
pub struct External {
    pub url: String,
    pub service_client: Option<(String, String)>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// In run order, healthz first, no repeats.
    pub scenarios: Vec<Scenario>,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub users: usize,
    pub streams: Option<usize>,
    pub generations: Option<usize>,
    pub rate: f64,
    pub json: Option<PathBuf>,
    pub binary: Option<PathBuf>,
    pub server_env: Vec<(String, String)>,
    /// A Redis Cluster to start instead of one redis-server: (masters, replicas each).
    pub cluster: Option<(usize, usize)>,
    pub external: Option<External>,
}

pub enum Parsed {
    Run(Box<Options>),
    Help,
}

impl Options {
    /// The defaults of a run of `scenarios`.
    pub fn new(scenarios: &[Scenario]) -> Self {
        let mut scenarios = scenarios.to_vec();
        scenarios.push(Scenario::Healthz);
        scenarios.sort();
        scenarios.dedup();
        Self {
            scenarios,
            connections: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            users: 64,
            streams: None,
            generations: None,
            rate: 1000.0,
            json: None,
            binary: None,
            server_env: Vec::new(),
            cluster: None,
            external: None,
        }
    }

    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Parsed> {
        let mut scenarios = Vec::new();
        let mut flags = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(Parsed::Help);
            }
            if arg.starts_with("--") {
                let value = args
                    .next()
                    .ok_or_else(|| anyhow!("{arg}: a value is missing"))?;
                flags.push((arg, value));
            } else if arg == "all" {
                scenarios.extend(Scenario::ALL);
            } else {
                scenarios.push(
                    Scenario::parse(&arg).ok_or_else(|| anyhow!("unknown scenario {arg:?}"))?,
                );
            }
        }
        if scenarios.is_empty() {
            bail!("name at least one scenario");
        }
        let mut options = Self::new(&scenarios);
        let (mut url, mut service_client, mut pid) = (None, None, None);
        for (flag, value) in flags {
            let context = || format!("{flag}: got {value:?}");
            match flag.as_str() {
                "--connections" => options.connections = positive(&value).with_context(context)?,
                "--duration" => options.duration = seconds(&value).with_context(context)?,
                "--warmup" => options.warmup = seconds(&value).with_context(context)?,
                "--users" => options.users = positive(&value).with_context(context)?,
                "--streams" => options.streams = Some(positive(&value).with_context(context)?),
                "--generations" => {
                    options.generations = Some(positive(&value).with_context(context)?);
                }
                "--rate" => {
                    options.rate = value
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| anyhow!("must be a positive number"))
                        .with_context(context)?;
                }
                "--json" => options.json = Some(PathBuf::from(value)),
                "--binary" => options.binary = Some(PathBuf::from(value)),
                "--server-env" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or_else(|| anyhow!("must be NAME=VALUE"))
                        .with_context(context)?;
                    options.server_env.push((k.to_owned(), v.to_owned()));
                }
                "--cluster" => {
                    let (masters, replicas) = value
                        .split_once(':')
                        .ok_or_else(|| anyhow!("must be MASTERS:REPLICAS"))
                        .with_context(context)?;
                    let replicas = replicas
                        .parse::<usize>()
                        .map_err(|_| anyhow!("replicas must be a whole number"))
                        .with_context(context)?;
                    options.cluster = Some((positive(masters).with_context(context)?, replicas));
                }
                "--url" => url = Some(value.trim_end_matches('/').to_owned()),
                "--service-client" => {
                    let (id, secret) = value
                        .split_once(':')
                        .ok_or_else(|| anyhow!("must be ID:SECRET"))
                        .with_context(context)?;
                    service_client = Some((id.to_owned(), secret.to_owned()));
                }
                "--pid" => pid = Some(positive(&value).with_context(context)? as u32),
                _ => bail!("unknown flag {flag}"),
            }
        }
        if url.is_some() && options.cluster.is_some() {
            bail!("--cluster starts the store of a started server; --url drives a running one");
        }
        match url {
            Some(url) => {
                options.external = Some(External {
                    url,
                    service_client,
                    pid,
                });
            }
            None if service_client.is_some() || pid.is_some() => {
                bail!("--service-client and --pid go with --url");
            }
            None => {}
        }
        Ok(Parsed::Run(Box::new(options)))
    }
}

fn positive(value: &str) -> anyhow::Result<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("must be a positive whole number"))
}

fn seconds(value: &str) -> anyhow::Result<Duration> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| anyhow!("must be a number of seconds"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Options> {
        match Options::parse(args.iter().map(|a| (*a).to_owned()))? {
            Parsed::Run(options) => Ok(*options),
            Parsed::Help => panic!("help"),
        }
    }

    #[test]
    fn healthz_runs_first_and_all_names_every_scenario() {
        let options = parse(&["fanout", "validate", "--duration", "0.5"]).unwrap();
        assert_eq!(
            options.scenarios,
            [Scenario::Healthz, Scenario::Validate, Scenario::Fanout]
        );
        assert_eq!(options.duration, Duration::from_millis(500));
        assert_eq!(parse(&["all"]).unwrap().scenarios, Scenario::ALL);
    }

    #[test]
    fn bad_input_names_the_flag() {
        let e = parse(&["healthz", "--connections", "0"]).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--connections: got \"0\""),
            "{e:#}"
        );
        assert!(parse(&["nope"]).is_err());
        assert!(
            parse(&["healthz", "--pid", "1"]).is_err(),
            "--pid without --url"
        );
        assert!(parse(&["healthz", "--rate"]).is_err());
        assert_eq!(
            parse(&["revoke", "--cluster", "3:1"]).unwrap().cluster,
            Some((3, 1))
        );
        assert!(parse(&["revoke", "--cluster", "3"]).is_err());
        assert!(parse(&["revoke", "--cluster", "0:1"]).is_err());
        assert!(parse(&["healthz", "--cluster", "3:1", "--url", "http://x"]).is_err());
    }
}
