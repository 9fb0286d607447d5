//! What a stream costs the store, counted by Redis itself (`MONITOR`): the commands the
//! two services send, not the ones their scripts run inside Redis.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use crate::helpers::spawn_stack;

/// Mint (auth service), open and read `connected`, close (stream service): at most 5
/// commands, everything included (the rate limits, the statistics markers, the place
/// among the user's streams and its release). Left out: the revocation log's tail and
/// the statistics flush, which run on their own clock whatever the traffic.
#[tokio::test]
async fn a_mint_open_and_close_send_at_most_five_commands() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    stack.create_generation(&user.access, "g-cost").await;
    // Once before counting: the session's end learnt, the scripts loaded, the
    // subscription started, the first place given back.
    drop(stack.stream(&user.access, "g-cost").await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let port = shared::testing::shared_redis().port().to_string();
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &port, "monitor"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("OK"));

    drop(stack.stream(&user.access, "g-cost").await);
    // The place is given back once the stream is dropped; then nothing more comes.
    let prefix = stack.store.keys().prefix().to_owned();
    let streams_key = stack.store.keys().open_streams(&user.user_id);
    let mut sent = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let ours = line.contains(&prefix) && !line.contains(" lua]");
            let background = line.contains("{revocations}") || line.contains("{stats}");
            if ours && !background {
                let released = line.contains("\"ZREM\"") && line.contains(&streams_key);
                sent.push(line);
                if released {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the stream's place was never given back");
    let commands: Vec<&str> = sent
        .iter()
        .filter_map(|line| line.split('"').nth(1))
        .collect();
    println!("{} commands: {commands:?}", sent.len());
    assert!(
        sent.len() <= 5,
        "{} commands: {commands:?}\n{sent:#?}",
        sent.len()
    );
    assert_eq!(commands.last(), Some(&"ZREM"), "{commands:?}");
}
