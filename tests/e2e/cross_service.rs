use std::time::{Duration, Instant};

use authstream_client::StreamClient;
use authstream_proto::GenerationStatus::{Completed, Processing};
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_security::jwt::{KeySource, RemoteKeys};
use authstream_testkit::assert_problem;
use authstream_testkit::stack::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_generation_streams_from_publish_to_completion_across_services() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "e2e-1")
        .await
        .generation_id;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    let mut events = stack.follow(&user.access, "e2e-1").await;

    // The stream service verifies the backend's token through the auth service's JWKS.
    for (i, (status, p)) in [(Processing, 0.25), (Processing, 0.75), (Completed, 1.0)]
        .into_iter()
        .enumerate()
    {
        let published = stack
            .publish(&backend, "e2e-1", &event(status, p))
            .await
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
        let event = events.next().await.expect("an event");
        assert_eq!(event.id, published.id);
        assert_eq!(event.data.event, StreamEventKind::Progress);
        assert_eq!(event.data.generation_id, "e2e-1");
        assert_eq!(event.data.status, Some(status));
        assert_eq!(event.data.progress, Some(p));
    }
    // The server ends the stream after `completed`.
    assert!(events.next().await.is_none());

    // The record at the auth service followed the events.
    let generation = stack.bearer(&user.access).generation(&id).await.unwrap();
    assert_eq!(generation.status, Completed);
    assert_eq!(generation.progress, 1.0);
    // Publishing after the end is refused.
    let res = sent(stack.publish(&backend, "e2e-1", &event(Processing, 0.1))).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_stream_token_works_once_and_the_stats_say_so() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "e2e-2")
        .await
        .generation_id;
    let token = stack.stream_token(&user.access, "e2e-2").await.sse_token;
    let first = sent(stack.stream.open(&id, &token)).await;
    assert_eq!(first.status(), StatusCode::OK);
    drop(first);
    let replay = sent(stack.stream.open(&id, &token)).await;
    assert_problem(replay, 401, "invalid_stream_token").await;
    // An access token (a JWT) is never a stream token.
    let res = sent(stack.stream.open(&id, &user.access)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let admin = stack.bearer(&stack.service_token(ADMIN_CLIENT).await);
    let stats = || async { admin.stream_token_stats().await.unwrap() };
    // The stream service counts in process and flushes every second (a consumed
    // token leaves the active set two seconds after its use).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stats_now = stats().await;
    while (stats_now.rejected_total != 1 || stats_now.active != 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats_now = stats().await;
    }
    let stats = stats_now;
    assert_eq!(stats.issued_total, 1);
    assert_eq!(stats.consumed_total, 1);
    assert_eq!(stats.active, 0);
    // The replay counts; the JWT was refused before the store was asked.
    assert_eq!(stats.rejected_total, 1, "{stats:?}");

    // Redis never held the token, in any key or value.
    let dump = stack.store.debug_dump().await.unwrap();
    assert!(!dump.is_empty());
    assert!(
        dump.iter()
            .all(|(k, v)| !k.contains(&token) && !v.contains(&token))
    );
}

#[tokio::test]
async fn logout_at_the_auth_service_ends_that_sessions_stream_only() {
    let stack = spawn_stack().await;
    let laptop = stack.signup().await;
    let phone = stack.login(&laptop.email).await;
    stack.create_generation(&laptop.access, "e2e-3").await;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    let mut on_laptop = stack.follow(&laptop.access, "e2e-3").await;
    let mut on_phone = stack.follow(&phone.access, "e2e-3").await;

    let res = sent(stack.bearer(&laptop.access).logout()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    // The laptop's stream ends within a second (perhaps after a keep-alive comment).
    let ended = tokio::time::timeout(Duration::from_secs(1), on_laptop.until_end()).await;
    assert!(
        ended.is_ok(),
        "the revoked session's stream ended within 1 s"
    );
    assert!(started.elapsed() < Duration::from_millis(1100));

    // The phone's stream goes on.
    sent(stack.publish(&backend, "e2e-3", &event(Processing, 0.5))).await;
    let event = on_phone.next().await.expect("still open");
    assert_eq!(event.data.progress, Some(0.5));

    // And the laptop's session cannot mint new stream tokens.
    let res = sent(stack.mint(&laptop.access, "e2e-3")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unused_stream_token_dies_with_its_session() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "e2e-4")
        .await
        .generation_id;
    let token = stack.stream_token(&user.access, "e2e-4").await.sse_token;
    sent(stack.bearer(&user.access).logout_all()).await;
    assert_eq!(
        sent(stack.stream.open(&id, &token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_revoked_service_token_can_no_longer_publish() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    stack.create_generation(&user.access, "e2e-5").await;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    let first = event(Processing, 0.1);
    stack.publish(&backend, "e2e-5", &first).await.unwrap();
    let res = sent(stack.revoke(&backend)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The stream service is another process: it learns the revocation from the
    // revocation log within 50 ms; polled with a wide margin.
    let deadline = Instant::now() + Duration::from_secs(2);
    let res = loop {
        let res = sent(stack.publish(&backend, "e2e-5", &event(Processing, 0.2))).await;
        if res.status() != StatusCode::ACCEPTED || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_problem(res, 401, "token_revoked").await;
    // A user's access token is not a service token.
    let res = sent(stack.publish(&user.access, "e2e-5", &event(Processing, 0.2))).await;
    assert_problem(res, 401, "wrong_token_type").await;
}

#[tokio::test]
async fn tabs_and_users_each_see_exactly_their_generations_events() {
    let stack = spawn_stack().await;
    let ada = stack.signup().await;
    let bob = stack.signup().await;
    for id in ["tab-a", "tab-b"] {
        stack.create_generation(&ada.access, id).await;
    }
    stack.create_generation(&bob.access, "tab-c").await;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    // Ada: three tabs on one generation, two on another; Bob beside them.
    let mut streams = Vec::new();
    for id in ["tab-a", "tab-a", "tab-a", "tab-b", "tab-b"] {
        streams.push((id, stack.follow(&ada.access, id).await));
    }
    streams.push(("tab-c", stack.follow(&bob.access, "tab-c").await));
    for id in ["tab-a", "tab-b", "tab-c"] {
        for p in [0.5, 1.0] {
            let status = if p < 1.0 { Processing } else { Completed };
            let body = NewEventBody {
                message: Some(format!("{id} {p}")),
                ..event(status, p)
            };
            stack.publish(&backend, id, &body).await.unwrap();
        }
    }
    for (id, events) in &mut streams {
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            assert_eq!(event.data.generation_id, *id);
            seen.push(event.data.message.unwrap());
        }
        assert_eq!(seen, [format!("{id} 0.5"), format!("{id} 1")]);
    }
}

#[tokio::test]
async fn unknown_key_ids_refetch_the_jwks_at_most_every_few_seconds() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    stack.create_generation(&user.access, "e2e-6").await;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    // The first publish fetches the JWKS (the stream service starts knowing no keys).
    let first = event(Processing, 0.1);
    stack.publish(&backend, "e2e-6", &first).await.unwrap();
    let fetches = || async {
        let metrics = stack.auth.metrics().await.unwrap();
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("authstream_http_requests_total")
                    && l.contains(r#"route="/.well-known/jwks.json""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = fetches().await;
    assert!(before >= 1.0);
    // Tokens with a kid nobody published: refused, and the JWKS is not hammered.
    let header = r#"{"alg":"EdDSA","typ":"JWT","kid":"nobody-has-this"}"#;
    let forged = format!(
        "{}.{}.{}",
        b64(header),
        backend.split('.').nth(1).unwrap(),
        backend.split('.').nth(2).unwrap()
    );
    for _ in 0..5 {
        let res = sent(stack.publish(&forged, "e2e-6", &event(Processing, 0.2))).await;
        assert_problem(res, 401, "invalid_token").await;
    }
    assert!(
        fetches().await - before <= 1.0,
        "at most one refetch for five unknown kids"
    );
    // The known key still works.
    let known = event(Processing, 0.3);
    stack.publish(&backend, "e2e-6", &known).await.unwrap();
}

#[tokio::test]
async fn while_the_jwks_cannot_be_fetched_publishers_get_a_503_then_it_recovers() {
    let stack = spawn_stack().await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "e2e-7")
        .await
        .generation_id;
    let backend = stack.service_token(BACKEND_CLIENT).await;
    // A stream service whose auth service is not up yet: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth_url = format!("http://127.0.0.1:{port}");
    let remote = RemoteKeys::new(&auth_url, Duration::from_millis(200)).unwrap();
    let stream = spawn_stream(
        &auth_url,
        stack.store.clone(),
        Some(KeySource::Remote(remote.into())),
    );
    let stream = StreamClient::new(stack.auth.http().clone(), &stream).with_token(&backend);
    let body = event(Processing, 0.4);
    let publish = || sent(stream.publish(&id, &body));
    // The token could not be checked: not a verdict on it, so no 401.
    for _ in 0..2 {
        let res = publish().await;
        assert!(res.headers().contains_key("retry-after"));
        assert_problem(res, 503, "store_unavailable").await;
    }
    // The auth service comes up there: the next refetch finds the key.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    spawn_auth(
        listener,
        stack.store.clone(),
        stack.auth_keys.clone().unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = publish().await.status();
        if status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// With `SESSION_MAX_AGE_SECS=3`, a stream opened on a fresh session ends within a
/// second of the session's absolute end, as a revoked one does (the end travels in the
/// stream token from the auth service: no store read tells the stream service).
#[tokio::test]
async fn a_stream_ends_within_a_second_of_its_sessions_absolute_end() {
    let stack = spawn_stack_with(&[("SESSION_MAX_AGE_SECS", "3")]).await;
    let user = stack.signup().await;
    let sessions = stack.bearer(&user.access).sessions().await.unwrap();
    let created_at = sessions[0].created_at;
    let ends_at = created_at + 3_000;
    stack.create_generation(&user.access, "e2e-max-age").await;
    let mut events = stack.follow(&user.access, "e2e-max-age").await;
    let ended = tokio::time::timeout(Duration::from_secs(5), events.until_end()).await;
    assert!(ended.is_ok(), "the stream outlived its session");
    let now = authstream_runtime::UnixTime::now().millis();
    assert!(
        now >= ends_at - 50 && now < ends_at + 1_000,
        "the stream ended {} ms after its session",
        now - ends_at
    );
}
