//! The part of a stream grant (`stream_token::StreamGrant`, stored as JSON under its
//! digest) that the open reads and rewrites: `lua/open_stream.lua` by these names, and
//! its in-memory twin through `Granting`. A test in `stream_token` holds the script's
//! names to the grant's.

use serde::{Deserialize, Serialize};

/// The fields of a stored grant an open reads (`kind`, `user_id`, `admin`,
/// `session_expires_at`) and writes for the next resume grant (`kind`, `issued_at`);
/// every other field is copied as it is, as the script's `cjson` decode and encode do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Granting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) admin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issued_at: Option<i64>,
    /// The rest of the grant, untouched.
    #[serde(flatten)]
    pub(crate) rest: serde_json::Map<String, serde_json::Value>,
}
