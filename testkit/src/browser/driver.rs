//! The WebDriver side: chromedriver, the headless Chromium of each session (one per
//! device), and the session's own commands (closing, Chrome DevTools Protocol).

use std::os::unix::fs::PermissionsExt as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::process::{Process, TempDir, find_on_path, program};

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
        // WebDriver's status, not one of ours: `{"value": {"ready": true, …}}`.
        let ready = |status: &Value| {
            status
                .pointer("/value/ready")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
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

/// One browser (one device): a WebDriver session. Its page actions are in `page`.
pub struct Browser {
    pub client: Client,
    driver: String,
}

impl Browser {
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
