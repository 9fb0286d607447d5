use std::collections::HashSet;

use std::time::Duration;

use authstream_client::answer;
use authstream_proto::auth::{StreamTokenAnswer, StreamTokenStats};
use authstream_proto::{ErrorCode, Problem};
use authstream_runtime::UnixTime;
use authstream_store::streams::{self, Refusal, StreamGrant, StreamSecret};
use authstream_testkit::auth::*;
use authstream_testkit::{PROBLEM_JSON, assert_problem, header_text};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn the_owner_gets_a_single_use_token_stored_only_as_a_digest() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-1").await;
    let res = app.mint(&user.access, "gen-1").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: StreamTokenAnswer = answer::json(res).await.unwrap();
    let token = body.sse_token.as_str();
    assert_eq!(token.len(), 43);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(body.expires_in, 60);
    assert_eq!(body.generation_id, "gen-1");
    assert_eq!(
        body.stream_url,
        "https://stream.example/generations/generate/gen-1/stream"
    );

    let secret = StreamSecret::parse(token).unwrap();
    let dump = app.store.debug_dump().await.unwrap();
    assert!(
        dump.iter()
            .all(|(k, v)| !k.contains(token) && !v.contains(token)),
        "no key or value holds the token"
    );
    let stored = dump
        .iter()
        .find(|(k, _)| k == &app.store.keys().stream_token("gen-1", &secret.digest()))
        .unwrap();
    let grant: StreamGrant = serde_json::from_str(&stored.1).unwrap();
    assert_eq!(grant.user_id, user.user_id);
    assert_eq!(grant.session_id, user.session_id);
    assert_eq!(grant.generation_id, "gen-1");
    assert_eq!(grant.client_ip, None, "not bound by default");
    assert_lives_for(&app, "gen-1", &secret, Duration::from_secs(60)).await;
}

/// The token's key expires within `ttl`, and no more than 2 seconds sooner.
async fn assert_lives_for(app: &AuthApp, generation: &str, secret: &StreamSecret, ttl: Duration) {
    let left = app
        .store
        .pttl(&app.store.keys().stream_token(generation, &secret.digest()))
        .await
        .unwrap()
        .expect("the token's key expires");
    assert!(
        left <= ttl && left > ttl.saturating_sub(Duration::from_secs(2)),
        "{left:?}"
    );
}

/// A custom TTL: the answer, the key and the refusal all follow the setting.
#[tokio::test]
async fn a_custom_lifetime_is_announced_kept_and_enforced() {
    let app = spawn_auth_with(&[("STREAM_TOKEN_TTL_SECS", "1")]).await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-ttl").await;
    let body = app.stream_token(&user.access, "gen-ttl").await;
    assert_eq!(body.expires_in, 1);
    let secret = StreamSecret::parse(&body.sse_token).unwrap();
    assert_lives_for(&app, "gen-ttl", &secret, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // What the stream service does with it: refused, and told apart as expired.
    assert_eq!(
        streams::consume(&app.store, "gen-ttl", &secret)
            .await
            .unwrap(),
        Err(Refusal::Expired)
    );
}

/// Empty, 1000-character and Unicode ids: no such generation, never a 500.
#[tokio::test]
async fn odd_generation_ids_are_not_found() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let long = "a".repeat(1000);
    // Ids no `GenerationId` holds: sent as they are.
    for id in [
        "",
        long.as_str(),
        "%C3%BC%E2%9C%93",
        "gen%20x",
        "%F0%9F%92%A5",
    ] {
        let res = app
            .bearer(&user.access)
            .request(
                Method::POST,
                &format!("/generations/generate/{id}/stream-token"),
            )
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
    assert_eq!(
        streams::stats(&app.store, UnixTime::now())
            .await
            .unwrap()
            .issued_total,
        0
    );
}

/// "Invalidate" and "invalidate a nonexistent token": there is no route to
/// invalidate one stream token; revoking its session does (the stream service refuses
/// it, see stream-service `tokens.rs`). Revoking a session or user that does not exist
/// is a 404 and changes nothing.
#[tokio::test]
async fn revoking_an_unknown_session_or_user_is_harmless() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-6").await;
    let body = app.stream_token(&user.access, "gen-6").await;
    let secret = StreamSecret::parse(&body.sse_token).unwrap();
    // Rate-limit budgets come and go with every request, and statistics are flushed in
    // the background; everything else must stay.
    let keys = || async {
        let mut keys = app.store.debug_keys().await.unwrap();
        keys.retain(|k| !k.contains(":rl:") && !k.contains(":{stats}:"));
        keys
    };
    let before = keys().await;

    let res = app
        .bearer(&user.access)
        .delete_session("no-such-session")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    let admin = app.service_token(ADMIN_CLIENT).await;
    let res = app
        .bearer(&admin)
        .revoke_user("no-such-user")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;

    // No key was written, and the user, the session and the token work as before.
    assert_eq!(before, keys().await);
    app.me(&user.access).await.unwrap();
    let grant = streams::consume(&app.store, "gen-6", &secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.session_id, user.session_id);
}

#[tokio::test]
async fn minting_needs_a_signed_in_owner_of_an_existing_generation() {
    let app = spawn_auth().await;
    let owner = app.signup().await;
    let other = app.signup().await;
    let admin = app.admin().await;
    let gen_2 = app.create_generation(&owner.access, "gen-2").await;
    let res = app.auth.stream_token(&gen_2.generation_id).send().await;
    assert_problem(res.unwrap(), 401, "missing_token").await;
    let res = app.mint(&owner.access, "missing").send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = app.mint(&other.access, "gen-2").send().await.unwrap();
    assert_problem(res, 403, "forbidden").await;
    app.stream_token(&admin.access, "gen-2").await;
    let service = app.service_token(BACKEND_CLIENT).await;
    let res = app.mint(&service, "gen-2").send().await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;
}

#[tokio::test]
async fn concurrent_requests_get_distinct_tokens_and_stats_count_them() {
    // Long enough to read the statistics on a loaded machine (a token stops counting
    // when the second it expires in begins), short enough to see them expire.
    let app = spawn_auth_with(&[("STREAM_TOKEN_TTL_SECS", "3")]).await;
    let admin = app.admin().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-3").await;
    let mints = (0..10).map(|_| app.mint(&user.access, "gen-3").answer());
    let results = futures_util::future::join_all(mints).await;
    let mut tokens = HashSet::new();
    for minted in results {
        tokens.insert(minted.unwrap().sse_token);
    }
    assert_eq!(tokens.len(), 10);

    let res = app.bearer(&admin.access).stream_token_stats().send().await;
    let text = res.unwrap().text().await.unwrap();
    let stats: StreamTokenStats = serde_json::from_str(&text).unwrap();
    let expected = StreamTokenStats {
        issued_total: 10,
        active: 10,
        consumed_total: 0,
        rejected_total: 0,
    };
    assert_eq!(stats, expected);
    // As it is on the wire: the four counts and nothing else.
    let raw: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(raw.len(), 4, "counts only, no user data: {text}");

    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let stats = app
        .bearer(&admin.access)
        .stream_token_stats()
        .await
        .unwrap();
    assert_eq!(stats.active, 0, "expired tokens are not active");
    let plain = app.bearer(&user.access).stream_token_stats().send().await;
    assert_problem(plain.unwrap(), 403, "forbidden").await;
}

#[tokio::test]
async fn tokens_can_be_bound_to_the_client_address() {
    let app = spawn_auth_with(&[("STREAM_TOKEN_BIND_IP", "true")]).await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-4").await;
    let body = app.stream_token(&user.access, "gen-4").await;
    let secret = StreamSecret::parse(&body.sse_token).unwrap();
    let raw = app
        .store
        .get(&app.store.keys().stream_token("gen-4", &secret.digest()))
        .await
        .unwrap()
        .unwrap();
    let grant: StreamGrant = serde_json::from_str(&raw).unwrap();
    assert_eq!(grant.client_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn a_revoked_session_cannot_mint() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-5").await;
    app.bearer(&user.access).logout().await.unwrap();
    let res = app.mint(&user.access, "gen-5").send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
}

/// A mint is ONE store round trip once this process knows the session's end (the
/// user's rate limit and session read and the generation's ownership check and
/// `SET NX`, pipelined); the first mint of a session reads the session first.
#[tokio::test]
async fn a_mint_costs_one_round_trip_once_the_session_is_known() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-rt").await;
    let mut costs = Vec::new();
    for _ in 0..4 {
        authstream_testkit::revocations_fresh(&app.store).await;
        let before = app.store.round_trips();
        let res = app.mint(&user.access, "gen-rt").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        costs.push(app.store.round_trips() - before);
    }
    // A revocation view gone stale between two checks costs one more (validation).
    assert!((2..=3).contains(&costs[0]), "first mint: {costs:?}");
    assert_eq!(costs[1..].iter().min(), Some(&1), "{costs:?}");
    assert!(costs[1..].iter().all(|&c| c <= 2), "{costs:?}");
}

/// A mint spends one request of the user's budget, once, in the same round trip as the
/// mint itself; a refused one hands out nothing and is not counted as issued.
#[tokio::test]
async fn a_mint_spends_the_users_budget_once_and_a_refused_one_hands_out_nothing() {
    let app = spawn_auth_with(&[("RATE_LIMIT_FREE", "5/60s")]).await;
    let user = app.signup().await;
    app.create_generation(&user.access, "gen-rl").await;
    let remaining = |res: &reqwest::Response| {
        let state = header_text(res, "ratelimit");
        state
            .strip_prefix("\"free\";r=")
            .and_then(|rest| rest.split(';').next())
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{state}"))
    };
    let mut left = Vec::new();
    loop {
        let res = app.mint(&user.access, "gen-rl").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        left.push(remaining(&res));
        if left.last() == Some(&0) {
            break;
        }
    }
    // One request each, the first mint of the session (two round trips) included.
    assert!(left.len() >= 2, "{left:?}");
    assert!(left.windows(2).all(|w| w[0] == w[1] + 1), "{left:?}");
    let refused = app.mint(&user.access, "gen-rl").send().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    // The problem, and as it is on the wire nothing more: no token.
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_text(&refused, "content-type"), PROBLEM_JSON);
    let text = refused.text().await.unwrap();
    let problem: Problem = serde_json::from_str(&text).unwrap();
    assert_eq!(problem.code, ErrorCode::RateLimited);
    assert_eq!(problem.status, 429);
    let raw: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert!(!raw.contains_key("sse_token"), "{text}");
    let stats = streams::stats(&app.store, UnixTime::now()).await.unwrap();
    assert_eq!(stats.issued_total, left.len() as u64);
}
