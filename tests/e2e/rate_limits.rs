//! One user budget across the two services, across auth-service instances on one
//! Redis, and in the single process.

use std::net::TcpListener;
use std::time::Duration;

use authstream_client::AuthClient;
use authstream_store::RedisStore;
use authstream_store::Store;
use authstream_testkit::assert_problem;
use authstream_testkit::stack::*;
use reqwest::{Response, StatusCode};

fn ratelimit(res: &Response) -> String {
    authstream_testkit::header_text(res, "ratelimit")
}

/// `GET /auth/me` at this auth service as the holder of `access`, whatever it answers.
async fn me(accounts: &Accounts, access: &str) -> Response {
    sent(accounts.me(access)).await
}

async fn assert_limited(res: Response) {
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "rate_limited").await;
}

#[tokio::test]
async fn one_budget_across_the_auth_and_the_stream_service() {
    let stack = spawn_stack_with(&[("RATE_LIMIT_FREE", "4/600s")]).await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "g-budget")
        .await
        .generation_id;
    let first = stack.stream_token(&user.access, "g-budget").await.sse_token;
    let second = stack.stream_token(&user.access, "g-budget").await.sse_token;
    let opened = sent(stack.stream.open(&id, &first)).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(
        ratelimit(&opened).starts_with("\"free\";r=0;"),
        "{}",
        ratelimit(&opened)
    );
    // Spent on both sides: the stream service refuses, and so does the auth service.
    assert_limited(sent(stack.stream.open(&id, &second)).await).await;
    assert_limited(me(&stack, &user.access).await).await;
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
    let other = Accounts::new(AuthClient::new(stack.auth.http().clone(), &other));
    let user = stack.signup().await;
    for (i, accounts) in [&stack.accounts, &other, &stack.accounts, &other]
        .iter()
        .enumerate()
    {
        let res = me(accounts, &user.access).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(ratelimit(&res).starts_with(&format!("\"free\";r={};", 3 - i)));
    }
    assert_limited(me(&stack, &user.access).await).await;
    assert_limited(me(&other, &user.access).await).await;
}

#[tokio::test]
async fn the_single_process_shares_one_budget_between_its_auth_and_stream_routes() {
    let stack = spawn_embedded(&[("RATE_LIMIT_FREE", "3/600s")]).await;
    let user = stack.signup().await;
    let id = stack
        .create_generation(&user.access, "g-one")
        .await
        .generation_id;
    let token = stack.stream_token(&user.access, "g-one").await.sse_token;
    let opened = sent(stack.stream.open(&id, &token)).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(ratelimit(&opened).starts_with("\"free\";r=0;"));
    assert_limited(me(&stack, &user.access).await).await;
}
