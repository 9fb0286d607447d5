//! The two services on a real Redis Cluster (three masters, a password on every
//! node), two replicas of each, behaving as one system: a user signs in on one auth
//! replica and refreshes on the other; a stream opened on one stream replica gets the
//! events published through the other; a logout on either auth replica ends the
//! stream and the tokens everywhere; a stream token works once across replicas.

use std::time::{Duration, Instant};

use authstream_client::StreamQuery;
use authstream_proto::GenerationStatus::{Completed, Processing};
use authstream_proto::auth::RefreshBody;
use authstream_proto::ops::ReadyStatus;
use authstream_testkit::stack::*;
use authstream_testkit::{RedisCluster, assert_problem, cluster_store_sharing, unique_prefix};
use reqwest::StatusCode;

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
    let stack =
        |auth: String, stream: String| Stack::new(&auth, &stream, store(), Some(keys.clone()));
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
        let ready = stack.auth.readyz().await.unwrap();
        assert_eq!(ready.store, "redis-cluster");
        assert_eq!(ready.status, ReadyStatus::Ready);
        assert_eq!(ready.nodes.as_ref().map(Vec::len), Some(3), "{ready:?}");
    }

    // Signed in on one auth replica, refreshed on the other, with the rotation rules.
    let user = a.signup().await;
    let login = b.login(&user.email).await;
    let retired = RefreshBody {
        refresh_token: login.refresh.clone(),
    };
    let first = a.auth.refresh(&retired).await.unwrap();
    // The just-retired token again, within the grace: the same successor pair.
    let again = b.auth.refresh(&retired).await.unwrap();
    assert_eq!(again.refresh_token, first.refresh_token);
    let access = first.access_token;

    // A generation created on one replica streams through the other.
    let id = b.create_generation(&access, "cluster-1").await;
    let backend = b.service_token(BACKEND).await;
    let mut on_b = b.stream(&access, "cluster-1").await;
    let mut on_a = a.stream(&user.access, "cluster-1").await;
    let mut ids = Vec::new();
    for p in [0.25, 0.5] {
        let event = progress(Processing, p);
        let published = a.publish(&backend, "cluster-1", &event).await.unwrap();
        ids.push(published.id);
        for events in [&mut on_a, &mut on_b] {
            let event = next_event(events).await.expect("an event");
            assert_eq!(event.id, *ids.last().unwrap());
        }
    }
    // A stream token works once, on whichever replica it is presented.
    let token = a.stream_token(&access, "cluster-1").await;
    let query = StreamQuery {
        token: Some(&token),
        last_event_id: Some(&ids[0]),
    };
    // Resumed after the first event: exactly the second, then live ones.
    let mut resumed = b.stream.open_with(&id, query).await.unwrap();
    next_event(&mut resumed).await.expect("connected");
    assert_eq!(next_event(&mut resumed).await.unwrap().id, ids[1]);
    let replay = sent(a.stream.open(&id, &token)).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // A logout through one auth replica ends that session's streams on both stream
    // replicas within a second, and its token everywhere.
    let res = sent(b.auth_as(&access).logout()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), async {
        until_end(&mut on_b).await;
        until_end(&mut resumed).await;
    })
    .await
    .expect("the revoked session's streams ended");
    assert!(started.elapsed() < Duration::from_secs(2));
    // At once on the replica that revoked; on the other within the 50 ms bound (a
    // process that cannot show its view is that fresh asks the store).
    tokio::time::sleep(Duration::from_millis(60).saturating_sub(started.elapsed())).await;
    for stack in [&b, &a] {
        let res = sent(stack.auth_as(&access).validate(None)).await;
        assert_problem(res, 401, "token_revoked").await;
    }

    // The other session's stream goes on, and ends with the generation.
    let completed = progress(Completed, 1.0);
    b.publish(&backend, "cluster-1", &completed).await.unwrap();
    let last = next_event(&mut on_a).await.expect("the last event");
    assert_eq!(last.data.status, Some(Completed));
    assert!(next_event(&mut on_a).await.is_none());
}
