//! The processes of a browser test: the `authstream` binary under test and
//! chromedriver, each in its own process group, tied to the test process, with its
//! output in a log whose tail a failure prints.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `TEST_LOG` set: the children's output goes to the test's own.
pub(crate) fn logs_wanted() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A program on `PATH` (or named by `env_var`); a clear failure otherwise.
pub(crate) fn program(env_var: &str, names: &[&str]) -> PathBuf {
    let found = match std::env::var_os(env_var) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => names.iter().find_map(|name| find_on_path(name)),
    };
    found.unwrap_or_else(|| {
        panic!(
            "the browser tests need {} (on PATH, or named by {env_var}), which is missing: \
             on Debian `apt-get install -y chromium chromium-driver` (.ci/run installs them)",
            names.join(" or ")
        )
    })
}

/// A scratch directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "authstream-{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A child process in its own process group; the group (the program and whatever it
/// started, e.g. chromedriver's Chromium) is killed on drop. The child is also killed by
/// the kernel when the test process dies (PR_SET_PDEATHSIG): a test ended by nextest's
/// timeout, which signals only the test's own process group, leaves nothing behind.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command`, which says on stdout `<announce>PORT` once it listens, and
    /// returns it with that port: the port of this child, not of whoever else listens.
    pub(crate) async fn start(
        name: &'static str,
        command: Command,
        log: PathBuf,
        announce: &'static str,
    ) -> (Self, u16) {
        Self::try_start(name, command, log, announce)
            .await
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// `start`, telling a child that exited before it listened (the reason, with the
    /// end of its output) from one that answered.
    pub(crate) async fn try_start(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        announce: &'static str,
    ) -> Result<(Self, u16), String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("a log file");
        let err = if logs_wanted() {
            Stdio::inherit()
        } else {
            Stdio::from(file.try_clone().expect("a log file"))
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .process_group(0);
        let program = command.get_program().to_owned();
        let mut child = crate::spawn_tied_to_this_process(command)
            .unwrap_or_else(|e| panic!("cannot start {name} ({program:?}): {e}"));
        let stdout = child.stdout.take().expect("a piped stdout");
        let sink: Box<dyn Write + Send> = if logs_wanted() {
            Box::new(std::io::stdout())
        } else {
            Box::new(file)
        };
        let rx = crate::copy_output_noting_port(stdout, sink, announce);
        let mut process = Self { name, child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(port) = rx.try_recv() {
                return Ok((process, port));
            }
            if process.exited() || Instant::now() > deadline {
                return Err(format!(
                    "{name} did not say where it listens within 30 s:\n{}",
                    process.tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last lines of its output.
    fn tail(&self, lines: usize) -> String {
        let Ok(file) = File::open(&self.log) else {
            return String::new();
        };
        let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `url` until it answers 200 with a body that `ready` accepts, while the
    /// child lives.
    pub(crate) async fn wait_until_up(&mut self, url: &str, ready: impl Fn(&Value) -> bool) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(res) = http.get(url).send().await
                && res.status().is_success()
                && ready(&res.json().await.unwrap_or(Value::Null))
                && !self.exited()
            {
                return;
            }
            if self.exited() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} did not come up at {url} within 30 s:\n{}",
            self.name,
            self.tail(40)
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() && !logs_wanted() {
            eprintln!(
                "----- last lines of {} -----\n{}\n-----",
                self.name,
                self.tail(60)
            );
        }
        // The group id is the child's pid (`process_group(0)`): only what we started.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The `authstream` binary: both services, in memory, demo mode on, plain http, with
/// the defaults of `cargo run` (Secure cookies included: Chromium stores them from
/// http://127.0.0.1, a secure context).
pub struct Server {
    pub base: String,
    _process: Process,
    _dir: TempDir,
}

impl Server {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_authstream")` in the root package's
    /// tests); returns once it answers `/healthz`.
    pub async fn start(binary: impl AsRef<Path>) -> Self {
        let dir = TempDir::new("server");
        let mut command = Command::new(binary.as_ref());
        command
            .env_remove("REDIS_URL")
            .env_remove("REDIS_CLUSTER_NODES")
            .env_remove("COOKIE_SECURE")
            // Port 0: the banner says which port this server got.
            .env("AUTHSTREAM_BIND", "127.0.0.1:0")
            .env("DEMO", "true")
            // Every page and stream of a test comes from one address.
            .env("RATE_LIMIT_ANON", "1000/60s")
            .env("RATE_LIMIT_FREE", "1000/60s")
            .env("RATE_LIMIT_LOGIN", "1000/60s")
            .env("RATE_LIMIT_LOGIN_ACCOUNT", "1000/60s")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        let (mut process, port) = Process::start(
            "authstream",
            command,
            dir.path().join("server.log"),
            "listening on http://localhost:",
        )
        .await;
        let base = format!("http://127.0.0.1:{port}");
        process
            .wait_until_up(&format!("{base}/healthz"), |_| true)
            .await;
        Self {
            base,
            _process: process,
            _dir: dir,
        }
    }
}
