//! Minting a short-lived single-use stream token for a generation
//! (`POST /generations/generate/{generation_id}/stream-token`): the rule. The route
//! (`routes/stream_tokens.rs`) reads the request into a `MintRequest`; tests are in
//! `tests/api/stream_tokens.rs`.

use authstream_proto::claims::AccessClaims;
use authstream_runtime::UnixTime;
use authstream_store::generations::GenerationId;
use authstream_store::streams::{self, GrantKind, StreamGrant, StreamSecret};
use authstream_store::{MintAdmission, Minted, NewStreamToken};
use authstream_web::ApiError;
use authstream_web::rate_limit::{Cost, Limit, Policy, Subject};

use crate::sessions;
use crate::state::AuthState;

/// What a mint needs from its request.
#[derive(Clone, Copy)]
pub struct MintRequest<'a> {
    /// The caller, validated (its rate limit is spent here, with the mint).
    pub claims: &'a AccessClaims,
    /// The `{generation_id}` of the path, unparsed.
    pub generation_id: &'a str,
    /// The client address as text, `TRUSTED_PROXIES` applied.
    pub client_ip: &'a Option<String>,
    pub now: UnixTime,
}

/// A minted token, for the answer.
pub struct MintedToken {
    pub secret: StreamSecret,
    /// Seconds.
    pub expires_in: u64,
    pub stream_url: String,
    pub generation_id: GenerationId,
}

/// Mints a stream token in ONE store round trip once this process knows the session's
/// end: the user's rate limit and session read, and the generation's ownership check
/// and `SET NX`, are one script each, pipelined. The first mint of a session here
/// reads the session first (two round trips). Every rate-limit decision made goes
/// into `decisions`, in order, for the answer's headers (429 or not).
pub async fn mint(
    state: &AuthState,
    request: &MintRequest<'_>,
    decisions: &mut Vec<Limit>,
) -> Result<MintedToken, ApiError> {
    let MintRequest { claims, now, .. } = *request;
    let common = &state.settings.common;
    let client_ip = bound_address(common.stream_token_bind_ip, request.client_ip.clone())?;
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
    let generation_id = GenerationId::parse(request.generation_id).ok();
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
            decisions.push(limit);
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
                streams::record_issued(&state.store, grant.expiry(common.stream_token_ttl));
                metrics::counter!("authstream_stream_tokens_issued_total").increment(1);
                tracing::info!(generation_id = %grant.generation_id, user_id = %grant.user_id, "stream token issued");
                let generation_id =
                    GenerationId::parse(&grant.generation_id).map_err(ApiError::internal)?;
                return Ok(MintedToken {
                    secret,
                    expires_in: common.stream_token_ttl.as_secs(),
                    stream_url: format!(
                        "{}{}",
                        state.settings.stream_public_url,
                        authstream_proto::paths::generation_stream(&generation_id)
                    ),
                    generation_id,
                });
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
