use authstream_proto::GenerationStatus::Completed;
use authstream_testkit::stack::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn the_single_process_serves_both_services_on_one_port_in_memory() {
    let stack = spawn_embedded(&[]).await;
    let ready = stack.auth.readyz().await.unwrap();
    assert_eq!(ready.store, "memory");
    let user = stack.signup().await;
    stack.create_generation(&user.access, "one-1").await;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    let mut events = stack.follow(&user.access, "one-1").await;
    let last = event(Completed, 1.0);
    stack.publish(&backend, "one-1", &last).await.unwrap();
    let event = events.next().await.expect("the event");
    assert_eq!(event.data.status, Some(Completed));
    assert!(events.next().await.is_none());
    // Demo mode is on by default here: the page is served.
    let page = stack.auth.request(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_single_process_uses_redis_when_told_and_demo_can_be_turned_off() {
    let url = authstream_testkit::shared_redis().url();
    let stack = spawn_embedded(&[("REDIS_URL", &url), ("DEMO", "false")]).await;
    let ready = stack.auth.readyz().await.unwrap();
    assert_eq!(ready.store, "redis");
    let user = stack.signup().await;
    stack
        .create_generation(
            &user.access,
            &format!("one-{}", uuid::Uuid::new_v4().simple()),
        )
        .await;
    let page = stack.auth.request(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
}

#[test]
fn the_binary_refuses_a_bad_setting_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authstream"))
        .env("AUTHSTREAM_BIND", "127.0.0.1:0")
        .env("STREAM_TOKEN_TTL_SECS", "-5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("STREAM_TOKEN_TTL_SECS"));
}

/// The binary's start-up banner (up to its closing blank line), then the binary is
/// stopped.
fn banner(vars: &[(&str, &str)]) -> String {
    use std::io::{BufRead as _, BufReader};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_authstream"));
    command
        .env_remove("REDIS_URL")
        .env_remove("DEMO")
        .env("AUTHSTREAM_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "off")
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = authstream_testkit::spawn_tied_to_this_process(command).unwrap();
    let stdout = child.stdout.take().unwrap();
    // Blank, the lines, blank: a closed stdout (the binary died) ends it early.
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .enumerate()
        .take_while(|(i, line)| *i == 0 || !line.is_empty())
        .map(|(_, line)| line)
        .collect();
    child.kill().ok();
    child.wait().ok();
    lines.join("\n")
}

#[test]
fn the_banner_says_where_it_runs_that_memory_is_lost_and_how_to_run_the_real_stack() {
    let text = banner(&[]);
    let port = text
        .split_once("listening on http://localhost:")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no address in the banner:\n{text}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{text}");
    assert!(
        text.contains(&format!("demo page:   http://localhost:{port}/")),
        "{text}"
    );
    assert!(text.contains("IN MEMORY"), "{text}");
    assert!(text.contains("lost on exit"), "{text}");
    assert!(text.contains("signing key: ephemeral"), "{text}");
    assert!(text.contains("cargo run -p auth-service"), "{text}");
    assert!(text.contains("cargo run -p stream-service"), "{text}");
    assert!(text.contains("README.md#running-the-real-stack"), "{text}");

    let without_demo = banner(&[("DEMO", "false")]);
    assert!(without_demo.contains("IN MEMORY"), "{without_demo}");
    assert!(!without_demo.contains("demo page"), "{without_demo}");
}
