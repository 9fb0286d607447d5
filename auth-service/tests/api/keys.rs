//! Signing keys from `JWT_SIGNING_KEYS_DIR`: OpenSSL-made PEM files, rotated by name.

use std::path::{Path, PathBuf};

use authstream_testkit::assert_problem;
use authstream_testkit::auth::{AuthApp, spawn_auth, spawn_auth_on};

/// A fresh directory holding the named fixture keys (made with
/// `openssl genpkey -algorithm ed25519`, PKCS#8 v1 as operators will make them).
fn key_dir(kids: &[&str]) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let dir = std::env::temp_dir().join(format!("authstream-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for kid in kids {
        let file = format!("{kid}.pem");
        std::fs::copy(fixtures.join(&file), dir.join(&file)).unwrap();
    }
    dir
}

/// The auth service with `JWT_SIGNING_KEYS_DIR=dir`, on `store`.
async fn spawn_on_keys(store: authstream_store::Store, dir: &Path) -> AuthApp {
    spawn_auth_on(store, &[("JWT_SIGNING_KEYS_DIR", dir.to_str().unwrap())]).await
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn active(app: &AuthApp, access: &str) -> u16 {
    app.validate(access).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_new_key_file_takes_over_signing_and_old_tokens_still_verify() {
    let store = authstream_testkit::redis_store();
    let (october, november) = (key_dir(&["2026-10"]), key_dir(&["2026-10", "2026-11"]));
    let before = spawn_on_keys(store.clone(), &october).await;
    let user = before.signup().await;
    assert_eq!(kid_of(&user.access), "2026-10");

    // The next deployment adds 2026-11.pem: it signs, and 2026-10 still verifies.
    let after = spawn_on_keys(store, &november).await;
    assert_eq!(active(&after, &user.access).await, 200);
    let renewed = after.login(&user.email).await;
    assert_eq!(kid_of(&renewed.access), "2026-11");
    let jwks = after.auth.jwks().await.unwrap();
    let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["2026-10", "2026-11"]);
    // A service that only has the old key cannot verify what the new one signed.
    assert_eq!(active(&before, &renewed.access).await, 401);
    for dir in [october, november] {
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test]
async fn without_a_key_directory_an_ephemeral_key_signs_with_a_warning() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    assert_eq!(active(&app, &user.access).await, 200);
    let logs = authstream_testkit::logs().contents();
    assert!(
        logs.contains("ephemeral key") && logs.contains("WARN"),
        "the warning is logged"
    );
}

fn keys_command(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn keys_generate_writes_a_private_key_that_signs_next_and_list_shows_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = key_dir(&["2026-10", "2026-11"]);
    let out = keys_command(&["keys", "generate", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut made: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with("2026-1"))
        .collect();
    assert_eq!(made.len(), 1);
    let file = made.pop().unwrap();
    let kid = file.strip_suffix(".pem").unwrap().to_owned();
    // YYYYMMDDTHHMMSSZ, UTC.
    assert_eq!(kid.len(), 16, "{kid}");
    assert!(kid.starts_with("20") && kid.as_bytes()[8] == b'T' && kid.ends_with('Z'));
    let mode = std::fs::metadata(dir.join(&file))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(dir.join(&file)).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(String::from_utf8(out.stdout).unwrap().contains(&kid));

    let out = keys_command(&["keys", "list", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "2026-10\tverifies".to_owned(),
            "2026-11\tverifies".to_owned(),
            format!("{kid}\tsigns, verifies")
        ]
    );

    // The service started on the directory signs with the new key.
    let app = spawn_on_keys(authstream_testkit::redis_store(), &dir).await;
    let user = app.signup().await;
    assert_eq!(kid_of(&user.access), kid);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn keys_generate_never_overwrites_and_if_empty_leaves_a_key_directory_alone() {
    use auth_service::keys_command::run;
    let dir = key_dir(&[]);
    let arg = |a: &str| a.to_owned();
    let generate = [
        arg("keys"),
        arg("generate"),
        arg("--dir"),
        arg(dir.to_str().unwrap()),
    ];
    let now = authstream_runtime::UnixTime::from_secs(1_796_014_933);
    run(&generate, now).unwrap();
    let first = std::fs::read(dir.join("20261130T050213Z.pem")).unwrap();
    let err = run(&generate, now).unwrap_err();
    assert!(
        format!("{err:#}").contains("20261130T050213Z.pem"),
        "{err:#}"
    );
    assert_eq!(
        std::fs::read(dir.join("20261130T050213Z.pem")).unwrap(),
        first
    );

    let mut if_empty = generate.to_vec();
    if_empty.push(arg("--if-empty"));
    let later = authstream_runtime::UnixTime::from_secs(1_796_014_999);
    assert!(run(&if_empty, later).unwrap().contains("none generated"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let empty = key_dir(&[]);
    let mut if_empty_elsewhere = if_empty.clone();
    if_empty_elsewhere[3] = arg(empty.join("new").to_str().unwrap());
    run(&if_empty_elsewhere, later).unwrap();
    assert!(empty.join("new/20261130T050319Z.pem").exists());

    let err = run(&[arg("keys"), arg("rotate")], now).unwrap_err();
    assert!(format!("{err}").contains("usage"));
    for d in [dir, empty] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[tokio::test]
async fn tokens_signed_by_a_retired_key_stop_verifying() {
    let store = authstream_testkit::redis_store();
    let (october, november) = (key_dir(&["2026-10"]), key_dir(&["2026-11"]));
    let before = spawn_on_keys(store.clone(), &october).await;
    let user = before.signup().await;
    assert_eq!(kid_of(&user.access), "2026-10");
    // 2026-10.pem removed: what it signed is refused as an unknown key.
    let after = spawn_on_keys(store, &november).await;
    let res = after.validate(&user.access).send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    for dir in [october, november] {
        std::fs::remove_dir_all(dir).ok();
    }
}
