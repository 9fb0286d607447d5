//! Redis going away: 503 `store_unavailable` at once, nothing accepted unchecked,
//! and recovery by itself when Redis is back.

use std::sync::Arc;
use std::time::Duration;

use authstream_proto::stream::NewEventBody;
use authstream_proto::{GenerationId, GenerationStatus};
use authstream_security::keys::KeySet;
use authstream_testkit::stream::{PATIENCE, ids, spawn_app_on};
use authstream_testkit::{self, RedisServer, assert_problem};

#[tokio::test]
async fn a_store_outage_is_a_503_and_the_service_recovers_when_redis_returns() {
    let redis = RedisServer::start();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let app = spawn_app_on(authstream_testkit::redis_store_at(&redis.url()), keys, &[]).await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut open = app.sse(&generation, &token).await;
    open.take(1).await;
    let spare = app.token("u", "s", &generation).await;

    redis.stop();
    let res = app.open_stream(&generation, &spare).await;
    assert_eq!(authstream_testkit::header_text(&res, "retry-after"), "1");
    assert_problem(res, 503, "store_unavailable").await;
    let res = app
        .publish(
            &generation,
            &NewEventBody::new(GenerationStatus::Processing),
        )
        .await;
    assert_problem(res, 503, "store_unavailable").await;
    let res = app.client.readyz().send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    // The process is up all the same.
    app.client.healthz().await.unwrap();

    redis.restart();
    // Redis came back empty (as after a crash); a client tries again as told by Retry-After.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (generation, mut stream) = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        match app.client.readyz().await {
            Ok(_) => {}
            Err(e) if e.status().is_some() => continue,
            Err(e) => panic!("{e}"),
        }
        let generation = app.create_generation("u").await;
        let token = app.token("u", "s", &generation).await;
        let res = app.open_stream(&generation, &token).await;
        if res.status() == 503 {
            continue;
        }
        break (generation, app.sse_from(res));
    };
    stream.take(1).await;
    let id = app.complete(&generation).await;
    assert_eq!(ids(&stream.until_end().await), [id]);
    app.assert_no_secrets_leaked().await;
}

/// Drops every pub/sub connection of a Redis server, as a network blip would.
async fn kill_subscriptions(redis: &RedisServer) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", redis.port()))
        .await
        .unwrap();
    socket
        .write_all(b"CLIENT KILL TYPE pubsub\r\n")
        .await
        .unwrap();
    let mut reply = [0u8; 16];
    let n = socket.read(&mut reply).await.unwrap();
    // The process's subscription, and the generations' (one connection per node).
    let killed = String::from_utf8_lossy(&reply[..n]);
    assert!(
        killed
            .strip_prefix(':')
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n >= 1),
        "{killed:?}"
    );
}

#[tokio::test]
async fn events_published_while_the_subscription_reconnects_are_not_lost() {
    let redis = RedisServer::start();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let app = spawn_app_on(authstream_testkit::redis_store_at(&redis.url()), keys, &[]).await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    stream.take(1).await;
    let mut published = vec![app.progress(&generation, 0.1).await];
    assert_eq!(ids(&stream.take(1).await), published);

    kill_subscriptions(&redis).await;
    // Published at once, while nobody is subscribed: only the history has them.
    for p in [0.2, 0.3, 0.4] {
        published.push(app.progress(&generation, p).await);
    }
    let mut received = stream.take(3).await;
    published.push(app.complete(&generation).await);
    received.extend(stream.until_end().await);
    assert_eq!(ids(&received), published[1..]);
    assert!(
        authstream_testkit::logs()
            .contents()
            .contains("store subscription re-established")
    );
    app.assert_no_secrets_leaked().await;
}

/// `CLIENT LIST` of a Redis server: one line per connection.
async fn client_list(redis: &RedisServer, kind: &str) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", redis.port()))
        .await
        .unwrap();
    let mut socket = tokio::io::BufReader::new(socket);
    let command = format!("CLIENT LIST TYPE {kind}\r\n");
    socket
        .get_mut()
        .write_all(command.as_bytes())
        .await
        .unwrap();
    let mut header = String::new();
    socket.read_line(&mut header).await.unwrap();
    let len: usize = header.trim().trim_start_matches('$').parse().unwrap();
    let mut body = vec![0u8; len];
    socket.read_exact(&mut body).await.unwrap();
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn open_streams_hold_no_redis_connections_of_their_own() {
    let redis = RedisServer::start();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    // 31 streams of one user: more than the default per-user cap.
    let many = [("STREAM_MAX_PER_USER", "100")];
    let app = spawn_app_on(
        authstream_testkit::redis_store_at(&redis.url()),
        keys,
        &many,
    )
    .await;
    let mut streams = Vec::new();
    let open = |generation: GenerationId| {
        let app = &app;
        async move {
            let token = app.token("u", "s", &generation).await;
            let mut stream = app.sse(&generation, &token).await;
            stream.take(1).await;
            stream
        }
    };
    let first = app.create_generation("u").await;
    streams.push(open(first.clone()).await);
    let baseline = client_list(&redis, "normal").await.len();
    for i in 0..30 {
        let generation = if i % 3 == 0 {
            first.clone()
        } else {
            app.create_generation("u").await
        };
        streams.push(open(generation).await);
    }
    // Two subscription connections for the whole process (its own, and the one of
    // the generations' sharded channels on this node), and no command connection
    // per stream: streams only wait on in-process channels. A worker that served no
    // request before opens its one command connection now.
    assert_eq!(client_list(&redis, "pubsub").await.len(), 2);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let normal = client_list(&redis, "normal").await.len();
    assert!(normal < baseline + workers, "{normal} after {baseline}");
    assert_eq!(app.state.followed_generations(), 21);
    app.assert_no_secrets_leaked().await;
}
