//! Why a token was refused: [`TokenError`], the one list of verdicts.

use std::convert::Infallible;

use authstream_proto::{ErrorCode, TokenType};

/// Why a token was refused, or could not be checked. The one list of verdicts:
/// the auth services' validator (`authstream-security`, with `S` its store's error) and
/// `Verifier` (through [`VerifyError`](crate::VerifyError)) both
/// answer these. [`reason`](Self::reason) is the metric label and log field,
/// [`error_code`](Self::error_code) the stable code.
///
/// `Store` is for whatever tells revocations (a store, a feed) when it cannot answer:
/// no verdict on the token. The checks of [`token`](crate::token) never answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError<S = Infallible> {
    /// No token was given.
    #[error("no token")]
    Missing,
    /// Not a JWT.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signed with another algorithm than the pinned one.
    #[error("algorithm not allowed")]
    WrongAlgorithm,
    /// Signed by a key that is not (or no longer) a verifying key.
    #[error("unknown key id")]
    UnknownKey,
    /// The key id is unknown and the keys cannot be fetched: the token could not be
    /// checked at all, which is no verdict on it.
    #[error("the verification keys cannot be fetched")]
    KeysUnavailable,
    /// A claim is missing or of the wrong kind.
    #[error("missing or invalid claims")]
    BadClaims,
    /// Another issuer or audience.
    #[error("wrong issuer or audience")]
    WrongIssuer,
    /// `nbf` is ahead (beyond the leeway).
    #[error("not valid yet")]
    NotYetValid,
    /// `exp` has passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// Another token type than the one asked for (the type it has).
    #[error("wrong token type: {0}")]
    WrongType(TokenType),
    /// The token, its session or its user was revoked.
    #[error("revoked")]
    Revoked,
    /// What tells revocations cannot answer.
    #[error(transparent)]
    Store(#[from] S),
}

impl<S> TokenError<S> {
    /// The metric label and log field.
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

    /// The stable code: `missing_token`, `invalid_token`, `token_expired`,
    /// `token_revoked`, `wrong_token_type`, or `store_unavailable` for what could not
    /// be checked (a layer may answer its store's own code for `Store`).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::MissingToken,
            Self::Expired => ErrorCode::TokenExpired,
            Self::Revoked => ErrorCode::TokenRevoked,
            Self::WrongType(_) => ErrorCode::WrongTokenType,
            Self::KeysUnavailable | Self::Store(_) => ErrorCode::StoreUnavailable,
            Self::Malformed
            | Self::BadSignature
            | Self::WrongAlgorithm
            | Self::UnknownKey
            | Self::BadClaims
            | Self::WrongIssuer
            | Self::NotYetValid => ErrorCode::InvalidToken,
        }
    }
}
