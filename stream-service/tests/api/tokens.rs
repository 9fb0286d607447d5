//! Who may open a stream: single use, bound to a generation (and maybe an
//! address), never a JWT, refused alike whatever the reason.

use std::collections::HashMap;
use std::time::Duration;

use authstream_client::StreamQuery;
use authstream_proto::GenerationStatus;
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_runtime::UnixTime;
use authstream_store::revocations;
use authstream_store::streams;
use authstream_testkit::assert_problem;
use authstream_testkit::stream::{grant, resume_cookie, spawn_app, unknown_secret};

#[tokio::test]
async fn a_stream_token_opens_one_stream_only() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let first = app.sse(&generation, &token).await;
    let again = app.open_stream(&generation, &token).await;
    let replay = assert_problem(again, 401, "invalid_stream_token").await;
    let unknown = app.open_stream(&generation, &unknown_secret()).await;
    let unknown = assert_problem(unknown, 401, "invalid_stream_token").await;
    // The client is not told why.
    assert_eq!(replay, unknown);
    drop(first);
    let stats = streams::stats(&app.store, UnixTime::now()).await.unwrap();
    assert_eq!(
        (
            stats.issued_total,
            stats.consumed_total,
            stats.rejected_total
        ),
        (1, 1, 2)
    );
    app.assert_no_secrets_leaked().await;
}

/// A token is stored under its own generation: on another generation's path it is
/// unknown there, and refused; it opens its own stream, once.
#[tokio::test]
async fn a_token_for_another_generation_is_refused_there_and_opens_only_its_own() {
    let app = spawn_app().await;
    let mine = app.create_generation("u").await;
    let other = app.create_generation("u").await;
    let token = app.token("u", "s", &mine).await;
    assert_problem(
        app.open_stream(&other, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;
    let opened = app.sse(&mine, &token).await;
    assert_problem(
        app.open_stream(&mine, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;
    drop(opened);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let unknown = unknown_secret();
    app.remember(&unknown);
    assert_problem(
        app.open_stream(&generation, &unknown).await,
        401,
        "invalid_stream_token",
    )
    .await;
    let short = app
        .mint(&grant("u", "s", &generation), Duration::from_millis(200))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_problem(
        app.open_stream(&generation, &short).await,
        401,
        "invalid_stream_token",
    )
    .await;
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_jwt_or_junk_is_never_a_stream_token_and_never_reaches_the_store() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let jwt = app.access_token("u", "s");
    let keys = || async { app.store.debug_keys().await.unwrap() };
    let before = keys().await;
    for token in [jwt.as_str(), "", "short", &"A".repeat(44)] {
        let res = app.open_stream(&generation, token).await;
        assert_problem(res, 401, "invalid_stream_token").await;
    }
    // No token at all, and no cookie.
    let res = app
        .client
        .open_with(&generation, StreamQuery::default())
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    // A bearer header is no way in either.
    let res = app
        .client
        .open_with(&generation, StreamQuery::default())
        .bearer(&jwt)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    // Not even the rejection counter.
    assert_eq!(
        before,
        keys().await,
        "refusing junk must not touch the store"
    );
    app.remember(&jwt);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_token_bound_to_an_address_works_only_from_it() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let mut elsewhere = grant("u", "s", &generation);
    elsewhere.client_ip = Some("10.9.9.9".to_owned());
    let token = app.mint(&elsewhere, Duration::from_secs(60)).await;
    assert_problem(
        app.open_stream(&generation, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;

    let mut here = grant("u", "s", &generation);
    here.client_ip = Some("127.0.0.1".to_owned());
    let token = app.mint(&here, Duration::from_secs(60)).await;
    let mut stream = app.sse(&generation, &token).await;
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn fifty_concurrent_opens_with_one_token_let_exactly_one_in() {
    // Counts the process's `replay` refusals, which other tests' replays move: alone
    // under `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    // What the tests before this one in the process counted.
    let replays_before = app.sse_opens("replay").await;
    let opens = (0..50).map(|_| app.open_stream(&generation, &token));
    let responses = futures_util::future::join_all(opens).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        49,
        "{statuses:?}"
    );
    // Marking a token used is atomic with taking it: every loser is a replay.
    assert_eq!(app.sse_opens("replay").await - replays_before, 49.0);
    for res in &responses {
        if let Some(cookie) = resume_cookie(res.headers()) {
            app.remember(&cookie);
        }
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_follow_a_generation() {
    let app = spawn_app().await;
    let generation = app.create_generation("owner").await;
    let token = app.token("someone-else", "s", &generation).await;
    assert_problem(
        app.open_stream(&generation, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;
    let mut admin = grant("an-admin", "s", &generation);
    admin.admin = true;
    let token = app.mint(&admin, Duration::from_secs(60)).await;
    app.sse(&generation, &token).await.take(1).await;
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_token_of_a_revoked_session_or_a_gone_generation_is_refused() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "revoked-session", &generation).await;
    revocations::revoke_session(&app.store, "u", "revoked-session", Duration::from_secs(60))
        .await
        .unwrap();
    assert_problem(
        app.open_stream(&generation, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;

    let token = app.token("u", "s", &generation).await;
    revocations::revoke_user(
        &app.store,
        "u",
        &[],
        UnixTime::now().plus(Duration::from_secs(2)),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_problem(
        app.open_stream(&generation, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;

    let never_created = "no-such-generation".parse().unwrap();
    let token = app.token("v", "s", &never_created).await;
    assert_problem(
        app.open_stream(&never_created, &token).await,
        401,
        "invalid_stream_token",
    )
    .await;
    app.assert_no_secrets_leaked().await;
}

/// No grant is stored under a malformed id: the token is refused without reaching
/// the store, and still opens its own stream once.
#[tokio::test]
async fn a_token_presented_on_a_malformed_path_is_refused_without_a_store_call() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    for bad in ["a".repeat(129), "caf%C3%A9".to_owned(), "a%20b".to_owned()] {
        let token = app.token("u", "s", &generation).await;
        let before = app.store.round_trips();
        let res = app.open_stream_at(&bad, &token).await;
        assert_problem(res, 401, "invalid_stream_token").await;
        assert_eq!(app.store.round_trips(), before, "the store was not asked");
        drop(app.sse(&generation, &token).await);
        assert_problem(
            app.open_stream(&generation, &token).await,
            401,
            "invalid_stream_token",
        )
        .await;
    }
    let stats = streams::stats(&app.store, UnixTime::now()).await.unwrap();
    assert_eq!((stats.issued_total, stats.consumed_total), (3, 3));
    app.assert_no_secrets_leaked().await;
}

/// Empty, 1000-character and Unicode ids. A malformed id in the path is
/// refused like any other wrong generation, and the token is left for its own path; an
/// empty one matches no route (404) and reaches no handler.
#[tokio::test]
async fn odd_generation_ids_on_the_stream_and_publish_routes() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let processing = NewEventBody::new(GenerationStatus::Processing);
    let long = "a".repeat(1000);
    for odd in [long.as_str(), "%C3%BC%E2%9C%93", "%F0%9F%92%A5"] {
        let token = app.token("u", "s", &generation).await;
        assert_problem(
            app.open_stream_at(odd, &token).await,
            401,
            "invalid_stream_token",
        )
        .await;
        drop(app.sse(&generation, &token).await);
        let res = app.publish_raw(odd).json(&processing).send().await.unwrap();
        assert_problem(res, 404, "not_found").await;
    }
    let token = app.token("u", "s", &generation).await;
    assert_problem(app.open_stream_at("", &token).await, 404, "not_found").await;
    let res = app.publish_raw("").json(&processing).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let stats = streams::stats(&app.store, UnixTime::now()).await.unwrap();
    assert_eq!((stats.issued_total, stats.consumed_total), (4, 3));
    app.assert_no_secrets_leaked().await;
}

/// The client hears the same 401 whatever the reason; the metric tells them apart.
#[tokio::test]
async fn each_refusal_is_counted_under_its_reason() {
    // Counts the process's refusals by reason, which other tests' refusals move: alone
    // under `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let other = app.create_generation("u").await;
    let reasons = [
        "other_generation",
        "other_address",
        "revoked",
        "replay",
        "expired",
        "unknown",
        "malformed",
        "not_owner",
    ];
    let mut before = HashMap::new();
    for reason in reasons {
        before.insert(reason, app.sse_opens(reason).await);
    }
    let refused = |res: reqwest::Response| assert_problem(res, 401, "invalid_stream_token");

    let token = app.token("u", "s", &other).await;
    refused(app.open_stream_at("caf%C3%A9", &token).await).await;

    let mut bound = grant("u", "s", &generation);
    bound.client_ip = Some("10.9.9.9".to_owned());
    let token = app.mint(&bound, Duration::from_secs(60)).await;
    refused(app.open_stream(&generation, &token).await).await;

    let token = app.token("u", "gone", &generation).await;
    revocations::revoke_session(&app.store, "u", "gone", Duration::from_secs(60))
        .await
        .unwrap();
    refused(app.open_stream(&generation, &token).await).await;

    let token = app.token("u", "s", &generation).await;
    let _open = app.sse(&generation, &token).await;
    refused(app.open_stream(&generation, &token).await).await;

    let short = app
        .mint(&grant("u", "s", &generation), Duration::from_secs(1))
        .await;
    let unknown = unknown_secret();
    app.remember(&unknown);
    refused(app.open_stream(&generation, &unknown).await).await;
    refused(
        app.open_stream(&generation, &app.access_token("u", "s"))
            .await,
    )
    .await;
    let token = app.token("intruder", "s", &generation).await;
    refused(app.open_stream(&generation, &token).await).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    refused(app.open_stream(&generation, &short).await).await;

    for reason in reasons {
        assert_eq!(
            app.sse_opens(reason).await - before[reason],
            1.0,
            "{reason} not counted once"
        );
    }
    app.assert_no_secrets_leaked().await;
}

/// A stream open is two sequential store round trips: the grant, record, history and
/// next resume grant on the generation's slot, then the user's admission. A resume
/// (token used, cookie presented) costs no more.
#[tokio::test]
async fn an_open_and_a_resume_cost_two_round_trips_each() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    app.ensure_holder("u", "s", &["user"]).await;
    // The first stream of the process starts its subscription (no request waits on it
    // again): opened once before counting.
    let warm = app.token("u", "s", &generation).await;
    drop(app.sse(&generation, &warm).await);

    let token = app.token("u", "s", &generation).await;
    let before = app.store.round_trips();
    let stream = app.sse(&generation, &token).await;
    assert_eq!(app.store.round_trips() - before, 2, "open");

    let before = app.store.round_trips();
    let res = app.reconnect(&generation, &token, &stream.cookie).await;
    let resumed = app.sse_from(res);
    assert_eq!(app.store.round_trips() - before, 2, "resume");
    assert_ne!(resumed.cookie, stream.cookie, "the cookie rotated");
    app.assert_no_secrets_leaked().await;
}
