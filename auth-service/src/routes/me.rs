//! The caller's profile, with optimistic concurrency through `ETag` / `If-Match`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use authstream_proto::auth::ProfilePatch;
use authstream_proto::claims::AccessClaims;
use authstream_store::Read;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::error::FieldErrors;
use authstream_web::http::Pending;

use crate::domain::{DisplayName, Preferences};
use crate::state::AuthState;
use crate::users::{self, UserRecord};

fn respond(user: &UserRecord) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, user.etag()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(user.profile())
}

/// Admits the caller (the rate limit) and loads its record, in one round trip.
async fn admit_and_load(
    state: &AuthState,
    caller: Pending<AccessClaims>,
) -> Result<users::Loaded, ApiError> {
    let key = state.store.keys().user(caller.presented().user_id());
    let (_, found) = caller.admit_reading(Read::Get(&key)).await?;
    users::Loaded::from_stored(found.into_value())?.ok_or_else(|| ApiError::not_found("user"))
}

#[utoipa::path(
    tag = "sessions", summary = "The caller's profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = authstream_proto::auth::Profile, headers(("ETag" = String, description = "The profile version, for If-Match"))),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/auth/me")]
pub async fn get(
    state: web::Data<AuthState>,
    caller: Pending<AccessClaims>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond(&admit_and_load(&state, caller).await?.user))
}

#[utoipa::path(
    tag = "sessions", summary = "Change the profile (If-Match)",
    security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "The ETag of GET /auth/me (or `*`); without it the answer is 428")),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The changed profile", body = authstream_proto::auth::Profile, headers(("ETag" = String, description = "The new version"))),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 412, response = authstream_web::openapi::PreconditionFailed),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 428, response = authstream_web::openapi::PreconditionRequired),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[patch("/auth/me")]
pub async fn patch(
    state: web::Data<AuthState>,
    caller: Pending<AccessClaims>,
    req: HttpRequest,
    body: authstream_web::http::JsonObject<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let loaded = admit_and_load(&state, caller).await?;
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PreconditionRequired,
                "send If-Match with the ETag of GET /auth/me",
            )
        })?;
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let display_name: Option<Option<String>> = match body.display_name {
        Some(Some(name)) => errors
            .check("display_name", DisplayName::parse(&name))
            .map(|n| Some(n.into_inner())),
        Some(None) => Some(None),
        None => None,
    };
    let preferences = match body.preferences {
        Some(p) => errors
            .check("preferences", Preferences::parse(p))
            .map(Preferences::into_inner),
        None => None,
    };
    errors.into_result()?;

    let conflict = || {
        ApiError::new(
            ErrorCode::PreconditionFailed,
            "the profile was changed by another session; reload it",
        )
    };
    // RFC 9110: `*`, or a list of tags compared strongly (a weak tag never matches).
    let current = loaded.user.etag();
    let matches = if_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current);
    if !matches {
        return Err(conflict());
    }
    let updated = users::update(&state.store, loaded, |user| {
        if let Some(name) = display_name {
            user.display_name = name.filter(|n| !n.is_empty());
        }
        if let Some(preferences) = preferences {
            user.preferences = preferences;
        }
    })
    .await?
    .ok_or_else(conflict)?;
    Ok(respond(&updated))
}
