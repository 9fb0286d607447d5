//! Registration, login and logout.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use shared::claims::AccessClaims;
use shared::error::FieldErrors;
use shared::http::{self, Anonymous, Authenticated, Pending};
use shared::rate_limit::{Cost, Policy, Subject};
use shared::store::{Read, Spend};
use shared::{ApiError, ErrorCode, UnixTime, revocation};

use super::client_ip;
use crate::domain::{Email, Password};
use crate::startup::AuthState;
use crate::{sessions, tokens, users};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    #[schema(example = "ada@example.com")]
    email: String,
    /// 8 to 1024 characters
    #[schema(value_type = String, example = "correct horse")]
    password: SecretString,
}

fn parse(body: Credentials) -> Result<(Email, Password), ApiError> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let password = errors.check("password", Password::parse(body.password));
    errors.into_result()?;
    email
        .zip(password)
        .ok_or_else(|| ApiError::internal("checked fields missing"))
}

#[utoipa::path(
    tag = "accounts", summary = "Register a user",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered", body = crate::openapi::Registered),
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
    Ok(HttpResponse::Created()
        .json(json!({ "user_id": user.user_id, "email": user.email, "tier": user.tier })))
}

#[utoipa::path(
    tag = "accounts", summary = "Sign in: a new session and its token pair",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: a new session and its token pair (`Cache-Control: no-store`)", body = crate::tokens::TokenPair),
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
    // Every attempt spends one of the email's failed-login budget before any hashing
    // (so parallel guesses cannot all slip past a check), with the user record read
    // in the same round trip; a success gives it back.
    let record = users::login_record(&state.store, user_id.as_deref());
    let found = match &email {
        Some(email) => {
            let subject = Subject::Email(email.as_str());
            http::spend_and_read(
                &req,
                &state.limiter,
                Policy::Login,
                subject,
                Read::Get(&record),
            )
            .await?
        }
        None => state.store.read(Read::Get(&record)).await?,
    };
    let user = users::for_login(user_id.as_deref(), found.into_value())?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !state.hasher.verify(body.password, hash).await? {
        tracing::info!("login refused");
        return Err(invalid());
    }
    let user = user.ok_or_else(invalid)?;
    let now = UnixTime::now();
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let session = sessions::new_session(&user.user_id, agent, client_ip(&state, &req), now);
    // A successful login costs nothing of the failed-login budget: given back in the
    // round trip that stores the session.
    let budget = email.as_ref().map(|email| {
        let subject = Subject::Email(email.as_str());
        state.limiter.budget(Policy::Login, subject)
    });
    let along = budget.as_ref().map(|(key, quota)| Spend {
        key,
        gcra: quota.gcra(),
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
    if let (Some(decision), Some((_, quota))) = (given_back, budget) {
        let limit = state
            .limiter
            .decided(Policy::Login, quota, decision, Cost::GiveBack);
        http::record_limit(&req, limit);
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
    let pair = tokens::issue_pair(&state, &user, &session, now)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pair))
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
