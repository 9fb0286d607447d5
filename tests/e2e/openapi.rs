//! The single process serves one document of both services' routes.

use std::collections::HashMap;

use actix_web::web;
use authstream_security::jwt::KeySource;
use authstream_store::Store;
use authstream_web::openapi::ApiDocument;

use authstream_testkit::stack::spawn_embedded;

#[tokio::test]
async fn the_one_process_documents_every_route_of_both_services() {
    let stack = spawn_embedded(&[]).await;
    let empty: HashMap<String, String> = HashMap::new();
    let env = authstream::EmbeddedEnv::new(&empty).unwrap();
    let auth = auth_service::config::Settings::from_env(&env).unwrap();
    let stream = stream_service::config::Settings::from_env(&env).unwrap();
    let store = Store::memory("openapi");
    let keys = auth.common.signing_keys().unwrap();
    let auth_state =
        web::Data::new(auth_service::AuthState::new(auth, store.clone(), keys.clone()).unwrap());
    let stream_state = web::Data::new(
        stream_service::StreamState::new(stream, store, KeySource::Local(keys)).unwrap(),
    );
    let document = ApiDocument::new(&authstream::document(true)).unwrap();
    let (_, served) = authstream_testkit::assert_every_route_documented(
        |cfg| authstream::routes(cfg, &auth_state, &stream_state, &document),
        stack.auth.base(),
        &[
            ("post", "/auth/login"),
            ("get", "/generations/generate/{generation_id}/stream"),
            ("post", "/generations/{generation_id}/events"),
            ("post", "/demo/generations/{generation_id}/simulate"),
            ("get", "/metrics"),
        ],
    )
    .await;
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["title"], "authstream");
}
