//! What an idle event stream costs the server, in live heap bytes counted by dhat's
//! allocator: the HTTP layer keeps no read or write buffer for a connection that is
//! only waiting (actix-http allocated 8 KiB of each per connection), and one task
//! renews every stream's place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use authstream_runtime::UnixTime;
use authstream_security::jwt::KeySource;
use authstream_security::keys::KeySet;
use authstream_store::generations::{self, GenerationId};
use authstream_store::streams;
use authstream_testkit::stream::{ensure_holder, grant, settings};
use stream_service::Application;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Streams opened for the measurement, after one that warms up what all share.
const STREAMS: usize = 200;

/// Opens an event stream with a bare socket (no client buffers to count) and returns
/// once its `connected` event has arrived.
async fn open_bare(port: u16, generation: &str, token: &str) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET /generations/generate/{generation}/stream?token={token} HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut received = [0u8; 4096];
    let mut filled = 0;
    while !received[..filled]
        .windows(b"connected".len())
        .any(|w| w == b"connected")
    {
        let n = timeout(Duration::from_secs(5), socket.read(&mut received[filled..]))
            .await
            .expect("no `connected` in time")
            .unwrap();
        assert!(
            n > 0,
            "the stream ended before `connected`: {}",
            String::from_utf8_lossy(&received[..filled])
        );
        filled += n;
    }
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_event_stream_costs_the_server_under_8_kib_of_heap() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // Nothing captures the logs here: every byte counted is the server's.
    // Not `spawn_app`: it captures the logs, whose bytes would be counted.
    let store = authstream_testkit::redis_store();
    let settings = settings(&[
        // No keep-alive comment during the measurement.
        ("SSE_KEEPALIVE_SECS", "600"),
        ("STREAM_MAX_PER_USER", "1000"),
    ]);
    let keys = KeySource::Local(std::sync::Arc::new(KeySet::ephemeral().unwrap()));
    let app = Application::build_with(settings, store.clone(), keys).unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped());

    ensure_holder(&store, "u", "s", &[]).await;
    let mut streams = Vec::with_capacity(STREAMS + 1);
    for _ in 0..=STREAMS {
        let id = GenerationId::generate();
        let now = UnixTime::now();
        generations::create(&store, &id, "u", now, Duration::from_secs(600))
            .await
            .unwrap()
            .unwrap();
        let token = streams::mint(&store, &grant("u", "s", &id), Duration::from_secs(60), now)
            .await
            .unwrap();
        streams.push((id.to_string(), token.expose().to_owned()));
    }

    let mut open = Vec::with_capacity(STREAMS + 1);
    let (first, rest) = streams.split_first().unwrap();
    open.push(open_bare(port, &first.0, &first.1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = dhat::HeapStats::get().curr_bytes;
    for (generation, token) in rest {
        open.push(open_bare(port, generation, token).await);
    }
    // Every connection has written its first events and waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = dhat::HeapStats::get().curr_bytes;

    let per_stream = after.saturating_sub(before) / STREAMS;
    eprintln!("live heap per idle stream: {per_stream} bytes");
    assert!(
        per_stream < 8 * 1024,
        "an idle stream holds {per_stream} bytes of heap"
    );
    drop(open);
}
