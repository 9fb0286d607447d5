//! Strict inputs: every body is at most 64 KiB, and no validation message repeats
//! what the client sent.

use authstream_proto::Problem;
use authstream_testkit::assert_problem;
use authstream_testkit::auth::{ADMIN_CLIENT, AuthApp, spawn_auth_with, unique_email};
use reqwest::Method;
use serde_json::{Value, json};

/// A JSON object of exactly `len` bytes.
fn body_of(len: usize) -> String {
    let envelope = r#"{"padding":""}"#.len();
    format!(r#"{{"padding":"{}"}}"#, "x".repeat(len - envelope))
}

/// Every route that reads a body, with its method and the Bearer token it needs, on an
/// app with the demo on.
struct BodyRoutes {
    app: AuthApp,
    routes: Vec<(Method, String, Option<String>)>,
}

impl BodyRoutes {
    async fn spawn() -> Self {
        let app = spawn_auth_with(&[("DEMO", "true")]).await;
        let user = app.signup().await;
        let service = app.service_token(ADMIN_CLIENT).await;
        let generation = format!("limits-{}", uuid::Uuid::new_v4().simple());
        app.create_generation(&user.access, &generation).await;
        let anonymous = |path: &str| (Method::POST, path.to_owned(), None);
        let routes = vec![
            anonymous("/auth/register"),
            anonymous("/auth/login"),
            anonymous("/auth/refresh"),
            anonymous("/auth/validate"),
            anonymous("/auth/revoke"),
            anonymous("/auth/service-token"),
            (Method::PATCH, "/auth/me".into(), Some(user.access.clone())),
            (
                Method::PATCH,
                format!("/auth/users/{}", user.user_id),
                Some(service),
            ),
            (
                Method::POST,
                "/generations".into(),
                Some(user.access.clone()),
            ),
            (
                Method::POST,
                format!("/demo/generations/{generation}/simulate"),
                Some(user.access),
            ),
        ];
        Self { app, routes }
    }

    fn send(
        &self,
        (method, path, bearer): &(Method, String, Option<String>),
        body: String,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .app
            .auth
            .request(method.clone(), path)
            .header("content-type", "application/json")
            .header("if-match", "*")
            .body(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req
    }
}

#[tokio::test]
async fn every_route_that_reads_a_body_refuses_one_over_64_kib() {
    let body_routes = BodyRoutes::spawn().await;
    for route in &body_routes.routes {
        let (method, path, _) = route;
        let res = body_routes
            .send(route, body_of(65 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{method} {path}");
        assert_problem(res, 413, "payload_too_large").await;
        // Just under the limit is read and answered on its merits (the demo's
        // simulation takes only a few bytes and says so with its own 413).
        if !path.starts_with("/demo/") {
            let res = body_routes
                .send(route, body_of(64 * 1024 - 16))
                .send()
                .await
                .unwrap();
            assert_ne!(res.status(), 413, "{method} {path}");
        }
    }
}

/// serde would read a JSON array into a struct by position (`[null, null]` as `{}`):
/// every body must be an object.
#[tokio::test]
async fn a_json_array_is_never_read_as_an_object() {
    let body_routes = BodyRoutes::spawn().await;
    let generations_before = body_routes.app.store.debug_keys().await.unwrap();
    for route in &body_routes.routes {
        let (method, path, _) = route;
        for body in [
            "[null, null]",
            r#"["ada@example.com", "correct horse"]"#,
            "[]",
        ] {
            let res = body_routes
                .send(route, body.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{method} {path} {body}");
            assert_problem(res, 422, "validation_failed").await;
        }
    }
    let generations_after = body_routes.app.store.debug_keys().await.unwrap();
    let created: Vec<_> = generations_after
        .iter()
        .filter(|k| k.ends_with(":gen") && !generations_before.contains(k))
        .collect();
    assert!(created.is_empty(), "created from an array: {created:?}");
}

/// Values a client might send by mistake in place of a string (a password in the
/// wrong field, a token as a number): none may come back in the answer.
fn secret_looking_values() -> Vec<(Value, &'static str)> {
    vec![
        (json!(98_765_432_101_234_u64), "98765432101234"),
        (json!(98_765.432_101_234), "98765.432"),
        (json!({"s3cret": "Hunter2Hunter2Hunter2"}), "Hunter2Hunter2"),
        (json!(["Hunter2Hunter2Hunter2"]), "Hunter2Hunter2"),
    ]
}

#[tokio::test]
async fn validation_messages_never_echo_what_was_sent() {
    // Some thirty anonymous requests from one address: more than its default budget.
    let app = spawn_auth_with(&[("RATE_LIMIT_ANON", "1000/60s")]).await;
    let email = unique_email();
    let forms: [(&str, &[&str]); 4] = [
        ("/auth/register", &["email", "password"]),
        ("/auth/login", &["email", "password"]),
        ("/auth/refresh", &["refresh_token"]),
        ("/auth/revoke", &["token"]),
    ];
    for (path, fields) in forms {
        for field in fields {
            for (value, secret) in secret_looking_values() {
                let mut body = json!({"email": email, "password": "correct horse battery", "refresh_token": "x", "token": "x"});
                body[field] = value.clone();
                let res = app.auth.request(Method::POST, path).json(&body).send();
                let res = res.await.unwrap();
                let status = res.status().as_u16();
                let text = res.text().await.unwrap();
                assert_eq!(status, 422, "{path} {field}={value}: {text}");
                assert!(
                    !text.contains(secret),
                    "{path} {field}={value} echoed: {text}"
                );
                let problem: Problem = serde_json::from_str(&text).unwrap();
                assert_eq!(problem.code.as_str(), "validation_failed");
                assert!(problem.fields.contains_key("body"), "{text}");
            }
        }
    }
    // A secret-looking string where an email belongs is not repeated either.
    for path in ["/auth/register", "/auth/login"] {
        let res = app
            .auth
            .request(Method::POST, path)
            .json(&json!({"email": "Hunter2Hunter2Hunter2", "password": "short"}))
            .send()
            .await
            .unwrap();
        let text = res.text().await.unwrap();
        assert!(!text.contains("Hunter2"), "{path}: {text}");
    }
}
