use std::time::{Duration, Instant};

use authstream_proto::auth::{Jwks, TokenPair};
use authstream_proto::claims::AccessClaims;
use authstream_proto::ops::ReadyStatus;
use authstream_security::jwt::{KeySource, Validator};
use authstream_security::keys::KeySet;
use authstream_testkit::auth::*;
use authstream_testkit::{RedisServer, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_auth().await;
    assert_eq!(app.auth.healthz().await.unwrap().status, "ok");
    let ready = app.auth.readyz().await.unwrap();
    assert_eq!(ready.status, ReadyStatus::Ready);
    assert_eq!(ready.store, "redis");
    let user = app.signup().await;
    app.me(&user.access).await.unwrap();
    app.me("bad").send().await.unwrap();
    let metrics = app.auth.metrics().await.unwrap();
    assert!(
        metrics.contains("authstream_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"route="/auth/me""#));
    assert!(metrics.contains("authstream_http_request_duration_seconds"));
    assert!(metrics.contains("authstream_tokens_validated_total"));
    assert!(
        metrics.contains(r#"authstream_tokens_issued_total{type="refresh"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"authstream_tokens_rejected_total{type="access",reason="malformed"}"#),
        "{metrics}"
    );
}

/// The series of `/metrics`: one line per sample, without the comments.
async fn metric_series(app: &AuthApp) -> std::collections::BTreeSet<String> {
    let text = app.auth.metrics().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let app = spawn_auth().await;
    // Each label value a request can bring is seen once first.
    let warm = |m: &str| reqwest::Method::from_bytes(m.as_bytes()).unwrap();
    for method in ["FROBNICATE", "GET"] {
        app.auth
            .request(warm(method), "/nowhere-0")
            .send()
            .await
            .unwrap();
    }
    metric_series(&app).await;
    let before = metric_series(&app).await;
    for i in 0..150 {
        let method = warm(&format!("MADEUP{i}"));
        let res = app
            .auth
            .request(method, &format!("/nowhere-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        app.auth
            .request(Method::GET, &format!("/nowhere/{i}?x={i}"))
            .send()
            .await
            .unwrap();
    }
    let after = metric_series(&app).await;
    // Under `cargo test` the other tests of this process add series of their own to
    // the one recorder meanwhile: the series this test's requests could add are those
    // carrying what it made up (a path, a method) or the label every made-up method
    // falls under.
    let ours = |series: &&String| {
        let series = series.to_ascii_lowercase();
        ["nowhere", "madeup", r#"method="other""#]
            .iter()
            .any(|made_up| series.contains(made_up))
    };
    let added: Vec<_> = after.difference(&before).filter(ours).collect();
    assert!(added.is_empty(), "new series: {added:?}");
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"method="other",route="unmatched",status="404""#)),
        "{after:?}"
    );
}

#[tokio::test]
async fn the_jwks_verifies_issued_tokens() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let res = app.auth.jwks().send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let text = res.text().await.unwrap();
    let jwks: Jwks = serde_json::from_str(&text).unwrap();
    let key = &jwks.keys[0];
    assert_eq!(key.kty, "OKP");
    assert_eq!(key.crv, "Ed25519");
    // As it is on the wire: a private part would be a field no `Jwk` reads.
    let raw: Value = serde_json::from_str(&text).unwrap();
    let fields = raw.pointer("/keys/0").and_then(Value::as_object).unwrap();
    assert!(!fields.contains_key("d"), "no private part");
    let keys = std::sync::Arc::new(KeySet::from_jwks(&raw).unwrap());
    let settings =
        authstream_web::settings::CommonSettings::from_env(&std::collections::HashMap::new())
            .unwrap();
    let validator = Validator::new(
        keys.algorithm(),
        KeySource::Local(keys),
        settings.jwt,
        app.store.clone(),
    );
    let claims: AccessClaims = validator
        .validate(&user.access, authstream_runtime::UnixTime::now())
        .await
        .unwrap();
    assert_eq!(claims.user_id(), user.user_id);
}

#[tokio::test]
async fn errors_are_problem_json_for_unknown_routes_methods_and_big_bodies() {
    let app = spawn_auth().await;
    let res = app.auth.request(Method::GET, "/nowhere").send().await;
    assert_problem(res.unwrap(), 404, "not_found").await;
    let res = app.auth.request(Method::PUT, "/auth/login").send().await;
    assert_problem(res.unwrap(), 405, "method_not_allowed").await;
    let huge = credentials("a@b.co", &"x".repeat(70_000));
    let res = app.auth.register(&huge).send().await;
    assert_problem(res.unwrap(), 413, "payload_too_large").await;
}

#[tokio::test]
async fn hs256_is_used_when_configured() {
    let secret = "0123456789abcdef0123456789abcdef";
    let app = spawn_auth_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", secret)]).await;
    let user = app.signup().await;
    let header = jsonwebtoken::decode_header(&user.access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    app.me(&user.access).await.unwrap();
    let jwks = app.auth.jwks().await.unwrap();
    assert!(jwks.keys.is_empty(), "a shared secret is never published");
    // An EdDSA token of another app is refused by the HS256 app.
    let other = spawn_auth().await.signup().await;
    let res = app.me(&other.access).send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
}

#[tokio::test]
async fn redis_down_is_a_fast_503_and_the_service_recovers() {
    let redis = RedisServer::start();
    let app = spawn_auth_on(authstream_testkit::redis_store_at(&redis.url()), &[]).await;
    let user = app.signup().await;
    redis.stop();

    let started = Instant::now();
    let res = app.auth.readyz().send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "store_unavailable").await;
    // Nothing fails open: a token that cannot be checked is not accepted.
    let res = app.me(&user.access).send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    let res = app.login_as(&user.email, PASSWORD).send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered quickly: {:?}",
        started.elapsed()
    );
    let health = app.auth.healthz().send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process stays up");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if app.auth.readyz().send().await.unwrap().status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty, so register again: the service works.
    app.register(&user.email).await;
}

#[tokio::test]
async fn a_redis_that_stops_answering_is_a_503_within_the_timeout() {
    let redis = RedisServer::start();
    let app = spawn_auth_on(
        authstream_testkit::redis_store_at(&redis.url()),
        &[("REDIS_TIMEOUT_MS", "300")],
    )
    .await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-frozen").await;
    redis.freeze();
    let started = Instant::now();
    let res = app.me(&user.access).send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    let res = app.auth.readyz().send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    // A mint's pipelined scripts wait no longer than one timeout either.
    let res = app.mint(&user.access, "gen-frozen").send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "store_unavailable").await;
    // Bounded by the store timeout, not by TCP: a generous margin over 3 × 300 ms.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the timeout: {:?}",
        started.elapsed()
    );
    redis.thaw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.me(&user.access).send().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn no_secret_ever_reaches_the_logs() {
    let logs = authstream_testkit::logs();
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-logs").await;
    let sse = app.stream_token(&user.access, "gen-logs").await.sse_token;
    let next: TokenPair = app.refresh(&user.refresh).await.unwrap();
    let get = |path: String| app.auth.request(Method::GET, &path).send();
    get(format!("/auth/validate?token={}", user.access))
        .await
        .unwrap();
    get(format!("/generations/generate/gen-logs/stream?token={sse}"))
        .await
        .unwrap();
    let service = app.service_token(BACKEND_CLIENT).await;
    let wrong = app.login_as(&user.email, "a wrong password").send().await;
    assert_eq!(wrong.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Refusals and replays too: a tampered token, a retired refresh token presented
    // again, and a body that is not JSON around a password.
    let tampered = format!("{}x", user.access);
    app.me(&tampered).send().await.unwrap();
    app.refresh(&user.refresh).send().await.unwrap();
    app.auth
        .request(Method::POST, "/auth/register")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"email":"x@example.com","password":"{PASSWORD}""#
        ))
        .send()
        .await
        .unwrap();

    let text = logs.contents();
    assert!(
        text.contains("/auth/login") && text.contains("request_id"),
        "the requests are logged"
    );
    assert!(
        text.contains("token=[REDACTED]"),
        "query secrets are redacted"
    );
    let secrets = [
        PASSWORD,
        "a wrong password",
        user.access.as_str(),
        user.refresh.as_str(),
        sse.as_str(),
        next.access_token.as_str(),
        next.refresh_token.as_str(),
        service.as_str(),
        BACKEND_CLIENT.secret,
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret was logged");
    }
    // Nor any part of a token: a payload or a signature alone is a leak too.
    for jwt in [&user.access, &user.refresh, &service] {
        for part in jwt.split('.').skip(1) {
            assert!(!text.contains(part), "part of a JWT was logged");
        }
    }
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("STREAM_TOKEN_TTL_SECS", "0"),
        ("STREAM_TOKEN_TTL_SECS", "-1"),
        ("JWT_ALGORITHM", "none"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
            .env(var, value)
            .env("AUTH_BIND", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{stderr}");
    }
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = spawn_auth_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    let preflight = |origin: &'static str| {
        app.auth
            .request(Method::OPTIONS, "/auth/me")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
}
