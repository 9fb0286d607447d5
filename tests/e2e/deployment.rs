//! The deployment files as committed: the compose stack publishes its ports on the
//! loopback interface only, and no committed file carries a service client's secret
//! (the stack generates its own at first start).

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn compose_publishes_every_port_on_loopback_only() {
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let mut published = Vec::new();
    let mut in_ports = false;
    for line in compose.lines() {
        let trimmed = line.trim();
        if trimmed == "ports:" {
            in_ports = true;
            continue;
        }
        match trimmed.strip_prefix("- ") {
            Some(item) if in_ports => published.push(item.trim_matches('"').to_owned()),
            _ if trimmed.starts_with('#') => {}
            _ => in_ports = false,
        }
    }
    assert_eq!(published.len(), 3, "{published:?}");
    for port in &published {
        assert!(
            port.starts_with("127.0.0.1:"),
            "published on every interface: {port}"
        );
    }
    assert!(
        compose.contains("clients generate --file")
            || compose.contains("\"clients\", \"generate\""),
        "the stack generates its service secret"
    );
}

#[test]
fn no_committed_file_carries_a_service_client_secret() {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success());
    let files = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for file in files.split('\0').filter(|f| f.ends_with(".json")) {
        let Ok(text) = std::fs::read_to_string(repo().join(file)) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        checked += 1;
        let clients = value.as_array().into_iter().flatten();
        for client in clients {
            assert!(
                !(client.get("secret").is_some() && client.get("scopes").is_some()),
                "{file} commits a service client with its secret"
            );
        }
    }
    assert!(checked > 0, "no JSON file read");
}
