//! Validating tokens: the algorithm pinned, the claims checked against a `now`
//! passed in, revocation checked; a token's signature verified once and its claims
//! kept by the SHA-256 of its bytes until it expires.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Validation;

use crate::keys::Algorithm;
use authstream_proto::claims::{Claims, Registered};
use authstream_runtime::clock::UnixTime;
use authstream_store::{Store, StoreError};

use super::{JwtSettings, KeySource, TokenError};

/// How many verified tokens are kept (each a few hundred bytes).
const VERIFIED_CAPACITY: u64 = 100_000;

/// A token whose signature, algorithm, type, issuer and audience were checked.
struct Verified {
    kid: String,
    /// The typed claims (`C` of the `validate::<C>` that verified it).
    claims: Arc<dyn Any + Send + Sync>,
    /// Until the token expires (with leeway): no use keeping it longer.
    lives: Duration,
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &[u8; 32],
        verified: &Arc<Verified>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(verified.lives)
    }
}

/// Validates tokens for both services.
#[derive(Clone)]
pub struct Validator {
    algorithm: Algorithm,
    keys: KeySource,
    settings: JwtSettings,
    store: Store,
    /// SHA-256 of a token's bytes → its verified claims. Other bytes are another key,
    /// so no altered token can hit; a hit is still checked for time and revocation.
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl Validator {
    pub fn new(algorithm: Algorithm, keys: KeySource, settings: JwtSettings, store: Store) -> Self {
        crate::keys::install_crypto_provider();
        Self {
            algorithm,
            keys,
            settings,
            store,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// How many verified tokens are kept now.
    pub fn verified_tokens(&self) -> u64 {
        self.verified.run_pending_tasks();
        self.verified.entry_count()
    }

    /// Signature, algorithm, claims and type, checked against `now`; no store access.
    /// A token verified before (same bytes, key still known) is not verified again.
    pub async fn decode<C: Claims>(&self, token: &str, now: UnixTime) -> Result<C, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let digest = sha256(token);
        if let Some(hit) = self.verified.get(&digest)
            && let Some(claims) = hit.claims.downcast_ref::<C>()
            && self.still_knows(&hit.kid)
        {
            metrics::counter!("authstream_token_verify_cache_total", "result" => "hit")
                .increment(1);
            self.check_time(claims.registered(), now)?;
            return Ok(claims.clone());
        }
        metrics::counter!("authstream_token_verify_cache_total", "result" => "miss").increment(1);
        let (claims, kid) = self.verify::<C>(token, now).await?;
        let exp = claims.registered().exp;
        let lives = now.until(UnixTime::from_secs(exp).plus(self.settings.leeway));
        if !lives.is_zero() {
            let verified = Verified {
                kid,
                claims: Arc::new(claims.clone()),
                lives,
            };
            self.verified.insert(digest, Arc::new(verified));
        }
        Ok(claims)
    }

    /// True when the key that signed a cached token is still a verifying key.
    fn still_knows(&self, kid: &str) -> bool {
        match &self.keys {
            KeySource::Local(keys) => keys.verifying_key(kid).is_some(),
            KeySource::Remote(remote) => remote.knows(kid),
        }
    }

    /// The full check of `decode`, and the key id that verified it.
    async fn verify<C: Claims>(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<(C, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm.jwt() {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = match &self.keys {
            KeySource::Local(keys) => keys.clone(),
            KeySource::Remote(remote) => remote.key_set_with(&kid).await?,
        };
        let key = keys.verifying_key(&kid).ok_or(TokenError::UnknownKey)?;

        // jsonwebtoken checks the signature and the pinned algorithm only; the claims
        // are checked below against the `now` we were given.
        let mut validation = Validation::new(self.algorithm.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        TokenError::WrongAlgorithm
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let raw = data.claims;
        let token_type = raw
            .get("token_type")
            .and_then(|t| t.as_str())
            .ok_or(TokenError::BadClaims)?;
        let token_type =
            authstream_proto::claims::TokenType::parse(token_type).ok_or(TokenError::BadClaims)?;
        if token_type != C::TYPE {
            return Err(TokenError::WrongType(token_type));
        }
        let claims: C = serde_json::from_value(raw).map_err(|_| TokenError::BadClaims)?;
        let reg = claims.registered();
        if reg.iss != self.settings.issuer || reg.aud != self.settings.audience {
            return Err(TokenError::WrongIssuer);
        }
        self.check_time(reg, now)?;
        Ok((claims, kid))
    }

    /// `exp` and `nbf` against `now`, with the leeway.
    fn check_time(&self, reg: &Registered, now: UnixTime) -> Result<(), TokenError> {
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(0);
        let now_secs = now.secs();
        if reg.exp + leeway <= now_secs {
            return Err(TokenError::Expired);
        }
        if reg.nbf - leeway > now_secs {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// Everything `decode` checks, then revocation per token, session and user
    /// (`Store::revoked`: the local view while it is fresh, else one `MGET`).
    pub async fn validate<C: Claims>(&self, token: &str, now: UnixTime) -> Result<C, TokenError> {
        let result = async {
            let claims = self.decode::<C>(token, now).await?;
            let reg = claims.registered();
            if revoked(
                &self.store,
                &reg.sub,
                &reg.jti,
                claims.session_id(),
                reg.iat,
            )
            .await?
            {
                return Err(TokenError::Revoked);
            }
            Ok(claims)
        }
        .await;
        match &result {
            Ok(_) => metrics::counter!("authstream_tokens_validated_total", "type" => C::TYPE.as_str()).increment(1),
            Err(e) => metrics::counter!(
                "authstream_tokens_rejected_total", "type" => C::TYPE.as_str(), "reason" => e.reason()
            )
            .increment(1),
        }
        result
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// True when the token `jti` of `sub`, its session, or everything of `sub` issued
/// at `iat` has been revoked: see `Store::revoked`.
pub async fn revoked(
    store: &Store,
    sub: &str,
    jti: &str,
    sid: Option<&str>,
    iat: i64,
) -> Result<bool, StoreError> {
    store.revoked(sub, jti, sid, iat).await
}
