//! Error codes of the contract (section 2), free of any web framework.
//! `crate::http` maps them to `application/problem+json` in one place.

use std::collections::BTreeMap;
use std::fmt;

use crate::store::StoreError;

/// Declares `ErrorCode` and `ErrorCode::ALL` from one list, so that no code can be
/// left out of the list (the OpenAPI `code` enum is built from it).
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident,)*) => {
        /// A stable, machine-readable error code. The status follows from the code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code, for documentation (the OpenAPI `code` enum) and tests.
            pub const ALL: &'static [Self] = &[$(Self::$code,)*];
        }
    };
}

error_codes! {
    MissingToken,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    WrongTokenType,
    InvalidCredentials,
    InvalidStreamToken,
    Forbidden,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    GenerationExists,
    GenerationFinished,
    PreconditionFailed,
    PreconditionRequired,
    PayloadTooLarge,
    ValidationFailed,
    RateLimited,
    Internal,
    StoreUnavailable,
    /// Too much work queued (password hashing): not the store, so not `store_unavailable`.
    Overloaded,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::WrongTokenType => "wrong_token_type",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidStreamToken => "invalid_stream_token",
            Self::Forbidden => "forbidden",
            Self::InsufficientScope => "insufficient_scope",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::EmailTaken => "email_taken",
            Self::GenerationExists => "generation_exists",
            Self::GenerationFinished => "generation_finished",
            Self::PreconditionFailed => "precondition_failed",
            Self::PreconditionRequired => "precondition_required",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal_error",
            Self::StoreUnavailable => "store_unavailable",
            Self::Overloaded => "overloaded",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::MissingToken
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::WrongTokenType
            | Self::InvalidCredentials
            | Self::InvalidStreamToken => 401,
            Self::Forbidden | Self::InsufficientScope => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::EmailTaken | Self::GenerationExists | Self::GenerationFinished => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::ValidationFailed => 422,
            Self::PreconditionRequired => 428,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::StoreUnavailable | Self::Overloaded => 503,
        }
    }

    /// The short human title of the problem document.
    pub fn title(self) -> &'static str {
        match self {
            Self::MissingToken => "Authentication required",
            Self::InvalidToken => "Invalid token",
            Self::TokenExpired => "Token expired",
            Self::TokenRevoked => "Token revoked",
            Self::WrongTokenType => "Wrong token type",
            Self::InvalidCredentials => "Invalid credentials",
            Self::InvalidStreamToken => "Invalid stream token",
            Self::Forbidden => "Forbidden",
            Self::InsufficientScope => "Insufficient scope",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::EmailTaken => "Email already registered",
            Self::GenerationExists => "Generation already exists",
            Self::GenerationFinished => "Generation finished",
            Self::PreconditionFailed => "Precondition failed",
            Self::PreconditionRequired => "Precondition required",
            Self::PayloadTooLarge => "Payload too large",
            Self::ValidationFailed => "Validation failed",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
            Self::StoreUnavailable => "Store unavailable",
            Self::Overloaded => "Server busy",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: a code, a human detail (never containing a secret), and for
/// `validation_failed` the bad fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub fields: BTreeMap<String, String>,
    pub retry_after_secs: Option<u64>,
    /// The scheme a 401 asks for in `WWW-Authenticate`.
    pub challenge: Challenge,
}

/// How a refused caller should authenticate: a Bearer token (almost everywhere) or
/// HTTP Basic (a service client asking for its token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Challenge {
    #[default]
    Bearer,
    Basic,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            fields: BTreeMap::new(),
            retry_after_secs: match code {
                ErrorCode::StoreUnavailable | ErrorCode::Overloaded => Some(1),
                _ => None,
            },
            challenge: Challenge::Bearer,
        }
    }

    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }

    /// `validation_failed` naming one bad field.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        Self::new(
            ErrorCode::ValidationFailed,
            "the request has invalid fields",
        )
        .with_field(field, problem)
    }

    pub fn with_field(mut self, field: &str, problem: impl Into<String>) -> Self {
        self.fields.insert(field.to_owned(), problem.into());
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// A bug on our side; the detail is logged, the client sees a generic text.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "an internal error occurred")
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// Collects field problems of one request body so all are reported at once.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// Records the error of a `parse` result and gives back the value if there was one.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(field, e.to_string())).ok()
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            let mut err = ApiError::new(
                ErrorCode::ValidationFailed,
                "the request has invalid fields",
            );
            err.fields = self.0;
            Err(err)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store unavailable");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable, try again shortly",
        )
    }
}
