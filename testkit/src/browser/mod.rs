//! The browser harness: the `authstream` binary driven through its demo page by
//! headless Chromium (Debian's `chromium` and `chromium-driver`). Without them the
//! browser tests FAIL, saying what to install.
//!
//! - `process`: the server under test and chromedriver, as child processes;
//! - `driver`: the WebDriver sessions, one browser (device) each;
//! - `page`: reading the demo page and acting on it;
//! - here: the server's API as a second client sees it, over the typed client.
//!
//! `TEST_LOG=1` shows the server's and chromedriver's output; on a failure the tail of
//! the server log and the page's state are printed anyway.

mod driver;
mod page;
mod process;

use std::time::Duration;

use authstream_client::{AuthClient, SseEvent, StreamClient};
use authstream_proto::stream::StreamEventKind;

pub use driver::{Browser, Driver, with_browsers};
pub use page::Snapshot;
pub use process::{Server, TempDir};

use crate::auth::Accounts;

impl Server {
    /// The auth service's fixtures over the server's API (`accounts.signup()`,
    /// `accounts.auth`), as a second client would call it.
    pub fn accounts(&self) -> Accounts {
        Accounts::new(AuthClient::new(reqwest::Client::new(), &self.base))
    }

    /// The stream routes of the server.
    pub fn stream(&self) -> StreamClient {
        StreamClient::new(reqwest::Client::new(), &self.base)
    }

    /// The generation's progress events as the server keeps them, from the start,
    /// read over the API as a second client would (its own login and stream token).
    pub async fn history(&self, email: &str, generation: &str) -> Vec<SseEvent> {
        let accounts = self.accounts();
        let user = accounts.login(email).await;
        let minted = accounts.stream_token(&user.access, generation).await;
        let opened = self.stream().open(&minted.generation_id, &minted.sse_token);
        let mut events = opened.await.expect("the stream");
        let mut history = Vec::new();
        // A finished generation: the history, then the server ends the stream.
        let read = async {
            while let Some(event) = events.next().await.expect("a well-formed event") {
                if event.data.event == StreamEventKind::Progress {
                    history.push(event);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the stream of a finished generation ends");
        history
    }
}
