//! Parsing a JWKS document and the fetch's timing rules.

use super::*;

#[test]
fn max_age_is_read_and_no_cache_is_zero() {
    assert_eq!(
        max_age("public, max-age=300"),
        Some(Duration::from_secs(300))
    );
    assert_eq!(max_age("no-store"), Some(Duration::ZERO));
    assert_eq!(max_age("public"), None);
}

const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn jwk(kid: &str) -> Value {
    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": kid, "x": X})
}

#[test]
fn only_ed25519_signing_keys_with_a_kid_are_taken() {
    let doc = serde_json::json!({"keys": [
        jwk("a"),
        {"kty": "OKP", "crv": "Ed25519", "kid": "b", "x": X},
        {"kty": "RSA", "kid": "c", "n": "x", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "use": "enc", "kid": "d", "x": X},
        {"kty": "OKP", "crv": "Ed25519", "alg": "HS256", "kid": "e", "x": X},
        {"kty": "OKP", "crv": "Ed25519", "x": X},
    ]});
    let set = JwkSet::from_document(&doc).unwrap();
    let mut kids: Vec<_> = set.kids().collect();
    kids.sort_unstable();
    assert_eq!(kids, vec!["a", "b"]);
    assert!(JwkSet::from_document(&serde_json::json!({})).is_err());
    let bad_x = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
        "kid": "a", "x": "!"}]});
    assert!(JwkSet::from_document(&bad_x).is_err());
}

#[test]
fn the_jwks_url_is_under_the_auth_url_and_logged_without_secrets() {
    for (auth_url, jwks) in [
        (
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/.well-known/jwks.json",
        ),
        (
            "https://a.example/",
            "https://a.example/.well-known/jwks.json",
        ),
        (
            "https://u:p@a.example/base/?key=secret#f",
            "https://u:p@a.example/base/.well-known/jwks.json?key=secret",
        ),
    ] {
        assert_eq!(jwks_url(auth_url).unwrap().as_str(), jwks, "{auth_url}");
    }
    let url = jwks_url("https://user:pass@a.example/base?key=secret").unwrap();
    assert_eq!(
        redacted_url(&url),
        "https://a.example/base/.well-known/jwks.json"
    );
    // What the HTTP client connects to, not what a hand-written split would see.
    let lookalike = jwks_url(r"http://auth.example.com\@localhost:8081").unwrap();
    assert_eq!(lookalike.host_str(), Some("auth.example.com"));
    for bad in ["auth:8081", "ftp://a.example", "http://", "mailto:a@b.c"] {
        let err = jwks_url(bad).unwrap_err();
        assert!(!err.contains(bad), "{err}");
    }
}

#[tokio::test]
async fn a_key_dropped_from_the_jwks_stops_verifying_at_the_next_refresh() {
    let published = Arc::new(parking_lot::Mutex::new(
        serde_json::json!({"keys": [jwk("a")]}),
    ));
    let served = published.clone();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let doc = served.lock().to_string();
            async move { ([("cache-control", "public, max-age=0")], doc) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = jwks_url(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let min_refresh = Duration::from_millis(100);
    let keys = Arc::new(RemoteJwks::new(
        url,
        reqwest::Client::new(),
        min_refresh,
        JWKS_DEFAULT_REFRESH,
    ));
    keys.refresh().await.unwrap();
    tokio::spawn(RemoteJwks::refresh_forever(Arc::downgrade(&keys)));
    let has = |set: Arc<JwkSet>, kid| set.contains(kid);
    assert!(has(
        keys.keys_with::<std::convert::Infallible>("a")
            .await
            .unwrap(),
        "a"
    ));
    *published.lock() = serde_json::json!({"keys": [jwk("b")]});
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!keys.knows("a"));
    assert!(has(
        keys.keys_with::<std::convert::Infallible>("b")
            .await
            .unwrap(),
        "b"
    ));
}
