//! What the store sees of a request, watched with Redis `MONITOR`: a refused login
//! must not tell an unknown email from a known one by its traffic.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use authstream_testkit::auth::{AuthApp, spawn_auth, unique_email};

const READS: [&str; 7] = [
    "GET", "MGET", "HGET", "HGETALL", "SMEMBERS", "EXISTS", "ZRANGE",
];

/// The reads Redis serves on the keys of one test, as the service asks for them
/// (commands run inside scripts, such as a rate limiter's, are not lookups).
struct Monitor {
    lines: mpsc::Receiver<String>,
    prefix: String,
}

impl Monitor {
    fn start(app: &AuthApp) -> Self {
        let port = authstream_testkit::shared_redis().port();
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(conn);
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim(), "+OK");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            prefix: format!("\"{}:", app.store.keys().prefix()),
        }
    }

    /// The read commands run on this test's keys until `app` reads a marker key.
    async fn reads_until_marker(&self, app: &AuthApp, marker: &str) -> Vec<String> {
        let marker_key = format!("{}:marker:{marker}", app.store.keys().prefix());
        app.store.get(&marker_key).await.unwrap();
        let mut commands = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(5))
                .expect("the marker was never seen");
            if line.contains(&marker_key) {
                return commands;
            }
            if !line.contains(&self.prefix) || line.contains(" lua]") {
                continue;
            }
            // +<time> [<db> <client>] "CMD" "arg" ...
            let command = line
                .split_once("] \"")
                .and_then(|(_, rest)| rest.split('"').next())
                .unwrap_or_default();
            let command = command.to_ascii_uppercase();
            if READS.contains(&command.as_str()) {
                commands.push(command);
            }
        }
    }
}

#[tokio::test]
async fn a_login_for_an_unknown_email_reads_the_store_as_one_for_a_known_email() {
    let app = spawn_auth().await;
    let known = app.signup().await;
    let monitor = Monitor::start(&app);
    // Settle: nothing of the sign-up is still on its way.
    monitor.reads_until_marker(&app, "start").await;

    let attempts = [
        ("known email, wrong password", known.email.clone()),
        ("unknown email", unique_email()),
        ("not an email", "nobody".to_owned()),
    ];
    let mut seen = Vec::new();
    for (i, (what, email)) in attempts.iter().enumerate() {
        let res = app.login_as(email, "wrong password!").send().await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        let commands = monitor.reads_until_marker(&app, &i.to_string()).await;
        assert!(!commands.is_empty(), "{what}: the store was not read");
        seen.push((what, commands));
    }
    for (what, commands) in &seen[1..] {
        assert_eq!(
            commands, &seen[0].1,
            "{what} reads the store differently from a known email"
        );
    }
}
