//! The generated OpenAPI document.

use authstream_testkit::stream::spawn_app;

#[tokio::test]
async fn every_route_is_in_the_document() {
    let app = spawn_app().await;
    let served = authstream_testkit::assert_documented_routes_answer(
        &app.address,
        &[
            ("get", "/generations/generate/{generation_id}/stream"),
            ("get", "/generations/generate/{generation_id}/ws"),
            ("post", "/generations/{generation_id}/events"),
            ("get", "/readyz"),
        ],
        &[],
    )
    .await;
    // The OpenAPI document is no wire type of the service: read as JSON.
    let stream = &served["paths"]["/generations/generate/{generation_id}/stream"]["get"];
    assert_eq!(stream["security"][0]["stream_token"], serde_json::json!([]));
    assert_eq!(
        stream["responses"]["401"]["$ref"],
        "#/components/responses/Unauthorized"
    );
    let publish = &served["paths"]["/generations/{generation_id}/events"]["post"];
    assert_eq!(
        publish["responses"]["409"]["$ref"],
        "#/components/responses/Conflict"
    );
    assert_eq!(
        publish["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewEventBody"
    );
}
