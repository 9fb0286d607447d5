//! Rate limits: per user by tier, per client address, failed logins per email, the
//! IETF headers, exemptions, and the bounded password queue.

use std::time::{Duration, Instant};

use authstream_client::answer;
use authstream_proto::Tier;
use authstream_proto::auth::TokenPair;
use authstream_testkit::auth::{
    ADMIN_CLIENT, AuthApp, BACKEND_CLIENT, PASSWORD, credentials, spawn_auth_on, spawn_auth_with,
    token_body, unique_email,
};
use authstream_testkit::header_text as header;
use authstream_testkit::{RedisServer, assert_problem};
use futures_util::StreamExt as _;
use reqwest::{Method, Response, StatusCode};

/// The user id of the holder of `access`, read from `GET /auth/me`: one request of
/// the user's budget.
async fn user_id(app: &AuthApp, access: &str) -> String {
    app.me(access).await.unwrap().user_id
}

/// `GET /auth/me`, whatever it answers.
async fn me(app: &AuthApp, access: &str) -> Response {
    app.me(access).send().await.unwrap()
}

/// Spends `quota` requests of a user's budget on `GET /auth/me`, checking that each
/// passes and the `RateLimit` header counts down; then the refusal.
async fn exhaust(app: &AuthApp, access: &str, policy: &str, quota: u32, window: u64) -> Response {
    for left in (0..quota).rev() {
        let res = me(app, access).await;
        assert_eq!(res.status(), StatusCode::OK, "{left} left");
        assert_eq!(
            header(&res, "ratelimit-policy"),
            format!("\"{policy}\";q={quota};w={window}")
        );
        let state = header(&res, "ratelimit");
        assert!(
            state.starts_with(&format!("\"{policy}\";r={left};t=")),
            "{state}"
        );
    }
    me(app, access).await
}

fn retry_after(res: &Response) -> u64 {
    header(res, "retry-after").parse().unwrap()
}

#[tokio::test]
async fn a_free_user_gets_exactly_the_quota_then_429_with_retry_after_to_the_second() {
    // Counts the process's `free` decisions, which every test's Bearer requests move:
    // alone under `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_auth_with(&[("RATE_LIMIT_FREE", "5/60s")]).await;
    let limited = "authstream_rate_limit_decisions_total{policy=\"free\",decision=\"limited\"}";
    let allowed = "authstream_rate_limit_decisions_total{policy=\"free\",decision=\"allowed\"}";
    // What the tests before this one in the process counted.
    let (limited_before, allowed_before) = (app.metric(limited).await, app.metric(allowed).await);
    let access = app.signup().await.access;
    let started = Instant::now();
    let refused = exhaust(&app, &access, "free", 5, 60).await;
    let elapsed = started.elapsed().as_secs_f64();
    // One request is worth 12 s; the burst began `elapsed` ago.
    let wait = retry_after(&refused);
    let earliest = (12.0 - elapsed).ceil() as u64;
    assert!((earliest..=12).contains(&wait), "Retry-After {wait}");
    assert_eq!(header(&refused, "ratelimit-policy"), "\"free\";q=5;w=60");
    assert_eq!(
        header(&refused, "ratelimit"),
        format!("\"free\";r=0;t={wait}")
    );
    let problem = assert_problem(refused, 429, "rate_limited").await;
    assert_eq!(problem.title, "Too many requests");

    // One budget for every Bearer route.
    let res = app
        .new_generation(&access, "g-limited")
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "rate_limited").await;
    let sessions = app.bearer(&access).sessions().send().await;
    assert_problem(sessions.unwrap(), 429, "rate_limited").await;

    assert_eq!(app.metric(limited).await - limited_before, 3.0);
    assert_eq!(app.metric(allowed).await - allowed_before, 5.0);
}

#[tokio::test]
async fn free_and_paid_budgets_recover_after_the_window() {
    let app = spawn_auth_with(&[("RATE_LIMIT_FREE", "5/3s"), ("RATE_LIMIT_PAID", "10/3s")]).await;
    let free = app.signup().await.access;
    let first = app.signup().await;
    let paid_id = user_id(&app, &first.access).await;
    app.set_tier(&paid_id, Tier::Paid).await;
    let paid = app.login(&first.email).await.access;

    for round in 0..2 {
        if round == 1 {
            // A whole window later, the whole budget is back.
            tokio::time::sleep(Duration::from_millis(3100)).await;
        }
        let refused = exhaust(&app, &free, "free", 5, 3).await;
        assert_eq!(retry_after(&refused), 1);
        assert_problem(refused, 429, "rate_limited").await;
        let refused = exhaust(&app, &paid, "paid", 10, 3).await;
        assert_eq!(retry_after(&refused), 1);
        assert_eq!(header(&refused, "ratelimit"), "\"paid\";r=0;t=1");
        assert_problem(refused, 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn a_tier_change_takes_effect_with_the_next_token() {
    let app =
        spawn_auth_with(&[("RATE_LIMIT_FREE", "2/600s"), ("RATE_LIMIT_PAID", "4/600s")]).await;
    let user = app.signup().await;
    let access = user.access;
    let id = user_id(&app, &access).await;
    let last = me(&app, &access).await;
    assert_eq!(last.status(), StatusCode::OK);
    assert!(header(&last, "ratelimit").starts_with("\"free\";r=0;"));
    assert_problem(me(&app, &access).await, 429, "rate_limited").await;

    app.set_tier(&id, Tier::Paid).await;
    // The old token still says free.
    let old = me(&app, &access).await;
    assert_eq!(header(&old, "ratelimit-policy"), "\"free\";q=2;w=600");
    assert_problem(old, 429, "rate_limited").await;

    let pair = app.refresh(&user.refresh).await.unwrap();
    let res = me(&app, &pair.access_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-policy"), "\"paid\";q=4;w=600");
    assert_eq!(header(&res, "ratelimit"), "\"paid\";r=3;t=150");
}

/// `n` concurrent `POST /auth/refresh` with a junk token from `address` (through the
/// trusted proxy), at most 64 at a time; the statuses.
async fn refresh_burst(app: &AuthApp, address: &str, n: usize) -> Vec<u16> {
    futures_util::stream::iter(0..n)
        .map(|_| async { refresh_from(app, address, "junk").await.status().as_u16() })
        .buffer_unordered(64)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_address_gets_only_its_quota_while_another_address_is_served() {
    // Counts the process's `anon` refusals, which other tests' floods move: alone under
    // `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_ANON", "10/600s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let other = async {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let register = register_from(&app, "198.51.100.7").await;
            statuses.push(register.status().as_u16());
        }
        statuses
    };
    let metric = "authstream_rate_limit_decisions_total{policy=\"anon\",decision=\"limited\"}";
    // What the tests before this one in the process counted.
    let limited_before = app.metric(metric).await;
    let (burst, other) = tokio::join!(refresh_burst(&app, "203.0.113.9", 1000), other);
    let passed = burst.iter().filter(|s| **s == 401).count();
    let limited = burst.iter().filter(|s| **s == 429).count();
    assert_eq!((passed, limited), (10, 990), "{burst:?}");
    assert_eq!(other, [201, 201, 201]);
    assert_eq!(app.metric(metric).await - limited_before, 990.0);
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    // Not trusted: every spoofed address shares the peer's one budget.
    let app = spawn_auth_with(&[("RATE_LIMIT_ANON", "2/600s")]).await;
    for (address, status) in [
        ("203.0.113.1", 401),
        ("203.0.113.2", 401),
        ("203.0.113.3", 429),
    ] {
        assert_eq!(refresh_burst(&app, address, 1).await, [status], "{address}");
    }

    // Trusted: the right-most untrusted hop of every header line is the client.
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_ANON", "1/600s"),
        ("TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8"),
    ])
    .await;
    let two_lines = app
        .refresh("junk")
        .header("x-forwarded-for", "203.0.113.77")
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.88, 10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(two_lines.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_burst(&app, "203.0.113.88", 1).await,
        [429],
        "the same client"
    );
    assert_eq!(
        refresh_burst(&app, "203.0.113.77", 1).await,
        [401],
        "another client"
    );
    assert_eq!(
        refresh_burst(&app, "6.6.6.6", 1).await,
        [401],
        "a spoofed hop counts for nothing"
    );
}

async fn login_from(app: &AuthApp, email: &str, password: &str, address: &str) -> Response {
    app.login_as(email, password)
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

/// `POST /auth/register` of a new email from `address` (through the trusted proxy).
async fn register_from(app: &AuthApp, address: &str) -> Response {
    app.auth
        .register(&credentials(&unique_email(), PASSWORD))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_attackers_failed_logins_stop_that_address_before_any_hashing_and_the_owner_gets_in_from_another()
 {
    // Counts the process's password verifications, which every test's logins move:
    // alone under `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_LOGIN", "3/3s"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "100/300s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = unique_email();
    app.register(&email).await;
    // Successful logins cost nothing.
    for _ in 0..4 {
        let ok = login_from(&app, &email, PASSWORD, "198.51.100.1").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(
            header(&ok, "ratelimit").contains("\"login\";r=3;t=0, \"login_account\";r=100;t=0"),
            "{}",
            header(&ok, "ratelimit")
        );
    }
    for _ in 0..3 {
        let res = login_from(&app, &email, "wrong password", "203.0.113.1").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let verifications = app.metric("authstream_password_verifications_total").await;
    let refused = login_from(&app, &email, "wrong password", "203.0.113.1").await;
    assert!(retry_after(&refused) >= 1);
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"anon\";q=100000;w=60, \"login\";q=3;w=3, \"login_account\";q=100;w=300"
    );
    assert_problem(refused, 429, "rate_limited").await;
    // The right password from that address is refused too, and nothing was hashed.
    let right = login_from(&app, &email, PASSWORD, "203.0.113.1").await;
    assert_problem(right, 429, "rate_limited").await;
    assert_eq!(
        app.metric("authstream_password_verifications_total").await,
        verifications
    );
    // The owner, from another address, is not locked out; nor is another account.
    for (who, address) in [(&email, "198.51.100.1"), (&email, "203.0.113.2")] {
        let res = login_from(&app, who, PASSWORD, address).await;
        assert_eq!(res.status(), StatusCode::OK, "{address}");
    }
    let other = app.signup().await.email;
    let res = login_from(&app, &other, PASSWORD, "203.0.113.1").await;
    assert_eq!(res.status(), StatusCode::OK);
    // IPv6 addresses are counted per /64: the next host of the block is no way round.
    for i in 1..=3 {
        let res = login_from(
            &app,
            &email,
            "wrong password",
            &format!("2001:db8:1:2::{i}"),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_from(&app, &email, PASSWORD, "2001:db8:1:2::99").await;
    assert_problem(res, 429, "rate_limited").await;
    let res = login_from(&app, &email, PASSWORD, "2001:db8:1:3::1").await;
    assert_eq!(res.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let res = login_from(&app, &email, PASSWORD, "203.0.113.1").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_the_account_cap_spent_a_device_that_signed_in_before_gets_in_and_an_admin_clears_the_cap()
 {
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_LOGIN", "2/60s"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "3/60s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = unique_email();
    let user_id = app.register(&email).await.user_id;
    // The owner's device signs in once: its token in the body and as a cookie.
    let first = login_from(&app, &email, PASSWORD, "198.51.100.1").await;
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("as_device="))
        .expect("a device cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth/login", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair: TokenPair = answer::json(first).await.unwrap();
    let device = pair.device_token.expect("a device token");
    assert!(
        cookie.starts_with(&format!("as_device={device};")),
        "{cookie}"
    );

    // Guesses from many addresses spend the account-wide cap.
    for i in 1..=3 {
        let res = login_from(&app, &email, "wrong password", &format!("203.0.113.{i}")).await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_from(&app, &email, "wrong password", "203.0.113.9").await;
    assert_problem(res, 429, "rate_limited").await;
    let res = login_from(&app, &email, PASSWORD, "198.51.100.2").await;
    assert_problem(res, 429, "rate_limited").await;

    // The device that signed in before gets in, by header or by cookie, and its
    // answer names its own budget.
    let by_header = app
        .login_as(&email, PASSWORD)
        .header("x-forwarded-for", "198.51.100.2")
        .header("x-device-token", &device)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::OK);
    assert!(header(&by_header, "ratelimit-policy").contains("\"login_device\";q=2;w=60"));
    let by_cookie = app
        .login_as(&email, PASSWORD)
        .header("x-forwarded-for", "198.51.100.3")
        .header("cookie", format!("as_device={device}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    // A device token of another account, or a forged one, counts for nothing.
    let other = app.signup().await.email;
    let res = login_from(&app, &other, PASSWORD, "198.51.100.4").await;
    assert_eq!(res.status(), StatusCode::OK);
    let others: TokenPair = answer::json(res).await.unwrap();
    let others_device = others.device_token.expect("a device token");
    for token in [others_device.as_str(), "v1.x.y.1.zz"] {
        let res = app
            .login_as(&email, PASSWORD)
            .header("x-forwarded-for", "198.51.100.2")
            .header("x-device-token", token)
            .send()
            .await
            .unwrap();
        assert_problem(res, 429, "rate_limited").await;
    }

    // An administrator clears the account's budgets: a login without a device gets in.
    let admin = app.bearer(&app.service_token(ADMIN_CLIENT).await);
    let backend = app.bearer(&app.service_token(BACKEND_CLIENT).await);
    let res = backend.clear_login_failures(&user_id).send().await.unwrap();
    assert_problem(res, 403, "insufficient_scope").await;
    admin.clear_login_failures(&user_id).await.unwrap();
    let res = login_from(&app, &email, PASSWORD, "198.51.100.2").await;
    assert_eq!(res.status(), StatusCode::OK);
    let nobody = admin.clear_login_failures("nobody").send().await.unwrap();
    assert_problem(nobody, 404, "not_found").await;
}

async fn service_token_from(app: &AuthApp, id: &str, secret: &str, address: &str) -> Response {
    app.auth
        .service_token(id, secret)
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn guessing_a_service_secret_is_stopped_per_address_while_the_real_client_elsewhere_is_not() {
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_LOGIN", "3/60s"),
        ("RATE_LIMIT_ANON", "100/60s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let backend = BACKEND_CLIENT.id;
    for _ in 0..3 {
        let res = service_token_from(&app, backend, "wrong-secret-0123456789", "203.0.113.7").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    // The guesser's address is stopped, whatever it sends: a right secret included,
    // so a guess cannot be told right from wrong.
    for secret in ["wrong-secret-0123456789", BACKEND_CLIENT.secret] {
        let res = service_token_from(&app, backend, secret, "203.0.113.7").await;
        assert!(retry_after(&res) >= 1);
        assert!(header(&res, "ratelimit-policy").contains("\"login\";q=3;w=60"));
        assert_problem(res, 429, "rate_limited").await;
    }
    // The failures spent the address's anonymous budget as well.
    let res = register_from(&app, "203.0.113.7").await;
    assert!(
        header(&res, "ratelimit").contains("\"anon\";r=96;"),
        "{}",
        header(&res, "ratelimit")
    );
    // The real client, from its own address, renews freely: a success spends nothing.
    for _ in 0..10 {
        let res = service_token_from(&app, backend, BACKEND_CLIENT.secret, "198.51.100.7").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Made-up client ids share one failure budget per address.
    for i in 0..4 {
        let id = format!("made-up-{i}");
        let res = service_token_from(&app, &id, "whatever-0123456789", "203.0.113.8").await;
        let expected = if i < 3 { 401 } else { 429 };
        assert_eq!(res.status().as_u16(), expected, "attempt {i}");
    }
}

#[tokio::test]
async fn validate_jwks_health_metrics_preflights_and_service_clients_are_not_limited() {
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_FREE", "1/600s"),
        ("RATE_LIMIT_ANON", "1/600s"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example"),
    ])
    .await;
    // The one anonymous request of this address.
    app.register(&unique_email()).await;
    let backend = app.service_token(BACKEND_CLIENT).await;
    let service = app.bearer(&backend);
    for _ in 0..5 {
        let res = [
            app.auth
                .validate_token(&token_body(&backend), None)
                .into_request(),
            service
                .validate(Some(authstream_proto::TokenType::Service))
                .into_request(),
            app.auth.jwks().into_request(),
            app.auth.healthz().into_request(),
            app.auth.readyz().into_request(),
            app.auth.metrics().into_request(),
            app.auth
                .service_token(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
                .into_request(),
            service
                .create_generation(&Default::default())
                .into_request(),
            app.auth
                .request(Method::OPTIONS, "/auth/login")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST"),
        ]
        .map(reqwest::RequestBuilder::send);
        for res in futures_util::future::join_all(res).await {
            let res = res.unwrap();
            assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{}", res.url());
            assert!(!res.headers().contains_key("ratelimit"), "{}", res.url());
        }
    }
    // The anonymous budget of this address is spent, though.
    let res = app.auth.register(&credentials(&unique_email(), PASSWORD));
    assert_problem(res.send().await.unwrap(), 429, "rate_limited").await;
}

#[tokio::test]
async fn a_429_carries_cors_headers_a_browser_can_read() {
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_FREE", "1/600s"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example"),
    ])
    .await;
    let access = app.signup().await.access;
    let me = || {
        app.me(&access)
            .header("origin", "https://app.example")
            .send()
    };
    assert_eq!(me().await.unwrap().status(), StatusCode::OK);
    let refused = me().await.unwrap();
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        "https://app.example"
    );
    let exposed = header(&refused, "access-control-expose-headers").to_lowercase();
    for name in ["retry-after", "ratelimit", "ratelimit-policy"] {
        assert!(exposed.split(',').any(|h| h.trim() == name), "{exposed}");
    }
    assert_problem(refused, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_store_that_stops_answering_is_a_503_not_a_pass_and_limits_come_back() {
    let redis = RedisServer::start();
    let app = spawn_auth_on(
        authstream_testkit::redis_store_at(&redis.url()),
        &[("REDIS_TIMEOUT_MS", "300"), ("RATE_LIMIT_ANON", "3/600s")],
    )
    .await;
    let revoke = || app.revoke("junk").send();
    // A junk token needs no store to be revoked: only the limiter asks it.
    assert_eq!(revoke().await.unwrap().status(), StatusCode::OK);
    redis.freeze();
    let started = Instant::now();
    let res = revoke().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "store_unavailable").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    redis.thaw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while revoke().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still counting where it left off: the budget of 3 runs out within 3 more.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(revoke().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_waits_at_most_the_queue_bound_and_the_excess_is_told_to_come_back() {
    let queue = Duration::from_millis(500);
    let app = spawn_auth_with(&[
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_QUEUE_TIMEOUT_MS", "500"),
    ])
    .await;
    let email = unique_email();
    app.register(&email).await;
    let started = Instant::now();
    app.login(&email).await;
    let one_hash = started.elapsed();

    let answers: Vec<(u16, String, Duration)> =
        futures_util::future::join_all((0..200).map(|_| async {
            let started = Instant::now();
            let login = app
                .login_as(&email, PASSWORD)
                .header("user-agent", "flood")
                .send();
            let res = tokio::time::timeout(Duration::from_secs(60), login)
                .await
                .expect("no login hangs")
                .unwrap();
            let status = res.status().as_u16();
            let retry = header(&res, "retry-after");
            // A pair (no code), or a problem.
            let code = match status {
                200 => answer::json::<TokenPair>(res).await.map(|_| String::new()),
                _ => answer::problem(res).await.map(|p| p.code.to_string()),
            };
            let code = format!(
                "{}{}",
                code.unwrap(),
                if retry.is_empty() { "" } else { "+retry" }
            );
            (status, code, started.elapsed())
        }))
        .await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let busy = answers
        .iter()
        .filter(|a| a.0 == 503 && a.1 == "overloaded+retry")
        .count();
    assert_eq!(ok + busy, 200, "{answers:?}");
    assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
    // The bound plus one hash, with a wide margin for a loaded machine.
    let bound = queue + one_hash * 2 + Duration::from_secs(3);
    let slowest = answers.iter().map(|a| a.2).max().unwrap();
    assert!(slowest < bound, "slowest {slowest:?}, bound {bound:?}");
}

/// `POST /auth/refresh` from `address` (through the trusted proxy).
async fn refresh_from(app: &AuthApp, address: &str, token: &str) -> Response {
    app.refresh(token)
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

/// The refresh token of a successful refresh.
async fn next_refresh(res: Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    answer::json::<TokenPair>(res).await.unwrap().refresh_token
}

#[tokio::test]
async fn each_session_has_its_own_refresh_budget_and_only_refused_refreshes_cost_the_address() {
    let app = spawn_auth_with(&[
        ("RATE_LIMIT_REFRESH", "10/60s"),
        ("RATE_LIMIT_ANON", "4/600s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    // Register and two logins: three of the test's own address's `anon` budget.
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    let (a, b) = ("203.0.113.50", "203.0.113.51");

    // Ten refreshes of one session in a minute, counted down in the headers; none
    // spends the address's budget.
    let mut token = first.refresh.clone();
    for left in (0..10).rev() {
        let res = refresh_from(&app, a, &token).await;
        assert_eq!(header(&res, "ratelimit-policy"), "\"refresh\";q=10;w=60");
        let state = header(&res, "ratelimit");
        assert!(
            state.starts_with(&format!("\"refresh\";r={left};t=")),
            "{state}"
        );
        token = next_refresh(res).await;
    }
    // The eleventh is refused, with the usual headers, and changes nothing: the same
    // token works once the budget is back.
    let refused = refresh_from(&app, a, &token).await;
    assert_eq!(retry_after(&refused), 6);
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"refresh\";q=10;w=60"
    );
    assert_eq!(header(&refused, "ratelimit"), "\"refresh\";r=0;t=6");
    assert_problem(refused, 429, "rate_limited").await;

    // Another session of the same user, from the same address, is not affected.
    let other = next_refresh(refresh_from(&app, a, &second.refresh).await).await;

    // Refused refreshes (junk, an access token, a reused refresh token) spend the
    // address's `anon` budget afterwards: 401 while it lasts, then 429.
    for junk in [
        "junk",
        first.access.as_str(),
        first.refresh.as_str(),
        "junk",
    ] {
        let res = refresh_from(&app, b, junk).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{junk}");
        assert_eq!(header(&res, "ratelimit-policy"), "\"anon\";q=4;w=600");
    }
    let spent = refresh_from(&app, b, "junk").await;
    assert_eq!(header(&spent, "ratelimit-policy"), "\"anon\";q=4;w=600");
    assert_problem(spent, 429, "rate_limited").await;
    // A valid refresh passes from that address all the same.
    let res = refresh_from(&app, b, &other).await;
    assert_eq!(header(&res, "ratelimit-policy"), "\"refresh\";q=10;w=60");
    next_refresh(res).await;
    // The valid refreshes from the first address spent none of its budget.
    assert_eq!(
        refresh_from(&app, a, "junk").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
