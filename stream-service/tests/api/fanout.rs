//! Fan-out: many streams, many generations, several replicas, and slow clients.

use std::collections::HashMap;
use std::time::Duration;

use authstream_client::{SseParser, StreamQuery};
use authstream_proto::GenerationId;
use authstream_proto::paths;
use authstream_proto::stream::{Published, StreamEvent, StreamEventKind};
use authstream_testkit::stream::{
    OpenStream, PATIENCE, StreamApp, events_to_overflow, ids, padded_event, spawn_app,
    spawn_app_on, spawn_patient_app_with, spawn_replica,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

#[tokio::test]
async fn each_stream_sees_exactly_its_generations_events() {
    // One user in five tabs and devices, on three generations (two shared by two
    // tabs each), and a second user on a fourth.
    let app = spawn_app().await;
    let a = [
        app.create_generation("alice").await,
        app.create_generation("alice").await,
        app.create_generation("alice").await,
    ];
    let b = app.create_generation("bob").await;
    let plan = [
        ("alice", "tab-1", &a[0]),
        ("alice", "tab-2", &a[0]),
        ("alice", "tab-3", &a[1]),
        ("alice", "phone", &a[1]),
        ("alice", "laptop", &a[2]),
        ("bob", "bob-1", &b),
    ];
    let mut streams: Vec<(GenerationId, OpenStream)> = Vec::new();
    for (user, session, generation) in plan {
        let token = app.token(user, session, generation).await;
        let mut stream = app.sse(generation, &token).await;
        assert_eq!(
            stream.take(1).await[0].data.event,
            StreamEventKind::Connected
        );
        streams.push((generation.clone(), stream));
    }
    let generations = [&a[0], &a[1], &a[2], &b];
    let mut published: HashMap<GenerationId, Vec<String>> = HashMap::new();
    for round in 0..3 {
        for generation in generations {
            let id = app.progress(generation, f64::from(round) / 4.0).await;
            published.entry(generation.clone()).or_default().push(id);
        }
    }
    for generation in generations {
        let id = app.complete(generation).await;
        published.entry(generation.clone()).or_default().push(id);
    }
    for (generation, mut stream) in streams {
        let received = stream.until_end().await;
        assert_eq!(ids(&received), published[&generation]);
        assert!(
            received
                .iter()
                .all(|e| e.data.generation_id == generation.as_str())
        );
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn events_published_through_one_replica_reach_streams_on_another() {
    let one = spawn_app().await;
    let two = spawn_replica(&one).await;
    assert_ne!(one.port, two.port);
    let generation = one.create_generation("u").await;
    let on_two = two.token("u", "s-2", &generation).await;
    let on_one = one.token("u", "s-1", &generation).await;
    let mut stream_two = two.sse(&generation, &on_two).await;
    let mut stream_one = one.sse(&generation, &on_one).await;
    stream_two.take(1).await;
    stream_one.take(1).await;
    let first = one.progress(&generation, 0.5).await;
    let second = two.complete(&generation).await;
    let expected = vec![first, second];
    assert_eq!(ids(&stream_two.until_end().await), expected);
    assert_eq!(ids(&stream_one.until_end().await), expected);
    one.assert_no_secrets_leaked().await;
    two.assert_no_secrets_leaked().await;
}

/// A client that reads nothing: a tiny receive buffer, and the raw HTTP/1.1 exchange.
struct StalledClient {
    socket: TcpStream,
    received: Vec<u8>,
}

impl StalledClient {
    async fn open(port: u16, path_and_query: &str) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 512];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "no response");
            received.extend_from_slice(&chunk[..n]);
        }
        assert!(
            received.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&received)
        );
        Self { socket, received }
    }

    /// Reads everything until the server closes, and returns the ids of the progress
    /// events.
    async fn read_to_end(mut self) -> Vec<String> {
        tokio::time::timeout(PATIENCE * 4, self.socket.read_to_end(&mut self.received))
            .await
            .expect("the stalled stream was never cut off")
            .unwrap();
        let text = String::from_utf8_lossy(&self.received);
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let mut parser = SseParser::new();
        parser.push(dechunk(body).as_bytes());
        std::iter::from_fn(|| parser.next_frame())
            .filter(|frame| {
                let event: StreamEvent = frame.json().unwrap();
                event.event == StreamEventKind::Progress
            })
            .map(|frame| frame.id)
            .collect()
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

#[tokio::test]
async fn a_client_that_falls_behind_is_cut_off_without_slowing_a_fast_one() {
    let app: StreamApp = spawn_patient_app_with(&[("SSE_MAX_QUEUED_EVENTS", "8")]).await;
    let generation = app.create_generation("u").await;
    let fast_token = app.token("u", "fast", &generation).await;
    let mut fast = app.sse(&generation, &fast_token).await;
    fast.take(1).await;
    let slow_token = app.token("u", "slow", &generation).await;
    let slow = StalledClient::open(
        app.port,
        &format!(
            "{}?token={slow_token}",
            paths::generation_stream(&generation)
        ),
    )
    .await;
    let fast = tokio::spawn(async move { fast.until_end().await });

    // Large events, so that the kernel's socket buffers fill up quickly.
    let padding = "x".repeat(15 * 1024);
    let mut published = Vec::new();
    let publisher = app.publisher();
    for i in 0..events_to_overflow(padding.len()) {
        let Published { id } = publisher
            .publish(&generation, &padded_event(i, &padding))
            .await
            .unwrap();
        published.push(id);
    }
    published.push(app.complete(&generation).await);
    assert_eq!(
        ids(&fast.await.unwrap()),
        published,
        "the fast stream missed events"
    );

    let got = slow.read_to_end().await;
    assert!(
        got.len() < published.len(),
        "the slow client was not cut off"
    );
    assert_eq!(
        got,
        published[..got.len()],
        "what it got is a prefix, in order"
    );
    assert!(
        app.metric("authstream_stream_lagged_disconnects_total")
            .await
            >= 1.0
    );

    // It resumes where it was cut off and misses nothing.
    let token = app.token("u", "slow", &generation).await;
    let query = StreamQuery {
        token: Some(&token),
        last_event_id: got.last().map(String::as_str),
    };
    let res = app
        .client
        .open_with(&generation, query)
        .send()
        .await
        .unwrap();
    let rest = app.sse_from(res).until_end().await;
    let mut union = got.clone();
    union.extend(ids(&rest));
    assert_eq!(union, published);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn the_in_memory_store_of_the_single_process_default_streams_and_resumes_too() {
    let keys = std::sync::Arc::new(authstream_security::keys::KeySet::ephemeral().unwrap());
    let store = authstream_store::Store::memory(&authstream_testkit::unique_prefix());
    let app = spawn_app_on(store, keys, &[]).await;
    let generation = app.create_generation("u").await;
    let first = app.progress(&generation, 0.5).await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    let head = stream.take(2).await;
    assert_eq!(ids(&head), [first.as_str()]);
    drop(stream);
    let second = app.complete(&generation).await;
    let token = app.token("u", "s", &generation).await;
    let query = StreamQuery {
        token: Some(&token),
        last_event_id: Some(&first),
    };
    let res = app
        .client
        .open_with(&generation, query)
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&app.sse_from(res).until_end().await), [second]);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn streams_opened_while_events_flow_miss_nothing_and_repeat_nothing() {
    // Opens race publishes: an event may land between following the generation and
    // reading its history (it must come once) or just before (it must come at all).
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let publisher = async {
        let mut published = Vec::new();
        for i in 0..40 {
            published.push(app.progress(&generation, f64::from(i) / 100.0).await);
        }
        published
    };
    let opener = async {
        let mut streams = Vec::new();
        for i in 0..20 {
            let token = app.token("u", &format!("tab-{i}"), &generation).await;
            streams.push(app.sse(&generation, &token).await);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        streams
    };
    let (mut published, streams) = tokio::join!(publisher, opener);
    published.push(app.complete(&generation).await);
    for mut stream in streams {
        assert_eq!(ids(&stream.until_end().await), published);
    }
    app.assert_no_secrets_leaked().await;
}

/// A client that stops reading altogether never lets the lag check run (the server
/// stops writing to it), so the kernel ends it: `SSE_SEND_TIMEOUT_SECS` is the
/// connection's `TCP_USER_TIMEOUT`, and a zero window for that long aborts it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_client_that_never_reads_again_is_dropped_after_the_send_timeout() {
    let app = spawn_patient_app_with(&[("SSE_SEND_TIMEOUT_SECS", "1")]).await;
    // This app's own count of streams (the process's `authstream_streams_open` gauge
    // moves with every test's streams under `cargo test`).
    let open_streams = || app.state.followed_generations();
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let stalled = StalledClient::open(
        app.port,
        &format!("{}?token={token}", paths::generation_stream(&generation)),
    )
    .await;
    assert_eq!(open_streams(), 1);
    let padding = "x".repeat(15 * 1024);
    for step in 0..events_to_overflow(padding.len()) {
        let res = app
            .publish(&generation, &padded_event(step, &padding))
            .await;
        assert_eq!(res.status(), 202);
    }
    // The client still holds its end and reads nothing; the server lets go.
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    while open_streams() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a stream that takes nothing is still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stalled);
    app.assert_no_secrets_leaked().await;
}
