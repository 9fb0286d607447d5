//! The store on a real Redis Cluster: three masters on loopback, a password on every
//! node, formed once for this test; every case of every store suite runs on it, as
//! it runs on one Redis and in memory.

use authstream_testkit::{RedisCluster, cluster_store};

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
    while authstream_store::revocations::revoke_session(&store, "user-1", "sid-0", keep)
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
    let refused =
        authstream_store::revocations::revoke_session(&store, "user-1", "sid-1", keep).await;
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
    while authstream_store::revocations::revoke_session(&store, "user-1", "sid-1", keep)
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

/// The master holding one revocation log shard is SIGKILLed. While the cluster elects
/// its replica, validations of users whose log lives on another master go on from
/// the local view, without a store round trip; only that shard's users depend on the
/// store (an answer, or 503 while their keys' master is away too); after the election
/// every shard is fresh again. (With Redis's default `cluster-require-full-coverage
/// yes`, every node answers `CLUSTERDOWN` from the moment the master is marked failed
/// until its replica takes over, and every shard goes stale: the README says to turn
/// it off.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_of_one_revocation_log_shard_costs_only_its_own_users() {
    use std::time::{Duration, Instant};

    use authstream_runtime::clock::UnixTime;
    use authstream_store::Keys;
    use authstream_testkit::revocations_fresh;

    let cluster = RedisCluster::start(3, 1);
    cluster.config_set("cluster-require-full-coverage", "no");
    let store = cluster_store(&cluster.seeds());
    let jwt = crate::helpers::Jwt::new(store.clone());
    revocations_fresh(&store).await;
    let keys = store.keys().clone();
    let log_master =
        |user: &str| cluster.master_of(&keys.revocation_log(Keys::revocation_shard(user)));
    let victim = log_master("user-0");
    let (doomed, safe): (Vec<String>, Vec<String>) = (0..40)
        .map(|i| format!("user-{i}"))
        .filter(|user| cluster.master_of(&keys.user(user)) != victim || log_master(user) == victim)
        .partition(|user| log_master(user) == victim);
    assert!(!safe.is_empty() && !doomed.is_empty());
    let now = UnixTime::now();
    let tokens: Vec<String> = safe
        .iter()
        .map(|user| jwt.access(user, "sid", now).0)
        .collect();
    let doomed_token = jwt.access(&doomed[0], "sid", now).0;

    cluster.kill(victim);
    // Until the replica is promoted (and a while after, the tail catching up), every
    // other shard's user validates from the view. (Their own keys live elsewhere too,
    // so a view a loaded machine let go stale for a moment can ask the store.)
    let started = Instant::now();
    let mut during = 0;
    let mut doomed_stale = false;
    let doomed_log = keys.revocation_log(Keys::revocation_shard(&doomed[0]));
    while cluster
        .try_master_of(&doomed_log)
        .is_none_or(|port| port == victim)
        || started.elapsed() < Duration::from_secs(1)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no election");
        for (user, token) in safe.iter().zip(&tokens) {
            let before = store.round_trips();
            let asked = Instant::now();
            let fresh = store.revocations_fresh_for(user);
            let checked = jwt
                .validator
                .validate::<authstream_proto::claims::AccessClaims>(token, now)
                .await;
            assert!(
                checked.is_ok(),
                "a user of a healthy shard (fresh: {fresh}) was refused after {:?}: {checked:?}",
                started.elapsed()
            );
            // A loaded machine may let the view age past the bound now and then; a
            // stale view asks the store, which must then answer (those keys' masters
            // are up, or the store's answer is a 503 we would see above).
            if store.round_trips() == before {
                during += 1;
            }
            assert!(asked.elapsed() < Duration::from_secs(2));
        }
        doomed_stale |= !store.revocations_fresh();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(doomed_stale, "the victim's shard never went stale");
    assert!(
        during > tokens.len(),
        "validations from the view during the election: {during}"
    );

    // After the election, every shard is fresh again and the victim's users validate.
    revocations_fresh(&store).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while jwt
        .validator
        .validate::<authstream_proto::claims::AccessClaims>(&doomed_token, now)
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the victim's users never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
