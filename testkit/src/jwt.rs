//! A JWT fixture: an ephemeral key set with its signer and a validator on a store,
//! the settings tests sign under, and the code a refusal answers with.

use std::sync::Arc;
use std::time::Duration;

use authstream_proto::claims::{AccessClaims, RefreshClaims, ServiceClaims, Tier, TokenType};
use authstream_runtime::UnixTime;
use authstream_security::jwt::{JwtSettings, KeySource, Signer, TokenError, Validator, new_jti};
use authstream_security::keys::{Algorithm, KeySet};
use authstream_store::Store;
use authstream_web::ApiError;
use serde_json::Value;

pub const ISSUER: &str = "authstream-test";
pub const AUDIENCE: &str = "authstream-test-aud";
pub const LEEWAY_SECS: u64 = 5;
pub const ACCESS_TTL: Duration = Duration::from_secs(900);

pub fn settings() -> JwtSettings {
    JwtSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway: Duration::from_secs(LEEWAY_SECS),
    }
}

/// An ephemeral Ed25519 key set with its signer and a validator on `store`.
pub struct Jwt {
    pub keys: Arc<KeySet>,
    pub signer: Signer,
    pub validator: Validator,
    pub store: Store,
}

impl Jwt {
    pub fn new(store: Store) -> Self {
        Self::with_keys(Arc::new(KeySet::ephemeral().unwrap()), store)
    }

    pub fn with_keys(keys: Arc<KeySet>, store: Store) -> Self {
        let signer = Signer::new(keys.clone(), settings());
        let validator = Validator::new(
            keys.algorithm(),
            KeySource::Local(keys.clone()),
            settings(),
            store.clone(),
        );
        Self {
            keys,
            signer,
            validator,
            store,
        }
    }

    pub fn kid(&self) -> String {
        self.keys.signing_key().unwrap().0.to_owned()
    }

    pub fn access_claims(&self, sub: &str, sid: &str, now: UnixTime) -> AccessClaims {
        AccessClaims {
            reg: self
                .signer
                .registered(sub, TokenType::Access, new_jti(), now, ACCESS_TTL),
            email: format!("{sub}@example.com"),
            roles: vec!["user".into()],
            tier: Tier::Free,
            sid: sid.into(),
        }
    }

    /// A signed access token of `sub` in session `sid`, issued at `now`.
    pub fn access(&self, sub: &str, sid: &str, now: UnixTime) -> (String, AccessClaims) {
        let claims = self.access_claims(sub, sid, now);
        (self.signer.sign(&claims).unwrap(), claims)
    }

    pub fn refresh(&self, sub: &str, sid: &str, now: UnixTime) -> (String, RefreshClaims) {
        let claims = RefreshClaims {
            reg: self.signer.registered(
                sub,
                TokenType::Refresh,
                new_jti(),
                now,
                Duration::from_secs(604_800),
            ),
            sid: sid.into(),
            fam: new_jti(),
        };
        (self.signer.sign(&claims).unwrap(), claims)
    }

    pub fn service(
        &self,
        client_id: &str,
        scopes: &[&str],
        now: UnixTime,
    ) -> (String, ServiceClaims) {
        let sub = format!("service:{client_id}");
        let claims = ServiceClaims {
            reg: self
                .signer
                .registered(&sub, TokenType::Service, new_jti(), now, ACCESS_TTL),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        (self.signer.sign(&claims).unwrap(), claims)
    }

    /// Signs any JSON with this key set's signing key under `header`.
    pub fn sign_raw(&self, header: &jsonwebtoken::Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, self.keys.signing_key().unwrap().1).unwrap()
    }

    /// The header this key set signs with.
    pub fn header(&self) -> jsonwebtoken::Header {
        let mut header = jsonwebtoken::Header::new(self.keys.algorithm().jwt());
        header.kid = Some(self.kid());
        header
    }
}

/// An HS256 fixture sharing nothing with the Ed25519 one.
pub fn hs256(store: Store) -> Jwt {
    let keys = Arc::new(KeySet::hs256(b"0123456789abcdef0123456789abcdef-hs256").unwrap());
    assert_eq!(keys.algorithm(), Algorithm::HS256);
    Jwt::with_keys(keys, store)
}

/// The contract code of a refusal, checking on the way that the problem detail does
/// not echo the token.
pub fn code_of(token: &str, err: TokenError) -> &'static str {
    let api = ApiError::from(err);
    assert!(
        token.is_empty() || !api.detail.contains(token),
        "the detail echoes the token: {}",
        api.detail
    );
    api.code.as_str()
}
