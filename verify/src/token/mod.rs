//! The verification core, written once: the auth services' validator
//! (`authstream-security`) and `Verifier` are layers over it.
//!
//! A token is checked in four steps, each refusing with a [`TokenError`]:
//! [`key_id`] reads the header and pins the algorithm; the layer finds the key of that
//! `kid` (its own key set, or a [`RemoteJwks`](crate::jwks::RemoteJwks)); [`decode`]
//! checks the signature and the token type and reads the claims; [`JwtSettings::check`]
//! checks issuer, audience, `exp` and `nbf` with the leeway against a `now` passed in.
//! Revocation is the layer's: a store, or the revocation feed.

use std::sync::Once;
use std::time::Duration;

use authstream_proto::claims::{Registered, TokenType};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

mod error;

pub use error::TokenError;

/// What a token must say beyond its signature: its issuer and audience, and how far
/// `exp` and `nbf` may be off our clock.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud`.
    pub audience: String,
    /// Clock leeway for `exp` and `nbf` (whole seconds count).
    pub leeway: Duration,
}

impl JwtSettings {
    /// `iss` and `aud`, then [`check_time`](Self::check_time).
    pub fn check<S>(&self, reg: &Registered, now_secs: i64) -> Result<(), TokenError<S>> {
        if reg.iss != self.issuer || reg.aud != self.audience {
            return Err(TokenError::WrongIssuer);
        }
        self.check_time(reg, now_secs)
    }

    /// `exp` and `nbf` against `now_secs` (Unix seconds), with the leeway: a token is
    /// expired at `exp + leeway`, valid from `nbf - leeway`.
    pub fn check_time<S>(&self, reg: &Registered, now_secs: i64) -> Result<(), TokenError<S>> {
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if reg.exp.saturating_add(leeway) <= now_secs {
            return Err(TokenError::Expired);
        }
        if reg.nbf.saturating_sub(leeway) > now_secs {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// Makes jsonwebtoken use aws-lc-rs; without an installed provider its first use
/// panics. Idempotent.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed, which is what we want.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    });
}

/// The `kid` of `token`, whose header must name the pinned `algorithm`.
pub fn key_id<S>(token: &str, algorithm: Algorithm) -> Result<String, TokenError<S>> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != algorithm {
        return Err(TokenError::WrongAlgorithm);
    }
    header.kid.ok_or(TokenError::UnknownKey)
}

/// The claims of `token`: its signature verified by `key` under the pinned
/// `algorithm`, its `token_type` that of `token_type`, its claims those of `C`.
/// Issuer, audience and times are [`JwtSettings::check`]'s.
pub fn decode<C: DeserializeOwned, S>(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
    token_type: TokenType,
) -> Result<C, TokenError<S>> {
    // jsonwebtoken checks the signature and the pinned algorithm only; the claims are
    // checked here and by `JwtSettings::check`, against the `now` the caller gives.
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| {
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
    // The type first: another type's claims are a wrong type, not bad claims.
    let actual = raw
        .get("token_type")
        .and_then(|t| t.as_str())
        .and_then(TokenType::parse)
        .ok_or(TokenError::BadClaims)?;
    if actual != token_type {
        return Err(TokenError::WrongType(actual));
    }
    serde_json::from_value(raw).map_err(|_| TokenError::BadClaims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(exp: i64, nbf: i64) -> Registered {
        Registered {
            iss: "i".into(),
            aud: "a".into(),
            sub: "u".into(),
            iat: nbf,
            nbf,
            exp,
            jti: "j".into(),
            token_type: TokenType::Access,
        }
    }

    #[test]
    fn issuer_audience_and_times_are_checked_with_the_leeway() {
        let settings = JwtSettings {
            issuer: "i".into(),
            audience: "a".into(),
            leeway: Duration::from_secs(5),
        };
        let check = |reg: &Registered, now| settings.check::<std::convert::Infallible>(reg, now);
        let reg = registered(100, 50);
        assert_eq!(check(&reg, 104), Ok(()));
        assert_eq!(check(&reg, 105), Err(TokenError::Expired));
        assert_eq!(check(&reg, 45), Ok(()));
        assert_eq!(check(&reg, 44), Err(TokenError::NotYetValid));
        let other = Registered {
            aud: "b".into(),
            ..reg.clone()
        };
        assert_eq!(check(&other, 60), Err(TokenError::WrongIssuer));
        assert_eq!(
            check(&registered(i64::MAX, i64::MIN), 0),
            Ok(()),
            "no overflow"
        );
    }

    #[test]
    fn an_empty_or_unreadable_header_is_refused_before_any_key() {
        let kid = |token| key_id::<std::convert::Infallible>(token, Algorithm::EdDSA);
        assert_eq!(kid(""), Err(TokenError::Missing));
        assert_eq!(kid("a.b.c"), Err(TokenError::Malformed));
    }
}
