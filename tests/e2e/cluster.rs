//! The two services on a real Redis Cluster (three masters, a password on every
//! node), two replicas of each, behaving as one system: a user signs in on one auth
//! replica and refreshes on the other; a stream opened on one stream replica gets the
//! events published through the other; a logout on either auth replica ends the
//! stream and the tokens everywhere; a stream token works once across replicas.

use std::time::{Duration, Instant};

use authstream_client::StreamQuery;
use authstream_proto::GenerationStatus::{Completed, Processing};
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
    let first = a.refresh(&login.refresh).await.unwrap();
    // The just-retired token again, within the grace: the same successor pair.
    let again = b.refresh(&login.refresh).await.unwrap();
    assert_eq!(again.refresh_token, first.refresh_token);
    let access = first.access_token;

    // A generation created on one replica streams through the other.
    let id = b
        .create_generation(&access, "cluster-1")
        .await
        .generation_id;
    let backend = b.service_token(BACKEND_CLIENT).await;
    let mut on_b = b.follow(&access, "cluster-1").await;
    let mut on_a = a.follow(&user.access, "cluster-1").await;
    let mut ids = Vec::new();
    for p in [0.25, 0.5] {
        let body = event(Processing, p);
        let published = a.publish(&backend, "cluster-1", &body).await.unwrap();
        ids.push(published.id);
        for events in [&mut on_a, &mut on_b] {
            let event = events.next().await.expect("an event");
            assert_eq!(event.id, *ids.last().unwrap());
        }
    }
    // A stream token works once, on whichever replica it is presented.
    let token = a.stream_token(&access, "cluster-1").await.sse_token;
    let query = StreamQuery {
        token: Some(&token),
        last_event_id: Some(&ids[0]),
    };
    // Resumed after the first event: exactly the second, then live ones.
    let mut resumed = OpenStream::new(sent(b.stream.open_with(&id, query)).await);
    resumed.next().await.expect("connected");
    assert_eq!(resumed.next().await.unwrap().id, ids[1]);
    let replay = sent(a.stream.open(&id, &token)).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // A logout through one auth replica ends that session's streams on both stream
    // replicas within a second, and its token everywhere.
    let res = sent(b.bearer(&access).logout()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), async {
        on_b.until_end().await;
        resumed.until_end().await;
    })
    .await
    .expect("the revoked session's streams ended");
    assert!(started.elapsed() < Duration::from_secs(2));
    // At once on the replica that revoked; on the other within the 50 ms bound (a
    // process that cannot show its view is that fresh asks the store).
    tokio::time::sleep(Duration::from_millis(60).saturating_sub(started.elapsed())).await;
    for stack in [&b, &a] {
        let res = sent(stack.bearer(&access).validate(None)).await;
        assert_problem(res, 401, "token_revoked").await;
    }

    // The other session's stream goes on, and ends with the generation.
    let completed = event(Completed, 1.0);
    b.publish(&backend, "cluster-1", &completed).await.unwrap();
    let last = on_a.next().await.expect("the last event");
    assert_eq!(last.data.status, Some(Completed));
    assert!(on_a.next().await.is_none());
}
