//! What opening a stream checks besides the token: a strict `Last-Event-ID`, the
//! `Origin` of a WebSocket, at every resume the session and role behind it, and the
//! user's number of open streams.

use std::time::Duration;

use authstream_proto::ErrorCode;
use authstream_proto::stream::StreamEventKind;
use authstream_runtime::UnixTime;
use authstream_store::streams::{StreamGrant, StreamSecret};
use authstream_testkit::assert_problem;
use authstream_testkit::stream::{
    PATIENCE, StreamApp, grant, ids, set_cookie, spawn_app, spawn_app_with, spawn_replica_with,
};
use tokio_tungstenite::tungstenite::Error;

use crate::websocket::{connect_from, next};

#[tokio::test]
async fn a_malformed_last_event_id_is_no_resume_point_and_never_a_503() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let published = vec![
        app.progress(&generation, 0.1).await,
        app.progress(&generation, 0.2).await,
    ];
    let bad_ids = [
        // The very last possible id: Redis cannot read after it.
        "18446744073709551615-18446744073709551615",
        "18446744073709551616-0",
        "+1764470000123-0",
        "1764470000123-+0",
        "-1764470000123-0",
        "1764470000123-0-0",
        "1764470000123",
        "１７６４４７００００１２３-0",
        "1764470000123-0\u{1}",
        "0x1764470000123-0",
        "not-an-id",
    ];
    for (i, bad) in bad_ids.iter().enumerate() {
        let token = app.token("u", "s", &generation).await;
        // The header for some, the query for the rest (control characters fit only
        // there), every byte percent-encoded: the logged URL holds no raw id either.
        let call = if bad.is_ascii() && !bad.contains('\u{1}') && i % 2 == 0 {
            app.client
                .open_after(&generation, &token, bad)
                .into_request()
        } else {
            let encoded: String = bad.bytes().map(|b| format!("%{b:02X}")).collect();
            app.raw_stream_request(
                generation.as_str(),
                &format!("token={token}&last_event_id={encoded}"),
            )
        };
        let res = call.send().await.unwrap();
        assert_eq!(res.status(), 200, "{bad:?}");
        let mut stream = app.sse_from(res);
        let received = stream.take(3).await;
        assert_eq!(
            received[0].data.event,
            StreamEventKind::Connected,
            "{bad:?}"
        );
        // No resume point: the kept history from the start, and no `reset`.
        assert_eq!(ids(&received), published, "{bad:?}");
    }
    let logs = authstream_testkit::logs().contents();
    assert!(!logs.contains("1764470000123"), "a raw id reached the log");
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_websocket_from_another_origin_is_refused_before_its_token_is_used() {
    let app = spawn_app_with(&[
        ("CORS_ALLOWED_ORIGINS", "https://app.example"),
        ("STREAM_PUBLIC_URL", "https://stream.example:8443/base"),
    ])
    .await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let url = app.client.ws_url(&generation, &token);
    for evil in [
        "https://evil.example",
        "null",
        "https://app.example.evil.example",
        "http://stream.example:8443",
        &format!("http://127.0.0.1:{}", app.port),
    ] {
        match connect_from(&url, Some(evil)).await {
            Err(Error::Http(res)) => {
                assert_eq!(res.status(), 403, "{evil}");
                let problem: authstream_proto::Problem =
                    serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
                assert_eq!(problem.code, ErrorCode::Forbidden, "{evil}");
            }
            other => panic!("{evil}: {:?}", other.map(|_| ())),
        }
    }
    // The token was not used up: the allowed origins, and a client without Origin, get in.
    for allowed in [
        Some("https://app.example"),
        Some("https://STREAM.example:8443"),
        None,
    ] {
        let token = if allowed == Some("https://app.example") {
            token.clone()
        } else {
            app.token("u", "s", &generation).await
        };
        let url = app.client.ws_url(&generation, &token);
        let (mut socket, _) = connect_from(&url, allowed).await.unwrap();
        assert_eq!(
            next(&mut socket).await.unwrap().event,
            StreamEventKind::Connected,
            "{allowed:?}"
        );
    }
}

#[tokio::test]
async fn without_a_public_url_the_service_is_its_own_origin() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let url = app.client.ws_url(&generation, &token);
    let other = format!("http://localhost:{}", app.port);
    assert!(matches!(
        connect_from(&url, Some(&other)).await,
        Err(Error::Http(res)) if res.status() == 403
    ));
    let own = format!("http://127.0.0.1:{}", app.port);
    let (mut socket, _) = connect_from(&url, Some(&own)).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
}

#[tokio::test]
async fn a_demoted_admin_loses_other_users_generations_at_the_next_resume() {
    let app = spawn_app().await;
    let generation = app.create_generation("owner").await;
    app.ensure_holder("boss", "s1", &["admin"]).await;
    let token = app
        .mint(
            &StreamGrant {
                admin: true,
                ..grant("boss", "s1", &generation)
            },
            Duration::from_secs(60),
        )
        .await;
    let mut stream = app.sse(&generation, &token).await;
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    let cookie = stream.cookie.clone();
    drop(stream);
    // Still an admin: the resume works, and rotates the grant.
    let res = app.resume(&generation, &cookie).send().await.unwrap();
    let resumed = app.sse_from(res);
    // Demoted: the next resume re-reads the role and is refused.
    app.set_roles("boss", &[]).await;
    let refused_before = app.sse_opens("not_owner").await;
    let res = app
        .resume(&generation, &resumed.cookie)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    assert_eq!(app.sse_opens("not_owner").await, refused_before + 1.0);
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_resume_needs_its_session_to_still_exist() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let stream = app.sse(&generation, &token).await;
    let cookie = stream.cookie.clone();
    drop(stream);
    // The session ends without a revocation marker (it expired, or the store lost it).
    let session = app.store.keys().session("u", "s");
    assert!(app.store.del(&session).await.unwrap());
    let refused_before = app.sse_opens("session_ended").await;
    let res = app.resume(&generation, &cookie).send().await.unwrap();
    assert_problem(res, 401, "invalid_stream_token").await;
    assert!(app.sse_opens("session_ended").await > refused_before);
}

#[tokio::test]
async fn no_grant_outlives_its_session() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    // A session with 1.5 s left: the resume grant and its cookie live no longer.
    let ends_at = UnixTime::now().millis() + 1_500;
    let token = app
        .mint(
            &StreamGrant {
                session_expires_at: ends_at,
                ..grant("u", "s", &generation)
            },
            Duration::from_secs(60),
        )
        .await;
    let res = app.open_stream(&generation, &token).await;
    let set_cookie = set_cookie(res.headers()).unwrap();
    let max_age: u64 = set_cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap();
    assert!((1..=2).contains(&max_age), "{set_cookie}");
    let stream = app.sse_from(res);
    let digest = StreamSecret::parse(&stream.cookie).unwrap().digest();
    let left = app
        .store
        .pttl(&app.store.keys().stream_token(generation.as_str(), &digest))
        .await
        .unwrap()
        .unwrap();
    assert!(
        left <= Duration::from_millis(1_500),
        "the resume grant lives {left:?}"
    );
    // A grant whose session has ended opens nothing.
    let token = app
        .mint(
            &StreamGrant {
                session_expires_at: UnixTime::now().millis() - 1,
                ..grant("u", "s", &generation)
            },
            Duration::from_secs(60),
        )
        .await;
    let res = app.open_stream(&generation, &token).await;
    assert_problem(res, 401, "invalid_stream_token").await;
}

#[tokio::test]
async fn a_user_has_at_most_the_configured_streams_open_on_all_replicas_together() {
    let cap = [("STREAM_MAX_PER_USER", "2")];
    let app = spawn_app_with(&cap).await;
    let replica = spawn_replica_with(&app, &cap).await;
    let generation = app.create_generation("u").await;
    let count = || open_streams(&app, "u");

    let token = app.token("u", "s", &generation).await;
    let mut sse = app.sse(&generation, &token).await;
    sse.take(1).await;
    let token = app.token("u", "s", &generation).await;
    let (mut socket, _) = connect_from(&replica.client.ws_url(&generation, &token), None)
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
    assert_eq!(count().await, 2);

    // A third, on either replica and either transport, is refused.
    let token = app.token("u", "s", &generation).await;
    let res = app.open_stream(&generation, &token).await;
    let retry_after = authstream_testkit::header_text(&res, "retry-after");
    assert!(retry_after.parse::<u64>().unwrap() > 0);
    assert_problem(res, 429, "rate_limited").await;
    let token = app.token("u", "s", &generation).await;
    let url = replica.client.ws_url(&generation, &token);
    assert!(matches!(
        connect_from(&url, None).await,
        Err(Error::Http(res)) if res.status() == 429
    ));
    assert_eq!(count().await, 2, "a refused open holds no place");
    // Another user is not affected.
    let other_generation = app.create_generation("v").await;
    let other = app.token("v", "s", &other_generation).await;
    app.sse(&other_generation, &other).await.take(1).await;

    // Closing one gives its place back.
    socket.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while count().await > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = app.token("u", "s", &generation).await;
    let mut again = app.sse(&generation, &token).await;
    assert_eq!(
        again.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    drop(sse);
    app.assert_no_secrets_leaked().await;
}

/// An event-stream client that hangs up gives its place back at once, not at the
/// stream's next write (a keep-alive a minute away here): the server reads the
/// client's end of the connection closing.
#[tokio::test]
async fn an_event_stream_whose_client_hangs_up_gives_its_place_back_at_once() {
    let app = spawn_app_with(&[("STREAM_MAX_PER_USER", "1"), ("SSE_KEEPALIVE_SECS", "60")]).await;
    let generation = app.create_generation("u").await;
    let count = || open_streams(&app, "u");
    let token = app.token("u", "s", &generation).await;
    let mut sse = app.sse(&generation, &token).await;
    sse.take(1).await;
    assert_eq!(count().await, 1);

    drop(sse);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while count().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place of a client that hung up was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = app.token("u", "s", &generation).await;
    let mut again = app.sse(&generation, &token).await;
    assert_eq!(
        again.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
}

/// How many streams of `user` the store counts as open now, on every replica.
async fn open_streams(app: &StreamApp, user: &str) -> u64 {
    app.store
        .expiring_count(
            &app.store.keys().open_streams(user),
            UnixTime::now().millis(),
        )
        .await
        .unwrap()
}
