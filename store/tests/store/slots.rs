//! One slot per script, per multi-key command and per pipeline part, checked on what
//! Redis itself saw (`MONITOR`) while every store suite ran: the keys a script
//! declares, the keys its own commands touch, and the keys of every multi-key command
//! sent all hash to one slot. A new script or pipeline that would fail on a Redis
//! Cluster with CROSSSLOT fails here first, on one Redis.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use authstream_store::slot::key_slot;
use authstream_testkit::{RedisServer, redis_store_at};

/// The quoted arguments of one `MONITOR` line, and whether a script sent it.
fn parse(line: &str) -> Option<(bool, Vec<String>)> {
    let (head, rest) = line.split_once("] ")?;
    let from_script = head.ends_with(" lua");
    let mut args = Vec::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        arg.push(char::from(u8::from_str_radix(&hex, 16).unwrap_or(b'?')));
                    }
                    Some('n') => arg.push('\n'),
                    Some('r') => arg.push('\r'),
                    Some('t') => arg.push('\t'),
                    Some(other) => arg.push(other),
                    None => break,
                },
                '"' => break,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    Some((from_script, args))
}

/// Commands whose every argument is a key.
const ALL_KEYS: &[&str] = &["MGET", "DEL", "UNLINK", "EXISTS", "TOUCH"];
/// Commands with no key (or none that a slot holds).
const KEYLESS: &[&str] = &[
    "TIME", "PING", "PUBLISH", "ROLE", "SCRIPT", "CLIENT", "INFO", "KEYS",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_script_multi_key_command_and_pipeline_part_stays_in_one_slot() {
    let server = RedisServer::start();
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = monitor.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let suites = [
        crate::store_conformance::cases(),
        crate::rate_limit::cases(),
        crate::revocation::cases(),
        crate::stream_open::cases(),
        crate::stream_tokens::cases(),
    ];
    for (name, case) in suites.into_iter().flatten() {
        eprintln!("slots: {name}");
        case(redis_store_at(&server.url())).await;
    }
    // Everything sent has reached the monitor once a last command comes back.
    let store = redis_store_at(&server.url());
    store.set("{end}:marker", "1", None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let lines = reader.join().unwrap();

    let mut checked = (0, 0, 0);
    let mut script_slot: Option<u16> = None;
    let mut problems = BTreeSet::new();
    for line in &lines {
        let Some((from_script, args)) = parse(line) else {
            continue;
        };
        let Some(command) = args.first().map(|c| c.to_ascii_uppercase()) else {
            continue;
        };
        if from_script {
            if KEYLESS.contains(&command.as_str()) {
                continue;
            }
            let (Some(key), Some(slot)) = (args.get(1), script_slot) else {
                continue;
            };
            checked.1 += 1;
            if key_slot(key) != slot {
                problems.insert(format!("a script touched {key} outside its slot: {line}"));
            }
            continue;
        }
        let keys: Vec<&String> = match command.as_str() {
            "EVAL" | "EVALSHA" => {
                let count: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
                args.iter().skip(3).take(count).collect()
            }
            c if ALL_KEYS.contains(&c) => args.iter().skip(1).collect(),
            _ => Vec::new(),
        };
        let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k)).collect();
        if matches!(command.as_str(), "EVAL" | "EVALSHA") {
            checked.0 += 1;
            script_slot = slots.iter().next().copied();
        } else if !keys.is_empty() {
            checked.2 += 1;
        }
        if slots.len() > 1 {
            problems.insert(format!(
                "keys of {} slots in one command: {line}",
                slots.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Scripts, their commands and multi-key commands were all seen.
    assert!(checked.0 > 100 && checked.1 > 100, "{checked:?}");
}
