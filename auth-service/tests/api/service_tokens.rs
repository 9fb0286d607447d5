use authstream_client::answer;
use authstream_proto::TokenType;
use authstream_proto::auth::{ClientCredentials, ServiceToken};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::StatusCode;

/// The backend's credentials as JSON, asking for `scope` when given.
fn backend_json(scope: Option<&str>) -> ClientCredentials {
    ClientCredentials {
        client_id: Some(BACKEND_CLIENT.id.to_owned()),
        client_secret: Some(BACKEND_CLIENT.secret.to_owned()),
        scope: scope.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_client_gets_a_service_token_by_basic_or_json() {
    let app = spawn_auth().await;
    let basic = app
        .auth
        .service_token(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
        .send()
        .await
        .unwrap();
    let json_body = app
        .auth
        .service_token_json(&backend_json(None))
        .send()
        .await
        .unwrap();
    for res in [basic, json_body] {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let token: ServiceToken = answer::json(res).await.unwrap();
        assert_eq!(token.token_type, "Bearer");
        assert_eq!(token.expires_in, 900);
        assert_eq!(token.scope, "generations:write events:publish");
        let check = app
            .auth
            .validate_token(&token_body(&token.access_token), Some(TokenType::Service))
            .await
            .unwrap();
        assert_eq!(check.sub.as_deref(), Some("service:backend"));
    }
}

#[tokio::test]
async fn wrong_secrets_and_unknown_clients_get_the_same_answer() {
    let app = spawn_auth().await;
    let ask = |id: &str, secret: &str| app.auth.service_token(id, secret).send();
    let wrong = ask(BACKEND_CLIENT.id, "backend-secret-wrong!!")
        .await
        .unwrap();
    let unknown = ask("nobody", BACKEND_CLIENT.secret).await.unwrap();
    // A secret sent where the id belongs must not reach the logs.
    let swapped = ask(BACKEND_CLIENT.secret, BACKEND_CLIENT.id).await.unwrap();
    let nothing = app
        .auth
        .request(
            reqwest::Method::POST,
            authstream_proto::paths::SERVICE_TOKEN,
        )
        .send()
        .await
        .unwrap();
    for res in [&wrong, &unknown, &swapped, &nothing] {
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Basic realm="authstream""#
        );
    }
    assert_problem(swapped, 401, "invalid_credentials").await;
    assert!(
        !authstream_testkit::logs()
            .contents()
            .contains(BACKEND_CLIENT.secret)
    );
    let a = assert_problem(wrong, 401, "invalid_credentials").await;
    let b = assert_problem(unknown, 401, "invalid_credentials").await;
    assert_problem(nothing, 401, "invalid_credentials").await;
    assert_eq!(a, b);
    assert!(
        !serde_json::to_string(&a)
            .unwrap()
            .contains("backend-secret")
    );
}

#[tokio::test]
async fn scopes_can_be_narrowed_but_not_widened_and_are_enforced() {
    let app = spawn_auth().await;
    let narrowed = app
        .auth
        .service_token_json(&backend_json(Some("events:publish")))
        .await
        .unwrap();
    assert_eq!(narrowed.scope, "events:publish");
    let widened = app
        .auth
        .service_token_json(&backend_json(Some("users:admin")))
        .send()
        .await
        .unwrap();
    assert_problem(widened, 403, "insufficient_scope").await;

    // The backend client lacks users:admin: admin routes refuse it.
    let backend = app.service_token(BACKEND_CLIENT).await;
    let res = app.bearer(&backend).stream_token_stats().send().await;
    assert_problem(res.unwrap(), 403, "insufficient_scope").await;
    let admin = app.service_token(ADMIN_CLIENT).await;
    app.bearer(&admin).stream_token_stats().await.unwrap();
    // A service token is not an access token.
    let res = app.me(&admin).send().await.unwrap();
    assert_problem(res, 401, "wrong_token_type").await;
}
