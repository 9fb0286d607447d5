//! A bad setting stops the real binary before it serves anything.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `http://auth.example.com\@localhost:8081` reads as a loopback URL to a hand-written
/// parser, but the HTTP client would fetch the keys from `auth.example.com` over plain
/// http: start-up refuses it, naming `AUTH_URL`.
#[test]
fn a_lookalike_auth_url_stops_start_up_naming_it() {
    for auth_url in [
        r"http://auth.example.com\@localhost:8081",
        "http://user:password@127.0.0.1:8081",
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stream-service"))
            .env_clear()
            .env("AUTH_URL", auth_url)
            .env("STREAM_BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
                panic!("the stream service started with AUTH_URL={auth_url}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "{auth_url}");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(stderr.contains("AUTH_URL"), "{auth_url}: {stderr}");
        assert!(!stderr.contains("password"), "{stderr}");
    }
}
