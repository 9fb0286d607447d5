//! Redis going away and coming back, on a dedicated server per test: operations
//! fail fast with `Unavailable` (never hang, never fail open) and recover by themselves.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use authstream_proto::claims::AccessClaims;
use authstream_runtime::clock::UnixTime;
use authstream_security::jwt::TokenError;
use authstream_store::Store;
use authstream_store::StoreError;
use authstream_store::events::GenerationStatus;
use authstream_store::generations::GenerationId;
use authstream_store::streams::{self, GrantKind, StreamGrant, StreamSecret};
use authstream_store::{NewEvent, PubSubMessage};
use authstream_testkit::{
    RedisServer, SilencingProxy, redis_store_at, revocations_fresh, shared_redis,
};
use authstream_web::ApiError;

use crate::helpers::{Jwt, code_of, key, next_message};

/// The harness bounds every operation by 500 ms; allow scheduling slack on top.
const FAIL_FAST: Duration = Duration::from_secs(1);

/// Runs `op` against a stopped Redis: it must be `Unavailable`, quickly.
async fn unavailable<T: Debug>(what: &str, op: impl Future<Output = Result<T, StoreError>>) {
    let started = Instant::now();
    let result = op.await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(took < FAIL_FAST, "{what} took {took:?}");
}

/// Retries `op` until it succeeds, for at most 5 s.
pub async fn eventually<T, E: Debug, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    mut op: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what} still failing after 5 s: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn progress_event(id: &GenerationId) -> NewEvent<'_> {
    NewEvent {
        generation_id: id.as_str(),
        data: "{}",
        status: GenerationStatus::Processing,
        progress: None,
        stage: None,
        now_ms: UnixTime::now().millis(),
        max_len: 10,
        ttl: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_fail_fast_while_redis_is_down_and_recover_after_restart() {
    let server = RedisServer::start();
    let store = redis_store_at(&server.url());
    let k = key(&store, "k");
    store.set(&k, "v", None).await.unwrap();
    let mut before_outage = store.subscribe().await.unwrap();
    store.subscribe_generation("followed").await.unwrap();

    server.stop();
    let g = GenerationId::generate();
    unavailable("ping", store.ping()).await;
    unavailable("get", store.get(&k)).await;
    unavailable("set", store.set(&k, "w", None)).await;
    unavailable("set_nx", store.set_nx(&k, "w", Duration::from_secs(1))).await;
    unavailable("get_del", store.get_del(&k)).await;
    unavailable("get_del_marking", store.get_del_marking(&k, &k, "m")).await;
    unavailable("pttl", store.pttl(&k)).await;
    unavailable("mget", store.mget(std::slice::from_ref(&k))).await;
    unavailable("incr", store.incr(&k)).await;
    unavailable(
        "compare_and_swap",
        store.compare_and_swap(&k, "v", Some("w"), None),
    )
    .await;
    unavailable(
        "hash_create",
        store.hash_create(&k, &[("a", "1".into())], Duration::from_secs(1)),
    )
    .await;
    unavailable("append_event", store.append_event(&progress_event(&g))).await;
    unavailable("read_events", store.read_events(g.as_str(), None)).await;
    unavailable(
        "publish",
        store.publish(&store.keys().events_channel(), "x"),
    )
    .await;
    let error = ApiError::from(store.get(&k).await.unwrap_err());
    assert_eq!(
        (error.code.as_str(), error.status(), error.retry_after_secs),
        ("store_unavailable", 503, Some(1))
    );

    server.restart();
    eventually("ping after restart", || store.ping()).await;
    store.set(&k, "after", None).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("after"));

    // The subscriptions re-establish themselves and say so to existing receivers:
    // the process's, and each generation's (subscribed again, on its own
    // connection), so that its streams re-read what they missed.
    let followed = store.keys().generation_channel("followed");
    let reconnected = async {
        let (mut process, mut generation) = (false, false);
        while !(process && generation) {
            match before_outage.recv().await {
                Ok(PubSubMessage::Reconnected) => process = true,
                Ok(PubSubMessage::Resubscribed { channel }) => {
                    assert_eq!(*channel, *followed);
                    generation = true;
                }
                Ok(PubSubMessage::Message { .. }) => {}
                Err(e) => panic!("subscription ended: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reconnected)
        .await
        .expect("no Reconnected and Resubscribed within 10 s");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while store.generation_subscriptions().values().sum::<usize>() != 1 {
        assert!(std::time::Instant::now() < deadline, "not counted again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut after_outage = eventually("subscribe after restart", || store.subscribe()).await;
    let channel = store.keys().events_channel();
    store.publish(&channel, "back").await.unwrap();
    assert_eq!(next_message(&mut after_outage, &channel).await, "back");
    assert_eq!(next_message(&mut before_outage, &channel).await, "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_first_tried_during_an_outage_works_after_restart() {
    let server = RedisServer::start();
    let store = redis_store_at(&server.url());
    server.stop();
    unavailable("subscribe", store.subscribe()).await;

    server.restart();
    let mut rx = eventually("subscribe after restart", || store.subscribe()).await;
    let channel = store.keys().notices_channel();
    store.publish(&channel, "hello").await.unwrap();
    assert_eq!(next_message(&mut rx, &channel).await, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_not_accepted_unchecked_while_redis_is_down() {
    let server = RedisServer::start();
    let store: Store = redis_store_at(&server.url());
    let jwt = Jwt::new(store.clone());
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    jwt.validator
        .validate::<AccessClaims>(&token, now)
        .await
        .unwrap();
    let grant = StreamGrant {
        user_id: "user-1".into(),
        session_id: "sid-1".into(),
        generation_id: "g-1".into(),
        issued_at: now.millis(),
        client_ip: None,
        admin: false,
        tier: Default::default(),
        kind: GrantKind::Token,
        session_expires_at: now.millis() + 3_600_000,
        expires_at: None,
    };
    let secret = streams::mint(&store, &grant, Duration::from_secs(60), now)
        .await
        .unwrap();

    server.stop();
    // The local revocation view answers only while it can show it heard from Redis
    // within the freshness bound (nothing can be revoked while Redis is down anyway);
    // it stops answering at once when its connection fails.
    authstream_testkit::revocations_stale(&store).await;
    let started = Instant::now();
    let err = jwt
        .validator
        .validate::<AccessClaims>(&token, now)
        .await
        .unwrap_err();
    assert!(started.elapsed() < FAIL_FAST);
    assert!(matches!(err, TokenError::Store(_)), "{err:?}");
    assert_eq!(
        code_of(&token, err),
        "store_unavailable",
        "revocation could not be checked: refuse"
    );
    // The signature and claims alone still check out; only the store is missing.
    jwt.validator
        .decode::<AccessClaims>(&token, now)
        .await
        .unwrap();

    unavailable("consume", streams::consume(&store, "g-1", &secret)).await;
    let mint = streams::mint(&store, &grant, Duration::from_secs(60), now)
        .await
        .map(|s: StreamSecret| s.digest());
    assert!(matches!(
        mint,
        Err(authstream_store::StoreError::Unavailable(_))
    ));
    unavailable("stats", streams::stats(&store, now)).await;
}

/// A connection that goes silent (a NAT or proxy forgot it: no error, no answer) fails
/// requests within the timeout, and is replaced by itself: the store answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_is_replaced() {
    let proxy = SilencingProxy::start(shared_redis().port()).await;
    let store = redis_store_at(&proxy.url());
    let k = key(&store, "k");
    store.set(&k, "v", None).await.unwrap();
    revocations_fresh(&store).await;

    proxy.silence_open_connections();
    unavailable("get", store.get(&k)).await;
    let value = eventually("get after the silence", || store.get(&k)).await;
    assert_eq!(value.as_deref(), Some("v"));
    // The revocation log's reader found a new connection too.
    revocations_fresh(&store).await;
}
