use authstream_client::answer;
use authstream_proto::Tier;
use authstream_proto::auth::Registered;
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn register_normalises_the_email_and_never_echoes_the_password() {
    let app = spawn_auth().await;
    let local = uuid::Uuid::new_v4().simple().to_string();
    let res = app
        .auth
        .register(&credentials(&format!("  {local}@Example.COM "), PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    assert!(!text.contains(PASSWORD));
    let registered: Registered = serde_json::from_str(&text).unwrap();
    assert_eq!(registered.email, format!("{local}@example.com"));
    assert_eq!(registered.tier, Tier::Free);
    assert!(registered.user_id.len() >= 32);

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
    let app = spawn_auth().await;
    let email = unique_email();
    app.register(&email).await;
    let res = app
        .auth
        .register(&credentials(&email.to_uppercase(), "another password"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "email_taken").await;
}

#[tokio::test]
async fn bad_registrations_name_every_bad_field() {
    let app = spawn_auth().await;
    let register = |email: String, password: String| {
        let auth = app.auth.clone();
        async move {
            let res = auth.register(&credentials(&email, &password)).send();
            res.await.unwrap()
        }
    };
    let problem = assert_problem(
        register("not-an-email".into(), "short".into()).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        problem.fields.contains_key("email") && problem.fields.contains_key("password"),
        "{problem:?}"
    );
    let text = serde_json::to_string(&problem).unwrap();
    assert!(
        !text.contains("short\""),
        "the password is not echoed: {text}"
    );
    let long = "x".repeat(1025);
    let problem = assert_problem(
        register(unique_email(), long).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(problem.fields.contains_key("password"));
    // Missing fields and non-JSON bodies are 422 too, never 500.
    let res = app
        .auth
        .request(Method::POST, "/auth/register")
        .json(&json!({"email": "a@b.co"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .auth
        .request(Method::POST, "/auth/register")
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
    let app = spawn_auth().await;
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
    let mut answers = Vec::new();
    for (email, password) in [
        (user.email.clone(), "wrong password!"),
        (unique_email(), PASSWORD),
        ("nobody".to_owned(), PASSWORD),
    ] {
        let res = app.login_as(&email, password).send().await.unwrap();
        answers.push(res);
    }
    let mut problems = Vec::new();
    for res in answers {
        // A Bearer challenge (never Basic, which would make a browser prompt), and no
        // `error="invalid_token"`: no token was presented.
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="authstream""#
        );
        problems.push(assert_problem(res, 401, "invalid_credentials").await);
    }
    assert_eq!(problems[0], problems[1]);
    assert_eq!(problems[1], problems[2]);
    // An unknown (or malformed) email costs a real Argon2 verification too.
    assert_eq!(verified("unknown_user").await - unknown_before, 2.0);
    assert_eq!(verified("mismatch").await - mismatch_before, 1.0);
}

#[tokio::test]
async fn login_returns_the_contract_shape_and_a_new_session_each_time() {
    let app = spawn_auth().await;
    let email = unique_email();
    app.register(&email).await;
    let res = app
        .login_as(&email, PASSWORD)
        .header("user-agent", "Firefox")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let a = answer::json::<authstream_proto::auth::TokenPair>(res)
        .await
        .unwrap();
    assert_eq!(a.token_type, "Bearer");
    assert_eq!(a.expires_in, 900);
    assert_eq!(a.refresh_expires_in, 604_800);
    for (field, value) in [
        ("access_token", &a.access_token),
        ("refresh_token", &a.refresh_token),
        ("session_id", &a.session_id),
    ] {
        assert!(!value.is_empty(), "{field}");
    }
    let b = app
        .login_as(&email, PASSWORD)
        .header("user-agent", "Chrome")
        .await
        .unwrap();
    assert_ne!(a.session_id, b.session_id);
}

#[tokio::test]
async fn logout_revokes_that_session_only() {
    let app = spawn_auth().await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    app.bearer(&first.access).logout().await.unwrap();
    let res = app.me(&first.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    let res = app.refresh(&first.refresh).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    app.me(&second.access).await.unwrap();
    app.refresh(&second.refresh).await.unwrap();
}

#[tokio::test]
async fn logout_all_revokes_every_session_and_a_login_right_after_works() {
    let app = spawn_auth().await;
    let first = app.signup().await;
    let second = app.login(&first.email).await;
    app.bearer(&second.access).logout_all().await.unwrap();
    for s in [&first, &second] {
        let res = app.me(&s.access).send().await.unwrap();
        assert_problem(res, 401, "token_revoked").await;
        let res = app.refresh(&s.refresh).send().await.unwrap();
        assert_problem(res, 401, "token_revoked").await;
    }
    // Within the same second: the new session is not caught by the revocation.
    let again = app.login(&first.email).await;
    app.me(&again.access).await.unwrap();
}

#[tokio::test]
async fn bearer_routes_without_a_token_say_so() {
    let app = spawn_auth().await;
    let res = app.auth.me().send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"authstream\""
    );
    assert_problem(res, 401, "missing_token").await;
    let res = app.me("not.a.jwt").send().await.unwrap();
    assert_problem(res, 401, "invalid_token").await;
    let res = app
        .auth
        .me()
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_token").await;
}
