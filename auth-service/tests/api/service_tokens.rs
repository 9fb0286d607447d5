use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_client_gets_a_service_token_by_basic_or_json() {
    let app = spawn_app().await;
    let basic = app
        .post("/auth/service-token")
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    let json_body = app
        .post("/auth/service-token")
        .json(&json!({"client_id": BACKEND_CLIENT.0, "client_secret": BACKEND_CLIENT.1}))
        .send()
        .await
        .unwrap();
    for res in [basic, json_body] {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["scope"], "generations:write events:publish");
        let check = app
            .post("/auth/validate?token_type=service")
            .json(&json!({"token": body["access_token"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            check.json::<Value>().await.unwrap()["sub"],
            "service:backend"
        );
    }
}

#[tokio::test]
async fn wrong_secrets_and_unknown_clients_get_the_same_answer() {
    let app = spawn_app().await;
    let wrong = app
        .post("/auth/service-token")
        .basic_auth(BACKEND_CLIENT.0, Some("backend-secret-wrong!!"))
        .send()
        .await
        .unwrap();
    let unknown = app
        .post("/auth/service-token")
        .basic_auth("nobody", Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    // A secret sent where the id belongs must not reach the logs.
    let swapped = app
        .post("/auth/service-token")
        .basic_auth(BACKEND_CLIENT.1, Some(BACKEND_CLIENT.0))
        .send()
        .await
        .unwrap();
    let nothing = app.post("/auth/service-token").send().await.unwrap();
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
            .contains(BACKEND_CLIENT.1)
    );
    let a = assert_problem(wrong, 401, "invalid_credentials").await;
    let b = assert_problem(unknown, 401, "invalid_credentials").await;
    assert_problem(nothing, 401, "invalid_credentials").await;
    assert_eq!(a, b);
    assert!(!a.to_string().contains("backend-secret"));
}

#[tokio::test]
async fn scopes_can_be_narrowed_but_not_widened_and_are_enforced() {
    let app = spawn_app().await;
    let narrowed = app
        .post("/auth/service-token")
        .json(&json!({"client_id": BACKEND_CLIENT.0, "client_secret": BACKEND_CLIENT.1, "scope": "events:publish"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        narrowed.json::<Value>().await.unwrap()["scope"],
        "events:publish"
    );
    let widened = app
        .post("/auth/service-token")
        .json(&json!({"client_id": BACKEND_CLIENT.0, "client_secret": BACKEND_CLIENT.1, "scope": "users:admin"}))
        .send()
        .await
        .unwrap();
    assert_problem(widened, 403, "insufficient_scope").await;

    // The backend client lacks users:admin: admin routes refuse it.
    let backend = app.service_token(BACKEND_CLIENT).await;
    let res = app
        .get("/admin/stream-tokens/stats")
        .bearer_auth(&backend)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "insufficient_scope").await;
    let admin = app.service_token(ADMIN_CLIENT).await;
    let res = app
        .get("/admin/stream-tokens/stats")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A service token is not an access token.
    assert_problem(app.me(&admin).await, 401, "wrong_token_type").await;
}
