//! Revoking a session or a user ends their open streams within a second, in this
//! process and in every other; while the revocation log cannot be read, within a
//! second plus the recheck interval.

use std::sync::Arc;
use std::time::Duration;

use authstream_proto::GenerationId;
use authstream_proto::stream::StreamEventKind;
use authstream_runtime::UnixTime;
use authstream_security::keys::KeySet;
use authstream_store::revocations;
use authstream_testkit::stream::{
    OpenStream, StreamApp, grant, ids, spawn_app, spawn_app_on, spawn_replica,
};
use authstream_testkit::{
    RedisServer, assert_problem, redis_store_at, redis_store_sharing, revocations_stale,
};
use stream_service::hub::STALE_RECHECK_INTERVAL;

/// The contract's bound on how long a revoked stream may stay open.
const WITHIN: Duration = Duration::from_secs(1);

/// A stream of `session`'s on `app`, past its `connected` event.
async fn connected(
    app: &StreamApp,
    user: &str,
    session: &str,
    generation: &GenerationId,
) -> OpenStream {
    let token = app.token(user, session, generation).await;
    let mut stream = app.sse(generation, &token).await;
    stream.take(1).await;
    stream
}

/// Revokes session `laptop` of user `u` through `store`, and checks that `stream` ends
/// within `bound`.
async fn revoke_laptop_and_see_it_end(
    store: &authstream_store::Store,
    stream: &mut OpenStream,
    bound: Duration,
) {
    revocations::revoke_session(store, "u", "laptop", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        stream.next_within(bound).await.is_none(),
        "the revoked session's stream is still open"
    );
}

#[tokio::test]
async fn revoking_a_session_ends_its_stream_and_no_other() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let mut revoked = connected(&app, "u", "laptop", &generation).await;
    let mut kept = connected(&app, "u", "phone", &generation).await;

    revoke_laptop_and_see_it_end(&app.store, &mut revoked, WITHIN).await;

    let id = app.progress(&generation, 0.5).await;
    assert_eq!(ids(&kept.take(1).await), [id]);
    // Its resume cookie is refused as well.
    let res = app
        .resume(&generation, &revoked.cookie)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn revoking_a_user_ends_all_their_streams() {
    let app = spawn_app().await;
    let mine = app.create_generation("u").await;
    let theirs = app.create_generation("other").await;
    let mut streams = Vec::new();
    for (user, session, generation) in [
        ("u", "a", &mine),
        ("u", "b", &mine),
        ("other", "c", &theirs),
    ] {
        let token = app.token(user, session, generation).await;
        let mut stream = app.sse(generation, &token).await;
        stream.take(1).await;
        streams.push(stream);
    }
    let sessions = ["a".to_owned(), "b".to_owned()];
    revocations::revoke_user(
        &app.store,
        "u",
        &sessions,
        UnixTime::now(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    for stream in &mut streams[..2] {
        assert!(stream.next_within(WITHIN).await.is_none());
    }
    let id = app.progress(&theirs, 0.5).await;
    assert_eq!(ids(&streams[2].take(1).await), [id]);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_disconnect_notice_ends_one_generations_stream_and_it_resumes() {
    let app = spawn_app().await;
    let cut = app.create_generation("u").await;
    let other = app.create_generation("u").await;
    let cut_token = app.token("u", "laptop", &cut).await;
    let other_token = app.token("u", "laptop", &other).await;
    let mut on_cut = app.sse(&cut, &cut_token).await;
    let mut on_other = app.sse(&other, &other_token).await;
    on_cut.take(1).await;
    on_other.take(1).await;
    let first = app.progress(&cut, 0.25).await;
    assert_eq!(ids(&on_cut.take(1).await), [first.as_str()]);

    let notice = revocations::StreamNotice::disconnect("u", "laptop", cut.as_str());
    revocations::announce(&app.store, &notice).await.unwrap();
    assert!(
        on_cut.next_within(WITHIN).await.is_none(),
        "the cut stream ended"
    );

    // The same session's stream of another generation goes on.
    let id = app.progress(&other, 0.5).await;
    assert_eq!(ids(&on_other.take(1).await), [id]);
    // Nothing was revoked: the browser's reconnect with its cookie resumes after `first`.
    let second = app.progress(&cut, 0.5).await;
    let res = app
        .resume(&cut, &on_cut.cookie)
        .header("last-event-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut resumed = app.sse_from(res);
    let events = resumed.take(2).await;
    assert_eq!(ids(&events), [second]);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_revocation_made_in_another_process_ends_the_stream() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let generation = app.create_generation("u").await;
    let mut stream = connected(&replica, "u", "laptop", &generation).await;

    // `app.store` is the other process: the replica learns it from the log.
    revoke_laptop_and_see_it_end(&app.store, &mut stream, WITHIN).await;
}

/// The connection that carries revocations loses them (an ACL takes the log away from
/// every connection, as a proxy that silently drops one would): open streams recheck
/// their session in the store every `STALE_RECHECK_INTERVAL` and end if revoked.
#[tokio::test]
async fn without_the_revocation_log_a_revoked_stream_ends_at_the_next_recheck() {
    let server = RedisServer::start();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let app = spawn_app_on(redis_store_at(&server.url()), keys, &[]).await;
    let elsewhere = redis_store_sharing(&server.url(), app.store.keys().prefix());
    let generation = app.create_generation("u").await;
    let mut revoked = connected(&app, "u", "laptop", &generation).await;
    let mut kept = connected(&app, "u", "phone", &generation).await;

    server.acl_default_user("-xrange");
    revocations_stale(&app.store).await;
    revoke_laptop_and_see_it_end(&elsewhere, &mut revoked, WITHIN + STALE_RECHECK_INTERVAL).await;
    // The other session's stream went through the same rechecks and goes on.
    let id = app.progress(&generation, 0.5).await;
    assert_eq!(ids(&kept.take(1).await), [id]);
    server.acl_default_user("+@all");
}

/// A stream ends at its session's absolute end (`SESSION_MAX_AGE_SECS` after the
/// login, carried by the stream token), as a revoked one does: the event stream ends,
/// the WebSocket closes with 1008, within a second. A stream of a later session of the
/// same user goes on.
#[tokio::test]
async fn a_stream_ends_within_a_second_of_its_sessions_absolute_end() {
    use crate::websocket::{connect, next};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let ends_at = UnixTime::now().millis() + 4_000;
    let ending = authstream_store::streams::StreamGrant {
        session_expires_at: ends_at,
        ..grant("u", "old", &generation)
    };
    let token = app.mint(&ending, Duration::from_secs(60)).await;
    let mut sse = app.sse(&generation, &token).await;
    sse.take(1).await;
    let token = app.mint(&ending, Duration::from_secs(60)).await;
    let (mut socket, _) = connect(&app.client.ws_url(&generation, &token))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
    let mut kept = connected(&app, "u", "new", &generation).await;

    // Nothing ends early: an event before the end still arrives.
    let early = app.progress(&generation, 0.25).await;
    assert_eq!(ids(&sse.take(1).await), [early.as_str()]);
    assert_eq!(next(&mut socket).await.unwrap().id, Some(early.clone()));

    assert!(sse.until_end().await.is_empty(), "the stream ended");
    let late = UnixTime::now().millis() - ends_at;
    assert!(
        (0..WITHIN.as_millis() as i64).contains(&late),
        "the event stream ended {late} ms after its session"
    );
    assert_eq!(
        next(&mut socket).await.unwrap_err(),
        Some(CloseCode::Policy)
    );
    let late = UnixTime::now().millis() - ends_at;
    assert!(
        late < WITHIN.as_millis() as i64,
        "the WebSocket closed {late} ms after its session"
    );

    let id = app.progress(&generation, 0.5).await;
    assert_eq!(ids(&kept.take(2).await), [early, id]);
    app.assert_no_secrets_leaked().await;
}
