use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_normalises_the_email_and_never_echoes_the_password() {
    let app = spawn_app().await;
    let local = uuid::Uuid::new_v4().simple().to_string();
    let res = app
        .register(&format!("  {local}@Example.COM "), PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    assert!(!text.contains(PASSWORD));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["email"], format!("{local}@example.com"));
    assert_eq!(body["tier"], "free");
    assert!(body["user_id"].as_str().unwrap().len() >= 32);

    // The store keeps an Argon2id hash, never the password.
    let dump = app.store.debug_dump().await.unwrap();
    assert!(dump.iter().any(|(_, v)| v.contains("$argon2id$")));
    assert!(
        dump.iter()
            .all(|(k, v)| !k.contains(PASSWORD) && !v.contains(PASSWORD))
    );
}

#[tokio::test]
async fn a_registered_email_is_taken_in_any_case() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(
        app.register(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let res = app
        .register(&email.to_uppercase(), "another password")
        .await;
    assert_problem(res, 409, "email_taken").await;
}

#[tokio::test]
async fn bad_registrations_name_every_bad_field() {
    let app = spawn_app().await;
    let body = assert_problem(
        app.register("not-an-email", "short").await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        body["fields"]["email"].is_string() && body["fields"]["password"].is_string(),
        "{body}"
    );
    assert!(
        !body.to_string().contains("short\""),
        "the password is not echoed: {body}"
    );
    let long = "x".repeat(1025);
    let body = assert_problem(
        app.register(&unique_email(), &long).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["password"].is_string());
    // Missing fields and non-JSON bodies are 422 too, never 500.
    let res = app
        .post("/auth/register")
        .json(&json!({"email": "a@b.co"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .post("/auth/register")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn login_answers_the_same_for_an_unknown_email_and_a_wrong_password() {
    // Counts the process's password verifications, which every test's logins move:
    // alone under `cargo test` (`authstream_testkit::turns`).
    let _alone = authstream_testkit::turns::alone().await;
    let app = spawn_app().await;
    let user = app.signup().await;
    let verified = |result: &'static str| {
        let app = &app;
        async move {
            let sample = format!(r#"authstream_password_verifications_total{{result="{result}"}}"#);
            app.metric(&sample).await
        }
    };
    let (unknown_before, mismatch_before) =
        (verified("unknown_user").await, verified("mismatch").await);
    let wrong = app.login_as(&user.email, "wrong password!", "x").await;
    let unknown = app.login_as(&unique_email(), PASSWORD, "x").await;
    let malformed = app.login_as("nobody", PASSWORD, "x").await;
    let mut bodies = Vec::new();
    for res in [wrong, unknown, malformed] {
        // A Bearer challenge (never Basic, which would make a browser prompt), and no
        // `error="invalid_token"`: no token was presented.
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="authstream""#
        );
        bodies.push(assert_problem(res, 401, "invalid_credentials").await);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    // An unknown (or malformed) email costs a real Argon2 verification too.
    assert_eq!(verified("unknown_user").await - unknown_before, 2.0);
    assert_eq!(verified("mismatch").await - mismatch_before, 1.0);
}

#[tokio::test]
async fn login_returns_the_contract_shape_and_a_new_session_each_time() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let res = app.login_as(&email, PASSWORD, "Firefox").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let a: Value = res.json().await.unwrap();
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["expires_in"], 900);
    assert_eq!(a["refresh_expires_in"], 604_800);
    for field in ["access_token", "refresh_token", "session_id"] {
        assert!(a[field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
    }
    let b: Value = app
        .login_as(&email, PASSWORD, "Chrome")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(a["session_id"], b["session_id"]);
}

#[tokio::test]
async fn logout_revokes_that_session_only() {
    let app = spawn_app().await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    let res = app
        .post("/auth/logout")
        .bearer_auth(&first.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.me(&first.access).await, 401, "token_revoked").await;
    assert_problem(app.refresh(&first.refresh).await, 401, "token_revoked").await;
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&second.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_all_revokes_every_session_and_a_login_right_after_works() {
    let app = spawn_app().await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    let res = app
        .post("/auth/logout-all")
        .bearer_auth(&second.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for s in [&first, &second] {
        assert_problem(app.me(&s.access).await, 401, "token_revoked").await;
        assert_problem(app.refresh(&s.refresh).await, 401, "token_revoked").await;
    }
    // Within the same second: the new session is not caught by the revocation.
    let again = app.login(&first.email).await;
    assert_eq!(app.me(&again.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_routes_without_a_token_say_so() {
    let app = spawn_app().await;
    let res = app.get("/auth/me").send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"authstream\""
    );
    assert_problem(res, 401, "missing_token").await;
    let res = app
        .get("/auth/me")
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
    let res = app
        .get("/auth/me")
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_token").await;
}
