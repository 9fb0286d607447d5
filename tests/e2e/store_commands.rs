//! What requests cost the store, counted by Redis itself (`MONITOR`): the commands the
//! two services send, not the ones their scripts run inside Redis (`[0 lua]` lines),
//! background writes included.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use authstream_proto::auth::StreamTokenStats;
use authstream_testkit::stack::{ADMIN_CLIENT, Stack, spawn_stack};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `MONITOR` on the tests' Redis, live once this returns.
async fn monitor() -> (Child, Lines<BufReader<ChildStdout>>) {
    let port = authstream_testkit::shared_redis().port().to_string();
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &port, "monitor"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("OK"));
    (monitor, lines)
}

/// The commands of this stack's services seen until `quiet` passes without one more
/// (the revocation log's tail and the stream replica's readiness canary left out:
/// they run on their own clocks whatever the traffic), by name.
async fn commands_until_quiet(
    stack: &Stack,
    lines: &mut Lines<BufReader<ChildStdout>>,
    quiet: Duration,
) -> Vec<String> {
    let prefix = stack.store.keys().prefix().to_owned();
    let mut sent = Vec::new();
    while let Ok(line) = tokio::time::timeout(quiet, async {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            let ours = line.contains(&prefix) && !line.contains(" lua]");
            if ours && !line.contains("{revocations") && !line.contains("{canary:") {
                return line;
            }
        }
    })
    .await
    {
        sent.push(line);
    }
    sent
}

/// A generation subscription's command (`SSUBSCRIBE`, `SUNSUBSCRIBE`): per generation
/// and stream replica, not per request, so reported and not counted in the budgets.
fn is_subscription(line: &str) -> bool {
    let name = line.split('"').nth(1).unwrap_or_default();
    name.eq_ignore_ascii_case("ssubscribe") || name.eq_ignore_ascii_case("sunsubscribe")
}

fn by_name(sent: &[String]) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for line in sent {
        let name = line.split('"').nth(1).unwrap_or_default().to_owned();
        *names.entry(name).or_default() += 1;
    }
    names
}

/// Mint (auth service), open and read `connected`, close (stream service), 30 times
/// over three users, one stream after another as browsers do: at most 5 commands a
/// pair, EVERYTHING included: the rate limits, the places among the users' streams
/// and their release (with the user's next open, or in the background), and both
/// services' statistics flushes (one script per service per second, however many
/// tokens; no write per token).
#[tokio::test]
async fn mint_open_and_close_send_at_most_five_commands_a_pair_background_writes_included() {
    const PAIRS: usize = 30;
    let stack = spawn_stack().await;
    let mut users = Vec::new();
    for i in 0..3 {
        let user = stack.signup().await;
        let generation = format!("g-cost-{i}");
        stack.create_generation(&user.access, &generation).await;
        // Once before counting: the session's end learnt, the scripts loaded, the
        // subscription started.
        drop(stack.follow(&user.access, &generation).await);
        users.push((user, generation));
    }
    // The warm-up's statistics and places are written.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (_monitor, mut lines) = monitor().await;
    for i in 0..PAIRS {
        let (user, generation) = &users[i % users.len()];
        drop(stack.follow(&user.access, generation).await);
    }
    // Everything the pairs leave to the background is sent within two seconds.
    let sent = commands_until_quiet(&stack, &mut lines, Duration::from_millis(2500)).await;
    let sent: Vec<String> = sent.into_iter().filter(|l| !is_subscription(l)).collect();
    let names = by_name(&sent);
    println!("{} commands for {PAIRS} pairs: {names:?}", sent.len());
    assert!(
        sent.len() <= 5 * PAIRS,
        "{} commands for {PAIRS} pairs: {names:?}\n{sent:#?}",
        sent.len()
    );
    // The statistics were flushed, and counted above: not a command per token.
    let flushes = sent.iter().filter(|l| l.contains("{stats}")).count();
    assert!((1..=8).contains(&flushes), "{flushes} flushes: {sent:#?}");
    // The last streams' places were given back.
    for (user, _) in &users {
        let places = stack.store.keys().open_streams(&user.user_id);
        let left = stack
            .store
            .expiring_count(&places, authstream_runtime::UnixTime::now().millis())
            .await
            .unwrap();
        assert_eq!(left, 0, "{places}");
    }
    let stats = stats(&stack).await;
    assert_eq!(stats.active, 0, "{stats:?}");
    assert_eq!(stats.consumed_total, PAIRS as u64 + 3, "{stats:?}");
}

/// The generations' subscriptions, counted by Redis: a stream replica sends one
/// `SSUBSCRIBE` when a generation's first stream opens there, none for the streams
/// that follow while it stays subscribed (a reopen within the linger included), and
/// one `SUNSUBSCRIBE` the linger (5 s) after its last stream closed.
#[tokio::test]
async fn a_generation_costs_a_stream_replica_one_subscribe_and_one_unsubscribe() {
    const GENERATIONS: usize = 4;
    const STREAMS: usize = 3;
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let mut generations = Vec::new();
    for i in 0..GENERATIONS {
        let generation = format!("g-sub-{i}");
        stack.create_generation(&user.access, &generation).await;
        generations.push(generation);
    }
    // The process's own subscription started before counting.
    drop(stack.follow(&user.access, "g-sub-0").await);
    tokio::time::sleep(Duration::from_millis(6000)).await;

    let (_monitor, mut lines) = monitor().await;
    for generation in &generations {
        for _ in 0..STREAMS {
            drop(stack.follow(&user.access, generation).await);
        }
    }
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < deadline {
        let more = commands_until_quiet(&stack, &mut lines, Duration::from_millis(500)).await;
        sent.extend(more.into_iter().filter(|l| is_subscription(l)));
        if sent.len() >= 2 * GENERATIONS {
            break;
        }
    }
    let names = by_name(&sent);
    println!(
        "{} subscription commands for {GENERATIONS} generations x {STREAMS} streams: {names:?}",
        sent.len()
    );
    let subscribe = names
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("ssubscribe"))
        .map(|(_, c)| *c)
        .sum::<usize>();
    let unsubscribe = names
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sunsubscribe"))
        .map(|(_, c)| *c)
        .sum::<usize>();
    assert_eq!(
        (subscribe, unsubscribe),
        (GENERATIONS, GENERATIONS),
        "{sent:#?}"
    );
}

async fn stats(stack: &Stack) -> StreamTokenStats {
    let admin = stack.service_token(ADMIN_CLIENT).await;
    stack.bearer(&admin).stream_token_stats().await.unwrap()
}

/// A refresh is ONE command: the rotation script spends the session's refresh budget
/// itself; the address's budget is not asked.
#[tokio::test]
async fn a_refresh_sends_one_command() {
    const REFRESHES: usize = 10;
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let mut token = user.refresh.clone();
    let refresh = |token: String| {
        let stack = &stack;
        async move { stack.refresh(&token).await.unwrap().refresh_token }
    };
    // Once before counting: the script loaded.
    token = refresh(token).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_monitor, mut lines) = monitor().await;
    for _ in 0..REFRESHES {
        token = refresh(token).await;
    }
    let sent = commands_until_quiet(&stack, &mut lines, Duration::from_millis(1500)).await;
    let names = by_name(&sent);
    println!(
        "{} commands for {REFRESHES} refreshes: {names:?}",
        sent.len()
    );
    assert_eq!(sent.len(), REFRESHES, "{names:?}\n{sent:#?}");
    assert_eq!(names.get("EVALSHA"), Some(&REFRESHES), "{names:?}");
}
