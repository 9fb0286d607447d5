//! The refresh rule (`POST /auth/refresh`): validate the refresh token, rotate the
//! pair in ONE store round trip (the rotation script spends the session's `refresh`
//! budget too), end the session of a token reused outside the grace window or past
//! its maximum age; a refused refresh is charged to the client address afterwards.
//! The route (`routes/tokens.rs`) reads the request into a `Refresh`; tests are in
//! `tests/api/refresh.rs` (and the budgets in `tests/api/rate_limits.rs`).

use std::net::IpAddr;

use authstream_proto::claims::RefreshClaims;
use authstream_runtime::UnixTime;
use authstream_security::jwt::TokenError;
use authstream_store::KeySpend;
use authstream_web::ApiError;
use authstream_web::rate_limit::{Cost, Limit, Policy, Subject};

use super::TokenPair;
use crate::sessions::{self, Refreshed};
use crate::state::AuthState;

/// What a refresh needs from its request.
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    /// The refresh token of the body.
    pub token: &'a str,
    /// The client address, `TRUSTED_PROXIES` applied.
    pub client_ip: Option<IpAddr>,
    pub now: UnixTime,
}

/// Rotates the pair of `request.token`. Every rate-limit decision made goes into
/// `decisions`, in order, for the answer's headers (429 or not).
///
/// A refused token (401) costs the address's `anon` budget afterwards: a valid
/// refresh never waits for that budget, and an address that spent it gets 429 instead.
pub async fn refresh(
    state: &AuthState,
    request: &Refresh<'_>,
    decisions: &mut Vec<Limit>,
) -> Result<TokenPair, ApiError> {
    let refused = match rotate(state, request, decisions).await {
        Ok(pair) => return Ok(pair),
        Err(e) if e.status() == 401 => e,
        Err(e) => return Err(e),
    };
    let limit = state
        .limiter
        .decide(
            Policy::Anon,
            Subject::Address(request.client_ip),
            Cost::Take,
        )
        .await?;
    decisions.push(limit);
    limit.check()?;
    Err(refused)
}

/// The refresh itself: one store round trip when the token is valid (the rotation
/// script spends the session's refresh budget too).
async fn rotate(
    state: &AuthState,
    request: &Refresh<'_>,
    decisions: &mut Vec<Limit>,
) -> Result<TokenPair, ApiError> {
    let now = request.now;
    let claims: RefreshClaims = state.validator.validate(request.token, now).await?;
    let user_id = &claims.reg.sub;
    let (budget, quota) = state.limiter.budget(
        Policy::Refresh,
        Subject::Session {
            user_id,
            session_id: &claims.sid,
        },
    );
    let (outcome, decision) = sessions::refresh(
        &state.store,
        user_id,
        &claims.sid,
        &claims.reg.jti,
        now,
        state.settings.refresh_reuse_grace,
        &state.settings.session_bounds(),
        KeySpend {
            key: &budget,
            gcra: quota.gcra(),
            cost: Cost::Take,
        },
    )
    .await?;
    if let Some(decision) = decision {
        let limit = state
            .limiter
            .decided(Policy::Refresh, quota, decision, Cost::Take);
        decisions.push(limit);
        limit.check()?;
    }
    let (session, user) = match outcome {
        Refreshed::Rotated(session, user) | Refreshed::Grace(session, user) => (session, user),
        Refreshed::Limited => {
            return Err(ApiError::internal(
                "a refused refresh came without its decision",
            ));
        }
        // Not revoked (that was checked above): it ended at its maximum age.
        Refreshed::Gone => return Err(sessions::ended()),
        Refreshed::Expired => {
            tracing::info!(%user_id, session_id = %claims.sid, "session at its maximum age: ended");
            sessions::end_session(state, user_id, &claims.sid).await?;
            return Err(sessions::ended());
        }
        Refreshed::Reused => {
            tracing::warn!(%user_id, session_id = %claims.sid, "refresh token reused outside the grace window: session revoked");
            sessions::end_session(state, user_id, &claims.sid).await?;
            return Err(TokenError::Revoked.into());
        }
    };
    let user = user.ok_or(TokenError::Revoked)?;
    super::issue_pair(state, &user, &session, now)
}
