//! Why an open was refused (for the log and the metrics, never for the client), and
//! the one answer every refusal gets.

use std::sync::atomic::{AtomicBool, Ordering};

use authstream_store::Store;
use authstream_store::streams::{self, Refusal};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::rate_limit::Limit;

use super::Transport;
use crate::meters;

/// Why an open was refused: for the log and the metrics, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Missing,
    Malformed,
    Unknown,
    Expired,
    Replay,
    WrongKind,
    OtherGeneration,
    OtherAddress,
    Revoked,
    Gone,
    NotOwner,
    SessionEnded,
    TooManyStreams,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Replay => "replay",
            Self::WrongKind => "wrong_kind",
            Self::OtherGeneration => "other_generation",
            Self::OtherAddress => "other_address",
            Self::Revoked => "revoked",
            Self::Gone => "gone",
            Self::NotOwner => "not_owner",
            Self::SessionEnded => "session_ended",
            Self::TooManyStreams => "too_many_streams",
        }
    }
}

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unknown => Self::Unknown,
            Refusal::Expired => Self::Expired,
            Refusal::Replay => Self::Replay,
            Refusal::WrongKind => Self::WrongKind,
        }
    }
}

/// The one answer for every refusal: the client is not told which.
pub(super) fn invalid_stream_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidStreamToken,
        "the stream token is unknown, expired, already used or not valid for this stream",
    )
}

pub(super) struct Attempt<'a> {
    pub(super) generation_id: &'a str,
    pub(super) transport: Transport,
    pub(super) store: &'a Store,
    /// Set by a refusal that asked the store: it is charged to the client address.
    pub(super) charged: AtomicBool,
}

impl Attempt<'_> {
    /// Logs, counts and answers a refusal. Nothing here names the token.
    pub(super) fn refuse(&self, why: Refused, store_touched: bool) -> ApiError {
        meters::stream_open(self.transport.as_str(), why.as_str());
        if why == Refused::Replay {
            tracing::warn!(
                generation_id = %self.generation_id,
                transport = self.transport.as_str(),
                result = why.as_str(),
                "stream open refused: a used stream token was presented again (replay)"
            );
        } else {
            tracing::info!(
                generation_id = %self.generation_id,
                transport = self.transport.as_str(),
                result = why.as_str(),
                "stream open refused"
            );
        }
        // A junk token never reaches the store, not even to be counted there.
        if store_touched {
            streams::record_rejected(self.store);
            if why != Refused::TooManyStreams {
                self.charged.store(true, Ordering::Relaxed);
            }
        }
        invalid_stream_token()
    }
}

/// The 429 of a refused decision.
pub(super) fn refusal_of(limit: Limit) -> ApiError {
    limit
        .check()
        .err()
        .unwrap_or_else(|| ApiError::internal("a refused decision allowed"))
}
