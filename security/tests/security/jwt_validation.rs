//! JWT validation against a real Redis store: the
//! validator pins its algorithm and key, checks every claim against a `now` passed
//! in, and maps each refusal to its stable error code.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use authstream_proto::claims::{AccessClaims, RefreshClaims, Scope, ServiceClaims, TokenType};
use authstream_runtime::clock::UnixTime;
use authstream_security::jwt::{JwtSettings, KeySource, Signer, TokenError, Validator, new_jti};
use authstream_security::keys::{Algorithm, KeySet};
use authstream_testkit::redis_store;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use authstream_testkit::jwt::{
    ACCESS_TTL, AUDIENCE, ISSUER, Jwt, LEEWAY_SECS, code_of, hs256, settings,
};

fn fixture() -> Jwt {
    Jwt::new(redis_store())
}

fn parts(token: &str) -> [String; 3] {
    let mut it = token.split('.').map(str::to_owned);
    let parts = [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()];
    assert!(it.next().is_none(), "a JWS has three parts");
    parts
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The claims of a signed token as JSON.
fn claims_json<C: serde::Serialize>(claims: &C) -> Value {
    serde_json::to_value(claims).unwrap()
}

/// Validates as an access token and returns the error code of the refusal.
async fn refused(jwt: &Jwt, token: &str, now: UnixTime) -> (&'static str, TokenError) {
    let err = jwt
        .validator
        .validate::<AccessClaims>(token, now)
        .await
        .expect_err("the token was accepted");
    (code_of(token, err.clone()), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_access_token_is_accepted_with_its_claims() {
    let jwt = fixture();
    let now = UnixTime::now();
    let mut claims = jwt.access_claims("user-42", "sid-1", now);
    claims.roles = vec!["user".into(), "admin".into()];
    let token = jwt.signer.sign(&claims).unwrap();

    let got = jwt
        .validator
        .validate::<AccessClaims>(&token, now)
        .await
        .unwrap();
    assert_eq!(got, claims);
    assert_eq!(got.user_id(), "user-42");
    assert!(got.is_admin());
    assert_eq!(
        (got.reg.iss.as_str(), got.reg.aud.as_str()),
        (ISSUER, AUDIENCE)
    );
    assert_eq!(got.reg.exp - got.reg.iat, 900);

    let [header, payload, _] = parts(&token);
    let header = decode_part(&header);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], jwt.kid().as_str());
    let payload = decode_part(&payload);
    for claim in [
        "iss",
        "aud",
        "sub",
        "iat",
        "nbf",
        "exp",
        "jti",
        "token_type",
        "email",
        "roles",
        "tier",
        "sid",
    ] {
        assert!(
            payload.get(claim).is_some(),
            "the token lacks {claim}: {payload}"
        );
    }
    assert_eq!(payload["token_type"], "access");
    assert_eq!(payload["tier"], "free");
}

#[test]
fn jtis_are_random_and_unique() {
    let jtis: HashSet<String> = (0..1000).map(|_| new_jti()).collect();
    assert_eq!(jtis.len(), 1000);
    assert!(jtis.iter().all(|j| j.len() >= 32), "at least 128 bits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_payload_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    let [header, payload, signature] = parts(&token);
    let mut claims = decode_part(&payload);
    for (field, value) in [
        ("sub", json!("user-2")),
        ("roles", json!(["admin"])),
        ("exp", json!(now.secs() + 86_400)),
    ] {
        let mut changed = claims.clone();
        changed[field] = value;
        let forged = format!("{header}.{}.{signature}", encode_part(&changed));
        let (code, err) = refused(&jwt, &forged, now).await;
        assert!(matches!(err, TokenError::BadSignature), "{field}: {err:?}");
        assert_eq!(code, "invalid_token");
    }
    // Same claims, re-encoded with other whitespace: the signed bytes differ.
    claims["sub"] = json!("user-1");
    let spaced = URL_SAFE_NO_PAD.encode(serde_json::to_vec_pretty(&claims).unwrap());
    assert_eq!(
        refused(&jwt, &format!("{header}.{spaced}.{signature}"), now)
            .await
            .0,
        "invalid_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_header_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    let [header, payload, signature] = parts(&token);
    let mut changed = decode_part(&header);
    changed["typ"] = json!("at+jwt");
    let forged = format!("{}.{payload}.{signature}", encode_part(&changed));
    let (code, err) = refused(&jwt, &forged, now).await;
    assert!(matches!(err, TokenError::BadSignature), "{err:?}");
    assert_eq!(code, "invalid_token");

    let garbage = format!("not-base64!.{payload}.{signature}");
    let (code, err) = refused(&jwt, &garbage, now).await;
    assert!(matches!(err, TokenError::Malformed), "{err:?}");
    assert_eq!(code, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_missing_signature_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    let [header, payload, signature] = parts(&token);

    let mut flipped = signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{header}.{payload}.{}", String::from_utf8(flipped).unwrap());
    let (code, err) = refused(&jwt, &flipped, now).await;
    assert!(matches!(err, TokenError::BadSignature), "{err:?}");
    assert_eq!(code, "invalid_token");

    let zeros = URL_SAFE_NO_PAD.encode([0u8; 64]);
    let (_, other) = jwt.access("user-1", "sid-1", now);
    let other_signature = parts(&jwt.signer.sign(&other).unwrap())[2].clone();
    for forged in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.{zeros}"),
        format!("{header}.{payload}.{other_signature}"),
        format!("{header}.{payload}.%%%"),
        format!("{header}.{payload}"),
        "abc".to_owned(),
        "a.b.c".to_owned(),
    ] {
        let (code, err) = refused(&jwt, &forged, now).await;
        assert!(
            matches!(err, TokenError::BadSignature | TokenError::Malformed),
            "{forged}: {err:?}"
        );
        assert_eq!(code, "invalid_token", "{forged}");
    }

    let err = jwt
        .validator
        .validate::<AccessClaims>("", now)
        .await
        .unwrap_err();
    assert_eq!(code_of("", err), "missing_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    let payload = encode_part(&claims_json(&claims));
    let real_signature = parts(&token)[2].clone();
    for alg in ["none", "None", "NONE"] {
        let header = encode_part(&json!({"alg": alg, "typ": "JWT", "kid": jwt.kid()}));
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.{real_signature}"),
        ] {
            let (code, _) = refused(&jwt, &forged, now).await;
            assert_eq!(code, "invalid_token", "{alg}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let claims = claims_json(&jwt.access_claims("user-1", "sid-1", now));
    let jwk = jwt.keys.jwks_json()["keys"][0].clone();
    let x = jwk["x"].as_str().unwrap().to_owned();
    let public_key = URL_SAFE_NO_PAD.decode(&x).unwrap();
    assert_eq!(public_key.len(), 32);
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(jwt.kid());
    // The raw public key, its base64 text and the JWK document: all an attacker has.
    for secret in [
        public_key.clone(),
        x.into_bytes(),
        jwk.to_string().into_bytes(),
    ] {
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        let (code, err) = refused(&jwt, &forged, now).await;
        assert!(matches!(err, TokenError::WrongAlgorithm), "{err:?}");
        assert_eq!(code, "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_key_with_the_same_kid_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let claims = claims_json(&jwt.access_claims("user-1", "sid-1", now));
    let attacker = Jwt::new(jwt.store.clone());
    let forged = attacker.sign_raw(&jwt.header(), &claims);
    assert_eq!(decode_part(&parts(&forged)[0])["kid"], jwt.kid().as_str());
    let (code, err) = refused(&jwt, &forged, now).await;
    assert!(matches!(err, TokenError::BadSignature), "{err:?}");
    assert_eq!(code, "invalid_token");
    // The attacker's own validator accepts it: the refusal is about the key alone.
    attacker
        .validator
        .validate::<AccessClaims>(&attacker.sign_raw(&attacker.header(), &claims), now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_accepts_only_its_configured_algorithm() {
    let ed = fixture();
    let hs = hs256(ed.store.clone());
    let now = UnixTime::now();
    let (ed_token, _) = ed.access("user-1", "sid-1", now);
    let (hs_token, _) = hs.access("user-1", "sid-1", now);
    assert_eq!(decode_part(&parts(&hs_token)[0])["alg"], "HS256");

    // Each validator takes its own tokens...
    ed.validator
        .validate::<AccessClaims>(&ed_token, now)
        .await
        .unwrap();
    hs.validator
        .validate::<AccessClaims>(&hs_token, now)
        .await
        .unwrap();
    // ...and refuses the other algorithm's.
    for (jwt, token) in [(&hs, &ed_token), (&ed, &hs_token)] {
        let (code, err) = refused(jwt, token, now).await;
        assert!(matches!(err, TokenError::WrongAlgorithm), "{err:?}");
        assert_eq!(code, "invalid_token");
    }

    // An HS256 token with another secret.
    let other = Jwt::with_keys(
        Arc::new(KeySet::hs256(&[7u8; 32]).unwrap()),
        ed.store.clone(),
    );
    let (other_token, _) = other.access("user-1", "sid-1", now);
    let (code, err) = refused(&hs, &other_token, now).await;
    assert!(matches!(err, TokenError::BadSignature), "{err:?}");
    assert_eq!(code, "invalid_token");

    // Any other algorithm named in the header is refused before its signature is read.
    let payload = encode_part(&claims_json(&ed.access_claims("user-1", "sid-1", now)));
    for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"] {
        let header = encode_part(&json!({"alg": alg, "typ": "JWT", "kid": "hs256"}));
        let forged = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([1u8; 64]));
        let (code, _) = refused(&hs, &forged, now).await;
        assert_eq!(code, "invalid_token", "{alg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_with_token_expired() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    for later in [
        UnixTime::from_secs(claims.reg.exp + 3600),
        now.plus(Duration::from_secs(10 * 365 * 86_400)),
    ] {
        let (code, err) = refused(&jwt, &token, later).await;
        assert!(matches!(err, TokenError::Expired), "{err:?}");
        assert_eq!(code, "token_expired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_leeway_is_honoured_at_expiry() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    let exp = claims.reg.exp;
    let leeway = i64::try_from(LEEWAY_SECS).unwrap();
    // Past `exp` but within the leeway: accepted, up to the last millisecond.
    for at in [
        UnixTime::from_secs(exp),
        UnixTime::from_secs(exp + leeway - 1).plus(Duration::from_millis(999)),
    ] {
        jwt.validator
            .validate::<AccessClaims>(&token, at)
            .await
            .unwrap();
    }
    let (code, _) = refused(&jwt, &token, UnixTime::from_secs(exp + leeway)).await;
    assert_eq!(code, "token_expired");

    // Without leeway a token is expired at its `exp` second.
    let strict = Validator::new(
        Algorithm::EdDSA,
        KeySource::Local(jwt.keys.clone()),
        JwtSettings {
            leeway: Duration::ZERO,
            ..settings()
        },
        jwt.store.clone(),
    );
    strict
        .validate::<AccessClaims>(&token, UnixTime::from_secs(exp - 1))
        .await
        .unwrap();
    let err = strict
        .validate::<AccessClaims>(&token, UnixTime::from_secs(exp))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Expired), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_not_valid_yet_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (future, _) = jwt.access("user-1", "sid-1", now.plus(Duration::from_secs(60)));
    let (code, err) = refused(&jwt, &future, now).await;
    assert!(matches!(err, TokenError::NotYetValid), "{err:?}");
    assert_eq!(code, "invalid_token");

    // `nbf` within the leeway ahead of our clock (a skewed issuer) is fine.
    let (skewed, _) = jwt.access(
        "user-1",
        "sid-1",
        now.plus(Duration::from_secs(LEEWAY_SECS)),
    );
    jwt.validator
        .validate::<AccessClaims>(&skewed, now)
        .await
        .unwrap();

    // `nbf` is checked on its own, not derived from `iat`.
    let mut claims = claims_json(&jwt.access_claims("user-1", "sid-1", now));
    claims["nbf"] = json!(now.secs() + 3600);
    let (code, err) = refused(&jwt, &jwt.sign_raw(&jwt.header(), &claims), now).await;
    assert!(matches!(err, TokenError::NotYetValid), "{err:?}");
    assert_eq!(code, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_missing_a_required_claim_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let access = claims_json(&jwt.access_claims("user-1", "sid-1", now));
    for claim in [
        "iss",
        "aud",
        "sub",
        "iat",
        "nbf",
        "exp",
        "jti",
        "token_type",
        "email",
        "roles",
        "tier",
        "sid",
    ] {
        let mut claims = access.clone();
        claims.as_object_mut().unwrap().remove(claim).unwrap();
        let (code, err) = refused(&jwt, &jwt.sign_raw(&jwt.header(), &claims), now).await;
        assert!(
            matches!(err, TokenError::BadClaims),
            "without {claim}: {err:?}"
        );
        assert_eq!(code, "invalid_token", "without {claim}");
    }
    // A claim of the wrong JSON type is as bad as a missing one.
    for (claim, value) in [
        ("exp", json!("tomorrow")),
        ("roles", json!("admin")),
        ("tier", json!("platinum")),
    ] {
        let mut claims = access.clone();
        claims[claim] = value;
        let (code, _) = refused(&jwt, &jwt.sign_raw(&jwt.header(), &claims), now).await;
        assert_eq!(code, "invalid_token", "{claim}");
    }

    let (_, refresh) = jwt.refresh("user-1", "sid-1", now);
    let mut claims = claims_json(&refresh);
    claims.as_object_mut().unwrap().remove("fam");
    let token = jwt.sign_raw(&jwt.header(), &claims);
    let err = jwt
        .validator
        .validate::<RefreshClaims>(&token, now)
        .await
        .unwrap_err();
    assert_eq!(code_of(&token, err), "invalid_token");

    let (_, service) = jwt.service("backend", &["events:publish"], now);
    let mut claims = claims_json(&service);
    claims.as_object_mut().unwrap().remove("scopes");
    let token = jwt.sign_raw(&jwt.header(), &claims);
    let err = jwt
        .validator
        .validate::<ServiceClaims>(&token, now)
        .await
        .unwrap_err();
    assert_eq!(code_of(&token, err), "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_issuer_or_audience_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    for other in [
        JwtSettings {
            issuer: "someone-else".into(),
            ..settings()
        },
        JwtSettings {
            audience: "another-api".into(),
            ..settings()
        },
    ] {
        let signer = Signer::new(jwt.keys.clone(), other);
        let claims = AccessClaims {
            reg: signer.registered("user-1", TokenType::Access, new_jti(), now, ACCESS_TTL),
            ..jwt.access_claims("user-1", "sid-1", now)
        };
        let (code, err) = refused(&jwt, &signer.sign(&claims).unwrap(), now).await;
        assert!(matches!(err, TokenError::WrongIssuer), "{err:?}");
        assert_eq!(code, "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_type_is_refused_with_wrong_token_type() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (access, _) = jwt.access("user-1", "sid-1", now);
    let (refresh, _) = jwt.refresh("user-1", "sid-1", now);
    let (service, _) = jwt.service("backend", &["users:admin"], now);

    for token in [&refresh, &service] {
        let (code, err) = refused(&jwt, token, now).await;
        assert!(matches!(err, TokenError::WrongType(_)), "{err:?}");
        assert_eq!(code, "wrong_token_type");
    }
    for token in [&access, &service] {
        let err = jwt
            .validator
            .validate::<RefreshClaims>(token, now)
            .await
            .unwrap_err();
        assert_eq!(code_of(token, err), "wrong_token_type");
    }
    for token in [&access, &refresh] {
        let err = jwt
            .validator
            .validate::<ServiceClaims>(token, now)
            .await
            .unwrap_err();
        assert_eq!(code_of(token, err), "wrong_token_type");
    }
    // A refresh token relabelled as access breaks the signature.
    let [header, payload, signature] = parts(&refresh);
    let mut claims = decode_part(&payload);
    claims["token_type"] = json!("access");
    let relabelled = format!("{header}.{}.{signature}", encode_part(&claims));
    assert_eq!(refused(&jwt, &relabelled, now).await.0, "invalid_token");
    // The right type is accepted.
    let got = jwt
        .validator
        .validate::<RefreshClaims>(&refresh, now)
        .await
        .unwrap();
    assert_eq!(got.sid, "sid-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_carries_its_client_and_scopes() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.service("backend", &["generations:write", "events:publish"], now);
    assert_eq!(claims.reg.sub, "service:backend");
    let got = jwt
        .validator
        .validate::<ServiceClaims>(&token, now)
        .await
        .unwrap();
    assert_eq!(got, claims);
    assert_eq!(got.client_id(), "backend");
    assert!(got.has_scope(Scope::GenerationsWrite));
    assert!(got.has_scope(Scope::EventsPublish));
    assert!(!got.has_scope(Scope::UsersAdmin));
    let mut prefix = got.clone();
    prefix.scopes = vec!["events".to_owned(), String::new()];
    assert!(
        !prefix.has_scope(Scope::EventsPublish),
        "scopes match whole, not by prefix"
    );
    assert_eq!(
        decode_part(&parts(&token)[1])["scopes"],
        json!(["generations:write", "events:publish"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_missing_kid_is_refused() {
    let jwt = fixture();
    let now = UnixTime::now();
    let claims = claims_json(&jwt.access_claims("user-1", "sid-1", now));
    let mut unknown = jwt.header();
    unknown.kid = Some("2099-01".into());
    let mut missing = jwt.header();
    missing.kid = None;
    for header in [unknown, missing] {
        let (code, err) = refused(&jwt, &jwt.sign_raw(&header, &claims), now).await;
        assert!(matches!(err, TokenError::UnknownKey), "{err:?}");
        assert_eq!(code, "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_verifies_the_tokens_of_its_key_set() {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);

    let jwks = jwt.keys.jwks_json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(key["kid"].as_str(), Some(jwt.kid().as_str()));
    assert!(!key.contains_key("d"), "no private part is published");

    // A verifier that only has the published document (like stream-service).
    let published = KeySet::from_jwks(&serde_json::from_str(&jwks.to_string()).unwrap()).unwrap();
    assert!(published.signing_key().is_none());
    let verifier = Jwt::with_keys(Arc::new(published), jwt.store.clone());
    assert_eq!(
        verifier
            .validator
            .validate::<AccessClaims>(&token, now)
            .await
            .unwrap(),
        claims
    );

    // Another key set's document does not verify our tokens.
    let stranger = KeySet::from_jwks(&KeySet::ephemeral().unwrap().jwks_json()).unwrap();
    let stranger = Jwt::with_keys(Arc::new(stranger), jwt.store.clone());
    let (code, err) = refused(&stranger, &token, now).await;
    assert!(matches!(err, TokenError::UnknownKey), "{err:?}");
    assert_eq!(code, "invalid_token");

    // An HS256 secret is never published.
    assert_eq!(
        hs256(jwt.store.clone()).keys.jwks_json(),
        json!({"keys": []})
    );
}

/// A fixture with one access token, validated once and so kept as verified.
async fn verified_once() -> (Jwt, UnixTime, String, AccessClaims) {
    let jwt = fixture();
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    jwt.validator
        .validate::<AccessClaims>(&token, now)
        .await
        .unwrap();
    assert_eq!(jwt.validator.verified_tokens(), 1);
    (jwt, now, token, claims)
}

/// Verified once: a token's claims are kept by the SHA-256 of its exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_copy_of_a_verified_token_never_hits_the_verified_cache() {
    let (jwt, now, token, claims) = verified_once().await;

    let [header, payload, signature] = parts(&token);
    let mut other_claims = claims_json(&claims);
    other_claims["sub"] = json!("user-2");
    let mut flipped = signature.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let altered = [
        // Another subject under the same signature.
        format!("{header}.{}.{signature}", encode_part(&other_claims)),
        // Another signature.
        format!("{header}.{payload}.{}", String::from_utf8(flipped).unwrap()),
        // Trailing bytes, and a signature-less copy.
        format!("{token}A"),
        format!("{header}.{payload}."),
    ];
    for copy in &altered {
        let (code, err) = refused(&jwt, copy, now).await;
        assert_eq!(code, "invalid_token", "{err:?}");
    }
    assert_eq!(
        jwt.validator.verified_tokens(),
        1,
        "nothing refused is kept"
    );
    jwt.validator
        .validate::<AccessClaims>(&token, now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_token_is_still_checked_for_time_type_and_revocation() {
    let (jwt, now, token, claims) = verified_once().await;

    let after_exp = UnixTime::from_secs(claims.reg.exp + LEEWAY_SECS as i64 + 1);
    assert_eq!(refused(&jwt, &token, after_exp).await.0, "token_expired");
    let before_nbf = UnixTime::from_secs(claims.reg.nbf - LEEWAY_SECS as i64 - 1);
    assert_eq!(refused(&jwt, &token, before_nbf).await.0, "invalid_token");
    let err = jwt
        .validator
        .validate::<RefreshClaims>(&token, now)
        .await
        .unwrap_err();
    assert_eq!(code_of(&token, err), "wrong_token_type");

    authstream_store::revocations::revoke_token(
        &jwt.store,
        "user-1",
        &claims.reg.jti,
        claims.reg.exp,
        now,
        Duration::from_secs(LEEWAY_SECS),
    )
    .await
    .unwrap();
    assert_eq!(refused(&jwt, &token, now).await.0, "token_revoked");
    assert_eq!(jwt.validator.verified_tokens(), 1);
}
