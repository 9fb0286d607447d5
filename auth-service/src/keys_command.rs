//! `auth-service keys generate|list --dir DIR`: the signing keys of a key directory
//! (`JWT_SIGNING_KEYS_DIR`), without reading source code or calling openssl.
//!
//! A generated key is named by its UTC creation time to the second in ISO 8601 basic
//! form (`20261130T050213Z.pem`), so it sorts after every earlier generated key and
//! after hand-made `YYYY-MM.pem` names: it signs from the next start of the service.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use authstream_runtime::UnixTime;
use authstream_security::keys::KeySet;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::Ed25519KeyPair;

pub const USAGE: &str = "usage:
  auth-service                                  serve (configured by the environment)
  auth-service keys generate --dir DIR [--if-empty]
                                                write a new Ed25519 signing key (PKCS#8 PEM, mode 0600)
                                                named by its UTC creation time; it signs next.
                                                --if-empty: only when DIR holds no key yet
  auth-service keys list --dir DIR              each key id, and which one signs
  auth-service clients generate --file FILE [--id ID] [--scopes A,B] [--if-absent]
                                                write a service-clients file (mode 0600) with one
                                                client and a random 256-bit secret; default id
                                                backend, scopes generations:write,events:publish
                                                --if-absent: only when FILE does not exist yet
  auth-service clients show --file FILE         print the file (its secrets) to standard output
  auth-service healthcheck                      exit 0 when the server on AUTH_BIND is ready";

/// Runs `keys …` (the arguments after the program name) and returns what to print.
pub fn run(args: &[String], now: UnixTime) -> anyhow::Result<String> {
    let (command, rest) = match args {
        [help] if matches!(help.as_str(), "-h" | "--help" | "help") => return Ok(USAGE.to_owned()),
        [keys, command, rest @ ..] if keys == "keys" => (command.as_str(), rest),
        _ => bail!("unknown command\n{USAGE}"),
    };
    let mut dir = None;
    let mut if_empty = false;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--dir" => dir = rest.next().map(PathBuf::from),
            "--if-empty" if command == "generate" => if_empty = true,
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let dir = dir.with_context(|| format!("--dir DIR is required\n{USAGE}"))?;
    match command {
        "generate" => generate(&dir, if_empty, now),
        "list" => list(&dir),
        other => bail!("unknown command keys {other:?}\n{USAGE}"),
    }
}

fn has_keys(dir: &Path) -> anyhow::Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "pem")))
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (UTC, proleptic Gregorian calendar).
fn basic_utc(now: UnixTime) -> String {
    let secs = now.secs();
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn generate(dir: &Path, if_empty: bool, now: UnixTime) -> anyhow::Result<String> {
    if if_empty && has_keys(dir)? {
        return Ok(format!(
            "{} already holds keys: none generated",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kid = basic_utc(now);
    let path = dir.join(format!("{kid}.pem"));
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
    let encoded = STANDARD.encode(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    // `create_new`: an existing file (a key made in the same second) is never overwritten.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {} (it may exist already)", path.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let keys =
        KeySet::from_dir(dir).with_context(|| format!("cannot read back {}", dir.display()))?;
    let signs = keys.signing_key().map(|(kid, _)| kid.to_owned());
    let mut out = format!("wrote {} (kid {kid})", path.display());
    if signs.as_deref() == Some(kid.as_str()) {
        out.push_str("\nit signs new tokens from the next start of the auth service");
    } else {
        out.push_str(&format!(
            "\nwarning: {} sorts after it and still signs",
            signs.unwrap_or_default()
        ));
    }
    Ok(out)
}

fn list(dir: &Path) -> anyhow::Result<String> {
    let keys = KeySet::from_dir(dir)
        .with_context(|| format!("cannot read keys from {}", dir.display()))?;
    let signing = keys.signing_key().map(|(kid, _)| kid.to_owned());
    Ok(keys
        .kids()
        .map(|kid| {
            if Some(kid) == signing.as_deref() {
                format!("{kid}\tsigns, verifies")
            } else {
                format!("{kid}\tverifies")
            }
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::basic_utc;
    use authstream_runtime::UnixTime;

    #[test]
    fn names_are_utc_to_the_second_and_sort_by_time() {
        assert_eq!(basic_utc(UnixTime::from_secs(0)), "19700101T000000Z");
        assert_eq!(
            basic_utc(UnixTime::from_secs(1_796_014_933)),
            "20261130T050213Z"
        );
        assert_eq!(
            basic_utc(UnixTime::from_secs(951_782_400)),
            "20000229T000000Z"
        );
        let earlier = basic_utc(UnixTime::from_secs(1_796_014_933));
        let later = basic_utc(UnixTime::from_secs(1_796_014_934));
        assert!(earlier < later);
        // After a hand-made name of the same month.
        assert!("2026-11.pem" < format!("{earlier}.pem").as_str());
    }
}
