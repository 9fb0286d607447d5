//! A real Redis Cluster for tests: `masters` redis-server processes in cluster mode
//! (and `replicas` per master) on free loopback ports, every node with a password,
//! formed by `redis-cli --cluster create`. Nodes can be killed (SIGKILL) to test
//! failover; a replica is promoted by the cluster itself within a few seconds.
//! `start_tls` makes one that speaks TLS only, on its client ports and its bus.

mod admin;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{spawn_tied_to_this_process, test_tls};

/// The password every node of a test cluster requires.
pub const CLUSTER_PASSWORD: &str = "cluster-test-password";

/// One node of a test cluster.
pub struct ClusterNode {
    pub port: u16,
    child: Mutex<Option<Child>>,
}

/// A Redis Cluster of this test process; its nodes die with it.
pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    dir: PathBuf,
    tls: bool,
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn spawn_node(port: u16, dir: &std::path::Path, tls: bool) -> Child {
    let mut cmd = Command::new("redis-server");
    match tls {
        // The bus port is then the TLS port + 10000.
        true => cmd.args(test_tls().server_args(port)).args([
            "--tls-cluster",
            "yes",
            "--tls-replication",
            "yes",
        ]),
        false => cmd.args(["--port", &port.to_string()]),
    };
    cmd.args(["--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args([
            "--cluster-config-file",
            &dir.join(format!("nodes-{port}.conf")).to_string_lossy(),
        ])
        // Fast failure detection, so failover tests take seconds.
        .args(["--cluster-node-timeout", "1500"])
        // Replicas sync at once (a replica that never synced is never promoted).
        .args(["--repl-diskless-sync-delay", "0"])
        .args([
            "--requirepass",
            CLUSTER_PASSWORD,
            "--masterauth",
            CLUSTER_PASSWORD,
        ])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.to_string_lossy()])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_tied_to_this_process(cmd).expect("cannot start redis-server in cluster mode")
}

impl RedisCluster {
    /// Starts and forms a cluster; panics if it is not formed within 30 s.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, false)
    }

    /// A cluster that speaks TLS only: to its clients (`rediss://` seeds, a
    /// certificate of `test_tls()`'s CA, which a client must trust: `TestTls::trust`),
    /// and between its nodes (`tls-cluster`, `tls-replication`).
    pub fn start_tls(masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, true)
    }

    fn start_with(masters: usize, replicas: usize, tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("as-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let count = masters * (1 + replicas);
        let nodes: Vec<ClusterNode> = (0..count)
            .map(|_| {
                let port = free_cluster_port();
                ClusterNode {
                    port,
                    child: Mutex::new(Some(spawn_node(port, &dir, tls))),
                }
            })
            .collect();
        let cluster = Self { nodes, dir, tls };
        for node in &cluster.nodes {
            cluster.wait(node.port, |_| true, "node did not start");
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .args(cluster.cli_tls())
            .args([
                "-a",
                CLUSTER_PASSWORD,
                "--no-auth-warning",
                "--cluster",
                "create",
            ])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "redis-cli --cluster create failed");
        for node in &cluster.nodes {
            cluster.wait(
                node.port,
                |info| info.contains("cluster_state:ok"),
                "cluster did not form",
            );
        }
        // Every replica holds its master's data before a test may kill the master, and
        // every master counts its replicas online: after a full sync a master waits for
        // the replica's first `REPLCONF ACK` (sent once a second) before it streams to
        // it and counts it in `WAIT`, so until then every confirmed write there answers
        // 503, however healthy the cluster looks. Asked of all nodes together: a node
        // meant to be a replica may still call itself a master for a moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (mut synced, mut counted) = (0, 0);
            for node in &cluster.nodes {
                let info = cluster
                    .cli(node.port, &["INFO", "replication"])
                    .unwrap_or_default();
                if info.contains("role:slave") && info.contains("master_link_status:up") {
                    synced += 1;
                }
                let online = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                    .count();
                if info.contains("role:master") && online >= replicas {
                    counted += 1;
                }
            }
            if synced == masters * replicas && counted == masters {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replicas not in sync and counted online: {synced} synced, {counted} masters counting theirs"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `CLUSTER INFO` of `port` must satisfy `ready` within 30 s.
    fn wait(&self, port: u16, ready: impl Fn(&str) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self
                .cli(port, &["CLUSTER", "INFO"])
                .is_some_and(|i| ready(&i))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} (port {port})");
    }
}

impl ClusterNode {
    pub fn is_running(&self) -> bool {
        self.child.lock().unwrap().is_some()
    }

    /// The process id of the node, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(mut child) = node.child.lock().unwrap().take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
