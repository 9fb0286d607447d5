//! Issuing the token pair of a session. The pair is a pure function of the user and
//! the session record, so re-issuing within the refresh grace window yields the very
//! same tokens. `refresh` rotates a pair (`POST /auth/refresh`, whose handler is in
//! `routes/tokens.rs` and tests in `tests/api/refresh.rs`).

use std::time::Duration;

pub mod refresh;

pub use authstream_proto::auth::TokenPair;
use authstream_proto::claims::{AccessClaims, RefreshClaims, TokenType};
use authstream_runtime::UnixTime;
use authstream_web::ApiError;

use crate::sessions::SessionRecord;
use crate::state::AuthState;
use crate::users::UserRecord;

pub fn issue_pair(
    state: &AuthState,
    user: &UserRecord,
    session: &SessionRecord,
    now: UnixTime,
) -> Result<TokenPair, ApiError> {
    let issued = UnixTime::from_secs(session.issued_at);
    let common = &state.settings.common;
    // No access token outlives its session (a refresh token is refused by the session).
    let session_left = session
        .expires_at(state.settings.session_max_age)
        .secs()
        .saturating_sub(session.issued_at);
    let access_ttl = common.access_ttl.min(Duration::from_secs(
        u64::try_from(session_left).unwrap_or(0),
    ));
    let access = AccessClaims {
        reg: state.signer.registered(
            &user.user_id,
            TokenType::Access,
            session.access_jti.clone(),
            issued,
            access_ttl,
        ),
        email: user.email.clone(),
        roles: user.roles.clone(),
        tier: user.tier,
        sid: session.session_id.clone(),
    };
    let refresh = RefreshClaims {
        reg: state.signer.registered(
            &user.user_id,
            TokenType::Refresh,
            session.refresh_jti.clone(),
            issued,
            common.refresh_ttl,
        ),
        sid: session.session_id.clone(),
        fam: session.family.clone(),
    };
    Ok(TokenPair {
        access_token: state.signer.sign(&access)?,
        refresh_token: state.signer.sign(&refresh)?,
        token_type: "Bearer".to_owned(),
        expires_in: (access.reg.exp - now.secs()).max(0),
        refresh_expires_in: (refresh.reg.exp - now.secs()).max(0),
        session_id: session.session_id.clone(),
        device_token: None,
    })
}
