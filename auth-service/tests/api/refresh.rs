use std::collections::HashSet;

use authstream_client::answer;
use authstream_proto::auth::{SessionView, TokenPair};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::StatusCode;

#[tokio::test]
async fn refresh_rotates_the_pair_and_keeps_the_session() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let res = app.refresh(&user.refresh).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let next: TokenPair = answer::json(res).await.unwrap();
    assert_ne!(next.refresh_token, user.refresh);
    assert_ne!(next.access_token, user.access);
    assert_eq!(next.session_id, user.session_id);
    app.me(&next.access_token).await.unwrap();
    // The successor rotates again.
    app.refresh(&next.refresh_token).await.unwrap();
}

#[tokio::test]
async fn reuse_within_the_grace_window_returns_the_same_successor_pair() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let a = app.refresh(&user.refresh).await.unwrap();
    let b = app.refresh(&user.refresh).await.unwrap();
    assert_eq!(a.access_token, b.access_token);
    assert_eq!(a.refresh_token, b.refresh_token);
    // And the session is still fine.
    app.me(&a.access_token).await.unwrap();
}

#[tokio::test]
async fn reuse_after_the_grace_window_is_theft_and_revokes_the_session() {
    let app = spawn_auth_with(&[("REFRESH_REUSE_GRACE_SECS", "0")]).await;
    let user = app.signup().await;
    let other = app.login(&user.email).await;
    let next = app.refresh(&user.refresh).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let res = app.refresh(&user.refresh).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    // The thief's and the owner's tokens of that session are all dead now.
    let res = app.me(&next.access_token).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    let res = app.refresh(&next.refresh_token).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    // Other sessions of the user are untouched.
    app.me(&other.access).await.unwrap();
}

#[tokio::test]
async fn a_token_older_than_the_last_rotation_is_theft_even_within_the_grace_window() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let b = app.refresh(&user.refresh).await.unwrap();
    let c = app.refresh(&b.refresh_token).await.unwrap();
    // A was retired two rotations ago: only B may still return C.
    let res = app.refresh(&user.refresh).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    let res = app.me(&c.access_token).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
}

#[tokio::test]
async fn a_refresh_moves_the_sessions_last_seen_time() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let session = |access: String| {
        let app = &app;
        async move {
            let list: Vec<SessionView> = app.bearer(&access).sessions().await.unwrap();
            list[0].clone()
        }
    };
    let before = session(user.access.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let next = app.refresh(&user.refresh).await.unwrap();
    let after = session(next.access_token).await;
    assert_eq!(after.session_id, before.session_id);
    assert_eq!(after.created_at, before.created_at);
    assert!(
        after.last_seen_at > before.last_seen_at,
        "{before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let attempts = (0..20).map(|_| app.refresh(&user.refresh).answer());
    let results = futures_util::future::join_all(attempts).await;
    let mut pairs = HashSet::new();
    for pair in results {
        let pair = pair.unwrap();
        pairs.insert((pair.access_token, pair.refresh_token));
    }
    assert_eq!(pairs.len(), 1, "every racer got the one successor pair");
}

#[tokio::test]
async fn only_refresh_tokens_refresh() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let res = app.refresh(&user.access).send().await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;
    let res = app.refresh("garbage").send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_auth_with(&[("REFRESH_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app.refresh(&user.refresh).send().await.unwrap();
    assert_problem(res, 401, "token_expired").await;
}
