//! Fan-out that shards: each generation's events on a channel in its slot
//! (`SSUBSCRIBE`), subscribed by a replica only while it has streams on it, on one
//! Redis and on a real Redis Cluster (three masters, a password on every node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use authstream_proto::stream::StreamEventKind;
use authstream_security::keys::KeySet;
use authstream_store::Store;
use authstream_testkit::stream::{StreamApp, spawn_app_on};
use authstream_testkit::{self, RedisCluster, cluster_store_sharing, unique_prefix};
use stream_service::hub::Hub;

/// How many of the generations' channels have a subscriber (`PUBSUB SHARDNUMSUB`
/// for each, on the node of its slot).
fn subscribed(cluster: &RedisCluster, store: &Store, generations: &[String]) -> usize {
    generations
        .iter()
        .map(|g| {
            let port = cluster.master_of(&store.keys().events(g));
            let channel = store.keys().generation_channel(g);
            let out = cluster
                .cli(port, &["PUBSUB", "SHARDNUMSUB", &channel])
                .unwrap_or_default();
            out.lines()
                .nth(1)
                .and_then(|c| c.trim().parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_subscribes_to_the_generations_it_streams_and_lets_go_after_the_linger() {
    let cluster = RedisCluster::start(3, 0);
    let store = cluster_store_sharing(&cluster.seeds(), &unique_prefix()).with_legacy_fanout(false);
    let hub = Hub::new(store.clone(), 8).with_linger(Duration::from_millis(700));
    let generations: Vec<String> = (0..100).map(|i| format!("gen-{i}")).collect();
    assert_eq!(subscribed(&cluster, &store, &generations), 0, "before");

    let mut follows = Vec::new();
    for g in &generations {
        follows.push(hub.follow(g).await.unwrap());
    }
    // Two streams on one generation: one subscription.
    follows.push(hub.follow(&generations[0]).await.unwrap());
    assert_eq!(subscribed(&cluster, &store, &generations), 100, "during");
    assert_eq!(hub.subscribed_generations(), 100);
    let per_node = store.generation_subscriptions();
    assert_eq!(per_node.len(), 3, "every master holds some: {per_node:?}");
    assert_eq!(per_node.values().sum::<usize>(), 100);

    // A stream that leaves and comes back within the linger changes nothing.
    drop(follows.pop());
    drop(follows.swap_remove(5));
    follows.push(hub.follow(&generations[5]).await.unwrap());
    drop(follows);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.subscribed_generations(), 100, "lingering");
    eventually("the linger passes", || hub.subscribed_generations() == 0).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribed(&cluster, &store, &generations) != 0 {
        assert!(
            Instant::now() < deadline,
            "subscriptions left after the linger"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn app_on(store: Store, keys: &Arc<KeySet>) -> StreamApp {
    spawn_app_on(store, keys.clone(), &[("STREAM_LEGACY_FANOUT", "false")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_through_one_replica_reach_streams_on_another_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let prefix = unique_prefix();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let store =
        |legacy| cluster_store_sharing(&cluster.seeds(), &prefix).with_legacy_fanout(legacy);
    let a = app_on(store(false), &keys).await;
    let b = app_on(store(false), &keys).await;
    let mut generations = Vec::new();
    for owner in ["alice", "alice", "bob"] {
        generations.push((owner, a.create_generation(owner).await));
    }
    let mut streams = Vec::new();
    for (owner, g) in &generations {
        let token = b.token(owner, "s1", g).await;
        let mut stream = b.sse(g, &token).await;
        assert_eq!(
            stream.take(1).await[0].data.event,
            StreamEventKind::Connected
        );
        streams.push(stream);
    }
    for ((_, g), stream) in generations.iter().zip(&mut streams) {
        let first = a.progress(g, 0.5).await;
        let last = a.complete(g).await;
        let got = stream.take(2).await;
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [first.as_str(), last.as_str()], "{g}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keeps_its_events_while_the_slot_of_its_channel_moves() {
    let cluster = RedisCluster::start(3, 0);
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let store = cluster_store_sharing(&cluster.seeds(), &unique_prefix()).with_legacy_fanout(false);
    let app = app_on(store.clone(), &keys).await;
    let g = app.create_generation("alice").await;
    let token = app.token("alice", "s1", &g).await;
    let mut stream = app.sse(&g, &token).await;
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    let mut published = Vec::new();
    for i in 0..3 {
        published.push(app.progress(&g, f64::from(i) / 10.0).await);
    }
    let events_key = store.keys().events(g.as_str());
    let slot = authstream_store::slot::key_slot(&events_key);
    let from = cluster.master_of(&events_key);
    let to = cluster.masters().into_iter().find(|p| *p != from).unwrap();
    cluster.move_slot(slot, to);
    assert_eq!(cluster.master_of(&events_key), to);
    // The subscription follows the slot (the old node said `sunsubscribe`).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = cluster
            .cli(
                to,
                &[
                    "PUBSUB",
                    "SHARDNUMSUB",
                    &store.keys().generation_channel(g.as_str()),
                ],
            )
            .unwrap_or_default();
        if n.lines().nth(1).is_some_and(|c| c.trim() == "1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never subscribed on the new node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 3..6 {
        published.push(app.progress(&g, f64::from(i) / 10.0).await);
    }
    published.push(app.complete(&g).await);
    let got = stream.take(published.len()).await;
    let ids: Vec<String> = got.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, published, "every event once, in order");
}

/// On one Redis the same code runs (Redis 7 accepts the sharded commands there):
/// with the legacy channel off, events reach a stream on another replica through
/// the generation's channel alone; with it on, each still comes once.
#[tokio::test]
async fn on_one_redis_events_cross_replicas_on_the_generation_channel_once() {
    for legacy in ["false", "true"] {
        let url = authstream_testkit::shared_redis().url();
        let prefix = unique_prefix();
        let keys = Arc::new(KeySet::ephemeral().unwrap());
        let env = [("STREAM_LEGACY_FANOUT", legacy)];
        let a = spawn_app_on(
            authstream_testkit::redis_store_sharing(&url, &prefix),
            keys.clone(),
            &env,
        )
        .await;
        let b = spawn_app_on(
            authstream_testkit::redis_store_sharing(&url, &prefix),
            keys.clone(),
            &env,
        )
        .await;
        let g = a.create_generation("alice").await;
        let token = b.token("alice", "s1", &g).await;
        let mut stream = b.sse(&g, &token).await;
        assert_eq!(
            stream.take(1).await[0].data.event,
            StreamEventKind::Connected
        );
        let mut published = Vec::new();
        for i in 0..4 {
            published.push(a.progress(&g, f64::from(i) / 10.0).await);
        }
        published.push(a.complete(&g).await);
        let got = stream.take(published.len()).await;
        let ids: Vec<String> = got.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, published, "legacy fan-out {legacy}");
    }
}
