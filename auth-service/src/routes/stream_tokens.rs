//! Minting short-lived single-use stream tokens, and their statistics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use authstream_proto::Scope;
use authstream_proto::auth::{StreamTokenAnswer, StreamTokenStats};
use authstream_proto::claims::AccessClaims;
use authstream_runtime::UnixTime;
use authstream_store::streams;
use authstream_web::ApiError;
use authstream_web::http::{Caller, Validated, record_limit};

use super::client_ip;
use crate::state::AuthState;
use crate::stream_tokens::{self, MintRequest};

/// Mints a stream token in ONE store round trip once this process knows the session's
/// end: the user's rate limit and session read, and the generation's ownership check
/// and `SET NX`, are one script each, pipelined. The first mint of a session here
/// reads the session first (two round trips).
#[utoipa::path(
    tag = "generations", summary = "Mint a single-use stream token",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "1-128 characters of `A-Za-z0-9._~:-`")),
    responses(
        (status = 200, description = "A single-use stream token (`Cache-Control: no-store`)", body = authstream_proto::auth::StreamTokenAnswer),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/generations/generate/{generation_id}/stream-token")]
pub async fn mint(
    state: web::Data<AuthState>,
    caller: Validated<AccessClaims>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let request = MintRequest {
        claims: &caller.0,
        generation_id: &path,
        client_ip: &client_ip(&state, &req),
        now: UnixTime::now(),
    };
    let mut decisions = Vec::new();
    let minted = stream_tokens::mint(&state, &request, &mut decisions).await;
    for limit in decisions {
        record_limit(&req, limit);
    }
    let minted = minted?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(StreamTokenAnswer {
            sse_token: minted.secret.expose().to_owned(),
            expires_in: minted.expires_in,
            stream_url: minted.stream_url,
            generation_id: minted.generation_id,
        }))
}

#[utoipa::path(
    tag = "admin", summary = "Stream-token statistics",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts only: this process's at once, other processes' within a second (each flushes its counts every second); a token leaves `active` when the second it expires in begins", body = authstream_proto::auth::StreamTokenStats),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/admin/stream-tokens/stats")]
pub async fn stats(state: web::Data<AuthState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope(Scope::UsersAdmin)?;
    let stats = streams::stats(&state.store, UnixTime::now()).await?;
    Ok(HttpResponse::Ok().json(StreamTokenStats {
        active: stats.active,
        issued_total: stats.issued_total,
        consumed_total: stats.consumed_total,
        rejected_total: stats.rejected_total,
    }))
}
