//! Minting short-lived single-use stream tokens, and their statistics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use authstream_proto::Scope;
use authstream_proto::auth::{StreamTokenAnswer, StreamTokenStats};
use authstream_proto::paths;
use shared::claims::AccessClaims;
use shared::generation::GenerationId;
use shared::http::{Caller, Validated, record_limit};
use shared::rate_limit::{Cost, Policy, Subject};
use shared::store::{MintAdmission, Minted, NewStreamToken};
use shared::stream_token::{self, GrantKind, StreamGrant, StreamSecret};
use shared::{ApiError, UnixTime};

use super::client_ip;
use crate::sessions;
use crate::startup::AuthState;

/// When each session ends (`SESSION_MAX_AGE_SECS` after its login): a fact that never
/// changes for a session, kept here so that a mint need not read the session before
/// storing its token. Whether the session still exists is read on every mint.
pub type SessionEnds = moka::sync::Cache<(String, String), i64>;

pub fn session_ends(max_age: std::time::Duration) -> SessionEnds {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(max_age)
        .build()
}

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
    caller: Validated<AccessClaims>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    let now = UnixTime::now();
    let common = &state.settings.common;
    let client_ip = bound_address(common.stream_token_bind_ip, client_ip(&state, &req))?;
    let policy = Policy::for_tier(claims.tier);
    let (budget, quota) = state
        .limiter
        .budget(policy, Subject::User(claims.user_id()));
    let admission = MintAdmission {
        user_id: claims.user_id(),
        session_id: &claims.sid,
        rate_limit_key: &budget,
        gcra: quota.gcra(),
    };
    // A malformed id names no generation: the request still spends its budget.
    let generation_id = GenerationId::parse(&path).ok();
    let session = (claims.user_id().to_owned(), claims.sid.clone());
    let mut session_end = state.session_ends.get(&session);
    let grant_until = |session_expires_at: i64, generation_id: &GenerationId| StreamGrant {
        user_id: claims.user_id().to_owned(),
        session_id: claims.sid.clone(),
        generation_id: generation_id.as_str().to_owned(),
        issued_at: now.millis(),
        client_ip: client_ip.clone(),
        admin: claims.is_admin(),
        tier: claims.tier,
        kind: GrantKind::Token,
        session_expires_at,
        expires_at: Some(now.plus(common.stream_token_ttl).millis()),
    };
    let mut admitted = false;
    for _ in 0..4 {
        let secret = StreamSecret::generate()?;
        let digest = secret.digest();
        let grant = generation_id
            .as_ref()
            .zip(session_end)
            .map(|(id, end)| grant_until(end, id));
        let value = grant
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(ApiError::internal)?;
        let token = grant
            .as_ref()
            .zip(value.as_deref())
            .map(|(grant, value)| NewStreamToken {
                generation_id: &grant.generation_id,
                user_id: &grant.user_id,
                admin: grant.admin,
                digest: &digest,
                grant: value,
                ttl: common.stream_token_ttl,
            });
        let outcome = state
            .store
            .mint_stream_token((!admitted).then_some(&admission), token.as_ref())
            .await?;
        // A token stored beside a refusal here is never handed out, and expires.
        if let Some((decision, record)) = outcome.admission {
            let limit = state.limiter.decided(policy, quota, decision, Cost::Take);
            record_limit(&req, limit);
            limit.check()?;
            admitted = true;
            let record: sessions::SessionRecord = record
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(ApiError::internal)?
                .ok_or_else(sessions::ended)?;
            // The grant carries its session's end, so that no stream or resume outlives it.
            let end = record.expires_at(state.settings.session_max_age).millis();
            state.session_ends.insert(session.clone(), end);
            session_end = Some(end);
        }
        if generation_id.is_none() {
            return Err(ApiError::not_found("generation"));
        }
        match (outcome.minted, grant) {
            (Some(Minted::Stored), Some(grant)) => {
                stream_token::record_issued(&state.store, grant.expiry(common.stream_token_ttl));
                metrics::counter!("authstream_stream_tokens_issued_total").increment(1);
                tracing::info!(generation_id = %grant.generation_id, user_id = %grant.user_id, "stream token issued");
                let generation_id =
                    GenerationId::parse(&grant.generation_id).map_err(ApiError::internal)?;
                return Ok(HttpResponse::Ok()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .json(StreamTokenAnswer {
                        sse_token: secret.expose().to_owned(),
                        expires_in: common.stream_token_ttl.as_secs(),
                        stream_url: format!(
                            "{}{}",
                            state.settings.stream_public_url,
                            paths::generation_stream(&generation_id)
                        ),
                        generation_id,
                    }));
            }
            (Some(Minted::Gone), _) => return Err(ApiError::not_found("generation")),
            (Some(Minted::NotOwner), _) => {
                return Err(ApiError::forbidden(
                    "this generation belongs to someone else",
                ));
            }
            // The session's end was learnt just now, or the digest collided: again.
            _ => {}
        }
    }
    Err(ApiError::internal("three stream token collisions in a row"))
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
        (status = 200, description = "Counts only: this process's at once, other processes' within a second (each flushes its counts every second); a token leaves `active` when the second it expires in begins", body = authstream_proto::auth::StreamTokenStats),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[get("/admin/stream-tokens/stats")]
pub async fn stats(state: web::Data<AuthState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_admin_or_scope(Scope::UsersAdmin)?;
    let stats = stream_token::stats(&state.store, UnixTime::now()).await?;
    Ok(HttpResponse::Ok().json(StreamTokenStats {
        active: stats.active,
        issued_total: stats.issued_total,
        consumed_total: stats.consumed_total,
        rejected_total: stats.rejected_total,
    }))
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
