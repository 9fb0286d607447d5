use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn validate_answers_with_the_claims_by_body_header_and_get() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let by_body = app
        .post("/auth/validate")
        .json(&json!({"token": user.access}))
        .send()
        .await
        .unwrap();
    let by_header = app
        .post("/auth/validate")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    let by_get = app
        .get("/auth/validate")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    for res in [by_body, by_header, by_get] {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["sub"], user.user_id.as_str());
        assert_eq!(body["token_type"], "access");
        assert_eq!(body["sid"], user.session_id.as_str());
        assert_eq!(body["email"], user.email.as_str());
        assert_eq!(body["tier"], "free");
        assert_eq!(body["iss"], "authstream");
        assert_eq!(body["aud"], "authstream");
        for claim in ["exp", "iat", "nbf"] {
            assert!(body[claim].is_i64(), "{claim}");
        }
        assert!(body["jti"].is_string());
    }
}

#[tokio::test]
async fn validate_refuses_refresh_tokens_and_service_tokens_unless_asked() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let res = app.validate(&user.refresh).await;
    assert_problem(res, 401, "wrong_token_type").await;
    let service = app.service_token(BACKEND_CLIENT).await;
    let res = app.validate(&service).await;
    assert_problem(res, 401, "wrong_token_type").await;
    let res = app
        .post("/auth/validate?token_type=service")
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sub"], "service:backend");
    assert_eq!(
        body["scopes"],
        json!(["generations:write", "events:publish"])
    );
    let res = app
        .post("/auth/validate?token_type=refresh")
        .json(&json!({"token": user.refresh}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn validate_gives_the_precise_code() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    assert_problem(
        app.post("/auth/validate").send().await.unwrap(),
        401,
        "missing_token",
    )
    .await;
    let res = app.validate("a.b.c").await;
    assert_problem(res, 401, "invalid_token").await;
    // A token of another issuer's key (another app, another ephemeral key).
    let other = spawn_app().await;
    let foreign = other.signup().await;
    let res = app.validate(&foreign.access).await;
    assert_problem(res, 401, "invalid_token").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app.validate(&user.access).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="authstream", error="invalid_token""#
    );
    assert_problem(res, 401, "token_expired").await;
}

#[tokio::test]
async fn revoke_is_immediate_and_reveals_nothing() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let second = app.login(&user.email).await;
    let res = app
        .post("/auth/revoke")
        .json(&json!({"token": user.access}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.validate(&user.access).await;
    assert_problem(res, 401, "token_revoked").await;
    // Only that token: the session's refresh still works, another session too.
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&user.refresh).await.status(), StatusCode::OK);

    // A refresh token revokes its whole session.
    let res = app
        .post("/auth/revoke")
        .json(&json!({"token": second.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.me(&second.access).await, 401, "token_revoked").await;

    // Garbage and already revoked tokens get the same 200.
    for token in ["garbage", user.access.as_str()] {
        let res = app
            .post("/auth/revoke")
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_revocation_entry_lives_only_as_long_as_the_token() {
    // 3 s: long enough that a loaded machine still revokes a live token.
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL_SECS", "3"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    app.post("/auth/revoke")
        .json(&json!({"token": user.access}))
        .send()
        .await
        .unwrap();
    let has_entry = |dump: &[(String, String)]| dump.iter().any(|(k, _)| k.contains(":rj:"));
    assert!(has_entry(&app.store.debug_dump().await.unwrap()));
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(
        !has_entry(&app.store.debug_dump().await.unwrap()),
        "expired with the token"
    );
}
