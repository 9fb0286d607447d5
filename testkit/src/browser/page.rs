//! The demo page in a browser: what it shows, read in one go ([`Snapshot`]), and what
//! a person does on it (sign up, sign in, start a simulation, click, type).

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde::Deserialize;

use super::driver::Browser;
use super::process::Server;
use crate::auth::PASSWORD;

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
}
