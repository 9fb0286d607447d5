use authstream_proto::ErrorCode;

/// Why a token was refused, or could not be checked.
///
/// [`VerifyError::code`] is the stable code the auth service's `/auth/validate` answers
/// for the same token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No token was given.
    #[error("no token")]
    Missing,
    /// Not a JWT.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signed with another algorithm than the JWKS's.
    #[error("algorithm not allowed")]
    WrongAlgorithm,
    /// Signed by a key the JWKS does not publish (any more).
    #[error("unknown key id")]
    UnknownKey,
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
    WrongType(String),
    /// The token, its session or its user was revoked.
    #[error("revoked")]
    Revoked,
    /// The token could not be checked: the revocation feed is stale (no heartbeat
    /// within the staleness bound) or the keys cannot be fetched. No verdict on the
    /// token; answer 503 and let the caller retry.
    #[error("the token cannot be checked now: {0}")]
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
        match self {
            Self::Missing => ErrorCode::MissingToken,
            Self::Expired => ErrorCode::TokenExpired,
            Self::Revoked => ErrorCode::TokenRevoked,
            Self::WrongType(_) => ErrorCode::WrongTokenType,
            Self::Unavailable(_) => ErrorCode::StoreUnavailable,
            _ => ErrorCode::InvalidToken,
        }
    }

    /// The HTTP status the auth service answers with: 401, or 503 for `Unavailable`.
    pub fn status(&self) -> u16 {
        self.error_code().status()
    }

    /// The problem+json `title` of [`code`](Self::code).
    pub fn title(&self) -> &'static str {
        self.error_code().title()
    }
}

/// Why [`VerifierBuilder::build`](crate::VerifierBuilder::build) failed.
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
