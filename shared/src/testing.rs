//! Test support: a real `redis-server` on a free port (one per test process, shared by
//! its tests), a fresh key prefix per test, and a capture of the log output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

mod cluster;
pub use cluster::{CLUSTER_PASSWORD, ClusterNode, RedisCluster};

use crate::config::LogFormat;
use crate::store::{RedisStore, Store};

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

/// A redis-server on `port`, killed with the test process.
fn spawn(port: u16) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
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

/// A redis-server of this test process.
pub struct RedisServer {
    port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a new server on a free port.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = Self {
                port,
                child: Mutex::new(Some(spawn(port))),
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
            if ping(self.port) {
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
        format!("redis://127.0.0.1:{}", self.port)
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
        *self.child.lock().unwrap() = Some(spawn(self.port));
        assert!(self.wait_ready(), "redis-server did not restart");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a Redis that can make the connections open through it go
/// silent (nothing passes either way, nothing is closed), as a NAT or proxy that forgot
/// them would, while new connections pass.
pub struct SilencingProxy {
    port: u16,
    silenced: Arc<AtomicU64>,
}

impl SilencingProxy {
    pub async fn start(redis_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silenced = Arc::new(AtomicU64::new(0));
        let epochs = silenced.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let born = epochs.load(Ordering::SeqCst);
                let epochs = epochs.clone();
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                    else {
                        return;
                    };
                    let (from_client, to_client) = client.into_split();
                    let (from_server, to_server) = server.into_split();
                    tokio::join!(
                        relay(from_client, to_server, born, epochs.clone()),
                        relay(from_server, to_client, born, epochs),
                    );
                });
            }
        });
        Self { port, silenced }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Every connection open now stops passing anything, for good.
    pub fn silence_open_connections(&self) {
        self.silenced.fetch_add(1, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until the connection was silenced, then holds both open.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    epochs: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if epochs.load(Ordering::SeqCst) != born {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The redis-server shared by the tests of this process.
pub fn shared_redis() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

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

/// A store on a Redis Cluster (its `REDIS_CLUSTER_NODES` seeds) with a fresh prefix.
pub fn cluster_store(seeds: &str) -> Store {
    cluster_store_sharing(seeds, &unique_prefix())
}

/// Another store on the cluster's keys under `prefix`: what another process sees.
pub fn cluster_store_sharing(seeds: &str, prefix: &str) -> Store {
    let seeds: Vec<String> = seeds.split(',').map(str::to_owned).collect();
    Store::redis(
        RedisStore::connect_cluster(&seeds, Duration::from_millis(1000)).unwrap(),
        prefix,
    )
}

/// A Redis store on the shared server with a fresh prefix.
pub fn redis_store() -> Store {
    redis_store_at(&shared_redis().url())
}

pub fn redis_store_at(url: &str) -> Store {
    redis_store_sharing(url, &unique_prefix())
}

/// Another store on the keys under `prefix`, with connections and a revocation view
/// of its own: what a second process sees.
pub fn redis_store_sharing(url: &str, prefix: &str) -> Store {
    Store::redis(
        RedisStore::connect(url, Duration::from_millis(500)).unwrap(),
        prefix,
    )
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

/// Everything logged in this process; printed to stdout too when `TEST_LOG` is set.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = std::io::stdout().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.clone())
    }
}

/// Installs the capturing subscriber once and returns the capture.
pub fn logs() -> LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            let logging = crate::config::Logging {
                format: LogFormat::Json,
                filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            };
            crate::telemetry::init_with(&logging, capture.clone());
            capture
        })
        .clone()
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

/// Every `(method, pattern)` that the routes `configure` registers answer, e.g.
/// `("post", "/auth/login")`, so a test can hold them against the OpenAPI document.
///
/// actix lists no routes, so the patterns come from the resource map's debug form, and
/// each is probed with every method: a method the pattern does not take falls through
/// to the default service (or its resource's 405). Probes carry no credentials, so every handler refuses them.
/// Patterns that resolve to no top-level route (those inside a `web::scope`, such as
/// Swagger UI's files) come back in the second set.
pub async fn registered_routes<F>(
    configure: F,
) -> (
    std::collections::BTreeSet<(String, String)>,
    std::collections::BTreeSet<String>,
)
where
    F: FnOnce(&mut actix_web::web::ServiceConfig),
{
    use actix_web::http::{Method, StatusCode};
    use actix_web::{App, HttpRequest, HttpResponse, test, web};

    async fn fell_through(req: HttpRequest) -> HttpResponse {
        HttpResponse::ImATeapot().body(format!("{:?}", req.resource_map()))
    }
    let app = test::init_service(
        App::new()
            .configure(configure)
            .default_service(web::to(fell_through)),
    )
    .await;
    let probe = test::TestRequest::get()
        .uri("/__no_such_route__")
        .to_request();
    let res = test::call_service(&app, probe).await;
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let map = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();

    let mut patterns = std::collections::BTreeSet::new();
    let mut rest = map.as_str();
    while let Some(start) = rest.find("patterns: Single(\"") {
        rest = &rest[start + "patterns: Single(\"".len()..];
        let end = rest.find("\")").unwrap();
        patterns.insert(rest[..end].replace("\\\"", "\""));
        rest = &rest[end..];
    }
    let mut routes = std::collections::BTreeSet::new();
    let mut unresolved = std::collections::BTreeSet::new();
    for pattern in patterns.into_iter().filter(|p| !p.is_empty()) {
        // `{name}` and `{name:regex}` segments become a plain value.
        let mut concrete = String::new();
        let mut depth = 0;
        for c in pattern.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        concrete.push('x');
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                _ if depth == 0 => concrete.push(c),
                _ => {}
            }
        }
        let mut found = false;
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let req = test::TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&concrete)
                .to_request();
            let res = test::call_service(&app, req).await;
            let matched = res.request().match_pattern();
            // A resource's own answer to a method it lacks is a bare 405.
            let refused = [StatusCode::IM_A_TEAPOT, StatusCode::METHOD_NOT_ALLOWED];
            if !refused.contains(&res.status()) && matched.as_deref() == Some(&pattern) {
                routes.insert((method.to_ascii_lowercase(), pattern.clone()));
                found = true;
            }
        }
        if !found {
            unresolved.insert(pattern);
        }
    }
    (routes, unresolved)
}

/// The `/openapi.json` a running server at `base` (e.g. `http://127.0.0.1:1234`) serves.
pub async fn served_openapi(base: &str) -> serde_json::Value {
    let res = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

/// Holds the routes `configure` registers against the document the server at `base`
/// serves: each registered route is documented and each documented one is registered
/// (Swagger UI, `/docs` and its files, is the one exception), and `expected` routes,
/// e.g. `("post", "/auth/login")`, are among them. Returns the routes and the document.
pub async fn assert_every_route_documented<F>(
    configure: F,
    base: &str,
    expected: &[(&str, &str)],
) -> (
    std::collections::BTreeSet<(String, String)>,
    serde_json::Value,
)
where
    F: FnOnce(&mut actix_web::web::ServiceConfig),
{
    let document = served_openapi(base).await;
    let (routes, unresolved) = registered_routes(configure).await;
    assert_eq!(
        unresolved.into_iter().collect::<Vec<_>>(),
        ["/{_:.*}"],
        "only Swagger UI's files are in a scope"
    );
    let missing: Vec<_> = routes
        .iter()
        .filter(|(method, path)| document["paths"][path][method].is_null() && path != "/docs")
        .collect();
    assert!(
        missing.is_empty(),
        "registered but not documented: {missing:?}"
    );
    let paths = document["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "documented but not registered: {method} {path}"
            );
            // Each parameter once, and each `{name}` of the path among them.
            let params: Vec<(String, String)> = operation["parameters"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|p| (p["name"].to_string(), p["in"].to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let unique: std::collections::BTreeSet<_> = params.iter().collect();
            assert_eq!(
                unique.len(),
                params.len(),
                "{method} {path}: a parameter twice"
            );
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = format!("{:?}", segment.trim_matches(['{', '}']));
                assert!(
                    params.contains(&(name, "\"path\"".to_owned())),
                    "{method} {path}: {segment} undocumented"
                );
            }
        }
    }
    for (method, path) in expected {
        let route = ((*method).to_owned(), (*path).to_owned());
        assert!(routes.contains(&route), "{method} {path} is not registered");
    }
    (routes, document)
}
