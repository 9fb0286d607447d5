//! authstream-verify against real auth services on a real redis-server, through
//! services built from the examples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

#[path = "../../examples/actix_service.rs"]
#[allow(dead_code)]
mod actix_service;
#[path = "../../examples/axum_service.rs"]
#[allow(dead_code)]
mod axum_service;

use std::time::{Duration, Instant};

use authstream_verify::VerifyError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helpers::{Auth, Proxy, verifier, within};
use serde_json::{Value, json};

/// What the example service at `service` answers for `token`: status and body.
async fn me(service: &str, token: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = reqwest::Client::new()
        .get(format!("{service}/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

/// Asserts `token` is refused as revoked within 100 ms.
async fn refused_within_100ms(service: &str, token: &str, what: &str) {
    let took = within(Duration::from_millis(500), || async {
        let (status, body, _) = me(service, token).await;
        status == 401 && body["code"] == "token_revoked"
    })
    .await;
    let took = took.unwrap_or_else(|| panic!("{what}: never refused"));
    assert!(
        took < Duration::from_millis(100),
        "{what}: refused after {took:?}"
    );
}

/// A valid token passes; the token revoked, its session ended, its user signed out
/// everywhere: each refused by `service` within 100 ms.
async fn the_service_follows_revocations(service: &str, auth: &Auth) {
    // A valid token passes.
    let a = auth.user().await;
    let at = a["access_token"].as_str().unwrap();
    let (status, claims, _) = me(service, at).await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["token_type"], "access");
    assert_eq!(claims["sid"], a["session_id"]);

    // No token, a token that is not one: 401 problem+json with a Bearer challenge.
    let (status, body, headers) = me(service, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_token"))
    );
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], 401);
    let (status, body, headers) = me(service, "not.a.token").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let (status, body, _) = me(service, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("wrong_token_type"))
    );

    // The token itself.
    assert_eq!(
        auth.post("/auth/revoke", "", Some(json!({"token": at})))
            .await,
        200
    );
    refused_within_100ms(service, at, "a revoked token").await;

    // Its session.
    let b = auth.user().await;
    let bt = b["access_token"].as_str().unwrap();
    assert_eq!(me(service, bt).await.0, 200);
    assert_eq!(auth.post("/auth/logout", bt, None).await, 204);
    refused_within_100ms(service, bt, "a token of an ended session").await;

    // Its user: every session, including one the revocation does not list.
    let c = auth.user().await;
    let email = me(service, c["access_token"].as_str().unwrap()).await.1["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = auth.login(&email).await;
    let ct = other["access_token"].as_str().unwrap();
    assert_eq!(me(service, ct).await.0, 200);
    assert_eq!(
        auth.post(
            "/auth/logout-all",
            c["access_token"].as_str().unwrap(),
            None
        )
        .await,
        204
    );
    refused_within_100ms(service, ct, "a token of a user signed out everywhere").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_built_from_the_axum_example_refuses_revocations_within_100ms() {
    let auth = Auth::start(&[]).await;
    let app = axum_service::app(verifier(&auth.url).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    the_service_follows_revocations(&service, &auth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_built_from_the_actix_example_refuses_revocations_within_100ms() {
    let auth = Auth::start(&[]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_service::server(verifier(&auth.url).await, listener).unwrap();
    tokio::spawn(server);
    the_service_follows_revocations(&service, &auth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_auth_service_verifications_are_unavailable_and_recover_when_it_returns() {
    let mut auth = Auth::start(&[]).await;
    let verifier = verifier(&auth.url).await;
    let app = axum_service::app(verifier.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let user = auth.user().await;
    let token = user["access_token"].as_str().unwrap().to_owned();
    assert!(verifier.verify(&token).await.is_ok());

    let stopped = Instant::now();
    auth.stop().await;
    let took = within(Duration::from_secs(2), || async {
        verifier.verify(&token).await
            == Err(VerifyError::Unavailable(
                "the revocation feed is not current",
            ))
    })
    .await
    .expect("never unavailable");
    // The bound (100 ms) after the last heartbeat, which came before the stop.
    assert!(
        stopped.elapsed() < Duration::from_millis(150),
        "unavailable after {took:?}, {:?} after the stop began",
        stopped.elapsed()
    );
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
    let (status, body, _) = me(&service, &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("store_unavailable"))
    );
    // Still no verdict a second later: it never guesses.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable(_))
    ));
    // A token that cannot be valid is still refused for what it is.
    assert_eq!(
        verifier.verify("not.a.token").await.unwrap_err().code(),
        "invalid_token"
    );

    auth.run();
    within(Duration::from_secs(10), || async {
        verifier.verify(&token).await.is_ok()
    })
    .await
    .expect("never recovered");
    assert_eq!(me(&service, &token).await.0, 200);
    // And it follows the restarted service's revocations.
    assert_eq!(auth.post("/auth/logout", &token, None).await, 204);
    refused_within_100ms(&service, &token, "a session ended after the restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_verifications_send_nothing_to_the_auth_service() {
    let auth = Auth::start(&[]).await;
    let proxy = Proxy::start(&auth.url).await;
    let verifier = verifier(&proxy.url).await;
    let user = auth.user().await;
    let token = user["access_token"].as_str().unwrap();
    // The JWKS, the service token, the feed.
    assert_eq!(proxy.requests(), 3);
    let bytes_before = proxy.sent.lock().len();
    for _ in 0..10_000 {
        verifier.verify(token).await.unwrap();
    }
    assert_eq!(proxy.requests(), 3);
    assert_eq!(proxy.sent.lock().len(), bytes_before, "not one byte sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_key_ids_fetch_the_jwks_at_most_once_per_interval() {
    let auth = Auth::start(&[]).await;
    let proxy = Proxy::start(&auth.url).await;
    let verifier = verifier(&proxy.url).await;
    let user = auth.user().await;
    let token = user["access_token"].as_str().unwrap();
    let jwks = "/.well-known/jwks.json";
    assert_eq!(proxy.requests_for(jwks), 1);
    let (_, rest) = token.split_once('.').unwrap();
    for i in 0..50 {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": format!("made-up-{i}")});
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let err = verifier.verify(&forged).await.unwrap_err();
        assert_eq!(
            (err.clone(), err.code()),
            (VerifyError::UnknownKey, "invalid_token")
        );
    }
    // The first fetch was less than 5 s ago: no refetch at all yet.
    assert_eq!(
        proxy.requests_for(jwks),
        1,
        "no refetch within the interval"
    );
    // After the interval, one refetch for any number of unknown kids.
    let quick = authstream_verify::Verifier::builder(&proxy.url)
        .service_credentials(helpers::VERIFIER.0, helpers::VERIFIER.1)
        .jwks_min_refresh(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    assert_eq!(proxy.requests_for(jwks), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    for i in 0..50 {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": format!("other-{i}")});
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
        assert_eq!(quick.verify(&forged).await, Err(VerifyError::UnknownKey));
    }
    assert_eq!(
        proxy.requests_for(jwks),
        3,
        "one refetch for 50 unknown kids"
    );
    assert!(quick.verify(token).await.is_ok());
    // Another algorithm is refused without looking at keys.
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "x"});
    let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
    assert_eq!(
        verifier.verify(&forged).await,
        Err(VerifyError::WrongAlgorithm)
    );
    // A signature of other claims: refused.
    let (head, _) = token.split_once('.').unwrap();
    let sig = token.rsplit('.').next().unwrap();
    let claims = json!({"sub": "someone-else", "token_type": "access"});
    let forged = format!(
        "{head}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_eq!(
        verifier.verify(&forged).await,
        Err(VerifyError::BadSignature)
    );
    // An access token is not a service token.
    assert_eq!(
        verifier.verify_service(token).await.unwrap_err().code(),
        "wrong_token_type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_token_is_renewed_without_a_gap_in_the_feed() {
    let auth = Auth::start(&[("SERVICE_TOKEN_TTL_SECS", "2")]).await;
    let proxy = Proxy::start(&auth.url).await;
    let verifier = verifier(&proxy.url).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert!(verifier.is_current(), "a gap at {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(proxy.requests_for("/auth/service-token") >= 3);
    assert!(proxy.requests_for("/auth/revocations") >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_scope_or_a_plain_http_host_cannot_build() {
    let auth = Auth::start(&[]).await;
    let err = authstream_verify::Verifier::builder(&auth.url)
        .service_credentials("backend", "backend-secret-0123456789")
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revocations:read"), "{err}");
    let err = authstream_verify::Verifier::builder(&auth.url)
        .service_credentials(helpers::VERIFIER.0, "wrong-secret-0123456789")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, authstream_verify::BuildError::ServiceToken(_)),
        "{err}"
    );
    let err = authstream_verify::Verifier::builder("http://auth.example.com")
        .service_credentials(helpers::VERIFIER.0, helpers::VERIFIER.1)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, authstream_verify::BuildError::Config(_)),
        "{err}"
    );
}
