//! `POST /generations/{id}/events`: who may publish, and what.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn publishing_needs_a_service_token_with_the_publish_scope() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let url = app.url(&format!("/generations/{generation}/events"));
    let body = json!({ "status": "processing" });

    let res = app.http.post(&url).json(&body).send().await.unwrap();
    assert_problem(res, 401, "missing_token").await;

    let access = app.access_token("u", "s");
    let res = app
        .http
        .post(&url)
        .bearer_auth(&access)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "wrong_token_type").await;

    let res = app
        .http
        .post(&url)
        .bearer_auth("not.a.jwt")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;

    let other_scopes = app.service_token(&["generations:write"]);
    let res = app
        .http
        .post(&url)
        .bearer_auth(&other_scopes)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "insufficient_scope").await;

    let res = app.publish(&generation, &body).await;
    assert_eq!(res.status(), 202);
    let id: Value = res.json().await.unwrap();
    let stored = app
        .store
        .read_events(&generation, None)
        .await
        .unwrap()
        .events;
    assert_eq!(stored.len(), 1);
    assert_eq!(id["id"], stored[0].0.as_str());
}

#[tokio::test]
async fn the_streamed_object_holds_the_known_fields_then_the_extra_ones() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let res = app
        .publish(
            &generation,
            &json!({
                "status": "processing", "stage": "schema_extraction", "progress": 0.5,
                "message": "Extracting schema...", "timestamp": 1732212345678_i64,
                "current_file": "src/lib.rs", "estimated_time_remaining": 30,
                "event": "connected", "generation_id": "forged"
            }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let stored = app
        .store
        .read_events(&generation, None)
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
    let record = authstream_store::generations::load(
        &app.store,
        &authstream_store::generations::GenerationId::parse(&generation).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        record.status,
        authstream_store::events::GenerationStatus::Processing
    );
    assert_eq!(record.stage.as_deref(), Some("schema_extraction"));
    assert_eq!(record.progress, 0.5);
}

#[tokio::test]
async fn unknown_finished_oversized_and_invalid_events_are_refused() {
    let app = spawn_app().await;
    let res = app
        .publish("no-such-generation", &json!({ "status": "processing" }))
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .publish("bad id!", &json!({ "status": "processing" }))
        .await;
    assert_problem(res, 404, "not_found").await;

    let generation = app.create_generation("u").await;
    let big = json!({ "status": "processing", "blob": "x".repeat(16 * 1024) });
    assert_problem(
        app.publish(&generation, &big).await,
        413,
        "payload_too_large",
    )
    .await;
    // Just under the limit is fine.
    let fits = json!({ "status": "processing", "blob": "x".repeat(16 * 1024 - 40) });
    assert_eq!(app.publish(&generation, &fits).await.status(), 202);

    let bad = json!({
        "status": "done", "stage": "s".repeat(129), "progress": 1.5,
        "message": 42, "timestamp": "yesterday"
    });
    let body = assert_problem(
        app.publish(&generation, &bad).await,
        422,
        "validation_failed",
    )
    .await;
    let fields = body["fields"].as_object().unwrap();
    for field in ["status", "stage", "progress", "message", "timestamp"] {
        assert!(fields.contains_key(field), "{field} not named in {body}");
    }
    let body = assert_problem(
        app.publish(&generation, &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["status"].is_string());
    let res = app
        .http
        .post(app.url(&format!("/generations/{generation}/events")))
        .bearer_auth(app.service_token(&["events:publish"]))
        .header("content-type", "application/json")
        .body("[not json")
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, "validation_failed").await;
    assert!(body["fields"]["body"].is_string());

    app.publish_ok(&generation, "completed", 1.0).await;
    let res = app
        .publish(&generation, &json!({ "status": "processing" }))
        .await;
    assert_problem(res, 409, "generation_finished").await;
    // Only the two accepted events were kept.
    assert_eq!(
        app.store
            .read_events(&generation, None)
            .await
            .unwrap()
            .events
            .len(),
        2
    );
}
