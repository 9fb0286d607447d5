//! Generations and who owns them.

use actix_web::{HttpResponse, get, post, web};
use authstream_proto::Scope;
use authstream_proto::auth::NewGeneration;
use authstream_runtime::UnixTime;
use authstream_store::Read;
use authstream_store::generations::{self, Generation, GenerationId};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::http::{Caller, Pending};

use crate::state::AuthState;

#[utoipa::path(
    tag = "generations", summary = "Create a generation",
    security(("bearer" = [])),
    request_body = NewGeneration,
    responses(
        (status = 201, description = "Created", body = authstream_proto::auth::CreatedGeneration),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 409, response = authstream_web::openapi::Conflict),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/generations")]
pub async fn create(
    state: web::Data<AuthState>,
    caller: Pending<Caller>,
    body: authstream_web::http::JsonObject<NewGeneration>,
) -> Result<HttpResponse, ApiError> {
    let (id, owner_id) = match new_generation(caller.presented(), body.into_inner()) {
        Ok(checked) => checked,
        Err(e) => {
            // Refused for what it asked, still counted against the caller's budget.
            caller.admit().await?;
            return Err(e);
        }
    };
    // Admitted together with the owner's lookup: one round trip.
    let owner_key = state.store.keys().user(&owner_id);
    let (_, owner) = caller.admit_reading(Read::Get(&owner_key)).await?;
    if owner.into_value().is_none() {
        return Err(ApiError::field("owner_id", "no such user"));
    }
    let created = generations::create(
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
    Ok(HttpResponse::Created().json(created.created()))
}

/// The id and owner of a generation the caller asks for, or why it may not.
fn new_generation(
    caller: &Caller,
    body: NewGeneration,
) -> Result<(GenerationId, String), ApiError> {
    let id = match body.generation_id.as_deref() {
        Some(raw) => GenerationId::parse(raw).map_err(|e| ApiError::field("generation_id", e))?,
        None => GenerationId::generate(),
    };
    let owner_id = match (caller, body.owner_id) {
        (Caller::User(user), None) => user.user_id().to_owned(),
        (Caller::User(user), Some(owner)) if owner == user.user_id() || user.is_admin() => owner,
        (Caller::User(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "only an admin may create generations for others",
            ));
        }
        (Caller::Service(_), _) if !caller.has_scope(Scope::GenerationsWrite) => {
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
    Ok((id, owner_id))
}

/// Loads a generation the caller may see: its owner, an admin, or a service.
pub async fn visible(
    state: &AuthState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Generation, ApiError> {
    let id = GenerationId::parse(raw_id).map_err(|_| ApiError::not_found("generation"))?;
    let generation = generations::load(&state.store, &id).await?;
    seen_by(caller, generation)
}

/// A generation (`None`: no such one) as `caller` may see it.
fn seen_by(caller: &Caller, generation: Option<Generation>) -> Result<Generation, ApiError> {
    let generation = generation.ok_or_else(|| ApiError::not_found("generation"))?;
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
        (status = 200, description = "The generation", body = authstream_proto::auth::GenerationView),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/generations/{generation_id}")]
pub async fn get(
    state: web::Data<AuthState>,
    caller: Pending<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Ok(id) = GenerationId::parse(&path) else {
        caller.admit().await?;
        return Err(ApiError::not_found("generation"));
    };
    // Admitted together with the record's read: one round trip.
    let key = state.store.keys().generation(id.as_str());
    let (caller, fields) = caller.admit_reading(Read::HashGetAll(&key)).await?;
    let generation = generations::from_fields(&id, fields.into_hash());
    Ok(HttpResponse::Ok().json(seen_by(&caller, generation)?))
}
