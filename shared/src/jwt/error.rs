//! Why a token was refused (`TokenError`), and how that answers over HTTP.

use crate::error::{ApiError, ErrorCode};
use crate::store::StoreError;

/// Why a token was refused. `reason()` is the metric label and log field.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("algorithm not allowed")]
    WrongAlgorithm,
    #[error("unknown key id")]
    UnknownKey,
    /// The key id is unknown and the auth service's keys cannot be fetched: the token
    /// could not be checked at all, which is no verdict on it.
    #[error("the verification keys cannot be fetched")]
    KeysUnavailable,
    #[error("missing or invalid claims")]
    BadClaims,
    #[error("wrong issuer or audience")]
    WrongIssuer,
    #[error("not valid yet")]
    NotYetValid,
    #[error("expired")]
    Expired,
    #[error("wrong token type: {0}")]
    WrongType(crate::claims::TokenType),
    #[error("revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::BadClaims => "bad_claims",
            Self::WrongIssuer => "wrong_issuer",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::WrongType(_) => "wrong_type",
            Self::Revoked => "revoked",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let code = match &e {
            TokenError::Missing => ErrorCode::MissingToken,
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::Revoked => ErrorCode::TokenRevoked,
            TokenError::WrongType(_) => ErrorCode::WrongTokenType,
            TokenError::Store(s) => return s.clone().into(),
            TokenError::KeysUnavailable => {
                return StoreError::Unavailable(e.to_string()).into();
            }
            _ => ErrorCode::InvalidToken,
        };
        ApiError::new(code, format!("the token was refused: {e}"))
    }
}
