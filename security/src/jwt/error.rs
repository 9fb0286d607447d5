//! Why a token was refused (`TokenError`). The web crate maps it to an answer.

use authstream_store::StoreError;

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
    WrongType(authstream_proto::claims::TokenType),
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
