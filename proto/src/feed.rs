//! The revocation feed (`GET /auth/revocations`, Server-Sent Events): its
//! `revocation`, `reset` and `heartbeat` events.

use serde::{Deserialize, Serialize};

/// What a revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// One token (`jti`).
    Token,
    /// Every token of one session (`sid`).
    Session,
    /// Every token of a user issued up to `not_before`, and of the sessions in `sids`.
    User,
}

impl RevocationKind {
    /// The kind on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
            Self::User => "user",
        }
    }
}

/// One revocation as the feed sends it (the `data` of a `revocation` event, and each
/// item of a `reset`'s snapshot). Only ids that are already in the tokens: no email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedRevocation {
    /// The feed position just after this entry (the event's `id:`; opaque: send it
    /// back as `Last-Event-ID`)
    pub id: String,
    /// `token`: the token `jti` of `sub`; `session`: every token with `sid` of `sub`;
    /// `user`: every token of `sub` issued (`iat`) before `not_before`, and every token
    /// of the sessions in `sids`
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: RevocationKind,
    /// The tokens' `sub`: a user id, or `service:<client id>` for a service token
    pub sub: String,
    /// `token` only
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `session` only
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `user` only: Unix seconds, compared with `iat`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// `user` only: sessions it names (it also ends every other session the user
    /// had, whose tokens `not_before` covers except those of that very second)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sids: Option<Vec<String>>,
    /// Unix milliseconds: when every token it covers has expired (plus the leeway);
    /// after that it can be forgotten
    pub until: i64,
}

/// The `data` of a `reset` event: every revocation still in force, and the position
/// the snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedReset {
    /// Opaque: where a new connection resumes (`Last-Event-ID`)
    pub position: String,
    /// Unix milliseconds of the snapshot
    pub time: i64,
    pub revocations: Vec<FeedRevocation>,
}

/// The `data` of a `heartbeat` event: every log was read to `position` by reads sent
/// at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedHeartbeat {
    /// Opaque: where a new connection resumes (`Last-Event-ID`)
    pub position: String,
    /// Unix milliseconds
    pub time: i64,
}
