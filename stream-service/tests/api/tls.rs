//! The stream service over TLS to Redis (`rediss://`): on a Redis and on a Redis
//! Cluster that speak TLS only (a throwaway CA, trusted through `SSL_CERT_FILE`, set
//! first thing in each test: nextest runs every test in a process of its own), a
//! stream opens, an event comes through the sharded subscriptions' own TLS
//! connections, and the readiness canary delivers on every node. A plain `redis://`
//! URL to a TLS port answers 503 `store_unavailable`, never hangs.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authstream_client::StreamClient;
use authstream_proto::GenerationStatus;
use authstream_proto::ops::Readiness;
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_security::keys::KeySet;
use authstream_store::{RedisStore, Store};
use authstream_testkit::stream::{StreamApp, spawn_app_on, unknown_secret, until_all_deliver};
use authstream_testkit::{
    self, RedisCluster, RedisServer, assert_problem, test_tls, unique_prefix,
};

/// A timeout that a first TLS connection (a handshake per node) on two busy cores
/// keeps within: these tests are about what works over TLS, not how fast.
const PATIENCE: Duration = Duration::from_secs(3);

async fn app_on(store: Store, keys: &Arc<KeySet>) -> StreamApp {
    // Events only through the generations' sharded subscriptions.
    let store = store.with_legacy_fanout(false);
    spawn_app_on(store, keys.clone(), &[("STREAM_LEGACY_FANOUT", "false")]).await
}

/// Polls `/readyz` until it is 200 `ready` with every one of `nodes` up and
/// delivering the canary (answers on the way may be anything: the TLS connections
/// are being made).
async fn until_ready(client: &StreamClient, nodes: &[String]) -> Readiness {
    until_all_deliver(client, nodes, Duration::from_secs(15), false).await
}

/// Streams of `streamer` get the events published through `publisher`.
async fn events_flow(publisher: &StreamApp, streamer: &StreamApp, owners: &[&str]) {
    for owner in owners {
        let g = publisher.create_generation(owner).await;
        let token = streamer.token(owner, "s1", &g).await;
        let mut stream = streamer.sse(&g, &token).await;
        assert_eq!(
            stream.take(1).await[0].data.event,
            StreamEventKind::Connected
        );
        let first = publisher.progress(&g, 0.5).await;
        let last = publisher.complete(&g).await;
        let got = stream.take(2).await;
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [first.as_str(), last.as_str()], "{g}");
    }
    let subscribed: usize = streamer.store.generation_subscriptions().values().sum();
    assert!(subscribed >= 1, "{subscribed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tls_redis_a_stream_gets_its_events_and_the_replica_is_ready() {
    test_tls().trust();
    let redis = RedisServer::start_tls();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let store = RedisStore::connect(&redis.url(), PATIENCE).unwrap();
    let app = app_on(Store::redis(store, &unique_prefix()), &keys).await;
    let node = format!("127.0.0.1:{}", redis.port());
    let body = until_ready(&app.client, std::slice::from_ref(&node)).await;
    assert_eq!(body.store, "redis", "{body:?}");
    events_flow(&app, &app, &["alice"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tls_redis_cluster_events_reach_streams_on_another_replica_and_every_master_delivers()
{
    test_tls().trust();
    let cluster = RedisCluster::start_tls(3, 0);
    let prefix = unique_prefix();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let seeds: Vec<String> = cluster.seeds().split(',').map(str::to_owned).collect();
    let store = || {
        Store::redis(
            RedisStore::connect_cluster(&seeds, PATIENCE).unwrap(),
            &prefix,
        )
    };
    let a = app_on(store(), &keys).await;
    let b = app_on(store(), &keys).await;
    let mut masters: Vec<String> = cluster
        .masters()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    masters.sort();
    assert_eq!(masters.len(), 3);
    let body = until_ready(&b.client, &masters).await;
    assert_eq!(body.store, "redis-cluster", "{body:?}");
    events_flow(&a, &b, &["alice", "bob", "carol"]).await;
}

/// A `redis://` URL where Redis speaks only TLS: the server drops each connection,
/// and every request that needs the store answers 503 `store_unavailable` within
/// the store's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_url_to_a_tls_only_redis_is_a_503_never_a_hang() {
    let redis = RedisServer::start_tls();
    let plain = format!("redis://127.0.0.1:{}", redis.port());
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let app = app_on(authstream_testkit::redis_store_at(&plain), &keys).await;
    let g1 = "g1".parse().unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let res = app
            .publish(&g1, &NewEventBody::new(GenerationStatus::Processing))
            .await;
        assert_problem(res, 503, "store_unavailable").await;
        let res = app.open_stream(&g1, &unknown_secret()).await;
        assert_problem(res, 503, "store_unavailable").await;
        let res = app.client.readyz().send().await.unwrap();
        assert_problem(res, 503, "store_unavailable").await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

/// The real binary, configured as a deployment is: `REDIS_URL=rediss://…` and the
/// private CA in `SSL_CERT_FILE`. It starts, and is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_starts_on_a_rediss_url_with_its_ca_in_ssl_cert_file() {
    let redis = RedisServer::start_tls();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stream-service"));
    command
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SSL_CERT_FILE", &test_tls().ca)
        .env("STREAM_BIND", format!("127.0.0.1:{port}"))
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = authstream_testkit::spawn_tied_to_this_process(command).unwrap();
    let node = format!("127.0.0.1:{}", redis.port());
    let client = StreamClient::new(reqwest::Client::new(), &format!("http://127.0.0.1:{port}"));
    let body = until_ready(&client, std::slice::from_ref(&node)).await;
    assert_eq!(body.store, "redis", "{body:?}");
    let _ = child.kill();
    let _ = child.wait();
}
