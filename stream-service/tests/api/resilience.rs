//! Redis going away: 503 `store_unavailable` at once, nothing accepted unchecked,
//! and recovery by itself when Redis is back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::keys::KeySet;
use shared::testing::{self, RedisServer};

use crate::helpers::{PATIENCE, assert_problem, ids, spawn_app_on};

#[tokio::test]
async fn a_store_outage_is_a_503_and_the_service_recovers_when_redis_returns() {
    let redis = RedisServer::start();
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    let app = spawn_app_on(testing::redis_store_at(&redis.url()), keys, &[]).await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut open = app.sse(&generation, &token).await;
    open.take(1).await;
    let spare = app.token("u", "s", &generation).await;

    redis.stop();
    let res = app.open_stream(&generation, &spare).await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, 503, "store_unavailable").await;
    let res = app
        .publish(&generation, &json!({ "status": "processing" }))
        .await;
    assert_problem(res, 503, "store_unavailable").await;
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_problem(res, 503, "store_unavailable").await;
    // The process is up all the same.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    redis.restart();
    // Redis came back empty (as after a crash); a client tries again as told by Retry-After.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (generation, mut stream) = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let res = app.http.get(app.url("/readyz")).send().await.unwrap();
        if res.status() != 200 {
            continue;
        }
        let generation = app.create_generation("u").await;
        let token = app.token("u", "s", &generation).await;
        let res = app.open_stream(&generation, &token).await;
        if res.status() == 503 {
            continue;
        }
        break (generation, app.sse_from(res));
    };
    stream.take(1).await;
    let id = app.publish_ok(&generation, "completed", 1.0).await;
    assert_eq!(ids(&stream.until_end().await), [id]);
    app.assert_no_secrets_leaked().await;
}
