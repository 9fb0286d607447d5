//! The store over TLS (`rediss://`): a Redis, and a Redis Cluster, that speak TLS only,
//! with a certificate of a throwaway CA that this process trusts through
//! `SSL_CERT_FILE` (`TestTls::trust`, first thing in each test: nextest runs every
//! test in a process of its own). Every store suite runs on both, subscriptions
//! included; a plain `redis://` URL to a TLS port fails fast.

use std::time::{Duration, Instant};

use authstream_store::RedisStore;
use authstream_store::Store;
use authstream_testkit::{RedisCluster, RedisServer, redis_store_at, test_tls, unique_prefix};

/// A timeout that a first TLS connection (a handshake per node) on two busy cores
/// keeps within: these tests are about what works over TLS, not how fast.
const PATIENCE: Duration = Duration::from_secs(3);

/// A store on one Redis at `url`, with a fresh prefix.
fn patient_store(url: &str) -> Store {
    let store = Store::redis(
        RedisStore::connect(url, PATIENCE).unwrap(),
        &unique_prefix(),
    );
    store.start_background();
    store
}

/// A store on the Cluster of these `REDIS_CLUSTER_NODES` seeds, with a fresh prefix.
fn patient_cluster_store(seeds: &str) -> Store {
    let seeds: Vec<String> = seeds.split(',').map(str::to_owned).collect();
    let store = Store::redis(
        RedisStore::connect_cluster(&seeds, PATIENCE).unwrap(),
        &unique_prefix(),
    );
    store.start_background();
    store
}

fn suites() -> [(&'static str, Vec<(&'static str, crate::Case)>); 5] {
    [
        ("store_conformance", crate::store_conformance::cases()),
        ("rate_limit", crate::rate_limit::cases()),
        ("revocation", crate::revocation::cases()),
        ("stream_open", crate::stream_open::cases()),
        ("stream_tokens", crate::stream_tokens::cases()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_suite_passes_on_a_tls_redis() {
    test_tls().trust();
    let server = RedisServer::start_tls();
    assert!(server.url().starts_with("rediss://"));
    let mut ran = 0;
    for (suite, cases) in suites() {
        for (name, case) in cases {
            eprintln!("tls: {suite}::{name}");
            case(patient_store(&server.url())).await;
            ran += 1;
        }
    }
    assert!(ran > 50, "{ran} cases");
    // A generation subscribed on the sharded subscriptions' own TLS connection.
    let store = patient_store(&server.url());
    store.subscribe_generation("g").await.unwrap();
    let node = format!("127.0.0.1:{}", server.port());
    let deadline = Instant::now() + Duration::from_secs(2);
    while store.generation_subscriptions().get(&node) != Some(&1) {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            store.generation_subscriptions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_suite_passes_on_a_tls_redis_cluster() {
    test_tls().trust();
    // TLS between the nodes too (the bus, and replication to a replica per master:
    // every confirmed write waits for one).
    let cluster = RedisCluster::start_tls(3, 1);
    let seeds = cluster.seeds();
    assert!(seeds.starts_with("rediss://"), "{seeds}");
    let mut ran = 0;
    for (suite, cases) in suites() {
        for (name, case) in cases {
            eprintln!("tls cluster: {suite}::{name}");
            case(patient_cluster_store(&seeds)).await;
            ran += 1;
        }
    }
    assert!(ran > 50, "{ran} cases");
    let store = patient_cluster_store(&seeds);
    assert_eq!(store.kind(), "redis-cluster");
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|n| n.up), "{nodes:?}");
}

/// A client that does not speak TLS to a server that speaks nothing else: an error
/// within the store's timeout (the server drops the connection), never a hang. So is
/// a `rediss://` client that does not trust the server's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_or_untrusted_clients_of_a_tls_redis_fail_fast() {
    let server = RedisServer::start_tls();
    let plain = format!("redis://127.0.0.1:{}", server.port());
    let mut urls = vec![plain];
    // Untrusted unless another test of this process trusted the CA (one process per
    // test under nextest; under `cargo test` they share one).
    if !test_tls().trusted() {
        urls.push(server.url());
    }
    for url in &urls {
        let store = redis_store_at(url);
        for _ in 0..3 {
            let started = Instant::now();
            let err = store.get("k").await.unwrap_err();
            assert!(
                matches!(err, authstream_store::StoreError::Unavailable(_)),
                "{url}: {err:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{url}: {:?}",
                started.elapsed()
            );
        }
        // The sharded subscriptions' own connections too.
        let started = Instant::now();
        assert!(store.subscribe_generation("g").await.is_err(), "{url}");
        assert!(started.elapsed() < Duration::from_secs(2), "{url}");
    }
}
