//! The stable error codes and the `application/problem+json` body (RFC 9457) every
//! error answer of both services is.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// No token was presented.
    MissingToken,
    /// The token is malformed, badly signed, or of another issuer or audience.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The token, its session or its user was revoked.
    TokenRevoked,
    /// Another token type than the route takes.
    WrongTokenType,
    /// Wrong email and password, or wrong client credentials.
    InvalidCredentials,
    /// The stream token is unknown, used or expired.
    InvalidStreamToken,
    /// The caller may not do this.
    Forbidden,
    /// The service token lacks a scope.
    InsufficientScope,
    /// No such resource (or not the caller's).
    NotFound,
    /// The route takes another method.
    MethodNotAllowed,
    /// The email is registered already.
    EmailTaken,
    /// A generation with this id exists.
    GenerationExists,
    /// The generation completed or failed: no more events.
    GenerationFinished,
    /// `If-Match` does not match.
    PreconditionFailed,
    /// `If-Match` is required.
    PreconditionRequired,
    /// The body is too large.
    PayloadTooLarge,
    /// The request has invalid fields (`fields` says which).
    ValidationFailed,
    /// A rate limit is spent (`Retry-After` says when to retry).
    RateLimited,
    /// A bug on the server's side.
    Internal,
    /// The store does not answer.
    StoreUnavailable,
    /// Too much work queued (password hashing): not the store, so not `store_unavailable`.
    Overloaded,
}

impl ErrorCode {
    /// The code on the wire.
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

    /// The code named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == raw)
    }

    /// The HTTP status of an answer with this code.
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

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {raw}")))
    }
}

/// The `type` of every problem: no page describes it beyond its `code`.
pub const ABOUT_BLANK: &str = "about:blank";

/// An error answer (`application/problem+json`, RFC 9457). Its OpenAPI schema, with
/// the `code` values each status carries, is built where the documents are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The code's short human title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for humans (never a secret).
    pub detail: String,
    /// The stable, machine-readable code.
    pub code: ErrorCode,
    /// `validation_failed` only: each bad field (or `body`, `query`) and what is wrong
    /// with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl Problem {
    /// The problem of `code`, with its title and status.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            kind: ABOUT_BLANK.to_owned(),
            title: code.title().to_owned(),
            status: code.status(),
            detail: detail.into(),
            code,
            fields: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_as_written() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
    }

    #[test]
    fn a_problem_leaves_out_empty_fields() {
        let body = serde_json::to_value(Problem::new(ErrorCode::NotFound, "x")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "about:blank", "title": "Not found", "status": 404,
                "detail": "x", "code": "not_found"})
        );
    }
}
