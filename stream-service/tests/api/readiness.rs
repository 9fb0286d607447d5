//! `/readyz` of a stream replica, which checks its own subscription to every node
//! with a canary: ready while each node delivers, degraded (200) while a master is
//! replaced, 503 only when a node answers but this replica's subscription to it has
//! delivered nothing for 10 s; on one Redis and on real Redis Clusters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authstream_proto::ops::{Readiness, ReadyStatus};
use authstream_proto::{ErrorCode, Problem};
use authstream_security::keys::KeySet;
use authstream_testkit::stream::{StreamApp, delivering, spawn_app, spawn_app_on};
use authstream_testkit::{self, RedisCluster, cluster_store_sharing, unique_prefix};

/// `/readyz`: the readiness of a 200, or the problem of a 503 (anything else fails).
async fn readyz(app: &StreamApp) -> Result<Readiness, Problem> {
    match app.client.readyz().await {
        Ok(readiness) => Ok(readiness),
        Err(e) if e.status() == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE) => {
            Err(e.problem().cloned().expect("a problem document"))
        }
        Err(e) => panic!("{e}"),
    }
}

/// Polls `/readyz` until every one of `nodes` is up and delivering and the status is
/// `ready`; panics after `within`. Every answer on the way must be a 200.
async fn until_all_deliver(app: &StreamApp, nodes: &[String], within: Duration) -> Readiness {
    authstream_testkit::stream::until_all_deliver(&app.client, nodes, within, true).await
}

/// The nodes a readiness lists.
fn listed(readiness: &Readiness) -> Vec<&str> {
    readiness
        .nodes
        .iter()
        .flatten()
        .map(|n| n.node.as_str())
        .collect()
}

fn gauge(node: &str) -> String {
    format!("authstream_stream_subscription_delivering{{node=\"{node}\"}}")
}

/// Waits for the delivery gauge of `node` to read `value` (it is set once a second,
/// with each round of canaries).
async fn assert_gauge(app: &StreamApp, node: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = app.metric(&gauge(node)).await;
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{node}: {now}, not {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ports of the masters that serve slots and are not failed, as a live node sees
/// them (`RedisCluster::masters` also lists a replica that gossip has not yet
/// described as one).
fn serving_masters(cluster: &RedisCluster) -> Vec<u16> {
    let any = cluster.nodes.iter().find(|n| n.is_running()).unwrap().port;
    let nodes = cluster.cli(any, &["CLUSTER", "NODES"]).unwrap();
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 8 && fields[2].contains("master") && !fields[2].contains("fail"))
                .then(|| fields[1].split(['@', ':']).nth(1)?.parse().ok())
                .flatten()
        })
        .collect()
}

fn addresses(ports: &[u16]) -> Vec<String> {
    let mut nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    nodes.sort();
    nodes
}

async fn cluster_app(cluster: &RedisCluster) -> StreamApp {
    let store = cluster_store_sharing(&cluster.seeds(), &unique_prefix()).with_legacy_fanout(false);
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    spawn_app_on(store, keys, &[("STREAM_LEGACY_FANOUT", "false")]).await
}

#[tokio::test]
async fn on_one_redis_the_one_node_delivers_and_the_replica_is_ready() {
    let app = spawn_app().await;
    let node = format!("127.0.0.1:{}", authstream_testkit::shared_redis().port());
    let body = until_all_deliver(&app, std::slice::from_ref(&node), Duration::from_secs(5)).await;
    assert_eq!(body.store, "redis");
    assert_eq!(listed(&body).len(), 1, "{body:?}");
    assert_gauge(&app, &node, 1.0).await;
    // The canary is not a generation subscription.
    assert!(
        app.store
            .generation_subscriptions()
            .values()
            .all(|n| *n == 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_every_master_delivers_and_the_replica_is_ready() {
    let cluster = RedisCluster::start(3, 0);
    let app = cluster_app(&cluster).await;
    let masters = addresses(&serving_masters(&cluster));
    let body = until_all_deliver(&app, &masters, Duration::from_secs(10)).await;
    assert_eq!(body.store, "redis-cluster");
    assert_eq!(listed(&body).len(), 3, "{body:?}");
    for node in &masters {
        assert_gauge(&app, node, 1.0).await;
    }
    // One canary per master, each on a channel of its own slot range, and none is
    // counted as a generation subscription.
    assert!(
        app.store
            .generation_subscriptions()
            .values()
            .all(|n| *n == 0)
    );
    for port in serving_masters(&cluster) {
        let channels = cluster
            .cli(port, &["PUBSUB", "SHARDCHANNELS", "*{canary:*"])
            .unwrap_or_default();
        assert_eq!(channels.lines().count(), 1, "on {port}: {channels}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_replaced_makes_the_replica_degraded_never_unready_then_ready_again() {
    let cluster = RedisCluster::start(3, 1);
    let app = cluster_app(&cluster).await;
    until_all_deliver(
        &app,
        &addresses(&serving_masters(&cluster)),
        Duration::from_secs(10),
    )
    .await;

    let victim = serving_masters(&cluster)[0];
    let promoted = cluster.replicas_of(victim);
    cluster.kill(victim);
    let killed = format!("127.0.0.1:{victim}");
    let started = Instant::now();
    let mut degraded = false;
    loop {
        let body = readyz(&app).await.unwrap_or_else(|problem| {
            panic!("a failover is not a reason to leave the load balancer: {problem:?}")
        });
        if body.status == ReadyStatus::Degraded {
            degraded = true;
        }
        assert!(body.nodes.is_some(), "{body:?}");
        if body.status == ReadyStatus::Ready && !listed(&body).contains(&killed.as_str()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready again: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(degraded, "the election was never reported");
    cluster.wait_healthy();
    let masters = addresses(&serving_masters(&cluster));
    assert!(
        promoted
            .iter()
            .any(|p| masters.contains(&format!("127.0.0.1:{p}"))),
        "the replica took over: {masters:?}"
    );
    // The new master's canary delivers too, and nothing was ever a 503.
    until_all_deliver(&app, &masters, Duration::from_secs(15)).await;
    for node in &masters {
        assert_gauge(&app, node, 1.0).await;
    }
    assert_gauge(&app, &killed, 0.0).await;
}

/// Only the subscription path fails: an ACL on one master refuses the canary's
/// `SSUBSCRIBE` (channel patterns allow the generations' channels, and a selector
/// allows `SPUBLISH` anywhere, so the node still answers the publishes), and the
/// subscription connection is cut so that it must subscribe again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_answers_but_stops_delivering_to_this_replica_makes_it_unready() {
    let cluster = RedisCluster::start(3, 0);
    let app = cluster_app(&cluster).await;
    let masters = addresses(&serving_masters(&cluster));
    until_all_deliver(&app, &masters, Duration::from_secs(10)).await;

    let port = serving_masters(&cluster)[1];
    let node = format!("127.0.0.1:{port}");
    let prefix = app.store.keys().prefix().to_owned();
    let ok = |args: &[&str]| {
        let out = cluster.cli(port, args).unwrap_or_default();
        assert_eq!(out.trim(), "OK", "{args:?}");
    };
    ok(&[
        "ACL",
        "SETUSER",
        "default",
        "resetchannels",
        &format!("&{prefix}:{{g:*"),
        &format!("&{prefix}:events"),
        &format!("&{prefix}:stream-notices"),
        "(+spublish &*)",
    ]);
    // Redis does not drop shard subscriptions an ACL change forbids: cut them.
    cluster
        .cli(port, &["CLIENT", "KILL", "TYPE", "pubsub"])
        .unwrap();
    let cut = Instant::now();

    let problem = loop {
        let body = match readyz(&app).await {
            Ok(body) => body,
            Err(problem) => break problem,
        };
        assert_eq!(body.status, ReadyStatus::Ready, "the node is up: {body:?}");
        assert!(
            cut.elapsed() < Duration::from_secs(20),
            "never unready: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let after = cut.elapsed();
    assert!(
        after >= Duration::from_secs(8),
        "unready only after the 10 s window (less the last canary's age): {after:?}"
    );
    assert_eq!(problem.code, ErrorCode::StoreUnavailable, "{problem:?}");
    let detail = problem.detail.as_str();
    assert!(detail.contains(&node), "names the node: {detail}");
    for other in masters.iter().filter(|n| **n != node) {
        assert!(
            !detail.contains(other.as_str()),
            "names only that node: {detail}"
        );
        assert_gauge(&app, other, 1.0).await;
    }
    assert_gauge(&app, &node, 0.0).await;
    assert!(
        cluster.cli(port, &["PING"]).unwrap().contains("PONG"),
        "the node answers"
    );

    // The fault ends: the subscription is made again and delivers.
    ok(&[
        "ACL",
        "SETUSER",
        "default",
        "resetchannels",
        "&*",
        "clearselectors",
    ]);
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(10);
    loop {
        let answer = readyz(&app).await;
        if let Ok(body) = &answer
            && body.status == ReadyStatus::Ready
            && delivering(body).len() == 3
        {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "unready {after:?} after the cut, ready {:?} after the fault ended",
        healed.elapsed()
    );
    assert_gauge(&app, &node, 1.0).await;
}
