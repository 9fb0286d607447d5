//! The two store steps of an open: take the token (or resume cookie) with the record
//! and history on the generation's slot, then admit its user on theirs; and the feed
//! and resume cookie of an admitted open.

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite};
use authstream_runtime::UnixTime;
use authstream_store::generations::GenerationId;
use authstream_store::streams::{self, StreamGrant, StreamSecret};
use authstream_store::{
    Admission, GrantFound, StreamAdmission, StreamOpened, StreamOpening, parse_event_id,
};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::rate_limit::{Cost, Policy, Subject};

use super::refusal::{Attempt, Refused, refusal_of};
use super::{Decisions, Open, OpenRequest, Opened, RESUME_COOKIE};
use crate::feed::{Feed, FeedParts, Holder};
use crate::leases::STREAM_LEASE;
use crate::meters;
use crate::state::StreamState;

/// What a refused open is told to wait: places come back as streams close.
const TOO_MANY_STREAMS_RETRY_SECS: u64 = 10;

/// The store steps of `open` for a generation id that parsed (`None`: it did not).
pub(super) async fn open_as(
    state: &StreamState,
    request: &OpenRequest,
    attempt: &Attempt<'_>,
    parsed_id: Option<&GenerationId>,
    now: UnixTime,
    decisions: &mut Decisions,
) -> Result<Open, ApiError> {
    let client_ip = request.client_ip;
    let transport = attempt.transport;
    // A JWT or junk is refused outright; it never reaches the store.
    let token = match request.token.as_deref().filter(|t| !t.is_empty()) {
        Some(raw) => match StreamSecret::parse(raw) {
            Some(secret) => Some(secret),
            None => return Err(attempt.refuse(Refused::Malformed, false)),
        },
        None => None,
    };
    let cookie = request.resume_cookie.as_deref();
    let resume = cookie.and_then(StreamSecret::parse);
    if token.is_none() && resume.is_none() {
        let why = if cookie.is_some() {
            Refused::Malformed
        } else {
            Refused::Missing
        };
        return Err(attempt.refuse(why, false));
    }
    // Every grant is stored under its generation: for a malformed id there is none.
    let Some(generation_id) = parsed_id else {
        return Err(attempt.refuse(Refused::OtherGeneration, false));
    };

    // Follow before the history is read, so that no event can fall into the gap.
    let follow = state.hub.follow(generation_id.as_str()).await?;

    // The token (else the cookie) is used up by this step, whatever follows, so two
    // racing opens cannot both succeed.
    let next_resume = StreamSecret::generate()?;
    let resume_from = resume_point(request);
    let (token_digest, resume_digest) = (
        token.as_ref().map(StreamSecret::digest),
        resume.as_ref().map(StreamSecret::digest),
    );
    let opened = state
        .store
        .open_stream(&StreamOpening {
            generation_id: generation_id.as_str(),
            token: token_digest.as_deref(),
            cookie: resume_digest.as_deref(),
            after: resume_from.as_deref(),
            // The first page; the feed reads the next ones as the client drains it.
            page_size: state.hub.capacity(),
            next_resume: &next_resume.digest(),
            resume_ttl: state.settings.common.resume_ttl,
            now_ms: now.millis(),
        })
        .await?;
    let (raw_grant, via_cookie, found) = match opened {
        StreamOpened::Refused(why) => return Err(attempt.refuse(why.into(), true)),
        StreamOpened::Taken {
            grant,
            via_cookie,
            found,
        } => (grant, via_cookie, found),
    };
    let Ok(grant) = serde_json::from_str::<StreamGrant>(&raw_grant) else {
        return Err(attempt.refuse(Refused::Unknown, true));
    };
    if !via_cookie {
        let ttl = state.settings.common.stream_token_ttl;
        streams::record_consumed(&state.store, grant.expiry(ttl));
    }
    if grant.generation_id != generation_id.as_str() {
        return Err(attempt.refuse(Refused::OtherGeneration, true));
    }
    if let Some(bound) = &grant.client_ip
        && !same_address(bound, client_ip)
    {
        return Err(attempt.refuse(Refused::OtherAddress, true));
    }
    // Nothing outlives its session: not a grant, not the resume grant stored beside it.
    let (owner_id, status, page, resume_ttl) = match found {
        GrantFound::Open {
            owner_id,
            status,
            page,
            resume_ttl,
        } => (owner_id, status, page, resume_ttl),
        GrantFound::Gone => return Err(attempt.refuse(Refused::Gone, true)),
        GrantFound::NotOwner => return Err(attempt.refuse(Refused::NotOwner, true)),
        GrantFound::SessionEnded => return Err(attempt.refuse(Refused::SessionEnded, true)),
        GrantFound::Collision => {
            return Err(ApiError::internal("a resume grant collided with another"));
        }
    };

    // Every open spends the grant's user's budget, one budget with the auth service;
    // a resume copies no rights blindly (the session must still exist, and the role is
    // read again); the place is counted before anything is sent.
    let policy = Policy::for_tier(grant.tier);
    let (budget, quota) = state.limiter.budget(policy, Subject::User(&grant.user_id));
    let open_streams = state.store.keys().open_streams(&grant.user_id);
    let place = authstream_security::jwt::new_jti();
    let issued_at_secs = grant.issued_at.div_euclid(1000);
    let max_streams = state.settings.max_streams_per_user;
    let released = state.leases.take_released(&open_streams);
    let admitted = state
        .store
        .admit_stream(&StreamAdmission {
            user_id: &grant.user_id,
            session_id: &grant.session_id,
            issued_at_secs,
            rate_limit_key: &budget,
            gcra: quota.gcra(),
            recheck_owner: via_cookie.then_some(owner_id.as_str()),
            place: &place,
            place_expires_at_ms: now.plus(STREAM_LEASE).millis(),
            max_streams,
            now_ms: now.millis(),
            released: &released,
        })
        .await;
    let (decision, admission) = match admitted {
        Ok(admitted) => admitted,
        Err(e) => {
            state.leases.keep_released(open_streams, released);
            return Err(e.into());
        }
    };
    let limit = state.limiter.decided(policy, quota, decision, Cost::Take);
    decisions.push(limit);
    let slot = match admission {
        Admission::Admitted => state.leases.hold(open_streams, place),
        Admission::RateLimited => return Err(refusal_of(limit)),
        Admission::Revoked => return Err(attempt.refuse(Refused::Revoked, true)),
        Admission::SessionEnded => return Err(attempt.refuse(Refused::SessionEnded, true)),
        Admission::NotOwner => return Err(attempt.refuse(Refused::NotOwner, true)),
        Admission::TooManyStreams => {
            attempt.refuse(Refused::TooManyStreams, true);
            let mut refused = ApiError::new(
                ErrorCode::RateLimited,
                format!("at most {max_streams} streams may be open at once; close one first"),
            );
            refused.retry_after_secs = Some(TOO_MANY_STREAMS_RETRY_SECS);
            return Err(refused);
        }
    };

    if resume_from.is_some() && status.is_terminal() && page.events.is_empty() && !page.reset {
        meters::stream_open(transport.as_str(), "finished");
        tracing::info!(generation_id = %generation_id, "reconnect after the terminal event: nothing more to send");
        return Ok(Open::Finished);
    }

    // The fresh single-use resume grant for the next reconnect of this browser.
    let cookie = Cookie::build(RESUME_COOKIE, next_resume.expose().to_owned())
        .path(format!("/generations/generate/{generation_id}/"))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.common.cookie_secure)
        .max_age(actix_web::cookie::time::Duration::seconds(
            // Whole seconds, rounded up: the grant itself ends on time in the store.
            i64::try_from(resume_ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX),
        ))
        .finish();

    meters::stream_open(
        transport.as_str(),
        if via_cookie { "resumed" } else { "ok" },
    );
    tracing::info!(
        generation_id = %generation_id,
        user_id = %grant.user_id,
        transport = transport.as_str(),
        via = if via_cookie { "resume_cookie" } else { "token" },
        resume_from = resume_from.as_deref().unwrap_or(""),
        reset = page.reset,
        history = page.events.len(),
        "stream opened"
    );
    let feed = Feed::new(FeedParts {
        generation_id: generation_id.as_str().to_owned(),
        holder: Holder {
            user_id: grant.user_id,
            session_id: grant.session_id,
            issued_at_secs,
            session_ends_at_ms: grant.session_expires_at,
        },
        store: state.store.clone(),
        follow,
        max_queued: state.hub.capacity(),
        shutdown: state.shutdown_signal(),
        reset: page.reset,
        history: page.events,
        resume_from,
        transport: transport.as_str(),
    });
    Ok(Open::Stream(Box::new(Opened { feed, cookie, slot })))
}

/// `Last-Event-ID`, else `last_event_id` in the query, when it is an event id
/// (`<ms>-<seq>`, digits within range). Anything else is no resume point: it never
/// reaches the store or the log.
fn resume_point(request: &OpenRequest) -> Option<String> {
    request
        .last_event_id
        .as_deref()
        .map(str::trim)
        .and_then(|id| parse_event_id(id).map(|(ms, seq)| format!("{ms}-{seq}")))
}

fn same_address(bound: &str, client: Option<IpAddr>) -> bool {
    match (bound.parse::<IpAddr>(), client) {
        (Ok(bound), Some(client)) => bound.to_canonical() == client.to_canonical(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_canonically() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(same_address("127.0.0.1", Some(mapped)));
        assert!(same_address("::ffff:127.0.0.1", Some(v4)));
        assert!(!same_address("10.9.9.9", Some(v4)));
        assert!(!same_address("not an address", Some(v4)));
        assert!(!same_address("127.0.0.1", None));
    }
}
