//! The demo page in a real browser: sign up, simulate, watch, resume, sign out.

use std::collections::HashSet;
use std::time::Duration;

use authstream_client::SseEvent;
use authstream_proto::GenerationStatus;
use authstream_proto::stream::StreamEventKind;
use authstream_testkit::auth::unique_email;
use authstream_testkit::browser::*;
use authstream_testkit::stack::generation_id;
use serde_json::json;

use crate::server;

const GENERATION: Duration = Duration::from_secs(40);

/// Every event once, in the server's order, and the events well-formed.
fn assert_same_events(page_ids: &[String], history: &[SseEvent], generation_id: &str) {
    let unique: HashSet<_> = page_ids.iter().collect();
    assert_eq!(
        unique.len(),
        page_ids.len(),
        "an event was shown twice: {page_ids:?}"
    );
    let server_ids: Vec<_> = history.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        page_ids, server_ids,
        "the page's events differ from the server's"
    );

    let mut last_progress = 0.0;
    for SseEvent { id, data, .. } in history {
        assert_eq!(data.event, StreamEventKind::Progress, "{id}: {data:?}");
        assert_eq!(data.generation_id, generation_id, "{id}: {data:?}");
        assert!(data.status.is_some(), "{id}: no status: {data:?}");
        assert!(data.stage.is_some(), "{id}: no stage: {data:?}");
        assert!(data.message.is_some(), "{id}: no message: {data:?}");
        assert!(data.timestamp.is_some(), "{id}: {data:?}");
        let progress = data.progress.expect("progress");
        assert!((last_progress..=1.0).contains(&progress), "{id}: {data:?}");
        last_progress = progress;
    }
}

#[tokio::test]
async fn a_simulated_generation_streams_to_completion_with_every_event_once() {
    let (server, driver) = tokio::join!(server(), Driver::start());
    with_browsers(&driver, 1, async |browsers| {
        let page = &browsers[0];
        page.open_demo(&server).await;
        let email = unique_email();
        page.sign_up(&email).await;
        let signed_in = page.snapshot().await;
        assert_eq!(signed_in.sessions, 1, "this browser's session is listed");

        let generation_id = page.start_simulation(3000).await;
        let done = page
            .wait_for("the generation to complete", GENERATION, |s| {
                s.status_state == "completed"
            })
            .await;
        assert_eq!(done.status, "Completed");
        assert_eq!(done.percent, "100%");
        assert_eq!(done.valuenow, "100");
        assert_eq!(done.gen_status, "completed");
        assert_eq!(done.stage, "completed");
        assert!(done.message.starts_with("Generation completed"), "{done:?}");

        let history = server.history(&email, &generation_id).await;
        assert_eq!(history.len(), 16);
        let last = &history[history.len() - 1].data;
        assert_eq!(last.status, Some(GenerationStatus::Completed));
        assert_eq!(last.progress, Some(1.0));
        assert_same_events(&done.ids, &history, &generation_id);
        assert_eq!(
            (done.connections, done.token_fetches, done.duplicates),
            (1, 1, 0),
            "one connection, one stream token, nothing dropped"
        );
    })
    .await;
}

#[tokio::test]
async fn a_stream_cut_by_the_server_resumes_with_the_cookie_and_every_event_once() {
    let (server, driver) = tokio::join!(server(), Driver::start());
    with_browsers(&driver, 1, async |browsers| {
        let page = &browsers[0];
        page.open_demo(&server).await;
        let email = unique_email();
        page.sign_up(&email).await;
        let generation_id = page.start_simulation(8000).await;

        page.wait_for("a few events", GENERATION, |s| s.ids.len() >= 3)
            .await;
        page.click("#drop-connection").await;
        let cut = page
            .wait_for(
                "the server to cut the stream",
                Duration::from_secs(10),
                |s| s.status_state == "reconnecting",
            )
            .await;
        assert!(cut.ids.len() < 16, "cut mid-way: {cut:?}");
        // The browser reconnects by itself (`retry: 3000`), with the as_resume cookie
        // and Last-Event-ID: no new stream token.
        page.wait_for("the browser to resume", Duration::from_secs(15), |s| {
            s.connections >= 2
        })
        .await;
        let done = page
            .wait_for("the generation to complete", GENERATION, |s| {
                s.status_state == "completed"
            })
            .await;

        let history = server.history(&email, &generation_id).await;
        assert_eq!(history.len(), 16);
        assert_same_events(&done.ids, &history, &generation_id);
        assert_eq!(
            (done.connections, done.token_fetches, done.duplicates),
            (2, 1, 0),
            "resumed once, by the cookie, with nothing repeated"
        );
        assert_eq!(done.percent, "100%");
    })
    .await;
}

#[tokio::test]
async fn without_the_resume_cookie_the_client_resumes_with_a_fresh_token_and_every_event_once() {
    let (server, driver) = tokio::join!(server(), Driver::start());
    with_browsers(&driver, 1, async |browsers| {
        let page = &browsers[0];
        page.open_demo(&server).await;
        let email = unique_email();
        page.sign_up(&email).await;
        let generation_id = page.start_simulation(8000).await;

        page.wait_for("a few events", GENERATION, |s| s.ids.len() >= 3)
            .await;
        // The browser loses its cookies (the as_resume cookie is the only one): its own
        // reconnect is refused, and the client takes over with a new token and
        // last_event_id.
        page.cdp("Network.clearBrowserCookies", json!({})).await;
        page.click("#drop-connection").await;
        page.wait_for("the client to resume", Duration::from_secs(20), |s| {
            s.connections >= 2
        })
        .await;
        let done = page
            .wait_for("the generation to complete", GENERATION, |s| {
                s.status_state == "completed"
            })
            .await;

        let history = server.history(&email, &generation_id).await;
        assert_same_events(&done.ids, &history, &generation_id);
        assert_eq!(
            (done.connections, done.token_fetches, done.duplicates),
            (2, 2, 0),
            "resumed once with a second, fresh stream token, with nothing repeated"
        );
    })
    .await;
}

/// Waits until the server's progress of the generation (read over the API with a fresh
/// login) is past `past`, and returns it.
async fn wait_for_progress(
    server: &Server,
    email: &str,
    generation_id_raw: &str,
    past: f64,
) -> f64 {
    let accounts = server.accounts();
    let api = accounts.bearer(&accounts.login(email).await.access);
    let id = generation_id(generation_id_raw);
    let deadline = std::time::Instant::now() + GENERATION;
    loop {
        let generation = api.generation(&id).await.unwrap();
        if generation.progress > past {
            return generation.progress;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the simulation did not go on past {past}: {generation:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sign_out_everywhere_ends_the_open_streams_on_every_device() {
    let (server, driver) = tokio::join!(server(), Driver::start());
    with_browsers(&driver, 2, async |browsers| {
        let (laptop, phone) = (&browsers[0], &browsers[1]);
        let email = unique_email();
        laptop.open_demo(&server).await;
        laptop.sign_up(&email).await;
        // The longest simulation: it outlasts two page loads and sign-ins on a slow machine.
        let generation_id = laptop.start_simulation(60000).await;

        // The same user on another device follows the same generation.
        phone.open_demo(&server).await;
        phone.sign_in(&email).await;
        phone.click("details.follow summary").await;
        phone.fill("#follow-id", &generation_id).await;
        phone.click("#follow").await;
        phone
            .wait_for("the second device to stream", GENERATION, |s| {
                s.status_state == "open" && !s.ids.is_empty()
            })
            .await;

        laptop.click("#refresh-sessions").await;
        laptop
            .wait_for("both sessions to be listed", Duration::from_secs(10), |s| {
                s.sessions == 2
            })
            .await;
        laptop.click("#sign-out-everywhere").await;

        let here = laptop
            .wait_for("this device to sign out", Duration::from_secs(10), |s| {
                s.state == "signed-out" && s.status_state == "ended"
            })
            .await;
        assert_eq!(here.status, "Stream ended: signed out");
        // The other device's stream is ended by the server; the page finds out when its
        // resume and a fresh stream token are refused.
        let there = phone
            .wait_for(
                "the other device's stream to end",
                Duration::from_secs(20),
                |s| s.status_state == "ended",
            )
            .await;
        assert_eq!(there.status, "Stream ended: signed out");
        assert_eq!(there.state, "signed-out");
        assert!(there.notice.contains("signed out"), "{there:?}");
        assert_ne!(there.gen_status, "completed", "ended mid-way: {there:?}");

        // The generation goes on; neither page hears of it any more. Two more events
        // on the server (a whole step apart) give any event still on its way time to
        // arrive, had a stream stayed open.
        let shown: f64 = [&here, &there]
            .iter()
            .map(|s| s.percent.trim_end_matches('%').parse::<f64>().unwrap() / 100.0)
            .fold(0.0, f64::max);
        // (The page shows whole percents; the script's steps are 4 points or more apart.)
        let next = wait_for_progress(&server, &email, &generation_id, shown + 0.005).await;
        wait_for_progress(&server, &email, &generation_id, next).await;
        let (here_later, there_later) = (laptop.snapshot().await, phone.snapshot().await);
        assert_eq!(here_later.ids, here.ids, "no event after signing out");
        assert_eq!(there_later.ids, there.ids, "no event after signing out");
    })
    .await;
}
