//! Generations and who owns them.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;
use shared::generation::{self, Generation, GenerationId};
use shared::http::Caller;
use shared::{ApiError, ErrorCode, UnixTime};

use crate::startup::AuthState;
use crate::users;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGeneration {
    /// Generated (UUID v4) when left out
    generation_id: Option<String>,
    owner_id: Option<String>,
}

#[utoipa::path(
    tag = "generations", summary = "Create a generation",
    security(("bearer" = [])),
    request_body = NewGeneration,
    responses(
        (status = 201, description = "Created", body = crate::openapi::CreatedGeneration),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 409, response = shared::openapi::Conflict),
        (status = 413, response = shared::openapi::PayloadTooLarge),
        (status = 422, response = shared::openapi::Unprocessable),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/generations")]
pub async fn create(
    state: web::Data<AuthState>,
    caller: Caller,
    body: web::Json<NewGeneration>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = match body.generation_id.as_deref() {
        Some(raw) => GenerationId::parse(raw).map_err(|e| ApiError::field("generation_id", e))?,
        None => GenerationId::generate(),
    };
    let owner_id = match (&caller, body.owner_id) {
        (Caller::User(user), None) => user.user_id().to_owned(),
        (Caller::User(user), Some(owner)) if owner == user.user_id() || user.is_admin() => owner,
        (Caller::User(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "only an admin may create generations for others",
            ));
        }
        (Caller::Service(_), _) if !caller.has_scope("generations:write") => {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                "the scope generations:write is required",
            ));
        }
        (Caller::Service(_), None) => {
            return Err(ApiError::field("owner_id", "is required for a service"));
        }
        (Caller::Service(_), Some(owner)) => owner,
    };
    if users::load(&state.store, &owner_id).await?.is_none() {
        return Err(ApiError::field("owner_id", "no such user"));
    }
    let created = generation::create(
        &state.store,
        &id,
        &owner_id,
        UnixTime::now(),
        state.settings.common.generation_ttl,
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::GenerationExists,
            "a generation with this id exists",
        )
    })?;
    tracing::info!(generation_id = %id, %owner_id, "generation created");
    Ok(HttpResponse::Created().json(json!({
        "generation_id": created.generation_id,
        "owner_id": created.owner_id,
        "status": created.status,
        "created_at": created.created_at,
    })))
}

/// Loads a generation the caller may see: its owner, an admin, or a service.
pub async fn visible(
    state: &AuthState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Generation, ApiError> {
    let id = GenerationId::parse(raw_id).map_err(|_| ApiError::not_found("generation"))?;
    let generation = generation::load(&state.store, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("generation"))?;
    match caller {
        Caller::Service(_) => Ok(generation),
        Caller::User(user) if user.user_id() == generation.owner_id || user.is_admin() => {
            Ok(generation)
        }
        Caller::User(_) => Err(ApiError::forbidden(
            "this generation belongs to someone else",
        )),
    }
}

#[utoipa::path(
    tag = "generations", summary = "A generation",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "1-128 characters of `A-Za-z0-9._~:-`")),
    responses(
        (status = 200, description = "The generation", body = crate::openapi::GenerationView),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 404, response = shared::openapi::NotFound),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[get("/generations/{generation_id}")]
pub async fn get(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible(&state, &caller, &path).await?))
}
