//! Signing in (`POST /auth/login`): the rule. The route (`routes/account.rs`) parses
//! the body, admits the address's `anon` budget with the email index read, and reads
//! the rest of what a login needs into a `Login`; tests are in `tests/api/account.rs`
//! (and the failed-login budgets in `tests/api/rate_limits.rs`).

use std::net::IpAddr;

use authstream_runtime::UnixTime;
use authstream_store::{Read, ReadAnswer, Spend};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::rate_limit::{Cost, Failures, Limit};
use secrecy::SecretString;

use crate::devices::DeviceToken;
use crate::domain::Email;
use crate::sessions::{self, end_session};
use crate::state::AuthState;
use crate::tokens::{self, TokenPair};
use crate::users;

/// What a login needs from its request.
pub struct Login {
    /// The body's email, when it parsed (a malformed one cannot belong to anyone).
    pub email: Option<Email>,
    pub password: SecretString,
    /// The user the email index names, read with the admission.
    pub user_id: Option<String>,
    /// The device token presented (`X-Device-Token`, else the `as_device` cookie), verified.
    pub device: Option<DeviceToken>,
    /// The client address, `TRUSTED_PROXIES` applied, and as text.
    pub client_addr: Option<IpAddr>,
    pub client_ip: Option<String>,
    /// `User-Agent`, when readable.
    pub agent: Option<String>,
    pub now: UnixTime,
}

/// Signs in: the failed-login budgets spent before any hashing (with the user record
/// read in the same round trip), the password verified, a new session stored (the
/// budgets given back in that round trip), sessions beyond the cap ended, the pair and
/// this device's token issued. Every rate-limit decision made goes into `decisions`,
/// in order, for the answer's headers (429 or not).
pub async fn login(
    state: &AuthState,
    request: Login,
    decisions: &mut Vec<Limit>,
) -> Result<TokenPair, ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    let Login {
        email,
        password,
        user_id,
        device,
        client_addr,
        client_ip,
        agent,
        now,
    } = request;
    // A device that signed in to this account before spends its own budget instead
    // of the account-wide one (`devices`).
    let device = device.filter(|d| user_id.as_deref() == Some(d.user_id.as_str()));
    // Every attempt spends one of each failed-login budget before any hashing (so
    // parallel guesses cannot all slip past a check), with the user record read in
    // the same round trip; a success gives them back.
    let record = users::login_record(&state.store, user_id.as_deref());
    let failures = email.as_ref().map(|email| {
        let address = client_addr;
        let device = device.as_ref().map(|d| d.device_id.as_str());
        state
            .limiter
            .login_failures(email.as_str(), address, device)
    });
    let found = match &failures {
        Some(failures) => {
            let (limits, found) = state
                .limiter
                .spend_failures(failures, Cost::Take, Some(Read::Get(&record)))
                .await?;
            for limit in &limits {
                decisions.push(*limit);
            }
            limits.iter().try_for_each(Limit::check)?;
            found.map(ReadAnswer::into_value).unwrap_or_default()
        }
        None => state.store.read(Read::Get(&record)).await?.into_value(),
    };
    let user = users::for_login(user_id.as_deref(), found)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !state.hasher.verify(password, hash).await? {
        tracing::info!("login refused");
        return Err(invalid());
    }
    let user = user.ok_or_else(invalid)?;
    let agent = agent.as_deref().unwrap_or("unknown");
    let session = sessions::new_session(&user.user_id, agent, client_ip, now);
    // A successful login costs nothing of the failed-login budgets: given back in the
    // round trip that stores the session.
    let budgets = failures.as_ref().map(Failures::budgets);
    let along = failures
        .as_ref()
        .zip(budgets.as_deref())
        .map(|(f, budgets)| Spend {
            key: f.key(),
            budgets,
            cost: Cost::GiveBack,
        });
    let (indexed, given_back) = sessions::save_new(
        &state.store,
        &session,
        &state.settings.session_bounds(),
        now,
        along,
    )
    .await?;
    if let Some(failures) = &failures {
        let limits = state
            .limiter
            .decided_failures(failures, &given_back, Cost::GiveBack);
        for limit in limits {
            decisions.push(limit);
        }
    }
    tracing::info!(user_id = %user.user_id, session_id = %session.session_id, "login");
    let cap = state.settings.sessions_max_per_user;
    let evicted = sessions::beyond_cap(
        &state.store,
        &user.user_id,
        &session.session_id,
        cap,
        indexed,
    )
    .await?;
    for evicted in evicted {
        tracing::info!(user_id = %user.user_id, session_id = %evicted, cap, "too many sessions: the least recently used one ends");
        end_session(state, &user.user_id, &evicted).await?;
    }
    let mut pair = tokens::issue_pair(state, &user, &session, now)?;
    // The device is known from now on (or again, keeping its budget).
    let device = match device {
        Some(known) => Some(known.renewed(now)),
        None => DeviceToken::new(&user.user_id, now),
    };
    pair.device_token = device.and_then(|d| d.sign(&state.keys));
    Ok(pair)
}
