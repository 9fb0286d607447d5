//! `POST /generations/{id}/events`: who may publish, and what.

use authstream_proto::GenerationStatus;
use authstream_proto::stream::NewEventBody;
use authstream_store::generations;
use authstream_testkit::assert_problem;
use authstream_testkit::stream::{extra, spawn_app};
use serde_json::json;

#[tokio::test]
async fn publishing_needs_a_service_token_with_the_publish_scope() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let body = NewEventBody::new(GenerationStatus::Processing);
    let publish = |token: Option<&str>| {
        let client = match token {
            Some(token) => app.client.with_token(token),
            None => app.client.clone(),
        };
        client.publish(&generation, &body).send()
    };

    let res = publish(None).await.unwrap();
    assert_problem(res, 401, "missing_token").await;

    let access = app.access_token("u", "s");
    let res = publish(Some(&access)).await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;

    let res = publish(Some("not.a.jwt")).await.unwrap();
    assert_problem(res, 401, "invalid_token").await;

    let other_scopes = app.service_token(&["generations:write"]);
    let res = publish(Some(&other_scopes)).await.unwrap();
    assert_problem(res, 403, "insufficient_scope").await;

    let published = app.publisher().publish(&generation, &body).await.unwrap();
    let stored = app
        .store
        .read_events(generation.as_str(), None)
        .await
        .unwrap()
        .events;
    assert_eq!(stored.len(), 1);
    assert_eq!(published.id, stored[0].0);
}

#[tokio::test]
async fn the_streamed_object_holds_the_known_fields_then_the_extra_ones() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let event = NewEventBody {
        stage: Some("schema_extraction".to_owned()),
        progress: Some(0.5),
        message: Some("Extracting schema...".to_owned()),
        timestamp: Some(1732212345678),
        extra: extra(json!({
            "current_file": "src/lib.rs", "estimated_time_remaining": 30,
            "event": "connected", "generation_id": "forged"
        })),
        ..NewEventBody::new(GenerationStatus::Processing)
    };
    let res = app.publish(&generation, &event).await;
    assert_eq!(res.status(), 202);
    let stored = app
        .store
        .read_events(generation.as_str(), None)
        .await
        .unwrap()
        .events;
    assert_eq!(
        stored[0].1,
        format!(
            "{{\"event\":\"progress\",\"generation_id\":\"{generation}\",\"status\":\"processing\",\
             \"stage\":\"schema_extraction\",\"progress\":0.5,\"message\":\"Extracting schema...\",\
             \"timestamp\":1732212345678,\"current_file\":\"src/lib.rs\",\"estimated_time_remaining\":30}}"
        )
    );
    // The record follows the events.
    let record = generations::load(&app.store, &generation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, GenerationStatus::Processing);
    assert_eq!(record.stage.as_deref(), Some("schema_extraction"));
    assert_eq!(record.progress, 0.5);
}

#[tokio::test]
async fn unknown_finished_oversized_and_invalid_events_are_refused() {
    let app = spawn_app().await;
    let processing = || NewEventBody::new(GenerationStatus::Processing);
    // Well formed, and never created.
    let unknown = "no-such-generation".parse().unwrap();
    let res = app.publish(&unknown, &processing()).await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .publish_raw("bad id!")
        .json(&processing())
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;

    let generation = app.create_generation("u").await;
    let with_blob = |len: usize| NewEventBody {
        extra: extra(json!({ "blob": "x".repeat(len) })),
        ..processing()
    };
    assert_problem(
        app.publish(&generation, &with_blob(16 * 1024)).await,
        413,
        "payload_too_large",
    )
    .await;
    // Just under the limit is fine.
    let res = app.publish(&generation, &with_blob(16 * 1024 - 40)).await;
    assert_eq!(res.status(), 202);

    // Bodies no `NewEventBody` can be: sent as they are.
    let raw = app.publish_raw(generation.as_str());
    let bad = json!({
        "status": "done", "stage": "s".repeat(129), "progress": 1.5,
        "message": 42, "timestamp": "yesterday"
    });
    let res = raw.try_clone().unwrap().json(&bad).send().await.unwrap();
    let problem = assert_problem(res, 422, "validation_failed").await;
    for field in ["status", "stage", "progress", "message", "timestamp"] {
        assert!(
            problem.fields.contains_key(field),
            "{field} not named in {problem:?}"
        );
    }
    let res = raw
        .try_clone()
        .unwrap()
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(problem.fields.contains_key("status"), "{problem:?}");
    let res = raw
        .header("content-type", "application/json")
        .body("[not json")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(problem.fields.contains_key("body"), "{problem:?}");

    app.complete(&generation).await;
    let res = app.publish(&generation, &processing()).await;
    assert_problem(res, 409, "generation_finished").await;
    // Only the two accepted events were kept.
    assert_eq!(
        app.store
            .read_events(generation.as_str(), None)
            .await
            .unwrap()
            .events
            .len(),
        2
    );
}
