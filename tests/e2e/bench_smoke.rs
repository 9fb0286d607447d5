//! The benchmark tool, each scenario for a fraction of a second against this build:
//! the report has its shape and no errors. Figures are never asserted.

use std::time::Duration;

use bench::options::{Options, Scenario};
use serde_json::Value;

/// One run of the tool at a time: each scenario has a window of a few hundred
/// milliseconds in which every connection must finish an operation (a step still in
/// its warm-up at the window's end counts nothing, and the scenario reports nothing
/// done). The two runs start together at the head of the binary, one of them forming
/// a six-node Redis Cluster, on a 2-core machine: under `cargo test` (threads of one
/// process) this lock keeps them apart, under nextest the `bench-smoke` test group.
static BENCH_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_the_binary_and_reports_without_errors() {
    let _turn = BENCH_RUNS.lock().await;
    let mut options = Options::new(&Scenario::ALL);
    options.binary = Some(env!("CARGO_BIN_EXE_authstream").into());
    options.connections = 2;
    options.duration = Duration::from_millis(300);
    options.warmup = Duration::from_millis(50);
    options.users = 2;
    options.streams = Some(6);
    options.generations = Some(3);
    options.rate = 30.0;

    let reports = bench::run(&options).await.expect("the run");

    let names: Vec<&str> = reports.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "healthz",
            "validate",
            "verify",
            "validate-hs256",
            "refresh",
            "mint-open",
            "publish",
            "revoke",
            "fanout",
            "idle",
            "login"
        ]
    );
    for r in &reports {
        if r.scenario == "verify" {
            // The verifier fails closed when its feed's heartbeats come late, which a
            // machine busy with the whole suite can cause: that, and nothing else.
            assert!(
                r.error_samples
                    .iter()
                    .all(|(kind, _)| kind == "verify store_unavailable"),
                "verify: {:?}",
                r.error_samples
            );
        } else {
            assert_eq!(r.errors, 0, "{}: {:?}", r.scenario, r.error_samples);
        }
        assert!(r.operations > 0, "{}: nothing done", r.scenario);
        assert!(
            r.vs_healthz.is_some(),
            "{}: no ratio to healthz",
            r.scenario
        );
        let l = r.latency_ms;
        assert!(
            l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max,
            "{}: {l:?}",
            r.scenario
        );
    }

    // The server's pid is known: its CPU time per operation is reported.
    for r in reports.iter().filter(|r| r.scenario != "idle") {
        assert!(
            r.details["server_cpu_us_per_op"].is_number(),
            "{}: {:?}",
            r.scenario,
            r.details
        );
    }

    let by_name = |name: &str| &reports.iter().find(|r| r.scenario == name).unwrap().details;
    let fanout = by_name("fanout");
    assert_eq!(fanout["streams"], 6);
    assert_eq!(fanout["streams_incomplete"], 0);
    assert_eq!(fanout["duplicates"], 0);
    assert_eq!(fanout["gaps"], 0);
    assert_eq!(fanout["deliveries_in_order"], fanout["deliveries_expected"]);
    // Every stream of a generation got each of its events: two streams per generation.
    assert_eq!(
        fanout["deliveries_expected"].as_u64().unwrap(),
        2 * fanout["events_published"].as_u64().unwrap()
    );
    let idle = by_name("idle");
    assert_eq!(idle["streams"], 6);
    assert!(idle["rss_after_kib"].as_u64().unwrap() > 0);
    assert!(idle["rss_per_stream_kib"].is_number());
    assert!(idle["rss_per_stream_kib_all"].is_number());
    assert!(idle["rss_halfway_kib"].as_u64().unwrap() > 0);
    assert!(idle["idle_cpu_percent"].is_number());

    // The JSON a script reads, and the table a person reads.
    let json: Value = serde_json::from_str(&bench::report::json(&reports)).unwrap();
    let first = &json["scenarios"][0];
    for key in [
        "scenario",
        "throughput",
        "errors",
        "operations",
        "latency_ms",
        "vs_healthz",
    ] {
        assert!(!first[key].is_null(), "{key} missing in {first}");
    }
    for key in ["p50", "p90", "p99", "max"] {
        assert!(first["latency_ms"][key].is_number(), "{key}");
    }
    let table = bench::report::table(&reports);
    assert!(table.starts_with("scenario"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("fanout ")).count(),
        1
    );
}

/// The tool on a Redis Cluster it starts (three masters, a replica each): the paths a
/// replica must confirm run without errors, and the Redis CPU adds up every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmed_paths_run_on_a_cluster_the_tool_starts() {
    let _turn = BENCH_RUNS.lock().await;
    let mut options = Options::new(&[Scenario::MintOpen, Scenario::Publish, Scenario::Revoke]);
    options.binary = Some(env!("CARGO_BIN_EXE_authstream").into());
    options.cluster = Some((3, 1));
    options.connections = 2;
    options.duration = Duration::from_millis(300);
    options.warmup = Duration::from_millis(200);
    options.users = 2;

    let reports = bench::run(&options).await.expect("the run");
    let names: Vec<&str> = reports.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(names, ["healthz", "mint-open", "publish", "revoke"]);
    for r in &reports {
        assert_eq!(r.errors, 0, "{}: {:?}", r.scenario, r.error_samples);
        assert!(r.operations > 0, "{}: nothing done", r.scenario);
        assert!(
            r.details["redis_cpu_us_per_op"].is_number(),
            "{}: {:?}",
            r.scenario,
            r.details
        );
    }
}
