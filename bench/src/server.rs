//! The server under test: the `authstream` binary on a fresh `redis-server` (or a
//! fresh Redis Cluster), all on free ports and all ended with this process, or a
//! running server given by URL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use authstream_testkit::{
    RedisCluster, RedisServer, copy_output_noting_port, spawn_tied_to_this_process,
};

use crate::options::External;

/// The service client configured on a started server: it creates and publishes.
const SERVICE_ID: &str = "bench";
const SERVICE_SECRET: &str = "bench-secret-0123456789abcdef";
/// Per window: far above anything the tool sends, so limits never shape a figure.
const UNLIMITED: &str = "1000000000/60s";
/// Per-user caps out of reach too: thousands of streams and sessions belong to a few
/// dozen users here (a server that predates a cap ignores its variable).
const UNCAPPED: &str = "1000000";
/// What the started server prints once it listens.
const ANNOUNCE: &str = "listening on http://localhost:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    EdDsa,
    Hs256,
}

pub struct Server {
    pub base_url: String,
    /// For `/proc/<pid>`: known when the tool started it or was told.
    pub pid: Option<u32>,
    /// The redis-server processes the tool started (every node of a cluster).
    pub redis_pids: Vec<u32>,
    pub service_client: Option<(String, String)>,
    pub log: Option<PathBuf>,
    child: Option<Child>,
    _redis: Option<Store>,
}

/// What the started server uses: one Redis, or a cluster.
enum Store {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Server {
    pub fn external(external: &External) -> Self {
        Self {
            base_url: external.url.clone(),
            pid: external.pid,
            redis_pids: Vec::new(),
            service_client: external.service_client.clone(),
            log: None,
            child: None,
            _redis: None,
        }
    }

    /// Starts `binary` on a fresh redis-server, or on a fresh cluster of `masters`
    /// with `replicas` each (`cluster`); returns once it listens.
    pub fn start(
        binary: &Path,
        algorithm: Algorithm,
        cluster: Option<(usize, usize)>,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let (store_var, store_value, redis) = match cluster {
            None => {
                let redis = RedisServer::start();
                ("REDIS_URL", redis.url(), Store::Single(redis))
            }
            Some((masters, replicas)) => {
                let cluster = RedisCluster::start(masters, replicas);
                (
                    "REDIS_CLUSTER_NODES",
                    cluster.seeds(),
                    Store::Cluster(cluster),
                )
            }
        };
        let redis_pids: Vec<u32> = match &redis {
            Store::Single(redis) => redis.pid().into_iter().collect(),
            Store::Cluster(cluster) => cluster.nodes.iter().filter_map(|n| n.pid()).collect(),
        };
        let log = std::env::temp_dir().join(format!(
            "authstream-bench-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let log_file = File::create(&log).with_context(|| format!("{}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AUTHSTREAM_BIND", "127.0.0.1:0")
            .env(store_var, store_value)
            .env("DEMO", "false")
            // Access lines for every request would measure the log pipe.
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "json")
            .env(
                "SERVICE_CLIENTS",
                serde_json::json!([{
                    "id": SERVICE_ID,
                    "secret": SERVICE_SECRET,
                    "scopes": authstream_proto::Scope::ALL,
                }])
                .to_string(),
            );
        for name in [
            "RATE_LIMIT_FREE",
            "RATE_LIMIT_PAID",
            "RATE_LIMIT_ANON",
            "RATE_LIMIT_LOGIN",
            "RATE_LIMIT_LOGIN_ACCOUNT",
            "RATE_LIMIT_REFRESH",
        ] {
            command.env(name, UNLIMITED);
        }
        for name in ["STREAM_MAX_PER_USER", "SESSIONS_MAX_PER_USER"] {
            command.env(name, UNCAPPED);
        }
        if algorithm == Algorithm::Hs256 {
            command.env("JWT_ALGORITHM", "HS256").env(
                "JWT_SECRET",
                uuid::Uuid::new_v4().simple().to_string().repeat(2),
            );
        }
        command.envs(extra_env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file.try_clone()?);
        let mut child = spawn_tied_to_this_process(command)
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout of the server"))?;
        let rx = copy_output_noting_port(stdout, log_file, ANNOUNCE);
        let pid = child.id();
        let mut server = Self {
            base_url: String::new(),
            pid: Some(pid),
            redis_pids,
            service_client: Some((SERVICE_ID.to_owned(), SERVICE_SECRET.to_owned())),
            log: Some(log.clone()),
            child: None,
            _redis: Some(redis),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(port) = rx.try_recv() {
                break port;
            }
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                bail!(
                    "{} did not come up (log {}):\n{tail}",
                    binary.display(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        server.base_url = format!("http://127.0.0.1:{port}");
        server.child = Some(child);
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if let Some(log) = &self.log {
            std::fs::remove_file(log).ok();
        }
    }
}

/// The `authstream` binary: built by cargo in this tool's own profile (a no-op when
/// it is fresh), so a release bench measures a release server of the same sources.
pub fn build_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        "authstream",
        "--bin",
        "authstream",
    ]);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        command.arg("--release");
        "release"
    };
    let status = command
        .status()
        .context("cannot run cargo to build authstream (or pass --binary)")?;
    if !status.success() {
        bail!("building authstream failed");
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/bench → target/<profile>/authstream
    let dir = exe
        .parent()
        .filter(|d| d.ends_with(profile))
        .ok_or_else(|| anyhow!("cannot find the target directory; pass --binary"))?;
    Ok(dir.join("authstream"))
}
