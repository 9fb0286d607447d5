//! `auth-service clients generate|show --file FILE` (usage in `keys_command::USAGE`): a service-clients file
//! (`SERVICE_CLIENTS_FILE`) with a fresh random secret, so that no deployment starts
//! from a secret anyone can read in a repository. Docker Compose runs `generate
//! --if-absent` once into a volume; the operator reads the secret back with `show`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use serde_json::json;

use crate::keys_command::USAGE;

/// The scopes a generated client gets unless told otherwise: what a backend that
/// drives generations needs, and not `users:admin`.
const DEFAULT_SCOPES: &str = "generations:write,events:publish";

/// Runs `clients …` (the arguments after the program name) and returns what to print.
pub fn run(args: &[String]) -> anyhow::Result<String> {
    let (command, rest) = match args {
        [clients, command, rest @ ..] if clients == "clients" => (command.as_str(), rest),
        _ => bail!("unknown command\n{USAGE}"),
    };
    let mut file = None;
    let mut id = "backend".to_owned();
    let mut scopes = DEFAULT_SCOPES.to_owned();
    let mut if_absent = false;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match (command, arg.as_str()) {
            (_, "--file") => file = rest.next().map(PathBuf::from),
            ("generate", "--id") => id = rest.next().cloned().unwrap_or_default(),
            ("generate", "--scopes") => scopes = rest.next().cloned().unwrap_or_default(),
            ("generate", "--if-absent") => if_absent = true,
            (_, other) => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let file = file.with_context(|| format!("--file FILE is required\n{USAGE}"))?;
    match command {
        "generate" => generate(&file, &id, &scopes, if_absent),
        "show" => std::fs::read_to_string(&file)
            .map(|text| text.trim_end().to_owned())
            .with_context(|| format!("cannot read {}", file.display())),
        other => bail!("unknown command clients {other:?}\n{USAGE}"),
    }
}

fn generate(file: &Path, id: &str, scopes: &str, if_absent: bool) -> anyhow::Result<String> {
    if if_absent && file.exists() {
        return Ok(format!("{} exists: nothing generated", file.display()));
    }
    let scopes: Vec<&str> = scopes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("cannot read random bytes"))?;
    let text = serde_json::to_string_pretty(&json!([{
        "id": id,
        "secret": URL_SAFE_NO_PAD.encode(secret),
        "scopes": scopes,
    }]))?;
    // The same checks the service applies at start-up, before anything is written.
    crate::config::parse_service_clients(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the client would not be accepted")?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // `create_new`: an existing file is never overwritten.
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {} (it may exist already)", file.display()))?;
    out.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(format!(
        "wrote {} (client {id}, scopes {}); read its secret with: auth-service clients show --file {}",
        file.display(),
        scopes.join(","),
        file.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn generates_a_fresh_accepted_secret_once() {
        let dir = std::env::temp_dir().join(format!("clients-{}", uuid::Uuid::new_v4()));
        let file = dir.join("service-clients.json");
        let path = file.to_str().unwrap();
        let said = run(&args(&[
            "clients",
            "generate",
            "--file",
            path,
            "--if-absent",
        ]))
        .unwrap();
        assert!(said.starts_with("wrote"), "{said}");
        let first = std::fs::read_to_string(&file).unwrap();
        let clients = crate::config::parse_service_clients(&first).unwrap();
        assert_eq!(clients[0].id, "backend");
        assert_eq!(clients[0].scopes, ["generations:write", "events:publish"]);
        // The secret is never printed by generate, only by show.
        let secret = serde_json::from_str::<serde_json::Value>(&first).unwrap()[0]["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(secret.len(), 43);
        assert!(!said.contains(&secret));
        let mode = std::fs::metadata(&file).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // A second run keeps the first secret; without --if-absent it refuses.
        run(&args(&[
            "clients",
            "generate",
            "--file",
            path,
            "--if-absent",
        ]))
        .unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
        assert!(run(&args(&["clients", "generate", "--file", path])).is_err());
        let shown = run(&args(&["clients", "show", "--file", path])).unwrap();
        assert!(shown.contains(&secret));
        // Another file gets another secret.
        let other = dir.join("other.json");
        run(&args(&[
            "clients",
            "generate",
            "--file",
            other.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(!std::fs::read_to_string(&other).unwrap().contains(&secret));
        let bad = dir.join("bad.json");
        let bad = bad.to_str().unwrap();
        assert!(
            run(&args(&[
                "clients", "generate", "--file", bad, "--scopes", "root"
            ]))
            .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
