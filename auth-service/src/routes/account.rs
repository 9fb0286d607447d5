//! Registration, login and logout.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use authstream_proto::auth::{Credentials, Registered};
use secrecy::SecretString;
use shared::claims::AccessClaims;
use shared::error::FieldErrors;
use shared::http::{self, Anonymous, Authenticated, Pending};
use shared::rate_limit::{Cost, Failures, Limit};
use shared::store::{Read, ReadAnswer, Spend};
use shared::{ApiError, ErrorCode, UnixTime, revocation};

use super::client_ip;
use crate::devices::{self, DeviceToken};
use crate::domain::{Email, Password};
use crate::startup::AuthState;
use crate::{sessions, tokens, users};

fn parse(body: Credentials) -> Result<(Email, Password), ApiError> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let password = errors.check(
        "password",
        Password::parse(SecretString::from(body.password)),
    );
    errors.into_result()?;
    email
        .zip(password)
        .ok_or_else(|| ApiError::internal("checked fields missing"))
}

#[utoipa::path(
    tag = "accounts", summary = "Register a user",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered", body = authstream_proto::auth::Registered),
        (status = 409, response = shared::openapi::Conflict),
        (status = 413, response = shared::openapi::PayloadTooLarge),
        (status = 422, response = shared::openapi::Unprocessable),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AuthState>,
    _: Anonymous,
    body: shared::http::JsonObject<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let (email, password) = parse(body.into_inner())?;
    let hash = state.hasher.hash(password.secret().clone()).await?;
    let user = users::create(&state.store, &email, hash, UnixTime::now()).await?;
    tracing::info!(user_id = %user.user_id, "user registered");
    Ok(HttpResponse::Created().json(Registered {
        user_id: user.user_id,
        email: user.email,
        tier: user.tier,
    }))
}

#[utoipa::path(
    tag = "accounts", summary = "Sign in: a new session and its token pair",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: a new session and its token pair (`Cache-Control: no-store`), and this device's token (also set as the `as_device` cookie): a later login that sends it back (cookie or `X-Device-Token`) is exempt from the account-wide failed-login cap", body = authstream_proto::auth::TokenPair),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 413, response = shared::openapi::PayloadTooLarge),
        (status = 422, response = shared::openapi::Unprocessable),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AuthState>,
    req: HttpRequest,
    anon: Pending<Anonymous>,
    body: shared::http::JsonObject<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    // A malformed email cannot belong to anyone: answer like an unknown one.
    let body = body.into_inner();
    let email = Email::parse(&body.email).ok();
    // The address's budget, with the email index read in the same round trip.
    let index = users::login_index(&state.store, email.as_ref());
    let (_, user_id) = anon.admit_reading(Read::Get(&index)).await?;
    let user_id = user_id.into_value();
    let now = UnixTime::now();
    // A device that signed in to this account before spends its own budget instead
    // of the account-wide one (`devices`).
    let device = DeviceToken::presented(&req, &state.keys, now)
        .filter(|d| user_id.as_deref() == Some(d.user_id.as_str()));
    // Every attempt spends one of each failed-login budget before any hashing (so
    // parallel guesses cannot all slip past a check), with the user record read in
    // the same round trip; a success gives them back.
    let record = users::login_record(&state.store, user_id.as_deref());
    let failures = email.as_ref().map(|email| {
        let address = super::client_addr(&state, &req);
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
                http::record_limit(&req, *limit);
            }
            limits.iter().try_for_each(Limit::check)?;
            found.map(ReadAnswer::into_value).unwrap_or_default()
        }
        None => state.store.read(Read::Get(&record)).await?.into_value(),
    };
    let user = users::for_login(user_id.as_deref(), found)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !state
        .hasher
        .verify(SecretString::from(body.password), hash)
        .await?
    {
        tracing::info!("login refused");
        return Err(invalid());
    }
    let user = user.ok_or_else(invalid)?;
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let session = sessions::new_session(&user.user_id, agent, client_ip(&state, &req), now);
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
            http::record_limit(&req, limit);
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
        end_session(&state, &user.user_id, &evicted).await?;
    }
    let mut pair = tokens::issue_pair(&state, &user, &session, now)?;
    // The device is known from now on (or again, keeping its budget).
    let device = match device {
        Some(known) => Some(known.renewed(now)),
        None => DeviceToken::new(&user.user_id, now),
    };
    pair.device_token = device.and_then(|d| d.sign(&state.keys));
    let mut answer = HttpResponse::Ok();
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(token) = &pair.device_token {
        answer.cookie(devices::cookie(token, state.settings.common.cookie_secure));
    }
    Ok(answer.json(pair))
}

#[utoipa::path(
    tag = "accounts", summary = "Sign out this session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session of this token is revoked, its streams end"),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    end_session(&state, claims.user_id(), &claims.sid).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "accounts", summary = "Sign out everywhere",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user is revoked, their streams end"),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/auth/logout-all")]
pub async fn logout_all(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
) -> Result<HttpResponse, ApiError> {
    revoke_everything(&state, caller.0.user_id(), UnixTime::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes one session: its refresh token, every access token of it, its open
/// streams; its record goes in the same step (one round trip).
pub async fn end_session(
    state: &AuthState,
    user_id: &str,
    session_id: &str,
) -> Result<(), ApiError> {
    revocation::revoke_session(
        &state.store,
        user_id,
        session_id,
        state.settings.common.revocation_ttl(),
    )
    .await?;
    tracing::info!(%user_id, %session_id, "session revoked");
    Ok(())
}

/// Revokes every session and token of a user issued before `now`, in one round trip:
/// the store revokes and ends every session in the user's index in the same step.
pub async fn revoke_everything(
    state: &AuthState,
    user_id: &str,
    now: UnixTime,
) -> Result<(), ApiError> {
    revocation::revoke_user(
        &state.store,
        user_id,
        &[],
        now,
        state.settings.common.revocation_ttl(),
    )
    .await?;
    tracing::info!(%user_id, "all sessions revoked");
    Ok(())
}
