use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn refresh_rotates_the_pair_and_keeps_the_session() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let res = app.refresh(&user.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let next: Value = res.json().await.unwrap();
    assert_ne!(next["refresh_token"], user.refresh.as_str());
    assert_ne!(next["access_token"], user.access.as_str());
    assert_eq!(next["session_id"], user.session_id.as_str());
    assert_eq!(
        app.me(next["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // The successor rotates again.
    let third = app.refresh(next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(third.status(), StatusCode::OK);
}

#[tokio::test]
async fn reuse_within_the_grace_window_returns_the_same_successor_pair() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let a: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    let b: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    assert_eq!(a["access_token"], b["access_token"]);
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    // And the session is still fine.
    assert_eq!(
        app.me(a["access_token"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn reuse_after_the_grace_window_is_theft_and_revokes_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE_SECS", "0")]).await;
    let user = app.signup().await;
    let other = app.login(&user.email).await;
    let next: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_problem(app.refresh(&user.refresh).await, 401, "token_revoked").await;
    // The thief's and the owner's tokens of that session are all dead now.
    assert_problem(
        app.me(next["access_token"].as_str().unwrap()).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(
        app.refresh(next["refresh_token"].as_str().unwrap()).await,
        401,
        "token_revoked",
    )
    .await;
    // Other sessions of the user are untouched.
    assert_eq!(app.me(&other.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_older_than_the_last_rotation_is_theft_even_within_the_grace_window() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let b: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    let c: Value = app
        .refresh(b["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    // A was retired two rotations ago: only B may still return C.
    assert_problem(app.refresh(&user.refresh).await, 401, "token_revoked").await;
    assert_problem(
        app.me(c["access_token"].as_str().unwrap()).await,
        401,
        "token_revoked",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_moves_the_sessions_last_seen_time() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let session = |access: String| {
        let app = &app;
        async move {
            let list: Value = app.get_json("/auth/sessions", &access).await;
            list[0].clone()
        }
    };
    let before = session(user.access.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let next: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    let after = session(next["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(after["session_id"], before["session_id"]);
    assert_eq!(after["created_at"], before["created_at"]);
    assert!(
        after["last_seen_at"].as_i64().unwrap() > before["last_seen_at"].as_i64().unwrap(),
        "{before} -> {after}"
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let attempts = (0..20).map(|_| app.refresh(&user.refresh));
    let results = futures_util::future::join_all(attempts).await;
    let mut pairs = HashSet::new();
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        pairs.insert((
            body["access_token"].to_string(),
            body["refresh_token"].to_string(),
        ));
    }
    assert_eq!(pairs.len(), 1, "every racer got the one successor pair");
}

#[tokio::test]
async fn only_refresh_tokens_refresh() {
    let app = spawn_app().await;
    let user = app.signup().await;
    assert_problem(app.refresh(&user.access).await, 401, "wrong_token_type").await;
    assert_problem(app.refresh("garbage").await, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_problem(app.refresh(&user.refresh).await, 401, "token_expired").await;
}
