//! Writing revocations (the auth service) and announcing them (stream notices), so
//! that the stream service ends open streams of a revoked session or user at once. The check itself
//! is `jwt::revoked`, one round trip.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::store::{Store, StoreResult};

/// Published on the stream-notices channel: the stream service ends every open
/// stream a notice covers, on every replica. `None` for the session or the
/// generation means all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNotice {
    #[serde(default)]
    pub reason: NoticeReason,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
}

/// Why streams are told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeReason {
    /// The session or user was revoked: the streams end for good.
    #[default]
    Revoked,
    /// The server drops the streams as a network failure would (the demo's cut):
    /// nothing is revoked, and clients resume.
    Disconnect,
}

impl StreamNotice {
    pub fn revoked(user_id: &str, session_id: Option<&str>) -> Self {
        Self {
            reason: NoticeReason::Revoked,
            user_id: user_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            generation_id: None,
        }
    }

    pub fn disconnect(user_id: &str, session_id: &str, generation_id: &str) -> Self {
        Self {
            reason: NoticeReason::Disconnect,
            user_id: user_id.to_owned(),
            session_id: Some(session_id.to_owned()),
            generation_id: Some(generation_id.to_owned()),
        }
    }

    pub fn covers(&self, user_id: &str, session_id: &str, generation_id: &str) -> bool {
        self.user_id == user_id
            && self.session_id.as_deref().is_none_or(|s| s == session_id)
            && self
                .generation_id
                .as_deref()
                .is_none_or(|g| g == generation_id)
    }
}

/// Publishes a notice to every replica of the stream service.
pub async fn announce(store: &Store, notice: &StreamNotice) -> StoreResult<()> {
    let payload = serde_json::to_string(notice).unwrap_or_default();
    store
        .publish(&store.keys().notices_channel(), &payload)
        .await
}

/// Revokes one token until it would have expired anyway (`exp` in Unix seconds): as
/// long as a validator could still accept it, which is up to `exp` plus the leeway.
pub async fn revoke_token(
    store: &Store,
    sub: &str,
    jti: &str,
    exp: i64,
    now: UnixTime,
    leeway: Duration,
) -> StoreResult<()> {
    let remaining = now.until(UnixTime::from_secs(exp).plus(leeway));
    if !remaining.is_zero() {
        store
            .set(&store.keys().revoked_token(sub, jti), "1", Some(remaining))
            .await?;
    }
    Ok(())
}

/// Revokes every token of a session; kept as long as any of its tokens can live.
pub async fn revoke_session(
    store: &Store,
    user_id: &str,
    session_id: &str,
    keep_for: Duration,
) -> StoreResult<()> {
    store
        .set(
            &store.keys().revoked_session(user_id, session_id),
            "1",
            Some(keep_for),
        )
        .await?;
    announce(store, &StreamNotice::revoked(user_id, Some(session_id))).await
}

/// Revokes everything `sub` holds that was issued before `now`: tokens issued in
/// earlier seconds by the not-before mark, the current second's through `sessions`
/// (which the caller revokes one by one), so a login a moment later works.
pub async fn revoke_user(
    store: &Store,
    sub: &str,
    sessions: &[String],
    now: UnixTime,
    keep_for: Duration,
) -> StoreResult<()> {
    for session_id in sessions {
        store
            .set(
                &store.keys().revoked_session(sub, session_id),
                "1",
                Some(keep_for),
            )
            .await?;
    }
    store
        .set(
            &store.keys().not_before(sub),
            &now.secs().to_string(),
            Some(keep_for),
        )
        .await?;
    announce(store, &StreamNotice::revoked(sub, None)).await
}
