//! Discovery (RFC 8414) and the standard OAuth 2.0 endpoints it advertises:
//! introspection (RFC 7662), revocation by form (RFC 7009), client credentials by
//! form (RFC 6749 §4.4).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn metadata(app: &TestApp, path: &str, host: Option<&str>) -> (reqwest::Response, Value) {
    let mut req = app.get(path);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let text = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert_eq!(text, "public, max-age=300", "{path}");
    let body = res.json().await.unwrap();
    let res = app.get(path).send().await.unwrap();
    (res, body)
}

#[tokio::test]
async fn the_metadata_names_every_endpoint_from_the_public_url_never_the_host() {
    let app = spawn_app_with(&[
        ("AUTH_PUBLIC_URL", "https://auth.example/base/"),
        ("JWT_ISSUER", "https://auth.example/base"),
    ])
    .await;
    let (_, oauth) = metadata(&app, "/.well-known/oauth-authorization-server", None).await;
    let (_, openid) = metadata(&app, "/.well-known/openid-configuration", None).await;
    let (_, spoofed) = metadata(
        &app,
        "/.well-known/oauth-authorization-server",
        Some("evil.example"),
    )
    .await;
    assert_eq!(oauth, openid);
    assert_eq!(oauth, spoofed, "the Host header changes nothing");
    assert_eq!(
        oauth,
        json!({
            "issuer": "https://auth.example/base",
            "jwks_uri": "https://auth.example/base/.well-known/jwks.json",
            "token_endpoint": "https://auth.example/base/auth/service-token",
            "revocation_endpoint": "https://auth.example/base/auth/revoke",
            "introspection_endpoint": "https://auth.example/base/auth/introspect",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["generations:write", "events:publish", "users:admin", "revocations:read"],
            "token_signing_alg_values_supported": ["EdDSA"],
        })
    );

    // By default: http:// and the bind address; HS256 is named when it signs.
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET", "a-secret-of-at-least-32-bytes-0123456789"),
    ])
    .await;
    let (_, doc) = metadata(&app, "/.well-known/openid-configuration", None).await;
    assert_eq!(doc["issuer"], "authstream");
    assert_eq!(doc["jwks_uri"], "http://0.0.0.0:8081/.well-known/jwks.json");
    assert_eq!(doc["token_signing_alg_values_supported"], json!(["HS256"]));
}

fn form(token: &str) -> Vec<(&str, &str)> {
    vec![("token", token)]
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let res = app
        .post_form("/auth/introspect", &form(token))
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

#[tokio::test]
async fn introspection_answers_service_clients_active_or_not() {
    let app = spawn_app().await;
    let user = app.signup().await;

    // Only configured clients, by HTTP Basic.
    for auth in [
        None,
        Some(("backend", "backend-secret-wrong!!")),
        Some(("nobody", "x")),
    ] {
        let mut req = app.post_form("/auth/introspect", &form(&user.access));
        if let Some((id, secret)) = auth {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = app
        .post_form("/auth/introspect", &form(&user.access))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_credentials").await;

    let access = introspect(&app, &user.access).await;
    assert_eq!(access["active"], true);
    assert_eq!(access["sub"], user.user_id.as_str());
    assert_eq!(access["token_type"], "access");
    assert_eq!(access["sid"], user.session_id.as_str());
    for claim in ["exp", "iat", "jti", "iss", "aud"] {
        assert!(!access[claim].is_null(), "{claim}: {access}");
    }

    let service = app.service_token(ADMIN_CLIENT).await;
    let answer = introspect(&app, &service).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "service");
    assert_eq!(answer["scope"], "users:admin generations:write");
    assert_eq!(answer["client_id"], "admin-tool");

    // Anything else is inactive, and says nothing more.
    for token in [user.refresh.as_str(), "not-a-token", "a.b.c"] {
        assert_eq!(introspect(&app, token).await, json!({"active": false}));
    }
    let res = app
        .post("/auth/logout")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        introspect(&app, &user.access).await,
        json!({"active": false}),
        "revoked"
    );
    let expired = spawn_app_with(&[("ACCESS_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let short = expired.signup().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        introspect(&expired, &short.access).await,
        json!({"active": false}),
        "expired"
    );

    // A hint changes nothing; a missing token is a bad request.
    let res = app
        .post_form(
            "/auth/introspect",
            &[
                ("token", service.as_str()),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
    let res = app
        .post_form("/auth/introspect", &[])
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(!problem["fields"]["token"].is_null(), "{problem}");
}

#[tokio::test]
async fn revocation_takes_the_rfc_7009_form() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let res = app
        .post_form(
            "/auth/revoke",
            &[
                ("token", user.access.as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
    assert_problem(app.validate(&user.access).await, 401, "token_revoked").await;

    // A refresh token ends its session.
    let other = app.login(&user.email).await;
    let res = app
        .post_form("/auth/revoke", &form(&other.refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_problem(app.validate(&other.access).await, 401, "token_revoked").await;

    // Unknown tokens get the same answer; a form without a token is refused.
    let res = app
        .post_form("/auth/revoke", &form("nonsense"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app.post_form("/auth/revoke", &[]).send().await.unwrap();
    assert_problem(res, 422, "validation_failed").await;
    // JSON still works.
    let third = app.login(&user.email).await;
    let res = app
        .post("/auth/revoke")
        .json(&json!({"token": third.access}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_problem(app.validate(&third.access).await, 401, "token_revoked").await;
}

#[tokio::test]
async fn client_credentials_come_as_the_rfc_6749_form_with_basic_or_fields() {
    let app = spawn_app().await;
    let grant = [("grant_type", "client_credentials")];
    let by_basic = app
        .post_form("/auth/service-token", &grant)
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    let by_fields = app
        .post_form(
            "/auth/service-token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", BACKEND_CLIENT.0),
                ("client_secret", BACKEND_CLIENT.1),
                ("scope", "events:publish"),
            ],
        )
        .send()
        .await
        .unwrap();
    for (res, scope) in [
        (by_basic, "generations:write events:publish"),
        (by_fields, "events:publish"),
    ] {
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], scope);
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(introspect(&app, token).await["scope"], scope);
    }

    // Another grant type, or none, is refused by name; so is a form that is not one.
    for fields in [
        vec![("grant_type", "password")],
        vec![("grant_type", "authorization_code")],
        vec![],
    ] {
        let res = app
            .post_form("/auth/service-token", &fields)
            .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(!problem["fields"]["grant_type"].is_null(), "{problem}");
    }
    let res = app
        .post("/auth/service-token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=a&scope=b")
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;

    // A wrong secret in the form: 401 with the Basic challenge.
    let res = app
        .post_form(
            "/auth/service-token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", BACKEND_CLIENT.0),
                ("client_secret", "backend-secret-wrong!!"),
            ],
        )
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_problem(res, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn form_attempts_spend_the_same_failure_budget_and_a_form_encoded_basic_secret_works() {
    let app = spawn_app_with(&[("RATE_LIMIT_LOGIN", "2/300s")]).await;
    let wrong = [
        ("grant_type", "client_credentials"),
        ("client_id", BACKEND_CLIENT.0),
        ("client_secret", "backend-secret-wrong!!"),
    ];
    for _ in 0..2 {
        let res = app
            .post_form("/auth/service-token", &wrong)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = app
        .post_form("/auth/service-token", &wrong)
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate_limited").await;
    // Introspection guesses spend it too: refused before the secret is looked at.
    let res = app
        .post_form("/auth/introspect", &form("x"))
        .basic_auth(BACKEND_CLIENT.0, Some(BACKEND_CLIENT.1))
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate_limited").await;

    // RFC 6749 §2.3.1: a client that form-encodes its Basic credentials is understood.
    let app = spawn_app_with(&[(
        "SERVICE_CLIENTS",
        r#"[{"id":"plus","secret":"a+b%c d/0123456789","scopes":["events:publish"]}]"#,
    )])
    .await;
    for secret in ["a+b%c d/0123456789", "a%2Bb%25c+d%2F0123456789"] {
        let res = app
            .post_form(
                "/auth/service-token",
                &[("grant_type", "client_credentials")],
            )
            .basic_auth("plus", Some(secret))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{secret}");
    }
}
