//! Registration, login and logout.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use shared::claims::AccessClaims;
use shared::error::FieldErrors;
use shared::http::Authenticated;
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
    body: web::Json<Credentials>,
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
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    // A malformed email cannot belong to anyone: answer like an unknown one.
    let body = body.into_inner();
    let email = Email::parse(&body.email).ok();
    let user = match &email {
        Some(email) => users::find_by_email(&state.store, email).await?,
        None => None,
    };
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
    sessions::save_new(&state.store, &session, state.settings.common.refresh_ttl).await?;
    tracing::info!(user_id = %user.user_id, session_id = %session.session_id, "login");
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

/// Revokes one session: its refresh token, every access token of it, its open streams.
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
    sessions::remove(&state.store, user_id, session_id).await?;
    tracing::info!(%user_id, %session_id, "session revoked");
    Ok(())
}

/// Revokes every session and token of a user issued before `now`.
pub async fn revoke_everything(
    state: &AuthState,
    user_id: &str,
    now: UnixTime,
) -> Result<(), ApiError> {
    let ids: Vec<String> = sessions::list(&state.store, user_id)
        .await?
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    revocation::revoke_user(
        &state.store,
        user_id,
        &ids,
        now,
        state.settings.common.revocation_ttl(),
    )
    .await?;
    for id in &ids {
        sessions::remove(&state.store, user_id, id).await?;
    }
    tracing::info!(%user_id, sessions = ids.len(), "all sessions revoked");
    Ok(())
}
