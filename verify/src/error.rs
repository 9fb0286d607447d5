use std::fmt;

use authstream_proto::{ErrorCode, TokenType};

use crate::token::TokenError;

/// Why a token was refused, or could not be checked.
///
/// The verdicts are those of [`TokenError`] (messages and codes are its own);
/// [`VerifyError::code`] is the stable code the auth service's `/auth/validate`
/// answers for the same token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// No token was given.
    Missing,
    /// Not a JWT.
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// Signed with another algorithm than the JWKS's.
    WrongAlgorithm,
    /// Signed by a key the JWKS does not publish (any more).
    UnknownKey,
    /// A claim is missing or of the wrong kind.
    BadClaims,
    /// Another issuer or audience.
    WrongIssuer,
    /// `nbf` is ahead (beyond the leeway).
    NotYetValid,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// Another token type than the one asked for (the type it has).
    WrongType(TokenType),
    /// The token, its session or its user was revoked.
    Revoked,
    /// The token could not be checked: the revocation feed is stale (no heartbeat
    /// within the staleness bound) or the keys cannot be fetched. No verdict on the
    /// token; answer 503 and let the caller retry.
    Unavailable(&'static str),
}

impl VerifyError {
    /// The stable code: `missing_token`, `invalid_token`, `token_expired`,
    /// `token_revoked`, `wrong_token_type` or `store_unavailable`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The [`ErrorCode`] (of `authstream-proto`) the auth service answers for the
    /// same token.
    pub fn error_code(&self) -> ErrorCode {
        self.verdict()
            .map_or(ErrorCode::StoreUnavailable, |v| v.error_code())
    }

    /// The HTTP status the auth service answers with: 401, or 503 for `Unavailable`.
    pub fn status(&self) -> u16 {
        self.error_code().status()
    }

    /// The problem+json `title` of [`code`](Self::code).
    pub fn title(&self) -> &'static str {
        self.error_code().title()
    }

    /// The core's verdict, or why no verdict could be given.
    fn verdict(&self) -> Result<TokenError, &'static str> {
        Ok(match self {
            Self::Missing => TokenError::Missing,
            Self::Malformed => TokenError::Malformed,
            Self::BadSignature => TokenError::BadSignature,
            Self::WrongAlgorithm => TokenError::WrongAlgorithm,
            Self::UnknownKey => TokenError::UnknownKey,
            Self::BadClaims => TokenError::BadClaims,
            Self::WrongIssuer => TokenError::WrongIssuer,
            Self::NotYetValid => TokenError::NotYetValid,
            Self::Expired => TokenError::Expired,
            Self::WrongType(actual) => TokenError::WrongType(*actual),
            Self::Revoked => TokenError::Revoked,
            Self::Unavailable(why) => return Err(why),
        })
    }
}

impl From<TokenError> for VerifyError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Missing => Self::Missing,
            TokenError::Malformed => Self::Malformed,
            TokenError::BadSignature => Self::BadSignature,
            TokenError::WrongAlgorithm => Self::WrongAlgorithm,
            TokenError::UnknownKey => Self::UnknownKey,
            TokenError::KeysUnavailable => Self::Unavailable("the JWKS cannot be fetched"),
            TokenError::BadClaims => Self::BadClaims,
            TokenError::WrongIssuer => Self::WrongIssuer,
            TokenError::NotYetValid => Self::NotYetValid,
            TokenError::Expired => Self::Expired,
            TokenError::WrongType(actual) => Self::WrongType(actual),
            TokenError::Revoked => Self::Revoked,
            TokenError::Store(never) => match never {},
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verdict() {
            Ok(verdict) => verdict.fmt(f),
            Err(why) => write!(f, "the token cannot be checked now: {why}"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Why [`VerifierBuilder::build`](crate::VerifierBuilder::build) failed.
#[cfg(feature = "verifier")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is invalid (the auth URL, a plain http URL to a host not allowed).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The JWKS could not be fetched or read.
    #[error("cannot fetch the JWKS: {0}")]
    Jwks(String),
    /// No service token: wrong credentials, or the auth service cannot be reached.
    #[error("cannot get a service token: {0}")]
    ServiceToken(String),
    /// The revocation feed refused the service token or sent no heartbeat in time.
    #[error("cannot follow the revocation feed: {0}")]
    Feed(String),
}
