//! Revoking: a token, a session or everything of a user, and telling open streams.
//! What a revocation writes, the logs every process tails and the local view they
//! feed live beside this file, in `revocations`.

use std::time::Duration;

use super::{Revocation, StreamNotice};
use crate::{Store, StoreResult};
use authstream_runtime::clock::UnixTime;

/// Publishes a notice to every replica of the stream service (the demo's cut; revoked
/// sessions and users reach the streams through the revocation log).
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
    let revocation = Revocation::Token {
        sub: sub.to_owned(),
        jti: jti.to_owned(),
        until_ms: UnixTime::from_secs(exp).plus(leeway).millis(),
    };
    store.revoke(&revocation, now).await
}

/// Revokes every token of a session; kept as long as any of its tokens can live.
pub async fn revoke_session(
    store: &Store,
    user_id: &str,
    session_id: &str,
    keep_for: Duration,
) -> StoreResult<()> {
    let now = UnixTime::now();
    let revocation = Revocation::Session {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        until_ms: now.plus(keep_for).millis(),
    };
    store.revoke(&revocation, now).await
}

/// Revokes everything `sub` holds that was issued before `now`: tokens issued in
/// earlier seconds by the not-before mark, the current second's through `sessions`,
/// so a login a moment later works. One atomic step: every marker or none.
pub async fn revoke_user(
    store: &Store,
    sub: &str,
    sessions: &[String],
    now: UnixTime,
    keep_for: Duration,
) -> StoreResult<()> {
    let revocation = Revocation::User {
        user_id: sub.to_owned(),
        not_before: now.secs(),
        sessions: sessions.to_vec(),
        until_ms: now.plus(keep_for).millis(),
    };
    store.revoke(&revocation, now).await
}
