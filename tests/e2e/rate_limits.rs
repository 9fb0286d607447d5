//! One user budget across the two services, across auth-service instances on one
//! Redis, and in the single process.

use std::net::TcpListener;
use std::time::Duration;

use authstream_store::RedisStore;
use authstream_store::Store;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::*;

fn ratelimit(res: &Response) -> String {
    authstream_testkit::header_text(res, "ratelimit")
}

async fn me(stack: &Stack, base: &str, access: &str) -> Response {
    stack
        .http
        .get(format!("{base}/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn assert_limited(res: Response) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
}

#[tokio::test]
async fn one_budget_across_the_auth_and_the_stream_service() {
    let stack = spawn_stack_with(&[("RATE_LIMIT_FREE", "4/600s")]).await;
    let user = stack.signup().await;
    stack.create_generation(&user.access, "g-budget").await;
    let first = stack.stream_token(&user.access, "g-budget").await;
    let second = stack.stream_token(&user.access, "g-budget").await;
    let opened = stack.open("g-budget", &first).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(
        ratelimit(&opened).starts_with("\"free\";r=0;"),
        "{}",
        ratelimit(&opened)
    );
    // Spent on both sides: the stream service refuses, and so does the auth service.
    assert_limited(stack.open("g-budget", &second).await).await;
    assert_limited(me(&stack, &stack.auth, &user.access).await).await;
}

#[tokio::test]
async fn one_budget_across_two_auth_service_instances_on_one_redis() {
    let vars = [("RATE_LIMIT_FREE", "4/600s")];
    let stack = spawn_stack_with(&vars).await;
    let store = Store::redis(
        RedisStore::connect(
            &authstream_testkit::shared_redis().url(),
            Duration::from_millis(500),
        )
        .unwrap(),
        stack.store.keys().prefix(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = spawn_auth_with(listener, store, stack.auth_keys.clone().unwrap(), &vars);
    let user = stack.signup().await;
    for (i, base) in [&stack.auth, &other, &stack.auth, &other]
        .iter()
        .enumerate()
    {
        let res = me(&stack, base, &user.access).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(ratelimit(&res).starts_with(&format!("\"free\";r={};", 3 - i)));
    }
    assert_limited(me(&stack, &stack.auth, &user.access).await).await;
    assert_limited(me(&stack, &other, &user.access).await).await;
}

#[tokio::test]
async fn the_single_process_shares_one_budget_between_its_auth_and_stream_routes() {
    let stack = spawn_embedded(&[("RATE_LIMIT_FREE", "3/600s")]).await;
    let user = stack.signup().await;
    stack.create_generation(&user.access, "g-one").await;
    let token = stack.stream_token(&user.access, "g-one").await;
    let opened = stack.open("g-one", &token).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(ratelimit(&opened).starts_with("\"free\";r=0;"));
    assert_limited(me(&stack, &stack.auth, &user.access).await).await;
}
