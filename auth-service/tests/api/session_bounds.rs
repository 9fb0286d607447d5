//! Sessions are bounded: in age (`SESSION_MAX_AGE_SECS`, however often refreshed) and
//! in number per user (`SESSIONS_MAX_PER_USER`, the least recently used one ends).

use std::time::Duration;

use authstream_testkit::assert_problem;
use authstream_testkit::auth::{PASSWORD, spawn_auth_with};

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_often_it_is_refreshed() {
    let app = spawn_auth_with(&[("SESSION_MAX_AGE_SECS", "2")]).await;
    let user = app.signup().await;
    let session_key = app.store.keys().session(&user.user_id, &user.session_id);
    // Within its age a refresh works, and no token of it outlives the session.
    let pair = app.refresh(&user.refresh).await.unwrap();
    assert!(pair.expires_in <= 2, "{pair:?}: {}", pair.expires_in);
    let pttl = app.store.pttl(&session_key).await.unwrap().unwrap();
    assert!(pttl <= Duration::from_secs(2), "kept {pttl:?}");

    let generation = format!("aged-{}", uuid::Uuid::new_v4().simple());
    let access = &pair.access_token;
    app.create_generation(access, &generation).await;

    // Until the session is past its age (from the login, not from the refresh).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Within the clock leeway its access token still verifies, but no stream token
    // is minted for a session that has ended.
    let res = app.mint(access, &generation).send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    let res = app.refresh(&pair.refresh_token).send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    assert!(
        !app.store.exists(&session_key).await.unwrap(),
        "the session is gone"
    );
    // A new login starts a new session.
    let again = app.login(&user.email).await;
    app.me(&again.access).await.unwrap();
}

#[tokio::test]
async fn a_login_past_the_cap_ends_the_least_recently_used_session_and_its_tokens() {
    let app = spawn_auth_with(&[("SESSIONS_MAX_PER_USER", "2")]).await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    // The first is used again: the second is now the least recently used.
    let first_pair = app.refresh(&first.refresh).await.unwrap();

    let third = app
        .login_as(&first.email, PASSWORD)
        .header("user-agent", "third")
        .await
        .unwrap();

    // The evicted session is revoked properly: its access and refresh tokens are dead.
    let res = app.me(&second.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    let res = app.refresh(&second.refresh).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    app.me(&first_pair.access_token).await.unwrap();
    let listed = app.bearer(&third.access_token).sessions().await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|s| s.session_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![first.session_id.as_str(), third.session_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}
