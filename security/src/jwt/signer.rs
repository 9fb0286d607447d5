//! Signing tokens with the newest key of a key set, and new token ids.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Header;

use crate::keys::KeySet;
use authstream_proto::claims::{Claims, Registered, TokenType};
use authstream_runtime::clock::UnixTime;

use super::JwtSettings;

/// Signs tokens with the newest key of a key set.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<KeySet>,
    settings: JwtSettings,
}

impl Signer {
    pub fn new(keys: Arc<KeySet>, settings: JwtSettings) -> Self {
        Self { keys, settings }
    }

    /// The registered claims of a new token of `token_type` for `sub`, living `ttl` from `now`.
    pub fn registered(
        &self,
        sub: &str,
        token_type: TokenType,
        jti: String,
        now: UnixTime,
        ttl: Duration,
    ) -> Registered {
        let iat = now.secs();
        Registered {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: sub.to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti,
            token_type,
        }
    }

    pub fn sign<C: Claims>(&self, claims: &C) -> Result<String, SignError> {
        let (kid, key) = self
            .keys
            .signing_key()
            .ok_or_else(|| SignError("no signing key".into()))?;
        let mut header = Header::new(self.keys.algorithm().jwt());
        header.kid = Some(kid.to_owned());
        let token =
            jsonwebtoken::encode(&header, claims, key).map_err(|e| SignError(e.to_string()))?;
        metrics::counter!("authstream_tokens_issued_total", "type" => C::TYPE.as_str())
            .increment(1);
        Ok(token)
    }
}

/// A random, unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Signing failed: a key set without a signing key (a verifier's), or the encoder
/// refused. What no retry mends.
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(String);
