use authstream_client::answer;
use authstream_proto::auth::Introspection;
use authstream_proto::{Tier, TokenType, paths};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn validate_answers_with_the_claims_by_body_header_and_get() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let by_body = app.validate(&user.access).send().await.unwrap();
    // Without a body: the Bearer token.
    let by_header = app
        .bearer(&user.access)
        .request(Method::POST, paths::VALIDATE)
        .send()
        .await
        .unwrap();
    let by_get = app
        .bearer(&user.access)
        .validate(None)
        .send()
        .await
        .unwrap();
    for res in [by_body, by_header, by_get] {
        assert_eq!(res.status(), StatusCode::OK);
        let claims: Introspection = answer::json(res).await.unwrap();
        assert!(claims.active);
        assert_eq!(claims.sub.as_deref(), Some(user.user_id.as_str()));
        assert_eq!(claims.token_type, Some(TokenType::Access));
        assert_eq!(claims.sid.as_deref(), Some(user.session_id.as_str()));
        assert_eq!(claims.email.as_deref(), Some(user.email.as_str()));
        assert_eq!(claims.tier, Some(Tier::Free));
        assert_eq!(claims.iss.as_deref(), Some("authstream"));
        assert_eq!(claims.aud.as_deref(), Some("authstream"));
        for (claim, value) in [
            ("exp", claims.exp),
            ("iat", claims.iat),
            ("nbf", claims.nbf),
        ] {
            assert!(value.is_some(), "{claim}");
        }
        assert!(claims.jti.is_some());
    }
}

#[tokio::test]
async fn validate_refuses_refresh_tokens_and_service_tokens_unless_asked() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let res = app.validate(&user.refresh).send().await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;
    let service = app.service_token(BACKEND_CLIENT).await;
    let res = app.validate(&service).send().await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;
    let res = app
        .bearer(&service)
        .request(
            Method::POST,
            &format!("{}?token_type=service", paths::VALIDATE),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let claims: Introspection = answer::json(res).await.unwrap();
    assert_eq!(claims.sub.as_deref(), Some("service:backend"));
    assert_eq!(
        claims.scopes,
        Some(vec![
            "generations:write".to_owned(),
            "events:publish".to_owned()
        ])
    );
    let res = app
        .auth
        .validate_token(&token_body(&user.refresh), Some(TokenType::Refresh))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn validate_gives_the_precise_code() {
    let app = spawn_auth_with(&[("ACCESS_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    // Neither a body nor a Bearer token.
    let res = app.auth.request(Method::POST, paths::VALIDATE).send();
    assert_problem(res.await.unwrap(), 401, "missing_token").await;
    let res = app.validate("a.b.c").send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    // A token of another issuer's key (another app, another ephemeral key).
    let other = spawn_auth().await;
    let foreign = other.signup().await;
    let res = app.validate(&foreign.access).send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app.validate(&user.access).send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="authstream", error="invalid_token""#
    );
    assert_problem(res, 401, "token_expired").await;
}

#[tokio::test]
async fn revoke_is_immediate_and_reveals_nothing() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let second = app.login(&user.email).await;
    app.revoke(&user.access).await.unwrap();
    let res = app.validate(&user.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    // Only that token: the session's refresh still works, another session too.
    app.me(&second.access).await.unwrap();
    app.refresh(&user.refresh).await.unwrap();

    // A refresh token revokes its whole session.
    app.revoke(&second.refresh).await.unwrap();
    let res = app.me(&second.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;

    // Garbage and already revoked tokens get the same 200.
    for token in ["garbage", user.access.as_str()] {
        app.revoke(token).await.unwrap();
    }
}

#[tokio::test]
async fn a_revocation_entry_lives_only_as_long_as_the_token() {
    // 3 s: long enough that a loaded machine still revokes a live token.
    let app = spawn_auth_with(&[("ACCESS_TOKEN_TTL_SECS", "3"), ("JWT_LEEWAY_SECS", "0")]).await;
    let user = app.signup().await;
    app.revoke(&user.access).await.unwrap();
    let has_entry = |dump: &[(String, String)]| dump.iter().any(|(k, _)| k.contains(":rj:"));
    assert!(has_entry(&app.store.debug_dump().await.unwrap()));
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(
        !has_entry(&app.store.debug_dump().await.unwrap()),
        "expired with the token"
    );
}
