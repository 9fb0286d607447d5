//! Resuming: by `Last-Event-ID` (or `last_event_id`) with a fresh token, or as a
//! browser does with only its `as_resume` cookie; nothing lost, nothing twice.

use authstream_client::{SseEvent, StreamQuery};
use authstream_proto::GenerationId;
use authstream_proto::stream::StreamEventKind;
use authstream_runtime::UnixTime;
use authstream_store::streams;
use authstream_testkit::assert_problem;
use authstream_testkit::stream::{
    OpenStream, StreamApp, ids, resume_cookie, spawn_app, spawn_app_with,
};
use reqwest::header::COOKIE;

fn assert_exactly(received: &[SseEvent], published: &[String]) {
    assert_eq!(ids(received), published, "received ≠ published");
}

#[tokio::test]
async fn a_fresh_token_and_last_event_id_resume_exactly_after_it() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let mut published = Vec::new();
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    let mut received = stream.take(1).await;
    for i in 0..3 {
        published.push(app.progress(&generation, f64::from(i) / 10.0).await);
    }
    received.extend(stream.take(3).await);
    // The connection drops; events go on meanwhile.
    drop(stream);
    for i in 3..6 {
        published.push(app.progress(&generation, f64::from(i) / 10.0).await);
    }
    let last = received.last().unwrap().id.clone();
    let token = app.token("u", "s", &generation).await;
    let res = app
        .client
        .open_after(&generation, &token, &last)
        .send()
        .await
        .unwrap();
    let mut stream = app.sse_from(res);
    let resumed = stream.take(4).await;
    assert_eq!(resumed[0].data.event, StreamEventKind::Connected);
    received.extend(resumed);
    published.push(app.complete(&generation).await);
    received.extend(stream.until_end().await);
    assert_exactly(&received, &published);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_browser_reconnects_with_only_its_resume_cookie_and_last_event_id() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut published = vec![app.progress(&generation, 0.1).await];
    let mut stream = app.sse(&generation, &token).await;
    let mut received = stream.take(2).await;
    let first_cookie = stream.cookie.clone();
    drop(stream);
    published.push(app.progress(&generation, 0.2).await);

    // The same URL (its token already used), the cookie, and Last-Event-ID: as EventSource does.
    let reconnect = |cookie: String, last: String| {
        app.client
            .open_after(&generation, &token, &last)
            .header(COOKIE, format!("as_resume={cookie}"))
            .send()
    };
    let last = received.last().unwrap().id.clone();
    let res = reconnect(first_cookie.clone(), last.clone()).await.unwrap();
    let mut stream = app.sse_from(res);
    // The grant rotates: a new cookie, and the old one is spent.
    assert_ne!(stream.cookie, first_cookie);
    received.extend(stream.take(2).await);
    published.push(app.complete(&generation).await);
    received.extend(stream.until_end().await);
    assert_exactly(&received, &published);

    let res = reconnect(first_cookie, last).await.unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    // Without any token, the cookie alone is enough too.
    let res = app
        .resume(&generation, &stream.cookie)
        .header("last-event-id", published[1].as_str())
        .send()
        .await
        .unwrap();
    let mut again = app.sse_from(res);
    let tail = again.until_end().await;
    assert_eq!(ids(&tail), published[2..]);
    // Resume grants are not counted as issued stream tokens.
    let stats = streams::stats(&app.store, UnixTime::now()).await.unwrap();
    assert_eq!(stats.issued_total, 1);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_resume_cookie_is_not_a_stream_token_nor_valid_for_another_generation() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let other = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let res = app.open_stream(&generation, &token).await;
    let cookie = resume_cookie(res.headers()).unwrap();
    app.remember(&cookie);
    drop(res);
    // As a `token` it is refused (and used up).
    let res = app.open_stream(&generation, &cookie).await;
    assert_problem(res, 401, "invalid_stream_token").await;

    let token = app.token("u", "s", &generation).await;
    let res = app.open_stream(&generation, &token).await;
    let cookie = resume_cookie(res.headers()).unwrap();
    app.remember(&cookie);
    drop(res);
    let res = app.resume(&other, &cookie).send().await.unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn the_last_event_id_query_parameter_is_honoured() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let mut published = Vec::new();
    for i in 0..4 {
        published.push(app.progress(&generation, f64::from(i) / 10.0).await);
    }
    let token = app.token("u", "s", &generation).await;
    let query = StreamQuery {
        token: Some(&token),
        last_event_id: Some(&published[1]),
    };
    let res = app
        .client
        .open_with(&generation, query)
        .send()
        .await
        .unwrap();
    let mut stream = app.sse_from(res);
    let received = stream.take(3).await;
    assert_eq!(received[0].data.event, StreamEventKind::Connected);
    assert_exactly(&received, &published[2..]);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn an_id_older_than_the_kept_history_starts_with_a_reset() {
    let app = spawn_app_with_history(3).await;
    let generation = app.create_generation("u").await;
    let mut published = Vec::new();
    for i in 0..6 {
        published.push(app.progress(&generation, f64::from(i) / 10.0).await);
    }
    let token = app.token("u", "s", &generation).await;
    let res = app
        .client
        .open_after(&generation, &token, &published[0])
        .send()
        .await
        .unwrap();
    let mut stream = app.sse_from(res);
    let received = stream.take(5).await;
    assert_eq!(received[0].data.event, StreamEventKind::Connected);
    assert_eq!(received[1].data.event, StreamEventKind::Reset);
    assert_eq!(received[1].data.generation_id, generation.as_str());
    assert_exactly(&received, &published[3..]);
    app.assert_no_secrets_leaked().await;
}

async fn spawn_app_with_history(max: usize) -> StreamApp {
    spawn_app_with(&[("EVENT_HISTORY_MAX", &max.to_string())]).await
}

#[tokio::test]
async fn reconnecting_at_the_terminal_event_gets_no_content() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    app.progress(&generation, 0.5).await;
    let terminal = app.complete(&generation).await;
    let token = app.token("u", "s", &generation).await;
    let res = app
        .client
        .open_after(&generation, &token, &terminal)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(resume_cookie(res.headers()).is_none());
    // From before the terminal event: the rest, then the end.
    let token = app.token("u", "s", &generation).await;
    let mut stream: OpenStream = app.sse(&generation, &token).await;
    let all = stream.until_end().await;
    assert_eq!(ids(&all).last(), Some(&terminal));
    app.assert_no_secrets_leaked().await;
}

/// The history is read a page (`SSE_MAX_QUEUED_EVENTS` events) at a time: across page
/// boundaries, from the start, after a resume point and after a reset, every kept
/// event arrives once and in order, and live events follow.
#[tokio::test]
async fn a_history_longer_than_a_page_arrives_whole_and_in_order_then_live_events() {
    let app = spawn_app_with(&[("SSE_MAX_QUEUED_EVENTS", "3"), ("EVENT_HISTORY_MAX", "8")]).await;
    let generation = app.create_generation("u").await;
    let mut published = Vec::new();
    for i in 0..10 {
        published.push(app.progress(&generation, f64::from(i) / 20.0).await);
    }
    let kept = &published[2..];

    let token = app.token("u", "from-start", &generation).await;
    let mut from_start = app.sse(&generation, &token).await;
    let received = from_start.take(1 + kept.len()).await;
    assert_eq!(received[0].data.event, StreamEventKind::Connected);
    assert_exactly(&received, kept);

    let mut resumed = open_after(&app, &generation, "resumed", &published[3]).await;
    let received = resumed.take(1 + published[4..].len()).await;
    assert_exactly(&received, &published[4..]);

    let mut reset = open_after(&app, &generation, "reset", &published[0]).await;
    let received = reset.take(2 + kept.len()).await;
    assert_eq!(received[1].data.event, StreamEventKind::Reset);
    assert_exactly(&received, kept);

    let last = app.complete(&generation).await;
    for stream in [&mut from_start, &mut resumed, &mut reset] {
        assert_exactly(&stream.until_end().await, std::slice::from_ref(&last));
    }
    app.assert_no_secrets_leaked().await;
}

/// A stream of user `u` in a new session, resuming after `last_event_id`.
async fn open_after(
    app: &StreamApp,
    generation: &GenerationId,
    session: &str,
    last_event_id: &str,
) -> OpenStream {
    let token = app.token("u", session, generation).await;
    let res = app
        .client
        .open_after(generation, &token, last_event_id)
        .send()
        .await
        .unwrap();
    app.sse_from(res)
}
