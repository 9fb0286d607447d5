//! Stream and WebSocket opens spend the granted user's per-tier budget, the same
//! budget the auth service spends; publishing services are not limited.

use std::time::Duration;

use authstream_proto::claims::Tier;
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_proto::{GenerationId, GenerationStatus};
use authstream_testkit::assert_problem;
use authstream_testkit::header_text as header;
use authstream_testkit::stream::{StreamApp, grant, spawn_app_with, unknown_secret};
use tokio_tungstenite::tungstenite::Error;

use crate::websocket::{connect, connect_with};

async fn token_of(app: &StreamApp, user: &str, tier: Tier, generation: &GenerationId) -> String {
    let grant = authstream_store::streams::StreamGrant {
        tier,
        ..grant(user, "s", generation)
    };
    app.mint(&grant, Duration::from_secs(60)).await
}

#[tokio::test]
async fn stream_and_websocket_opens_spend_the_users_tier_budget() {
    let app = spawn_app_with(&[("RATE_LIMIT_FREE", "2/600s"), ("RATE_LIMIT_PAID", "3/600s")]).await;
    let generation = app.create_generation("ada").await;
    let mut open = Vec::new();
    for left in [1, 0] {
        let token = token_of(&app, "ada", Tier::Free, &generation).await;
        let res = app.open_stream(&generation, &token).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy"), "\"free\";q=2;w=600");
        assert!(header(&res, "ratelimit").starts_with(&format!("\"free\";r={left};t=")));
        open.push(res);
    }
    let token = token_of(&app, "ada", Tier::Free, &generation).await;
    let refused = app.open_stream(&generation, &token).await;
    assert_eq!(header(&refused, "retry-after"), "300");
    assert_eq!(header(&refused, "ratelimit"), "\"free\";r=0;t=300");
    assert_problem(refused, 429, "rate_limited").await;

    let token = token_of(&app, "ada", Tier::Free, &generation).await;
    let url = app.client.ws_url(&generation, &token);
    match connect(&url).await {
        Err(Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "300");
        }
        other => panic!("a limited user opened a WebSocket: {:?}", other.map(|_| ())),
    }

    // A paid user has a budget of its own; the publishing service has none.
    let paid = app.create_generation("bob").await;
    for _ in 0..3 {
        let token = token_of(&app, "bob", Tier::Paid, &paid).await;
        let res = app.open_stream(&paid, &token).await;
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let token = token_of(&app, "bob", Tier::Paid, &paid).await;
    let refused = app.open_stream(&paid, &token).await;
    assert_eq!(header(&refused, "ratelimit-policy"), "\"paid\";q=3;w=600");
    assert_problem(refused, 429, "rate_limited").await;
    for progress in [0.1, 0.2, 0.3, 0.4] {
        let event = NewEventBody {
            progress: Some(progress),
            ..NewEventBody::new(GenerationStatus::Processing)
        };
        let res = app.publish(&paid, &event).await;
        assert_eq!(res.status(), 202);
        assert!(!res.headers().contains_key("ratelimit"));
    }
}

/// An open over the WebSocket from `address` (through a trusted proxy): its status.
async fn ws_status(app: &StreamApp, generation: &GenerationId, token: &str, address: &str) -> u16 {
    let url = app.client.ws_url(generation, token);
    match connect_with(&url, &[("x-forwarded-for", address)]).await {
        // The handshake's `101 Switching Protocols`.
        Ok(_) => 101,
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the WebSocket open failed: {other}"),
    }
}

/// A refused open (unknown, used or expired token, a bad resume cookie) costs the store
/// a call, so it spends the client address's `anon` budget; once that is spent, every
/// open from that address is 429 without reaching the store, until it comes back,
/// while other addresses open their streams.
#[tokio::test]
async fn a_flood_of_refused_opens_from_one_address_turns_into_429s_that_spare_the_store() {
    const ATTACKER: &str = "198.51.100.66";
    const USER: &str = "203.0.113.5";
    let app = spawn_app_with(&[
        ("RATE_LIMIT_ANON", "3/600s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let generation = app.create_generation("u").await;
    let open_from = |address: &'static str, token: String| {
        app.client
            .open(&generation, &token)
            .header("x-forwarded-for", address)
            .send()
    };

    // Three refusals answer as always, each spending one of the address's budget: an
    // unknown token, a used one over the WebSocket, an unknown resume cookie.
    let res = open_from(ATTACKER, unknown_secret()).await.unwrap();
    assert_eq!(header(&res, "ratelimit-policy"), "\"anon\";q=3;w=600");
    assert_eq!(header(&res, "ratelimit"), "\"anon\";r=2;t=200");
    assert_problem(res, 401, "invalid_stream_token").await;
    let used = app.token("u", "s", &generation).await;
    drop(app.sse(&generation, &used).await);
    assert_eq!(ws_status(&app, &generation, &used, ATTACKER).await, 401);
    let res = app
        .resume(&generation, &unknown_secret())
        .header("x-forwarded-for", ATTACKER)
        .send()
        .await
        .unwrap();
    assert!(header(&res, "ratelimit").starts_with("\"anon\";r=0;t="));
    assert_problem(res, 401, "invalid_stream_token").await;

    // The next refusal finds the budget spent: 429 (the first of the three comes back
    // 200 s after it was spent).
    let res = open_from(ATTACKER, unknown_secret()).await.unwrap();
    let retry_after: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((190..=200).contains(&retry_after), "{retry_after}");
    assert_eq!(
        header(&res, "ratelimit"),
        format!("\"anon\";r=0;t={retry_after}")
    );
    assert_problem(res, 429, "rate_limited").await;

    // From now on that address's opens, valid token or not, SSE or WebSocket, are
    // refused without a single store round trip.
    let valid = app.token("u", "s", &generation).await;
    let before = app.store.round_trips();
    for token in [unknown_secret(), valid.clone(), unknown_secret()] {
        let res = open_from(ATTACKER, token).await.unwrap();
        assert_eq!(header(&res, "ratelimit-policy"), "\"anon\";q=3;w=600");
        let retry_after: u64 = header(&res, "retry-after").parse().unwrap();
        assert!((190..=200).contains(&retry_after), "{retry_after}");
        assert_problem(res, 429, "rate_limited").await;
    }
    assert_eq!(ws_status(&app, &generation, &valid, ATTACKER).await, 429);
    assert_eq!(app.store.round_trips(), before, "the store was asked");
    assert_eq!(app.sse_opens("address_limited").await, 3.0);

    // Another address opens its stream with the very token the gate left unused.
    let res = open_from(USER, valid).await.unwrap();
    let mut stream = app.sse_from(res);
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    // A refusal from there is still just a refusal.
    let res = open_from(USER, unknown_secret()).await.unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
}
