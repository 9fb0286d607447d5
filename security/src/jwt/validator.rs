//! Validating tokens: the verification core's checks (`authstream_verify::token`:
//! the algorithm pinned, the claims checked against a `now` passed in), then
//! revocation in the store's view; a token's signature verified once and its claims
//! kept by the SHA-256 of its bytes until it expires.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authstream_verify::token;

use crate::keys::Algorithm;
use authstream_proto::claims::Claims;
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
            self.settings.check_time(claims.registered(), now.secs())?;
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
        let algorithm = self.algorithm.jwt();
        let kid = token::key_id(token, algorithm)?;
        let remote;
        let key = match &self.keys {
            KeySource::Local(keys) => keys.verifying_key(&kid),
            KeySource::Remote(keys) => {
                remote = keys.keys_with(&kid).await?;
                remote.get(&kid)
            }
        }
        .ok_or(TokenError::UnknownKey)?;
        let claims: C = token::decode(token, key, algorithm, C::TYPE)?;
        self.settings.check(claims.registered(), now.secs())?;
        Ok((claims, kid))
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
