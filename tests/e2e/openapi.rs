//! The single process serves one document of both services' routes.

use authstream_testkit::stack::spawn_embedded;

#[tokio::test]
async fn the_one_process_documents_every_route_of_both_services() {
    let stack = spawn_embedded(&[]).await;
    let served = authstream_testkit::assert_documented_routes_answer(
        stack.auth.base(),
        &[
            ("post", "/auth/login"),
            ("get", "/generations/generate/{generation_id}/stream"),
            ("post", "/generations/{generation_id}/events"),
            ("post", "/demo/generations/{generation_id}/simulate"),
            ("get", "/metrics"),
        ],
        &[
            ("/static/{file}", "/static/app.css"),
            ("/clients/js/{file}", "/clients/js/authstream.js"),
        ],
    )
    .await;
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["title"], "authstream");
}
