//! How a revocation reaches validations: at once in the process that revoked, through
//! the revocation log in every other process, from the store while the log cannot be
//! read, and never not at all (503 when nothing can be checked).

use std::time::{Duration, Instant};

use authstream_testkit::assert_problem;
use authstream_testkit::auth::{AuthApp, spawn_auth, spawn_auth_on};
use authstream_testkit::{
    RedisServer, redis_store_at, redis_store_sharing, revocations_fresh, revocations_stale,
    shared_redis,
};

/// Two processes verify each other's tokens with one shared secret.
const SHARED_KEY: &[(&str, &str)] = &[
    ("JWT_ALGORITHM", "HS256"),
    ("JWT_SECRET", "a-secret-both-processes-share-0123456789"),
];

/// The second of two processes on one Redis: the same keys, its own connections and
/// its own view of revocations.
async fn beside(first: &AuthApp, url: &str) -> AuthApp {
    spawn_auth_on(
        redis_store_sharing(url, first.store.keys().prefix()),
        SHARED_KEY,
    )
    .await
}

async fn logout(app: &AuthApp, access: &str) {
    app.bearer(access).logout().await.unwrap();
}

/// The status of `POST /auth/validate` of `token`.
async fn status(app: &AuthApp, token: &str) -> u16 {
    app.validate(token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn validation_asks_the_store_nothing_and_the_revoking_process_refuses_at_once() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    // In the steady state (token verified once, view fresh) a validation makes no
    // round trip. A loaded machine may delay the tail past the freshness bound now and
    // then (the check then asks the store): one clean attempt of five suffices.
    let mut clean = false;
    for _ in 0..5 {
        revocations_fresh(&app.store).await;
        let before = app.store.round_trips();
        for _ in 0..3 {
            assert_eq!(status(&app, &user.access).await, 200);
        }
        if app.store.round_trips() == before {
            clean = true;
            break;
        }
    }
    assert!(clean, "every validation asked the store");
    assert!(
        app.metric("authstream_token_verify_cache_total{result=\"hit\"}")
            .await
            >= 2.0
    );

    app.revoke(&user.access).await.unwrap();
    let res = app.validate(&user.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
}

#[tokio::test]
async fn another_process_learns_a_logout_from_the_revocation_log() {
    let first = spawn_auth_on(authstream_testkit::redis_store(), SHARED_KEY).await;
    let second = beside(&first, &shared_redis().url()).await;
    // Learnt from the log means: refused without the second process asking the store.
    let mut from_the_log = false;
    for _ in 0..5 {
        let user = first.signup().await;
        assert_eq!(status(&second, &user.access).await, 200);
        revocations_fresh(&second.store).await;
        let before = second.store.round_trips();
        logout(&first, &user.access).await;
        // Within 50 ms by design; polled with a wide margin (speed is a benchmark's job).
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let res = second.validate(&user.access).send().await.unwrap();
            if res.status() == 401 {
                assert_problem(res, 401, "token_revoked").await;
                break;
            }
            assert!(Instant::now() < deadline, "still accepted after 2 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if second.store.round_trips() == before {
            from_the_log = true;
            break;
        }
    }
    assert!(from_the_log, "every refusal came from the store");
}

#[tokio::test]
async fn without_the_revocation_log_validation_asks_the_store_and_never_accepts_unchecked() {
    let server = RedisServer::start();
    let first = spawn_auth_on(redis_store_at(&server.url()), SHARED_KEY).await;
    let second = beside(&first, &server.url()).await;
    let revoked = first.signup().await;
    let kept = first.signup().await;
    assert_eq!(status(&second, &revoked.access).await, 200);
    assert_eq!(status(&second, &kept.access).await, 200);

    // The log is taken away from every connection: the second process cannot show
    // its view is fresh, so it asks the store, and stays exact.
    server.acl_default_user("-xrange");
    revocations_stale(&second.store).await;
    logout(&first, &revoked.access).await;
    let res = second.validate(&revoked.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    let before = second.store.round_trips();
    assert_eq!(status(&second, &kept.access).await, 200);
    assert_eq!(second.store.round_trips() - before, 1, "one MGET");

    // With the store gone as well, nothing can be checked: 503, never accepted.
    server.freeze();
    let started = Instant::now();
    let res = second.validate(&kept.access).send().await.unwrap();
    let took = started.elapsed();
    server.thaw();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "store_unavailable").await;
    assert!(took < Duration::from_secs(2), "took {took:?}");

    server.acl_default_user("+@all");
    revocations_fresh(&second.store).await;
    let res = second.validate(&revoked.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    assert_eq!(status(&second, &kept.access).await, 200);
}
