//! Browser end-to-end tests: the `authstream` binary, driven through its demo page by
//! headless Chromium (Debian's `chromium` and `chromium-driver`, which `.ci/run`
//! installs). Without them the browser tests FAIL, saying what to install. The harness
//! is the test kit's `browser` module.
//!
//! `TEST_LOG=1` shows the server's and chromedriver's output; on a failure the tail of
//! the server log and the page's state are printed anyway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod demo_api;
mod demo_page;

use authstream_testkit::browser::Server;

/// This build's `authstream`, started for one test.
async fn server() -> Server {
    Server::start(env!("CARGO_BIN_EXE_authstream")).await
}
