//! The SSE wire format and the life of one stream.

use std::time::Duration;

use authstream_proto::GenerationStatus;
use authstream_proto::stream::{StreamEvent, StreamEventKind};
use authstream_store::streams::StreamSecret;
use authstream_testkit::stream::{PATIENCE, ids, set_cookie, spawn_app, spawn_app_with};
use futures_util::StreamExt as _;
use tokio::time::timeout;

/// Reads the raw body into `text` until `needle` shows up; false if the stream ended first.
async fn read_until<B: AsRef<[u8]>>(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    text: &mut String,
    needle: &str,
) -> bool {
    while !text.contains(needle) {
        match timeout(PATIENCE, body.next())
            .await
            .expect("nothing in time")
        {
            Some(Ok(chunk)) => text.push_str(std::str::from_utf8(chunk.as_ref()).unwrap()),
            _ => return false,
        }
    }
    true
}

#[tokio::test]
async fn the_stream_has_the_contract_format_and_ends_after_completed() {
    let app = spawn_app().await;
    let generation = app.create_generation("user-1").await;
    let first = app.progress(&generation, 0.5).await;
    let token = app.token("user-1", "s-1", &generation).await;

    let res = app.open_stream(&generation, &token).await;
    assert_eq!(res.status(), 200);
    let header = |name: &str| res.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/event-stream");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-accel-buffering"), "no");
    let cookie = header("set-cookie");
    assert!(cookie.starts_with("as_resume="), "{cookie}");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/generations/generate/{generation}/"),
        "Max-Age=300",
        "Secure",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    app.remember(
        cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("as_resume="),
    );

    // The bytes as sent: this is the wire format's test.
    let mut body = res.bytes_stream();
    let mut text = String::new();
    // The keep-alive comment comes when the stream is idle (every second here).
    assert!(
        read_until(&mut body, &mut text, "\n: keep-alive\n\n").await,
        "{text}"
    );
    let stored = app
        .store
        .read_events(generation.as_str(), None)
        .await
        .unwrap()
        .events;
    assert_eq!(stored.len(), 1);
    let expected_start = format!(
        "retry: 3000\n\n\
         data: {{\"event\":\"connected\",\"generation_id\":\"{generation}\"}}\n\n\
         id: {first}\ndata: {}\n\n",
        stored[0].1
    );
    assert!(text.starts_with(&expected_start), "{text}");
    let data: StreamEvent = serde_json::from_str(&stored[0].1).unwrap();
    assert_eq!(data.event, StreamEventKind::Progress);
    assert_eq!(data.generation_id, generation.as_str());
    assert_eq!(data.status, Some(GenerationStatus::Processing));
    assert_eq!(data.progress, Some(0.5));
    assert!(data.timestamp.unwrap() > 1_700_000_000_000);
    // Unnamed events only: `onmessage` sees every one.
    assert!(!text.contains("event:"), "{text}");

    let last = app.complete(&generation).await;
    // The server ends the stream after the terminal event: the body is complete.
    assert!(!read_until(&mut body, &mut text, "never sent").await);
    let stored = app
        .store
        .read_events(generation.as_str(), Some(&first))
        .await
        .unwrap()
        .events;
    assert_eq!(stored.len(), 1);
    assert!(
        text.ends_with(&format!("id: {last}\ndata: {}\n\n", stored[0].1)),
        "{text}"
    );
    assert!(stored[0].1.contains("\"status\":\"completed\""));
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn without_a_resume_point_the_kept_history_comes_first_then_live_events() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let mut published = Vec::new();
    for p in [0.1, 0.2] {
        published.push(app.progress(&generation, p).await);
    }
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    let head = stream.take(3).await;
    assert_eq!(head[0].data.event, StreamEventKind::Connected);
    assert_eq!(head[0].event, "message");
    assert_eq!(head[0].id, "");
    published.push(app.progress(&generation, 0.3).await);
    published.push(
        app.publish_ok(&generation, GenerationStatus::Failed, 0.3)
            .await,
    );
    let mut all = head;
    all.extend(stream.until_end().await);
    assert_eq!(ids(&all), published);
    assert!(all.iter().all(|e| e.event == "message"));
    assert_eq!(
        all.last().unwrap().data.status,
        Some(GenerationStatus::Failed)
    );
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_closed_stream_leaves_nothing_behind_in_the_hub() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    stream.take(1).await;
    assert_eq!(app.state.followed_generations(), 1);
    drop(stream);
    // The server notices the client went on its next write (a keep-alive at the latest).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while app.state.followed_generations() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub still follows the generation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn the_resume_cookie_follows_cookie_secure_and_the_resume_lifetime() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "false"), ("STREAM_RESUME_TTL_SECS", "7")]).await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let res = app.open_stream(&generation, &token).await;
    let cookie = set_cookie(res.headers()).unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Max-Age=7"), "{cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(!attributes.contains(&"Secure"), "{cookie}");
    // The grant behind it lives as long as the cookie says.
    let stream = app.sse_from(res);
    let grant = StreamSecret::parse(&stream.cookie).unwrap();
    let left = app
        .store
        .pttl(
            &app.store
                .keys()
                .stream_token(generation.as_str(), &grant.digest()),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        left <= Duration::from_secs(7) && left > Duration::from_secs(5),
        "{left:?}"
    );
    app.assert_no_secrets_leaked().await;
}
