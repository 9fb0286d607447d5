//! Discovery (RFC 8414) and the standard OAuth 2.0 endpoints it advertises:
//! introspection (RFC 7662), revocation by form (RFC 7009), client credentials by
//! form (RFC 6749 §4.4).

use authstream_client::{Call, answer};
use authstream_proto::TokenType;
use authstream_proto::auth::{
    ClientCredentialsForm, Introspection, ServerMetadata, ServiceToken, TokenForm,
};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The metadata at `path` (with this `Host`), checking its caching: as it is on the
/// wire, and typed.
async fn metadata(app: &AuthApp, path: &str, host: Option<&str>) -> (Value, ServerMetadata) {
    let mut req = app.auth.request(Method::GET, path);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let text = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert_eq!(text, "public, max-age=300", "{path}");
    let text = res.text().await.unwrap();
    (
        serde_json::from_str(&text).unwrap(),
        serde_json::from_str(&text).unwrap(),
    )
}

#[tokio::test]
async fn the_metadata_names_every_endpoint_from_the_public_url_never_the_host() {
    let app = spawn_auth_with(&[
        ("AUTH_PUBLIC_URL", "https://auth.example/base/"),
        ("JWT_ISSUER", "https://auth.example/base"),
    ])
    .await;
    let (oauth, _) = metadata(&app, "/.well-known/oauth-authorization-server", None).await;
    let (openid, _) = metadata(&app, "/.well-known/openid-configuration", None).await;
    let (spoofed, _) = metadata(
        &app,
        "/.well-known/oauth-authorization-server",
        Some("evil.example"),
    )
    .await;
    assert_eq!(oauth, openid);
    assert_eq!(oauth, spoofed, "the Host header changes nothing");
    // The whole document as it is on the wire (RFC 8414 names): nothing more.
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
    let app = spawn_auth_with(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET", "a-secret-of-at-least-32-bytes-0123456789"),
    ])
    .await;
    let (_, doc) = metadata(&app, "/.well-known/openid-configuration", None).await;
    assert_eq!(doc.issuer, "authstream");
    assert_eq!(doc.jwks_uri, "http://0.0.0.0:8081/.well-known/jwks.json");
    assert_eq!(doc.token_signing_alg_values_supported, ["HS256"]);
}

fn form(token: &str) -> TokenForm {
    TokenForm {
        token: Some(token.to_owned()),
        token_type_hint: None,
    }
}

/// `POST /auth/introspect` of `token` by the backend client: `200`, never cached.
async fn introspection(app: &AuthApp, token: &str) -> reqwest::Response {
    let res = app
        .auth
        .introspect(&form(token))
        .basic_auth(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res
}

async fn introspect(app: &AuthApp, token: &str) -> Introspection {
    answer::json(introspection(app, token).await).await.unwrap()
}

/// An introspection's answer as it is on the wire: an inactive token's says nothing
/// but `active`, which a typed read could not tell.
async fn introspect_raw(app: &AuthApp, token: &str) -> Value {
    answer::json(introspection(app, token).await).await.unwrap()
}

#[tokio::test]
async fn introspection_answers_service_clients_active_or_not() {
    let app = spawn_auth().await;
    let user = app.signup().await;

    // Only configured clients, by HTTP Basic.
    for auth in [
        None,
        Some(("backend", "backend-secret-wrong!!")),
        Some(("nobody", "x")),
    ] {
        let mut call = app.auth.introspect(&form(&user.access));
        if let Some((id, secret)) = auth {
            call = call.basic_auth(id, secret);
        }
        let res = call.send().await.unwrap();
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = app
        .auth
        .introspect(&form(&user.access))
        .bearer(&user.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_credentials").await;

    let access = introspect(&app, &user.access).await;
    assert!(access.active);
    assert_eq!(access.sub.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(access.token_type, Some(TokenType::Access));
    assert_eq!(access.sid.as_deref(), Some(user.session_id.as_str()));
    assert!(access.exp.is_some() && access.iat.is_some(), "{access:?}");
    assert!(access.jti.is_some() && access.iss.is_some(), "{access:?}");
    assert!(access.aud.is_some(), "{access:?}");

    let service = app.service_token(ADMIN_CLIENT).await;
    let answer = introspect(&app, &service).await;
    assert!(answer.active);
    assert_eq!(answer.token_type, Some(TokenType::Service));
    assert_eq!(
        answer.scope.as_deref(),
        Some("users:admin generations:write")
    );
    assert_eq!(answer.client_id.as_deref(), Some("admin-tool"));

    // Anything else is inactive, and says nothing more.
    for token in [user.refresh.as_str(), "not-a-token", "a.b.c"] {
        assert_eq!(introspect_raw(&app, token).await, json!({"active": false}));
    }
    app.bearer(&user.access).logout().await.unwrap();
    assert_eq!(
        introspect_raw(&app, &user.access).await,
        json!({"active": false}),
        "revoked"
    );
    let expired =
        spawn_auth_with(&[("ACCESS_TOKEN_TTL_SECS", "1"), ("JWT_LEEWAY_SECS", "0")]).await;
    let short = expired.signup().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        introspect_raw(&expired, &short.access).await,
        json!({"active": false}),
        "expired"
    );

    // A hint changes nothing; a missing token is a bad request.
    let hinted = TokenForm {
        token_type_hint: Some("refresh_token".to_owned()),
        ..form(&service)
    };
    let answer = app
        .auth
        .introspect(&hinted)
        .basic_auth(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
        .await
        .unwrap();
    assert!(answer.active);
    let res = app
        .auth
        .introspect(&TokenForm::default())
        .basic_auth(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(problem.fields.contains_key("token"), "{problem:?}");
}

#[tokio::test]
async fn revocation_takes_the_rfc_7009_form() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let hinted = TokenForm {
        token_type_hint: Some("access_token".to_owned()),
        ..form(&user.access)
    };
    let res = app.auth.revoke_form(&hinted).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Exactly `{}`, as it is on the wire.
    assert_eq!(answer::json::<Value>(res).await.unwrap(), json!({}));
    let res = app.validate(&user.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;

    // A refresh token ends its session.
    let other = app.login(&user.email).await;
    app.auth.revoke_form(&form(&other.refresh)).await.unwrap();
    let res = app.validate(&other.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;

    // Unknown tokens get the same answer; a form without a token is refused.
    app.auth.revoke_form(&form("nonsense")).await.unwrap();
    let res = app.auth.revoke_form(&TokenForm::default()).send();
    assert_problem(res.await.unwrap(), 422, "validation_failed").await;
    // JSON still works.
    let third = app.login(&user.email).await;
    app.revoke(&third.access).await.unwrap();
    let res = app.validate(&third.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
}

fn grant(grant_type: Option<&str>) -> ClientCredentialsForm {
    ClientCredentialsForm {
        grant_type: grant_type.map(str::to_owned),
        ..ClientCredentialsForm::default()
    }
}

/// The backend's credentials in the form, with this secret.
fn backend_form(secret: &str) -> ClientCredentialsForm {
    ClientCredentialsForm {
        client_id: Some(BACKEND_CLIENT.id.to_owned()),
        client_secret: Some(secret.to_owned()),
        ..grant(Some("client_credentials"))
    }
}

/// A form by the backend client, its credentials as HTTP Basic.
fn by_basic(app: &AuthApp, form: &ClientCredentialsForm) -> Call<ServiceToken> {
    app.auth
        .service_token_form(form)
        .basic_auth(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
}

#[tokio::test]
async fn client_credentials_come_as_the_rfc_6749_form_with_basic_or_fields() {
    let app = spawn_auth().await;
    let basic = by_basic(&app, &grant(Some("client_credentials"))).send();
    let narrowed = ClientCredentialsForm {
        scope: Some("events:publish".to_owned()),
        ..backend_form(BACKEND_CLIENT.secret)
    };
    let fields = app.auth.service_token_form(&narrowed).send();
    for (res, scope) in [
        (basic.await.unwrap(), "generations:write events:publish"),
        (fields.await.unwrap(), "events:publish"),
    ] {
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let token: ServiceToken = answer::json(res).await.unwrap();
        assert_eq!(token.token_type, "Bearer");
        assert_eq!(token.scope, scope);
        let introspected = introspect(&app, &token.access_token).await;
        assert_eq!(introspected.scope.as_deref(), Some(scope));
    }

    // Another grant type, or none, is refused by name; so is a form that is not one.
    for grant_type in [Some("password"), Some("authorization_code"), None] {
        let res = by_basic(&app, &grant(grant_type)).send().await.unwrap();
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(problem.fields.contains_key("grant_type"), "{problem:?}");
    }
    // A field twice: no `ClientCredentialsForm` holds that, so the body as it is.
    let res = by_basic(&app, &grant(None))
        .with(|r| r.body("grant_type=client_credentials&scope=a&scope=b"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;

    // A wrong secret in the form: 401 with the Basic challenge.
    let res = app
        .auth
        .service_token_form(&backend_form("backend-secret-wrong!!"))
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
    let app = spawn_auth_with(&[("RATE_LIMIT_LOGIN", "2/300s")]).await;
    let wrong = backend_form("backend-secret-wrong!!");
    for _ in 0..2 {
        let res = app.auth.service_token_form(&wrong).send().await.unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = app.auth.service_token_form(&wrong).send().await.unwrap();
    assert_problem(res, 429, "rate_limited").await;
    // Introspection guesses spend it too: refused before the secret is looked at.
    let res = app
        .auth
        .introspect(&form("x"))
        .basic_auth(BACKEND_CLIENT.id, BACKEND_CLIENT.secret)
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate_limited").await;

    // RFC 6749 §2.3.1: a client that form-encodes its Basic credentials is understood.
    let app = spawn_auth_with(&[(
        "SERVICE_CLIENTS",
        r#"[{"id":"plus","secret":"a+b%c d/0123456789","scopes":["events:publish"]}]"#,
    )])
    .await;
    for secret in ["a+b%c d/0123456789", "a%2Bb%25c+d%2F0123456789"] {
        let res = app
            .auth
            .service_token_form(&grant(Some("client_credentials")))
            .basic_auth("plus", secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{secret}");
    }
}
