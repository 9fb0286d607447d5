//! Writing revocations (the auth service) and announcing them, so that the stream
//! service ends open streams of a revoked session or user at once. The check itself
//! is `jwt::revoked`, one round trip.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::store::{Store, StoreResult};

/// Published on the revocations channel. `session_id = None` means every session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationNotice {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl RevocationNotice {
    pub fn covers(&self, user_id: &str, session_id: &str) -> bool {
        self.user_id == user_id && self.session_id.as_deref().is_none_or(|s| s == session_id)
    }
}

async fn announce(store: &Store, notice: &RevocationNotice) -> StoreResult<()> {
    let payload = serde_json::to_string(notice).unwrap_or_default();
    store
        .publish(&store.keys().revocations_channel(), &payload)
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
    announce(
        store,
        &RevocationNotice {
            user_id: user_id.to_owned(),
            session_id: Some(session_id.to_owned()),
        },
    )
    .await
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
    announce(
        store,
        &RevocationNotice {
            user_id: sub.to_owned(),
            session_id: None,
        },
    )
    .await
}
