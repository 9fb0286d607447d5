//! Sessions are bounded: in age (`SESSION_MAX_AGE_SECS`, however often refreshed) and
//! in number per user (`SESSIONS_MAX_PER_USER`, the least recently used one ends).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{PASSWORD, assert_problem, spawn_app_with};

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_often_it_is_refreshed() {
    let app = spawn_app_with(&[("SESSION_MAX_AGE_SECS", "2")]).await;
    let user = app.signup().await;
    let session_key = app.store.keys().session(&user.user_id, &user.session_id);
    // Within its age a refresh works, and no token of it outlives the session.
    let res = app.refresh(&user.refresh).await;
    assert_eq!(res.status(), 200);
    let pair: Value = res.json().await.unwrap();
    assert!(pair["expires_in"].as_i64().unwrap() <= 2, "{pair}");
    let pttl = app.store.pttl(&session_key).await.unwrap().unwrap();
    assert!(pttl <= Duration::from_secs(2), "kept {pttl:?}");

    let generation = format!("aged-{}", uuid::Uuid::new_v4().simple());
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(
        app.create_generation(access, &generation).await.status(),
        201
    );

    // Until the session is past its age (from the login, not from the refresh).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Within the clock leeway its access token still verifies, but no stream token
    // is minted for a session that has ended.
    let res = app.stream_token(access, &generation).await;
    assert_problem(res, 401, "invalid_token").await;
    let refreshed = pair["refresh_token"].as_str().unwrap();
    assert_problem(app.refresh(refreshed).await, 401, "invalid_token").await;
    assert!(
        !app.store.exists(&session_key).await.unwrap(),
        "the session is gone"
    );
    // A new login starts a new session.
    let again = app.login(&user.email).await;
    assert_eq!(app.me(&again.access).await.status(), 200);
}

#[tokio::test]
async fn a_login_past_the_cap_ends_the_least_recently_used_session_and_its_tokens() {
    let app = spawn_app_with(&[("SESSIONS_MAX_PER_USER", "2")]).await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    // The first is used again: the second is now the least recently used.
    let res = app.refresh(&first.refresh).await;
    assert_eq!(res.status(), 200);
    let first_pair: Value = res.json().await.unwrap();
    let first_access = first_pair["access_token"].as_str().unwrap();

    let res = app.login_as(&first.email, PASSWORD, "third").await;
    assert_eq!(res.status(), 200);
    let third: Value = res.json().await.unwrap();
    let third_access = third["access_token"].as_str().unwrap();

    // The evicted session is revoked properly: its access and refresh tokens are dead.
    assert_problem(app.me(&second.access).await, 401, "token_revoked").await;
    assert_problem(app.refresh(&second.refresh).await, 401, "token_revoked").await;
    assert_eq!(app.me(first_access).await.status(), 200);
    let listed: Vec<Value> = app.get_json("/auth/sessions", third_access).await;
    let mut ids: Vec<&str> = listed
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![
        first.session_id.as_str(),
        third["session_id"].as_str().unwrap(),
    ];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}
