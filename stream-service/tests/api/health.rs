//! Health, metrics, the OpenAPI document, and errors for routes that do not exist.

use authstream_proto::ops::Health;
use authstream_testkit::assert_problem;
use authstream_testkit::stream::spawn_app;
use reqwest::Method;

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    assert_eq!(app.client.healthz().await.unwrap(), Health::ok());
    let ready = app.client.readyz().await.unwrap();
    assert_eq!(ready.store, "redis");

    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    stream.take(1).await;
    app.progress(&generation, 0.5).await;
    assert!(app.metric("authstream_stream_opens_total{").await >= 1.0);
    assert!(app.metric("authstream_events_published_total{").await >= 1.0);
    assert!(app.metric("authstream_streams_open{").await >= 1.0);

    // The OpenAPI document is no wire type of the service: read as JSON.
    let doc = app.client.openapi().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/generations/generate/{generation_id}/stream",
        "/generations/generate/{generation_id}/ws",
        "/generations/{generation_id}/events",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(Method::GET, "/nowhere")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = app
        .client
        .request(Method::GET, "/generations/g/events")
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method_not_allowed").await;
}
