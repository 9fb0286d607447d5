//! The store on a real Redis Cluster: three masters on loopback, a password on every
//! node, formed once for this test; every case of every store suite runs on it, as
//! it runs on one Redis and in memory.

use shared::testing::{RedisCluster, cluster_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_suite_passes_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0);
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
