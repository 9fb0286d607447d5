//! Registration, login and logout.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use authstream_proto::auth::{Credentials, Registered};
use authstream_proto::claims::AccessClaims;
use authstream_runtime::UnixTime;
use authstream_store::Read;
use authstream_store::revocations;
use authstream_web::ApiError;
use authstream_web::error::FieldErrors;
use authstream_web::http::{self, Anonymous, Authenticated, Pending};
use secrecy::SecretString;

use super::client_ip;
use crate::account;
use crate::devices::{self, DeviceToken};
use crate::domain::{Email, Password};
use crate::sessions::end_session;
use crate::state::AuthState;
use crate::users;

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
        (status = 409, response = authstream_web::openapi::Conflict),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AuthState>,
    _: Anonymous,
    body: authstream_web::http::JsonObject<Credentials>,
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
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AuthState>,
    req: HttpRequest,
    anon: Pending<Anonymous>,
    body: authstream_web::http::JsonObject<Credentials>,
) -> Result<HttpResponse, ApiError> {
    // A malformed email cannot belong to anyone: answer like an unknown one.
    let body = body.into_inner();
    let email = Email::parse(&body.email).ok();
    // The address's budget, with the email index read in the same round trip.
    let index = users::login_index(&state.store, email.as_ref());
    let (_, user_id) = anon.admit_reading(Read::Get(&index)).await?;
    let now = UnixTime::now();
    let request = account::Login {
        email,
        password: SecretString::from(body.password),
        user_id: user_id.into_value(),
        device: DeviceToken::presented(&req, &state.keys, now),
        client_addr: super::client_addr(&state, &req),
        client_ip: client_ip(&state, &req),
        agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        now,
    };
    let mut decisions = Vec::new();
    let pair = account::login(&state, request, &mut decisions).await;
    for limit in decisions {
        http::record_limit(&req, limit);
    }
    let pair = pair?;
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
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
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
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
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

/// Revokes every session and token of a user issued before `now`, in one round trip:
/// the store revokes and ends every session in the user's index in the same step.
pub async fn revoke_everything(
    state: &AuthState,
    user_id: &str,
    now: UnixTime,
) -> Result<(), ApiError> {
    revocations::revoke_user(
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
