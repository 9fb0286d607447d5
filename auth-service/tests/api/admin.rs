use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn an_admin_changes_the_tier_and_new_tokens_carry_it() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let admin = app.admin().await;
    let res = app
        .http
        .patch(app.url(&format!("/auth/users/{}", user.user_id)))
        .bearer_auth(&admin.access)
        .json(&json!({"tier": "paid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["tier"], "paid");
    let old: Value = app.validate(&user.access).await.json().await.unwrap();
    assert_eq!(old["tier"], "free", "an issued token keeps its tier");
    // The next token carries the new tier, from a login and from a refresh alike.
    let renewed = app.login(&user.email).await;
    let refreshed: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    for access in [
        renewed.access.as_str(),
        refreshed["access_token"].as_str().unwrap(),
    ] {
        let new: Value = app.validate(access).await.json().await.unwrap();
        assert_eq!(new["tier"], "paid");
    }
}

#[tokio::test]
async fn user_administration_needs_the_admin_role_or_scope() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let other = app.signup().await;
    let path = format!("/auth/users/{}", other.user_id);
    let res = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&user.access)
        .json(&json!({"tier": "paid"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .post(&format!("{path}/revoke"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let backend = app.service_token(BACKEND_CLIENT).await;
    let res = app
        .post(&format!("{path}/revoke"))
        .bearer_auth(&backend)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "insufficient_scope").await;
    let admin = app.service_token(ADMIN_CLIENT).await;
    let res = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"tier": "gold"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .http
        .patch(app.url("/auth/users/nobody"))
        .bearer_auth(&admin)
        .json(&json!({"tier": "paid"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn revoking_a_user_ends_all_their_tokens_at_once() {
    let app = spawn_app().await;
    // By a service with users:admin, and by a user with the admin role.
    for admin in [
        app.service_token(ADMIN_CLIENT).await,
        app.admin().await.access,
    ] {
        revoke_user_by(&app, &admin).await;
    }
}

async fn revoke_user_by(app: &TestApp, admin: &str) {
    let user = app.signup().await;
    let second = app.login(&user.email).await;
    let bystander = app.signup().await;
    let res = app
        .post(&format!("/auth/users/{}/revoke", user.user_id))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for s in [&user, &second] {
        let res = app.validate(&s.access).await;
        assert_problem(res, 401, "token_revoked").await;
        assert_problem(app.refresh(&s.refresh).await, 401, "token_revoked").await;
    }
    assert_eq!(app.me(&bystander.access).await.status(), StatusCode::OK);
    let again = app.login(&user.email).await;
    assert_eq!(app.me(&again.access).await.status(), StatusCode::OK);
}
