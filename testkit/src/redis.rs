//! A real `redis-server` on a free port (one per test process, shared by its tests),
//! children tied to this process, and stores on it with a fresh key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use authstream_store::{RedisStore, Store};

use super::{test_tls, unique_prefix};

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` with PR_SET_PDEATHSIG=SIGKILL, from one long-lived thread (the
/// signal follows the thread that forked, not the process), so the kernel kills the
/// child when the test process ends, however it ends (a panic, a timeout's SIGKILL).
pub fn spawn_tied_to_this_process(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                // SAFETY: prctl is async-signal-safe and touches no memory of ours.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner.lock().unwrap().send((command, tx)).unwrap();
    rx.recv().unwrap()
}

/// A redis-server on `port` (its TLS port only, with `tls`), killed with the test
/// process.
fn spawn(port: u16, tls: bool) -> Child {
    let mut cmd = Command::new("redis-server");
    match tls {
        true => cmd.args(test_tls().server_args(port)),
        false => cmd.args(["--port", &port.to_string()]),
    };
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match spawn_tied_to_this_process(cmd) {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not on PATH: the tests need a real Redis (apt-get install -y redis-server)"
        ),
        Err(e) => panic!("cannot start redis-server: {e}"),
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// `PING` over TLS, with `redis-cli`.
fn ping_tls(port: u16) -> bool {
    Command::new("redis-cli")
        .args(test_tls().cli_args())
        .args(["-p", &port.to_string(), "PING"])
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
}

/// A redis-server of this test process.
pub struct RedisServer {
    port: u16,
    tls: bool,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a new server on a free port.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a new server that speaks TLS only (`rediss://`, a certificate of
    /// `test_tls()`'s CA, no client certificate asked for). A client of it must trust
    /// that CA (`TestTls::trust`).
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = Self {
                port,
                tls,
                child: Mutex::new(Some(spawn(port, tls))),
            };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let ready = match self.tls {
                true => ping_tls(self.port),
                false => ping(self.port),
            };
            if ready {
                return true;
            }
            if let Some(child) = self.child.lock().unwrap().as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn url(&self) -> String {
        match self.tls {
            true => format!("rediss://127.0.0.1:{}", self.port),
            false => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// Kills the server (its data is gone, as after a crash).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server without closing its connections (SIGSTOP): a Redis that
    /// accepts but never answers, as under a hung host or a network partition.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = self.child.lock().unwrap().as_ref() {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            assert!(status.is_ok_and(|s| s.success()), "kill {signal} failed");
        }
    }

    /// Changes what the default user may run (`ACL SETUSER default <rule>`), e.g.
    /// `-xrange` to take the revocation log away from every connection, as a proxy
    /// that silently drops one would; `+@all` gives everything back.
    pub fn acl_default_user(&self, rule: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(format!("ACL SETUSER default {rule}\r\n").as_bytes())
            .unwrap();
        let mut reply = [0u8; 5];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+OK\r\n", "ACL SETUSER default {rule}");
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.stop();
        *self.child.lock().unwrap() = Some(spawn(self.port, self.tls));
        assert!(self.wait_ready(), "redis-server did not restart");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The redis-server shared by the tests of this process.
pub fn shared_redis() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

/// A store on a Redis Cluster (its `REDIS_CLUSTER_NODES` seeds) with a fresh prefix.
pub fn cluster_store(seeds: &str) -> Store {
    cluster_store_sharing(seeds, &unique_prefix())
}

/// Another store on the cluster's keys under `prefix`: what another process sees.
pub fn cluster_store_sharing(seeds: &str, prefix: &str) -> Store {
    let seeds: Vec<String> = seeds.split(',').map(str::to_owned).collect();
    let store = Store::redis(
        RedisStore::connect_cluster(&seeds, Duration::from_millis(1000)).unwrap(),
        prefix,
    );
    store.start_background();
    store
}

/// A Redis store on the shared server with a fresh prefix.
pub fn redis_store() -> Store {
    redis_store_at(&shared_redis().url())
}

pub fn redis_store_at(url: &str) -> Store {
    redis_store_sharing(url, &unique_prefix())
}

/// Another store on the keys under `prefix`, with connections and a revocation view
/// of its own: what a second process sees. Its background work is started, as a
/// service starts it (inside a runtime).
pub fn redis_store_sharing(url: &str, prefix: &str) -> Store {
    let store = Store::redis(
        RedisStore::connect(url, Duration::from_millis(500)).unwrap(),
        prefix,
    );
    store.start_background();
    store
}

/// Waits until the store's revocation view is fresh (at once in memory; on Redis once
/// its tail has read the log); panics after 5 s.
pub async fn revocations_fresh(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.revocations_fresh() {
        assert!(
            Instant::now() < deadline,
            "the revocation view never got fresh"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the store's revocation view is stale; panics after 2 s.
pub async fn revocations_stale(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while store.revocations_fresh() {
        assert!(
            Instant::now() < deadline,
            "the revocation view stayed fresh"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
