//! Minting short-lived single-use stream tokens, and their statistics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde_json::json;
use shared::claims::AccessClaims;
use shared::http::{Authenticated, Caller};
use shared::stream_token::{self, GrantKind, StreamGrant};
use shared::{ApiError, UnixTime};

use super::client_ip;
use super::generations::visible;
use crate::sessions;
use crate::startup::AuthState;

#[utoipa::path(
    tag = "generations", summary = "Mint a single-use stream token",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "1-128 characters of `A-Za-z0-9._~:-`")),
    responses(
        (status = 200, description = "A single-use stream token (`Cache-Control: no-store`)", body = crate::openapi::StreamTokenAnswer),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 404, response = shared::openapi::NotFound),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[post("/generations/generate/{generation_id}/stream-token")]
pub async fn mint(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    let now = UnixTime::now();
    let caller = Caller::User(claims);
    let generation = visible(&state, &caller, &path).await?;
    let Caller::User(claims) = caller else {
        return Err(ApiError::internal("caller changed"));
    };
    let common = &state.settings.common;
    // The grant carries its session's end, so that no stream or resume outlives it.
    let session = sessions::load(&state.store, claims.user_id(), &claims.sid)
        .await?
        .ok_or_else(sessions::ended)?;
    let grant = StreamGrant {
        user_id: claims.user_id().to_owned(),
        session_id: claims.sid.clone(),
        generation_id: generation.generation_id.clone(),
        issued_at: now.millis(),
        client_ip: bound_address(common.stream_token_bind_ip, client_ip(&state, &req))?,
        admin: claims.is_admin(),
        tier: claims.tier,
        kind: GrantKind::Token,
        session_expires_at: session.expires_at(state.settings.session_max_age).millis(),
    };
    let secret = stream_token::mint(&state.store, &grant, common.stream_token_ttl, now).await?;
    metrics::counter!("authstream_stream_tokens_issued_total").increment(1);
    tracing::info!(generation_id = %grant.generation_id, user_id = %grant.user_id, "stream token issued");
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "sse_token": secret.expose(),
        "expires_in": common.stream_token_ttl.as_secs(),
        "stream_url": format!("{}/generations/generate/{}/stream", state.settings.stream_public_url, grant.generation_id),
        "generation_id": grant.generation_id,
    })))
}

/// The address a token is bound to with `STREAM_TOKEN_BIND_IP=true`. When the client
/// address is unknown no token is minted: an unbound one would quietly defeat the setting.
fn bound_address(bind: bool, client: Option<String>) -> Result<Option<String>, ApiError> {
    match (bind, client) {
        (false, _) => Ok(None),
        (true, Some(ip)) => Ok(Some(ip)),
        (true, None) => {
            tracing::warn!("stream token refused: it must be bound to an unknown client address");
            Err(ApiError::forbidden(
                "stream tokens are bound to the client address, and yours is unknown",
            ))
        }
    }
}

#[utoipa::path(
    tag = "admin", summary = "Stream-token statistics",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts only", body = crate::openapi::StreamTokenStats),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[get("/admin/stream-tokens/stats")]
pub async fn stats(state: web::Data<AuthState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope("users:admin")?;
    Ok(HttpResponse::Ok().json(stream_token::stats(&state.store, UnixTime::now()).await?))
}

#[cfg(test)]
mod tests {
    use super::bound_address;

    #[test]
    fn binding_to_an_unknown_address_fails_closed() {
        assert_eq!(bound_address(false, None).unwrap(), None);
        assert_eq!(bound_address(false, Some("10.0.0.1".into())).unwrap(), None);
        assert_eq!(
            bound_address(true, Some("10.0.0.1".into()))
                .unwrap()
                .as_deref(),
            Some("10.0.0.1")
        );
        let refused = bound_address(true, None).unwrap_err();
        assert_eq!(
            (refused.code.as_str(), refused.code.status()),
            ("forbidden", 403)
        );
    }
}
