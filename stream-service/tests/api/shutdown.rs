//! Shutdown: open streams are told to go (clients reconnect elsewhere with
//! `Last-Event-ID`), in-flight requests finish, and the process exits 0 on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use authstream_client::StreamClient;
use authstream_proto::stream::StreamEventKind;
use authstream_runtime::UnixTime;
use authstream_store::generations::{self, GenerationId};
use authstream_store::streams;
use authstream_store::{RedisStore, Store};
use authstream_testkit::stream::{OpenStream, PATIENCE, grant, spawn_app};
use tokio::io::{AsyncBufReadExt as _, BufReader};

#[tokio::test]
async fn streams_end_when_the_service_shuts_down() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    stream.take(1).await;
    let stopper = app.stopper.clone();
    let stopped = tokio::spawn(async move { stopper.stop().await });
    assert!(
        stream.next_within(PATIENCE).await.is_none(),
        "the stream should end"
    );
    tokio::time::timeout(PATIENCE, stopped)
        .await
        .unwrap()
        .unwrap();
    // No longer accepting.
    let res = app
        .client
        .healthz()
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(res.is_err());
    app.assert_no_secrets_leaked().await;
}

/// Starts the real binary and returns it with the port it bound.
async fn start_binary(redis_url: &str) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stream-service"))
        .env_clear()
        .envs([
            ("REDIS_URL", redis_url),
            ("STREAM_BIND", "127.0.0.1:0"),
            ("AUTH_URL", "http://127.0.0.1:9"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    // Keeps draining the logs so that the child never blocks on a full pipe.
    tokio::spawn(async move {
        let mut port_tx = Some(port_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            // A log line is no wire type: read as JSON.
            let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if log["message"] == "stream-service listening"
                && let (Some(port), Some(tx)) = (log["port"].as_u64(), port_tx.take())
            {
                let _ = tx.send(u16::try_from(port).unwrap());
            }
        }
    });
    let port = tokio::time::timeout(PATIENCE, port_rx)
        .await
        .unwrap()
        .unwrap();
    (child, port)
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_the_process_exits_cleanly() {
    let redis = authstream_testkit::shared_redis();
    let (mut child, port) = start_binary(&redis.url()).await;
    // The binary's store: the production key prefix on this test's own Redis.
    let store = Store::redis(
        RedisStore::connect(&redis.url(), Duration::from_millis(500)).unwrap(),
        authstream_web::settings::KEY_PREFIX,
    );
    let id = GenerationId::generate();
    generations::create(&store, &id, "u", UnixTime::now(), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let token = streams::mint(
        &store,
        &grant("u", "s", &id),
        Duration::from_secs(60),
        UnixTime::now(),
    )
    .await
    .unwrap();
    let client = StreamClient::new(reqwest::Client::new(), &format!("http://127.0.0.1:{port}"));
    let res = client.open(&id, token.expose()).send().await.unwrap();
    let mut stream = OpenStream::new(res);
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    assert!(
        stream.next_within(PATIENCE).await.is_none(),
        "the stream should end"
    );
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
