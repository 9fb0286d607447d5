//! Starting `authstream`, chromedriver and headless Chromium, and reading the demo page.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource as _;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::{FutureExt as _, StreamExt as _};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// Headless, isolated, quiet: no first-run UI, no background traffic, no QUIC.
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

fn logs_wanted() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A program on `PATH` (or named by `env_var`); a clear failure otherwise.
fn program(env_var: &str, names: &[&str]) -> PathBuf {
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
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command`, which says on stdout `<announce>PORT` once it listens, and
    /// returns it with that port: the port of this child, not of whoever else listens.
    async fn start(
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
    async fn try_start(
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
        let mut child = authstream_testkit::spawn_tied_to_this_process(command)
            .unwrap_or_else(|e| panic!("cannot start {name} ({program:?}): {e}"));
        let stdout = child.stdout.take().expect("a piped stdout");
        let mut sink: Box<dyn Write + Send> = if logs_wanted() {
            Box::new(std::io::stdout())
        } else {
            Box::new(file)
        };
        let (tx, rx) = mpsc::channel();
        // Copies the output to the log, noting the port on the way.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                writeln!(sink, "{line}").ok();
                let port = authstream_testkit::announced_port(&line, announce);
                if let Some(port) = port
                    && let Some(tx) = tx.take()
                {
                    tx.send(port).ok();
                }
            }
        });
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
    async fn wait_until_up(&mut self, url: &str, ready: impl Fn(&Value) -> bool) {
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
    pub async fn start() -> Self {
        let dir = TempDir::new("server");
        let mut command = Command::new(env!("CARGO_BIN_EXE_authstream"));
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

/// One Chromium test at a time in this process: under `cargo test` (threads, not
/// processes) as under nextest (`.config/nextest.toml`), on a 2-core machine.
static BROWSER_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver, which starts a Chromium per session.
pub struct Driver {
    url: String,
    chromium: PathBuf,
    _process: Process,
    dir: TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Driver {
    pub async fn start() -> Self {
        let turn = BROWSER_TESTS.lock().await;
        let chromium = program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let chromedriver = program("CHROMEDRIVER", &["chromedriver"]);
        let dir = TempDir::new("chromedriver");
        let chromium = tied_to_parent(&chromium, dir.path());
        // With `--port=0` chromedriver picks a port, then binds it on IPv4 and IPv6
        // apart, and exits when the other family has it taken ("bind() failed: Address
        // already in use"): another pick then serves.
        let mut attempts = 0;
        let (mut process, port) = loop {
            let mut command = Command::new(&chromedriver);
            command.arg("--port=0");
            attempts += 1;
            match Process::try_start(
                "chromedriver",
                command,
                dir.path().join("chromedriver.log"),
                "started successfully on port ",
            )
            .await
            {
                Ok(started) => break started,
                Err(why) if attempts < 3 && why.contains("bind() failed") => continue,
                Err(why) => panic!("{why}"),
            }
        };
        let url = format!("http://127.0.0.1:{port}");
        let ready = |status: &Value| status["value"]["ready"].as_bool().unwrap_or(false);
        process.wait_until_up(&format!("{url}/status"), ready).await;
        Self {
            url,
            chromium,
            _process: process,
            dir,
            _turn: turn,
        }
    }
    /// A new headless Chromium with a fresh profile: a separate device.
    pub async fn browser(&self) -> Browser {
        let profile = self
            .dir
            .path()
            .join(uuid::Uuid::new_v4().simple().to_string());
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        Browser {
            client,
            driver: self.url.clone(),
        }
    }
}

impl Drop for Driver {
    /// Every Chromium of this driver has its profile in `dir`: none outlives the test,
    /// even one that left chromedriver's process group.
    fn drop(&mut self) {
        Command::new("pkill")
            .args(["-KILL", "-f", "--"])
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status()
            .ok();
    }
}

/// A launcher for `chromium` that makes the kernel kill it when its parent,
/// chromedriver, dies (`setpriv --pdeathsig`); Chromium's own helpers end with it. So
/// when the test process is killed, chromedriver dies with it (PR_SET_PDEATHSIG, see
/// `Process`) and then Chromium: nothing to clean up after a timeout. Without
/// `setpriv` (util-linux), Chromium itself, cleaned up on drop only.
fn tied_to_parent(chromium: &Path, dir: &Path) -> PathBuf {
    let Some(setpriv) = find_on_path("setpriv") else {
        return chromium.to_owned();
    };
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let launcher = dir.join("chromium");
    std::fs::write(
        &launcher,
        format!(
            "#!/bin/sh\nexec {} --pdeathsig KILL -- {} \"$@\"\n",
            quote(&setpriv),
            quote(chromium)
        ),
    )
    .expect("a launcher script");
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))
        .expect("an executable launcher");
    launcher
}

/// What the demo page shows, read in one go.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `loading`, `signed-out`, `signed-in`.
    pub state: String,
    pub status: String,
    pub status_state: String,
    pub percent: String,
    pub valuenow: String,
    pub gen_status: String,
    pub stage: String,
    pub message: String,
    pub generation_id: String,
    /// `data-event-id` of every `#event-log` entry, in order.
    pub ids: Vec<String>,
    pub connections: u32,
    pub duplicates: u32,
    pub token_fetches: u32,
    pub sessions: u32,
    pub notice: String,
}

const SNAPSHOT: &str = r#"
const $ = (id) => document.getElementById(id);
const shown = (id) => ($(id).hidden ? '' : $(id).textContent);
return {
  state: document.body.dataset.state,
  status: $('status').textContent,
  statusState: $('status').dataset.state,
  percent: $('progress-percent').textContent,
  valuenow: $('progress-bar').getAttribute('aria-valuenow'),
  genStatus: $('gen-status').textContent,
  stage: $('stage').textContent,
  message: $('message').textContent,
  generationId: $('generation-id').textContent,
  ids: [...document.querySelectorAll('#event-log li[data-event-id]')].map((li) => li.dataset.eventId),
  connections: Number($('connections').textContent),
  duplicates: Number($('duplicates').textContent),
  tokenFetches: Number($('token-fetches').textContent),
  sessions: document.querySelectorAll('#sessions li[data-session-id]').length,
  notice: [shown('auth-message'), shown('generation-message')].filter(Boolean).join(' | '),
};
"#;

/// One browser (one device) on the demo page.
pub struct Browser {
    pub client: Client,
    driver: String,
}

impl Browser {
    pub async fn open_demo(&self, server: &Server) {
        self.client
            .goto(&format!("{}/", server.base))
            .await
            .expect("the demo page loads");
        // The module has run once the page says who is signed in.
        self.wait_for("the page script to start", Duration::from_secs(15), |s| {
            s.state == "signed-out"
        })
        .await;
    }

    pub async fn snapshot(&self) -> Snapshot {
        let value = self
            .client
            .execute(SNAPSHOT, vec![])
            .await
            .expect("the page can be read");
        serde_json::from_value(value).expect("the snapshot has every field")
    }

    /// Polls the page until `done` holds; fails with what the page shows otherwise.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Snapshot) -> bool,
    ) -> Snapshot {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.snapshot().await;
            if done(&snapshot) {
                return snapshot;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page shows {snapshot:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        field.clear().await.ok();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Creates an account through the page and ends up signed in.
    pub async fn sign_up(&self, email: &str) {
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click("#sign-up").await;
        self.wait_for("signing up", Duration::from_secs(20), |s| {
            s.state == "signed-in"
        })
        .await;
    }

    pub async fn sign_in(&self, email: &str) {
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click("#sign-in").await;
        self.wait_for("signing in", Duration::from_secs(20), |s| {
            s.state == "signed-in"
        })
        .await;
    }

    /// Picks a simulation length (`3000`, `8000`, `20000` or `60000` ms) and starts one.
    pub async fn start_simulation(&self, duration_ms: u32) -> String {
        self.click(&format!("#duration option[value=\"{duration_ms}\"]"))
            .await;
        self.click("#start-simulation").await;
        let snapshot = self
            .wait_for("the generation to start", Duration::from_secs(15), |s| {
                s.generation_id != "–" && s.status_state == "open"
            })
            .await;
        snapshot.generation_id
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) {
        let session = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session");
        let res = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver
            ))
            .json(&json!({ "cmd": command, "params": params }))
            .send()
            .await
            .expect("chromedriver answers");
        assert!(res.status().is_success(), "{command}: {}", res.status());
    }

    /// Ends the WebDriver session (Chromium quits); a hung one is left to the driver's
    /// drop, which kills it.
    pub async fn close(self) {
        tokio::time::timeout(Duration::from_secs(10), self.client.close())
            .await
            .ok();
    }
}

/// Runs a test body with `count` browsers (separate devices), closing them afterwards,
/// also when the body panics.
pub async fn with_browsers(driver: &Driver, count: usize, body: impl AsyncFnOnce(&[Browser])) {
    let mut browsers = Vec::new();
    for _ in 0..count {
        browsers.push(driver.browser().await);
    }
    let result = AssertUnwindSafe(body(&browsers)).catch_unwind().await;
    for browser in browsers {
        browser.close().await;
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Signs in over the API, as a second client would: the access token.
pub async fn api_login(base: &str, email: &str) -> String {
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"]
        .as_str()
        .expect("signed in")
        .to_owned()
}

pub fn new_email() -> String {
    format!("demo-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The generation's events as the server keeps them: ids and data, from the start,
/// read over the API as a second client would (its own login and stream token).
pub async fn server_history(
    server: &Server,
    email: &str,
    generation_id: &str,
) -> Vec<(String, Value)> {
    let http = reqwest::Client::new();
    let access = api_login(&server.base, email).await;
    let grant: Value = http
        .post(format!(
            "{}/generations/generate/{generation_id}/stream-token",
            server.base
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["sse_token"].as_str().expect("a stream token");
    let res = http
        .get(format!(
            "{}/generations/generate/{generation_id}/stream?token={token}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut events = res.bytes_stream().eventsource();
    let mut history = Vec::new();
    // A finished generation: the history, then the server ends the stream.
    let read = async {
        while let Some(event) = events.next().await {
            let event = event.expect("a well-formed event");
            let data: Value = serde_json::from_str(&event.data).expect("JSON data");
            if data["event"] == "progress" {
                history.push((event.id, data));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the stream of a finished generation ends");
    history
}
