//! Administration of users: revoke everything, change tier and roles, clear the
//! failed-login budgets.

use actix_web::{HttpResponse, delete, patch, post, web};
use authstream_proto::Scope;
use authstream_proto::auth::UserPatch;
use authstream_proto::claims::Tier;
use authstream_runtime::UnixTime;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::error::FieldErrors;
use authstream_web::http::Caller;

use super::account::revoke_everything;
use crate::domain::Role;
use crate::state::AuthState;
use crate::users;

const ADMIN_SCOPE: Scope = Scope::UsersAdmin;

#[utoipa::path(
    tag = "admin", summary = "Revoke every session and token of a user",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 204, description = "Every session and token of the user is revoked"),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/users/{user_id}/revoke")]
pub async fn revoke_user(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope(ADMIN_SCOPE)?;
    if users::load(&state.store, &path).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    revoke_everything(&state, &path, UnixTime::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "admin", summary = "Clear a user's failed-login budgets",
    description = "Clears every failed-login budget of the account (per address, account-wide and per device), so that a login refused with 429 may try again at once.",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 204, description = "The account's failed-login budgets are cleared"),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[delete("/auth/users/{user_id}/login-failures")]
pub async fn clear_login_failures(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope(ADMIN_SCOPE)?;
    let Some(loaded) = users::load(&state.store, &path).await? else {
        return Err(ApiError::not_found("user"));
    };
    let key = state.limiter.login_failures_key(&loaded.user.email);
    state.store.del(&key).await?;
    let by = match &caller {
        Caller::User(claims) => claims.user_id().to_owned(),
        Caller::Service(claims) => claims.reg.sub.clone(),
    };
    tracing::info!(user_id = %path, cleared_by = %by, "failed-login budgets cleared");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "admin", summary = "Change a user's tier or roles",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The changed user", body = authstream_proto::auth::Profile),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[patch("/auth/users/{user_id}")]
pub async fn update_user(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<String>,
    body: authstream_web::http::JsonObject<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope(ADMIN_SCOPE)?;
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let tier = body.tier.as_deref().and_then(|t| {
        errors.check(
            "tier",
            match t {
                "free" => Ok(Tier::Free),
                "paid" => Ok(Tier::Paid),
                _ => Err("must be free or paid"),
            },
        )
    });
    let roles = body.roles.map(|roles| {
        roles
            .iter()
            .filter_map(|r| errors.check("roles", Role::parse(r)).map(Role::into_inner))
            .collect::<Vec<_>>()
    });
    errors.into_result()?;

    // A concurrent change makes the swap fail: load again and re-apply.
    for _ in 0..5 {
        let loaded = users::load(&state.store, &path)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        let updated = users::update(&state.store, loaded, |user| {
            if let Some(tier) = tier {
                user.tier = tier;
            }
            if let Some(roles) = &roles {
                user.roles.clone_from(roles);
                user.roles.sort();
                user.roles.dedup();
            }
        })
        .await?;
        if let Some(user) = updated {
            tracing::info!(user_id = %user.user_id, tier = user.tier.as_str(), "user updated");
            return Ok(HttpResponse::Ok().json(user.profile()));
        }
    }
    Err(ApiError::new(
        ErrorCode::PreconditionFailed,
        "the user kept changing; try again",
    ))
}
