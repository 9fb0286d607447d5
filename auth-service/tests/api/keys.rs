//! Signing keys from `JWT_SIGNING_KEYS_DIR`: OpenSSL-made PEM files, rotated by name.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

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

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn active(app: &TestApp, access: &str) -> StatusCode {
    app.validate(access).await.status()
}

#[tokio::test]
async fn a_new_key_file_takes_over_signing_and_old_tokens_still_verify() {
    let store = shared::testing::redis_store();
    let (october, november) = (key_dir(&["2026-10"]), key_dir(&["2026-10", "2026-11"]));
    let before = spawn_app_on(
        store.clone(),
        &[("JWT_SIGNING_KEYS_DIR", october.to_str().unwrap())],
    )
    .await;
    let user = before.signup().await;
    assert_eq!(kid_of(&user.access), "2026-10");

    // The next deployment adds 2026-11.pem: it signs, and 2026-10 still verifies.
    let after = spawn_app_on(
        store,
        &[("JWT_SIGNING_KEYS_DIR", november.to_str().unwrap())],
    )
    .await;
    assert_eq!(active(&after, &user.access).await, StatusCode::OK);
    let renewed = after.login(&user.email).await;
    assert_eq!(kid_of(&renewed.access), "2026-11");
    let jwks: Value = after.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["2026-10", "2026-11"]);
    // A service that only has the old key cannot verify what the new one signed.
    assert_eq!(
        active(&before, &renewed.access).await,
        StatusCode::UNAUTHORIZED
    );
    for dir in [october, november] {
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test]
async fn without_a_key_directory_an_ephemeral_key_signs_with_a_warning() {
    let app = spawn_app().await;
    let user = app.signup().await;
    assert_eq!(active(&app, &user.access).await, StatusCode::OK);
    let logs = shared::testing::logs().contents();
    assert!(
        logs.contains("ephemeral key") && logs.contains("WARN"),
        "the warning is logged"
    );
}
