//! `GET /auth/revocations`: the revocation feed for services that verify tokens
//! themselves: who may follow it, its events, resuming, the reset, the heartbeat.

use std::time::{Duration, Instant};

use authstream_client::{SseFrame, SseReader};
use authstream_proto::feed::{FeedHeartbeat, FeedReset, FeedRevocation, RevocationKind};
use authstream_runtime::UnixTime;
use authstream_store::revocations::Revocation;
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::Method;
use serde::de::DeserializeOwned;

type Event = SseFrame;

async fn open(app: &AuthApp, token: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let call = app.bearer(token).revocations(last_event_id);
    call.send().await.unwrap()
}

async fn follow(app: &AuthApp, last_event_id: Option<&str>) -> SseReader {
    let token = app.service_token(FEED_CLIENT).await;
    let events = app.bearer(&token).revocations(last_event_id).await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert_eq!(events.headers()["cache-control"], "no-store");
    events
}

async fn next(events: &mut SseReader) -> Event {
    tokio::time::timeout(Duration::from_secs(5), events.next_frame())
        .await
        .expect("an event within 5 s")
        .expect("a well-formed event")
        .expect("the stream goes on")
}

/// Reads events until the stream ends (within 5 s): whether it did.
async fn ends(events: &mut SseReader) -> bool {
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while events.next_frame().await.unwrap().is_some() {}
    });
    end.await.is_ok()
}

/// The next event that is not a heartbeat.
async fn next_revocation(events: &mut SseReader) -> Event {
    loop {
        let event = next(events).await;
        if event.event != "heartbeat" {
            return event;
        }
    }
}

/// Every event up to and including the first heartbeat.
async fn until_heartbeat(events: &mut SseReader) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = next(events).await;
        let done = event.event == "heartbeat";
        seen.push(event);
        if done {
            return seen;
        }
    }
}

/// An event's data, as its kind of event sends it.
fn data<T: DeserializeOwned>(event: &Event) -> T {
    event.json().unwrap()
}

fn revocation(event: &Event) -> FeedRevocation {
    assert_eq!(event.event, "revocation");
    data(event)
}

fn reset(event: &Event) -> FeedReset {
    assert_eq!(event.event, "reset");
    data(event)
}

fn heartbeat(event: &Event) -> FeedHeartbeat {
    assert_eq!(event.event, "heartbeat");
    data(event)
}

/// A position: the last id read of each of the revocation log's shards.
fn position(id: &str) -> Vec<(u64, u64)> {
    id.split(',')
        .map(|log_id| authstream_store::parse_event_id(log_id).unwrap())
        .collect()
}

/// `a` is before `b`: no log further, one log behind.
fn before(a: &str, b: &str) -> bool {
    let (a, b) = (position(a), position(b));
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x <= y) && a != b
}

/// The position of a feed on empty logs.
fn nothing_read() -> String {
    ["0-0"; authstream_store::REVOCATION_LOG_SHARDS].join(",")
}

#[tokio::test]
async fn only_service_clients_with_the_scope_may_follow() {
    let app = spawn_auth().await;
    let res = app.auth.revocations(None).send().await.unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_problem(res, 401, "missing_token").await;
    let user = app.signup().await;
    assert_problem(open(&app, &user.access, None).await, 403, "forbidden").await;
    let admin = app.admin().await;
    assert_problem(open(&app, &admin.access, None).await, 403, "forbidden").await;
    let backend = app.service_token(BACKEND_CLIENT).await;
    assert_problem(open(&app, &backend, None).await, 403, "insufficient_scope").await;
    let feed = app.service_token(FEED_CLIENT).await;
    assert_problem(
        open(&app, &feed, Some("yesterday")).await,
        422,
        "validation_failed",
    )
    .await;
    let res = app
        .bearer(&feed)
        .request(Method::GET, "/auth/revocations?last_event_id=1-2-3")
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn tokens_sessions_and_users_are_followed_live_resumed_by_id_and_reset_when_too_old() {
    let app = spawn_auth().await;
    let mut events = follow(&app, None).await;
    let first = next(&mut events).await;
    let snapshot = reset(&first);
    assert!(snapshot.revocations.is_empty(), "a fresh log");
    assert_eq!(snapshot.position, nothing_read());
    assert_eq!(first.id, nothing_read());

    // A token, a session, a user.
    let user = app.signup().await;
    app.revoke(&user.access).await.unwrap();
    let second = app.login(&user.email).await;
    app.bearer(&second.access).logout().await.unwrap();
    let admin = app.service_token(ADMIN_CLIENT).await;
    app.bearer(&admin).revoke_user(&user.user_id).await.unwrap();

    let now = UnixTime::now().millis();
    let token = next_revocation(&mut events).await;
    let session = next_revocation(&mut events).await;
    let everything = next_revocation(&mut events).await;
    for event in [&token, &session, &everything] {
        let body = revocation(event);
        assert_eq!(body.id, event.id);
        assert_eq!(body.sub, user.user_id);
        assert!(body.until > now, "{body:?}");
        assert!(!event.data.contains('@'), "no email: {}", event.data);
        assert!(!event.data.contains(&user.email), "{}", event.data);
    }
    assert!(before(&token.id, &session.id) && before(&session.id, &everything.id));
    let jti = revocation(&token);
    assert_eq!(jti.kind, RevocationKind::Token);
    let res = app.validate(&second.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    assert!(jti.jti.unwrap().len() >= 16);
    let sid = revocation(&session);
    assert_eq!(sid.kind, RevocationKind::Session);
    assert_eq!(sid.sid, Some(second.session_id.clone()));
    let user_entry = revocation(&everything);
    assert_eq!(user_entry.kind, RevocationKind::User);
    let not_before = user_entry.not_before.unwrap();
    assert!((now / 1000 - not_before).abs() <= 2, "{user_entry:?}");

    // The heartbeat names the last entry.
    let beat = until_heartbeat(&mut events).await.pop().unwrap();
    assert_eq!(heartbeat(&beat).position, everything.id);

    // Resumed after the first: exactly the two later ones, then the heartbeat.
    let mut resumed = follow(&app, Some(&token.id)).await;
    let seen = until_heartbeat(&mut resumed).await;
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|e| (e.event.as_str(), e.id.as_str()))
        .collect();
    // (The client keeps the last id for the heartbeat, which has none of its own.)
    assert_eq!(
        kinds,
        [
            ("revocation", session.id.as_str()),
            ("revocation", everything.id.as_str()),
            ("heartbeat", everything.id.as_str())
        ]
    );
    assert_eq!(seen[0].data, session.data);
    // Resumed at the end: nothing but heartbeats.
    let mut current = follow(&app, Some(&everything.id)).await;
    assert_eq!(until_heartbeat(&mut current).await.len(), 1);
    // By the query parameter, for clients that cannot send the header.
    let feed = app.service_token(FEED_CLIENT).await;
    let res = app
        .bearer(&feed)
        .request(
            Method::GET,
            &format!("/auth/revocations?last_event_id={}", session.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut by_query = SseReader::new("GET /auth/revocations", res);
    assert_eq!(next(&mut by_query).await.id, everything.id);

    // Older than the log (or an id it never had): a reset with everything in force.
    let shortlived = Revocation::Token {
        sub: "user-x".into(),
        jti: "expires-soon".into(),
        until_ms: UnixTime::now().millis() + 100,
    };
    app.store
        .revoke(&shortlived, UnixTime::now())
        .await
        .unwrap();
    let last = next_revocation(&mut events).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let too_old = |log_id: &str| [log_id; authstream_store::REVOCATION_LOG_SHARDS].join(",");
    for too_old in [
        too_old("1-0"),
        too_old("99999999999999-0"),
        "1-0".to_owned(),
    ] {
        let mut again = follow(&app, Some(&too_old)).await;
        let first = next(&mut again).await;
        assert_eq!(first.event, "reset", "{too_old}");
        assert_eq!(first.id, last.id);
        let snapshot = reset(&first);
        assert_eq!(snapshot.position, last.id);
        assert_eq!(
            snapshot.revocations,
            vec![
                revocation(&token),
                revocation(&session),
                revocation(&everything)
            ],
            "everything in force, not what has expired"
        );
        assert!(next(&mut again).await.event == "heartbeat");
    }
}

#[tokio::test]
async fn heartbeats_come_at_least_every_25_ms_with_the_position() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    app.revoke(&user.access).await.unwrap();
    let mut events = follow(&app, None).await;
    let first = next(&mut events).await;
    assert_eq!(reset(&first).revocations.len(), 1);
    // What a follower relies on: the time of the read each heartbeat reports.
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        let event = next(&mut events).await;
        let body = heartbeat(&event);
        assert_eq!(body.position, first.id);
        let time = body.time;
        assert!(time <= UnixTime::now().millis());
        times.push(time);
    }
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let max_gap = gaps.iter().copied().max().unwrap();
    let mean = gaps.iter().sum::<i64>() as f64 / gaps.len() as f64;
    println!(
        "{} heartbeats, gaps: max {max_gap} ms, mean {mean:.1} ms",
        times.len()
    );
    // About every 10 ms; the bound leaves room for a loaded test machine.
    assert!(max_gap < 100, "max gap {max_gap} ms");
    assert!(mean < 25.0, "mean gap {mean} ms");
}

#[tokio::test]
async fn a_follower_on_the_memory_store_sees_revocations_and_heartbeats() {
    let app = spawn_auth_on(authstream_store::Store::memory("feed-test"), &[]).await;
    let mut events = follow(&app, None).await;
    assert_eq!(next(&mut events).await.event, "reset");
    assert_eq!(next(&mut events).await.event, "heartbeat");
    let user = app.signup().await;
    app.bearer(&user.access).logout().await.unwrap();
    let session = next_revocation(&mut events).await;
    assert_eq!(revocation(&session).sid, Some(user.session_id));
}

#[tokio::test]
async fn the_feed_ends_at_shutdown_and_when_the_followers_token_is_revoked() {
    let app = spawn_auth().await;
    let token = app.service_token(FEED_CLIENT).await;
    let mut own = app.bearer(&token).revocations(None).await.unwrap();
    assert_eq!(next(&mut own).await.event, "reset");
    app.revoke(&token).await.unwrap();
    let last = next_revocation(&mut own).await;
    assert_eq!(revocation(&last).sub, "service:verifier");
    assert!(
        ends(&mut own).await,
        "the stream ends after its own token's revocation"
    );

    let mut events = follow(&app, None).await;
    assert_eq!(next(&mut events).await.event, "reset");
    app.state.shutdown();
    assert!(ends(&mut events).await, "the stream ends at shutdown");
}
