//! The two services on a real Redis Cluster (three masters, a password on every
//! node), two replicas of each, behaving as one system: a user signs in on one auth
//! replica and refreshes on the other; a stream opened on one stream replica gets the
//! events published through the other; a logout on either auth replica ends the
//! stream and the tokens everywhere; a stream token works once across replicas.

use std::time::{Duration, Instant};

use authstream_testkit::{RedisCluster, cluster_store_sharing, unique_prefix};
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Two auth and two stream replicas on one cluster, as `(a, b)`: `a` is auth 1 with
/// stream 1, `b` auth 2 with stream 2.
pub(crate) async fn two_replicas_each(cluster: &RedisCluster) -> (Stack, Stack) {
    authstream_testkit::logs();
    let seeds = cluster.seeds();
    let prefix = unique_prefix();
    let store = || cluster_store_sharing(&seeds, &prefix);
    let settings = auth_service::config::Settings::from_env(&std::collections::HashMap::from([(
        "SERVICE_CLIENTS".to_owned(),
        "[]".to_owned(),
    )]))
    .unwrap();
    // Both auth replicas sign with the same keys, as replicas sharing a key directory.
    let keys = settings.common.signing_keys().unwrap();
    let stack = |auth: String, stream: String| Stack {
        auth,
        stream,
        store: store(),
        http: reqwest::Client::new(),
        auth_keys: Some(keys.clone()),
    };
    let auth = |_: u8| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        spawn_auth(listener, store(), keys.clone())
    };
    let (auth1, auth2) = (auth(1), auth(2));
    let stream1 = spawn_stream(&auth1, store(), None);
    let stream2 = spawn_stream(&auth2, store(), None);
    (stack(auth1, stream1), stack(auth2, stream2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_each_service_on_a_cluster_behave_as_one_system() {
    let cluster = RedisCluster::start(3, 0);
    let (a, b) = two_replicas_each(&cluster).await;
    for stack in [&a, &b] {
        let ready: Value = stack
            .http
            .get(format!("{}/readyz", stack.auth))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["store"], "redis-cluster");
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["nodes"].as_array().unwrap().len(), 3, "{ready}");
    }

    // Signed in on one auth replica, refreshed on the other, with the rotation rules.
    let user = a.signup().await;
    let login: Value = a
        .http
        .post(format!("{}/auth/login", b.auth))
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = |stack: &Stack, token: &str| {
        let req = stack
            .http
            .post(format!("{}/auth/refresh", stack.auth))
            .json(&json!({"refresh_token": token}));
        async move { req.send().await.unwrap() }
    };
    let first = refresh(&a, login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    // The just-retired token again, within the grace: the same successor pair.
    let again: Value = refresh(&b, login["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    let access = first["access_token"].as_str().unwrap().to_owned();

    // A generation created on one replica streams through the other.
    b.create_generation(&access, "cluster-1").await;
    let backend = b.service_token(BACKEND).await;
    let mut on_b = b.stream(&access, "cluster-1").await;
    let mut on_a = a.stream(&user.access, "cluster-1").await;
    let mut ids = Vec::new();
    for p in [0.25, 0.5] {
        let res = a
            .publish(&backend, "cluster-1", progress("processing", p))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        for events in [&mut on_a, &mut on_b] {
            let event = next_event(events).await.expect("an event");
            assert_eq!(event.id, *ids.last().unwrap());
        }
    }
    // A stream token works once, on whichever replica it is presented.
    let token = a.stream_token(&access, "cluster-1").await;
    let res = b
        .http
        .get(format!(
            "{}/generations/generate/cluster-1/stream?token={token}&last_event_id={}",
            b.stream, ids[0]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Resumed after the first event: exactly the second, then live ones.
    let mut resumed = Box::pin(
        res.bytes_stream()
            .eventsource()
            .filter_map(|e| async move { e.ok() }),
    );
    next_event(&mut resumed).await.expect("connected");
    assert_eq!(next_event(&mut resumed).await.unwrap().id, ids[1]);
    let replay = a.open("cluster-1", &token).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // A logout through one auth replica ends that session's streams on both stream
    // replicas within a second, and its token everywhere.
    let res = b
        .http
        .post(format!("{}/auth/logout", b.auth))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), async {
        while on_b.next().await.is_some() {}
        while resumed.next().await.is_some() {}
    })
    .await
    .expect("the revoked session's streams ended");
    assert!(started.elapsed() < Duration::from_secs(2));
    // At once on the replica that revoked; on the other within the 50 ms bound (a
    // process that cannot show its view is that fresh asks the store).
    tokio::time::sleep(Duration::from_millis(60).saturating_sub(started.elapsed())).await;
    for stack in [&b, &a] {
        let res = stack
            .http
            .get(format!("{}/auth/validate", stack.auth))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "token_revoked");
    }

    // The other session's stream goes on, and ends with the generation.
    let res = b
        .publish(&backend, "cluster-1", progress("completed", 1.0))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let last = next_event(&mut on_a).await.expect("the last event");
    assert_eq!(
        serde_json::from_str::<Value>(&last.data).unwrap()["status"],
        "completed"
    );
    assert!(next_event(&mut on_a).await.is_none());
}
