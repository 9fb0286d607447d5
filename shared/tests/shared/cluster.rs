//! The store on a real Redis Cluster: three masters on loopback, a password on every
//! node, formed once for this test; every case of every store suite runs on it, as
//! it runs on one Redis and in memory.

use shared::testing::{RedisCluster, cluster_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_suite_passes_on_a_redis_cluster() {
    // With a replica per master: every confirmed write waits for one.
    let cluster = RedisCluster::start(3, 1);
    let seeds = cluster.seeds();
    let suites = [
        ("store_conformance", crate::store_conformance::cases()),
        ("rate_limit", crate::rate_limit::cases()),
        ("revocation", crate::revocation::cases()),
        ("stream_open", crate::stream_open::cases()),
        ("stream_tokens", crate::stream_tokens::cases()),
    ];
    let mut ran = 0;
    for (suite, cases) in suites {
        for (name, case) in cases {
            eprintln!("cluster: {suite}::{name}");
            case(cluster_store(&seeds)).await;
            ran += 1;
        }
    }
    assert!(ran > 50, "{ran} cases");
    let store = cluster_store(&seeds);
    assert_eq!(store.kind(), "redis-cluster");
}

/// A master is SIGKILLed: operations on its keys fail fast (an error, never a hang)
/// while the cluster elects its replica, operations on other masters' keys go on,
/// and everything works again within seconds of the election, with nothing of the
/// process restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_fails_only_its_keys_fast_and_they_come_back_after_the_election() {
    use std::time::{Duration, Instant};
    let cluster = RedisCluster::start(3, 1);
    let store = cluster_store(&cluster.seeds());
    // Keys on every master.
    let keys: Vec<String> = (0..30)
        .map(|i| format!("{}:{{k{i}}}:v", store.keys().prefix()))
        .collect();
    for key in &keys {
        store.set(key, "1", None).await.unwrap();
    }
    let victim = cluster.master_of(&keys[0]);
    let (doomed, safe): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| cluster.master_of(k) == victim);
    assert!(!safe.is_empty());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|n| n.up));
    cluster.kill(victim);
    // Readiness: degraded, not unready; the body names the node that is down.
    let nodes = store
        .nodes()
        .await
        .expect("ready while one master is replaced");
    let down: Vec<&str> = nodes
        .iter()
        .filter(|n| !n.up)
        .map(|n| n.node.as_str())
        .collect();
    assert_eq!(down, [format!("127.0.0.1:{victim}")], "{nodes:?}");

    // During the election: the victim's keys fail within the timeout; the others'
    // answer.
    let started = Instant::now();
    let during = store.get(doomed[0]).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let _ = during; // an error, or already the promoted replica's answer
    for key in &safe {
        let asked = Instant::now();
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some("1"));
        assert!(asked.elapsed() < Duration::from_secs(2));
    }

    // After the election, the same store (no reconnect by hand) reads and writes the
    // victim's slots on the promoted replica.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let set = store.set(doomed[0], "2", None).await;
        if set.is_ok() && store.get(doomed[0]).await.ok().flatten().as_deref() == Some("2") {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after the election");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(
        cluster.master_of(doomed[0]),
        victim,
        "a replica was promoted"
    );
}

/// A revocation, a consumed stream token and an acknowledged event answer success
/// only once a replica holds them: with the replica of their master stopped they
/// fail (unavailable: the client retries), within the timeout; once it is back,
/// the retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_a_failover_could_lose_fail_until_a_replica_confirms_them() {
    use std::time::{Duration, Instant};
    let cluster = RedisCluster::start(3, 1);
    let store = cluster_store(&cluster.seeds());
    let keep = Duration::from_secs(60);
    // The session markers live in the user's slot; its master's replica stops.
    let marker = store.keys().revoked_session("user-1", "sid-1");
    let master = cluster.master_of(&marker);
    let replicas = cluster.replicas_of(master);
    assert_eq!(
        replicas.len(),
        1,
        "{}",
        cluster
            .cli(master, &["CLUSTER", "NODES"])
            .unwrap_or_default()
    );
    // Confirmed while the replica runs (a loaded machine may need a second try).
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared::revocation::revoke_session(&store, "user-1", "sid-0", keep)
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "never confirmed with the replica up"
        );
    }

    cluster.signal(replicas[0], "-STOP");
    let started = Instant::now();
    let refused = shared::revocation::revoke_session(&store, "user-1", "sid-1", keep).await;
    assert!(
        refused.is_err(),
        "a revocation no replica holds answered success"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    cluster.signal(replicas[0], "-CONT");

    // The retry is confirmed, and the marker is on the replica.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared::revocation::revoke_session(&store, "user-1", "sid-1", keep)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the retry never succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_replica = cluster
        .cli(replicas[0], &["-c", "EXISTS", &marker])
        .unwrap_or_default();
    assert_eq!(on_replica.trim(), "1", "the replica holds the marker");
}
