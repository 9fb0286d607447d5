//! The error answer of both services. Its codes are wire types (`authstream_proto`);
//! `crate::http` maps them to `application/problem+json` in one place.

use std::collections::BTreeMap;
use std::fmt;

pub use authstream_proto::ErrorCode;

use authstream_security::jwt::{SignError, TokenError};
use authstream_store::StoreError;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

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
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the store is unavailable, try again shortly",
                )
            }
            StoreError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

/// A refused token answers 401 with its code; a store or key source that cannot
/// answer is 503, never a verdict on the token.
impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            // The store's own answer (503, or 500 for what no retry mends).
            TokenError::Store(s) => s.into(),
            TokenError::KeysUnavailable => StoreError::Unavailable(e.to_string()).into(),
            _ => ApiError::new(e.error_code(), format!("the token was refused: {e}")),
        }
    }
}

impl From<SignError> for ApiError {
    fn from(e: SignError) -> Self {
        ApiError::internal(e)
    }
}
