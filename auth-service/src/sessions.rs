//! Sessions: one per login, a JSON record under `{u:<user>}:session:<sid>` plus a set
//! of the user's session ids. The record holds the ids of the current token pair
//! (never the tokens): Ed25519 and HS256 signatures are deterministic, so the same
//! claims re-sign to the very same tokens, which is how the refresh grace window
//! hands out "the same successor pair again" without storing a credential.

use std::time::Duration;

use authstream_security::jwt::new_jti;
/// The record, typed once in the store (its scripts and twin read the same fields).
pub use authstream_store::SessionRecord;
use authstream_web::rate_limit::Decision;

pub use crate::config::SessionBounds;
use authstream_runtime::UnixTime;
use authstream_store::Store;
use authstream_store::{KeySpend, NewSession, Rotation, SessionRotation, Spend};
use authstream_web::ApiError;
use authstream_web::ErrorCode;

use crate::users::UserRecord;

/// How long a session record is kept from `now`: as long as a refresh token can live,
/// never past the session's absolute expiry. `None` once that has passed.
pub fn lifetime(
    session: &SessionRecord,
    bounds: &SessionBounds,
    now: UnixTime,
) -> Option<Duration> {
    let left = session.expires_at(bounds.max_age).millis() - now.millis();
    let left = Duration::from_millis(u64::try_from(left).ok().filter(|&ms| ms > 0)?);
    Some(left.min(bounds.refresh_ttl))
}

/// The answer for a token whose session ended on its own (its maximum age).
pub fn ended() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the session has ended; sign in again",
    )
}

/// What presenting a refresh token did.
pub enum Refreshed {
    /// It was current: the session now has a new pair. With the user (`None`: gone).
    Rotated(SessionRecord, Option<UserRecord>),
    /// It was just replaced: the successor pair, again.
    Grace(SessionRecord, Option<UserRecord>),
    /// Any other reuse: treated as theft.
    Reused,
    /// The session no longer exists.
    Gone,
    /// The session reached its absolute expiry.
    Expired,
    /// The session's refresh budget is spent: nothing changed.
    Limited,
}

pub fn new_session(
    user_id: &str,
    user_agent: &str,
    ip: Option<String>,
    now: UnixTime,
) -> SessionRecord {
    SessionRecord {
        session_id: uuid::Uuid::new_v4().simple().to_string(),
        user_id: user_id.to_owned(),
        family: uuid::Uuid::new_v4().simple().to_string(),
        created_at: now.millis(),
        last_seen_at: now.millis(),
        user_agent: user_agent.chars().take(256).collect(),
        ip,
        access_jti: new_jti(),
        refresh_jti: new_jti(),
        issued_at: now.secs(),
        previous_refresh_jti: None,
        rotated_at: None,
    }
}

fn encode(s: &SessionRecord) -> Result<String, ApiError> {
    serde_json::to_string(s).map_err(ApiError::internal)
}

/// Stores a new session and indexes it (one script on the user's slot), with `along`
/// (a rate-limit decision of the login) in the same round trip. It lives as long as
/// its refresh token, at most its maximum age. Answers how many sessions the user's
/// index holds now, and the decision.
pub async fn save_new(
    store: &Store,
    session: &SessionRecord,
    bounds: &SessionBounds,
    now: UnixTime,
    along: Option<Spend<'_>>,
) -> Result<(usize, Vec<Decision>), ApiError> {
    let ttl = lifetime(session, bounds, now)
        .ok_or_else(|| ApiError::internal("a new session that has already expired"))?;
    let record = encode(session)?;
    let new = NewSession {
        user_id: &session.user_id,
        session_id: &session.session_id,
        record: &record,
        ttl,
        // The index lives as long as its longest-lived session could.
        index_ttl: bounds.refresh_ttl,
    };
    Ok(store.save_session(&new, along).await?)
}

/// The sessions of `user_id` beyond the `max` most recently used, least recent first;
/// `keep` (the session just created) is never among them. No read while `indexed`
/// (what the index holds) is within the cap.
pub async fn beyond_cap(
    store: &Store,
    user_id: &str,
    keep: &str,
    max: usize,
    indexed: usize,
) -> Result<Vec<String>, ApiError> {
    if indexed <= max {
        return Ok(Vec::new());
    }
    let mut sessions = list(store, user_id).await?;
    let excess = sessions.len().saturating_sub(max);
    sessions.retain(|s| s.session_id != keep);
    sessions.sort_by_key(|s| (s.last_seen_at, s.created_at));
    Ok(sessions
        .into_iter()
        .take(excess)
        .map(|s| s.session_id)
        .collect())
}

pub async fn load(
    store: &Store,
    user_id: &str,
    session_id: &str,
) -> Result<Option<SessionRecord>, ApiError> {
    store
        .get(&store.keys().session(user_id, session_id))
        .await?
        .map(|raw| serde_json::from_str(&raw).map_err(ApiError::internal))
        .transpose()
}

/// The user's live sessions, oldest first.
pub async fn list(store: &Store, user_id: &str) -> Result<Vec<SessionRecord>, ApiError> {
    let ids = store.set_members(&store.keys().sessions(user_id)).await?;
    records(store, user_id, ids).await
}

/// The live sessions among `ids` (the user's session index), oldest first.
pub async fn records(
    store: &Store,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<SessionRecord>, ApiError> {
    let keys = store.keys();
    let records = store
        .mget(
            &ids.iter()
                .map(|sid| keys.session(user_id, sid))
                .collect::<Vec<_>>(),
        )
        .await?;
    let mut sessions = Vec::new();
    for (sid, raw) in ids.iter().zip(records) {
        match raw.and_then(|r| serde_json::from_str::<SessionRecord>(&r).ok()) {
            Some(s) => sessions.push(s),
            // Expired on its own: tidy the index.
            None => store.set_remove(&keys.sessions(user_id), sid).await?,
        }
    }
    sessions.sort_by_key(|s| s.created_at);
    Ok(sessions)
}

/// Applies the rotation rules to a presented refresh token `jti` in one store round
/// trip (one atomic script on the user's hash tag, so of two concurrent refreshes one
/// rotates and the other sees the rotation and gets the grace answer). The user record
/// comes back with the session: what the new access token says (tier, roles) is read
/// in the same step, and so is the session's refresh `budget` spent (for a current or
/// just-retired token): its decision comes back beside.
#[allow(clippy::too_many_arguments)]
pub async fn refresh(
    store: &Store,
    user_id: &str,
    session_id: &str,
    presented_jti: &str,
    now: UnixTime,
    grace: Duration,
    bounds: &SessionBounds,
    budget: KeySpend<'_>,
) -> Result<(Refreshed, Option<Decision>), ApiError> {
    let (access_jti, refresh_jti) = (new_jti(), new_jti());
    let (rotation, decision) = store
        .rotate_session(&SessionRotation {
            user_id,
            session_id,
            presented_jti,
            access_jti: &access_jti,
            refresh_jti: &refresh_jti,
            now,
            grace,
            max_age: bounds.max_age,
            refresh_ttl: bounds.refresh_ttl,
            budget: Some(budget),
        })
        .await?;
    let decode = |session: &str, user: Option<String>| -> Result<_, ApiError> {
        let session = serde_json::from_str(session).map_err(ApiError::internal)?;
        let user = user
            .map(|raw| serde_json::from_str(&raw).map_err(ApiError::internal))
            .transpose()?;
        Ok((session, user))
    };
    let refreshed = match rotation {
        Rotation::Rotated { session, user } => {
            let (session, user) = decode(&session, user)?;
            Refreshed::Rotated(session, user)
        }
        Rotation::Grace { session, user } => {
            let (session, user) = decode(&session, user)?;
            Refreshed::Grace(session, user)
        }
        Rotation::Reused => Refreshed::Reused,
        Rotation::Gone => Refreshed::Gone,
        Rotation::Expired => Refreshed::Expired,
        Rotation::Limited => Refreshed::Limited,
    };
    Ok((refreshed, decision))
}

/// Revokes one session: its refresh token, every access token of it, its open
/// streams; its record goes in the same step (one round trip).
pub async fn end_session(
    state: &crate::state::AuthState,
    user_id: &str,
    session_id: &str,
) -> Result<(), ApiError> {
    authstream_store::revocations::revoke_session(
        &state.store,
        user_id,
        session_id,
        state.settings.common.revocation_ttl(),
    )
    .await?;
    tracing::info!(%user_id, %session_id, "session revoked");
    Ok(())
}
