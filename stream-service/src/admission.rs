//! Opening a stream, for SSE and WebSocket alike: consume the stream token (or the
//! `as_resume` cookie) first, check what it grants, find the resume point, rotate
//! the resume grant, and hand over a `Feed`.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use serde::Deserialize;
use shared::generation::{self, GenerationId, is_terminal};
use shared::rate_limit::{Policy, Subject};
use shared::store::parse_event_id;
use shared::stream_token::{self, GrantKind, Refusal, StreamGrant, StreamSecret};
use shared::{ApiError, ErrorCode, Store, UnixTime};

use crate::feed::{Feed, FeedParts, Holder};
use crate::meters;
use crate::startup::StreamState;

/// The cookie that lets a plain browser `EventSource` reconnect.
pub const RESUME_COOKIE: &str = "as_resume";

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub token: Option<String>,
    pub last_event_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    WebSocket,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::WebSocket => "ws",
        }
    }
}

pub enum Open {
    Stream(Box<Opened>),
    /// The client resumed at the terminal event of a finished generation.
    Finished,
}

pub struct Opened {
    pub feed: Feed,
    pub cookie: Cookie<'static>,
    /// Held for as long as the stream is open: dropping it gives the place back.
    pub slot: StreamSlot,
}

/// How long a stream's place among its user's open streams lasts unless renewed:
/// the places of a replica that died are free again after this.
const STREAM_LEASE: Duration = Duration::from_secs(60);

/// What a refused open is told to wait: places come back as streams close.
const TOO_MANY_STREAMS_RETRY_SECS: u64 = 10;

/// A stream's place among its user's open streams (`STREAM_MAX_PER_USER`, counted in
/// the store across replicas): renewed while the stream lives, given back when it is
/// dropped, and gone by itself within `STREAM_LEASE` if this process dies.
pub struct StreamSlot {
    store: Store,
    key: String,
    id: String,
    renewal: tokio::task::AbortHandle,
}

impl StreamSlot {
    /// Takes a place, or `None` when the user already has `max` streams open.
    async fn take(
        store: &Store,
        user_id: &str,
        max: usize,
        now: UnixTime,
    ) -> Result<Option<Self>, ApiError> {
        let key = store.keys().open_streams(user_id);
        let id = shared::jwt::new_jti();
        let expires_at = now.plus(STREAM_LEASE).millis();
        if !store
            .expiring_add_capped(&key, &id, expires_at, now.millis(), max)
            .await?
        {
            return Ok(None);
        }
        let renewal = tokio::spawn(renew(store.clone(), key.clone(), id.clone()));
        Ok(Some(Self {
            store: store.clone(),
            key,
            id,
            renewal: renewal.abort_handle(),
        }))
    }
}

async fn renew(store: Store, key: String, id: String) {
    let mut every = tokio::time::interval(STREAM_LEASE / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let now = UnixTime::now();
        let expires_at = now.plus(STREAM_LEASE).millis();
        if let Err(e) = store
            .expiring_add(&key, &id, expires_at, now.millis())
            .await
        {
            // The next tick tries again; the lease outlasts two missed renewals.
            tracing::debug!(error = %e, "cannot renew an open stream's place");
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.renewal.abort();
        let store = self.store.clone();
        let (key, id) = (std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        // Outside a runtime the lease frees the place by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.expiring_remove(&key, &id).await {
                    tracing::debug!(error = %e, "cannot give back a closed stream's place; it expires");
                }
            });
        }
    }
}

/// Why an open was refused: for the log and the metrics, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Missing,
    Malformed,
    Unknown,
    Expired,
    Replay,
    WrongKind,
    OtherGeneration,
    OtherAddress,
    Revoked,
    Gone,
    NotOwner,
    SessionEnded,
    TooManyStreams,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Replay => "replay",
            Self::WrongKind => "wrong_kind",
            Self::OtherGeneration => "other_generation",
            Self::OtherAddress => "other_address",
            Self::Revoked => "revoked",
            Self::Gone => "gone",
            Self::NotOwner => "not_owner",
            Self::SessionEnded => "session_ended",
            Self::TooManyStreams => "too_many_streams",
        }
    }
}

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unknown => Self::Unknown,
            Refusal::Expired => Self::Expired,
            Refusal::Replay => Self::Replay,
        }
    }
}

/// The one answer for every refusal: the client is not told which.
fn invalid_stream_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidStreamToken,
        "the stream token is unknown, expired, already used or not valid for this stream",
    )
}

struct Attempt<'a> {
    state: &'a StreamState,
    generation_id: &'a str,
    transport: Transport,
}

impl Attempt<'_> {
    /// Logs, counts and answers a refusal. Nothing here names the token.
    async fn refuse(&self, why: Refused, store_touched: bool) -> ApiError {
        meters::stream_open(self.transport.as_str(), why.as_str());
        if why == Refused::Replay {
            tracing::warn!(
                generation_id = %self.generation_id,
                transport = self.transport.as_str(),
                result = why.as_str(),
                "stream open refused: a used stream token was presented again (replay)"
            );
        } else {
            tracing::info!(
                generation_id = %self.generation_id,
                transport = self.transport.as_str(),
                result = why.as_str(),
                "stream open refused"
            );
        }
        // A junk token never reaches the store, not even to be counted there.
        if store_touched && let Err(e) = stream_token::record_rejected(&self.state.store).await {
            tracing::debug!(error = %e, "cannot count a rejected stream token");
        }
        invalid_stream_token()
    }

    /// Consumes one secret with ONE `GETDEL`; the grant must be of `kind`.
    async fn consume(
        &self,
        raw: &str,
        kind: GrantKind,
    ) -> Result<Result<StreamGrant, (Refused, bool)>, ApiError> {
        let Some(secret) = StreamSecret::parse(raw) else {
            return Ok(Err((Refused::Malformed, false)));
        };
        Ok(
            match stream_token::consume(&self.state.store, &secret).await? {
                Ok(grant) if grant.kind == kind => Ok(grant),
                Ok(_) => Err((Refused::WrongKind, true)),
                Err(refusal) => Err((refusal.into(), true)),
            },
        )
    }
}

/// Opens a stream of `raw_generation_id` for the holder of the request's token or cookie.
pub async fn open(
    state: &StreamState,
    req: &HttpRequest,
    raw_generation_id: &str,
    query: &StreamQuery,
    transport: Transport,
    now: UnixTime,
) -> Result<Open, ApiError> {
    let parsed_id = GenerationId::parse(raw_generation_id).ok();
    let attempt = Attempt {
        state,
        // A malformed id is not echoed into the log: it is whatever the client sent.
        generation_id: parsed_id.as_ref().map_or("(invalid)", GenerationId::as_str),
        transport,
    };

    // The token is consumed before anything else is looked at, the path included, so
    // that a token is used up by any attempt, and two racing opens cannot both succeed.
    let cookie = req.cookie(RESUME_COOKIE);
    let (mut grant, via_cookie) = match query.token.as_deref().filter(|t| !t.is_empty()) {
        Some(raw) => match attempt.consume(raw, GrantKind::Token).await? {
            Ok(grant) => (grant, false),
            // A JWT or junk is refused outright; it never reaches the store.
            Err((Refused::Malformed, _)) => {
                return Err(attempt.refuse(Refused::Malformed, false).await);
            }
            // The browser reconnecting to the same URL: its token is used, its cookie is not.
            Err(token_refusal) => match &cookie {
                Some(c) => match attempt.consume(c.value(), GrantKind::Resume).await? {
                    Ok(grant) => (grant, true),
                    Err(_) => return Err(attempt.refuse(token_refusal.0, token_refusal.1).await),
                },
                None => return Err(attempt.refuse(token_refusal.0, token_refusal.1).await),
            },
        },
        None => match &cookie {
            Some(c) => match attempt.consume(c.value(), GrantKind::Resume).await? {
                Ok(grant) => (grant, true),
                Err((why, touched)) => return Err(attempt.refuse(why, touched).await),
            },
            None => return Err(attempt.refuse(Refused::Missing, false).await),
        },
    };

    // Every open spends the grant's user's budget, one budget with the auth service.
    shared::http::spend(
        req,
        &state.limiter,
        Policy::for_tier(grant.tier),
        Subject::User(&grant.user_id),
    )
    .await?;

    // No grant is for a malformed id: it is another generation than the granted one.
    let Some(generation_id) = &parsed_id else {
        return Err(attempt.refuse(Refused::OtherGeneration, true).await);
    };

    // Follow before checking revocation and reading history, so that neither a
    // revocation notice nor an event can fall into the gap.
    let follow = state.hub.follow(generation_id.as_str()).await?;

    if grant.generation_id != generation_id.as_str() {
        return Err(attempt.refuse(Refused::OtherGeneration, true).await);
    }
    if let Some(bound) = &grant.client_ip {
        let client = state.settings.common.trusted_proxies.client_ip(req);
        if !same_address(bound, client) {
            return Err(attempt.refuse(Refused::OtherAddress, true).await);
        }
    }
    let issued_at_secs = grant.issued_at.div_euclid(1000);
    if state
        .store
        .revoked_in_store(&grant.user_id, "-", Some(&grant.session_id), issued_at_secs)
        .await?
    {
        return Err(attempt.refuse(Refused::Revoked, true).await);
    }
    // Nothing outlives its session: not a grant, not the resume grant minted below.
    let resume_ttl = state.settings.common.resume_ttl;
    let Some(resume_ttl) = grant.lifetime_within_session(resume_ttl, now) else {
        return Err(attempt.refuse(Refused::SessionEnded, true).await);
    };
    // A resume copies no rights blindly: the session must still exist, and the role
    // is read again (an admin demoted since loses other users' generations now).
    if via_cookie {
        match stream_token::holder_is_admin(&state.store, &grant.user_id, &grant.session_id).await?
        {
            Some(admin) => grant.admin = admin,
            None => return Err(attempt.refuse(Refused::SessionEnded, true).await),
        }
    }
    let Some(record) = generation::load(&state.store, generation_id).await? else {
        return Err(attempt.refuse(Refused::Gone, true).await);
    };
    if grant.user_id != record.owner_id && !grant.admin {
        return Err(attempt.refuse(Refused::NotOwner, true).await);
    }

    // Counted before any history is read: a refused open costs the store one call.
    let max_streams = state.settings.max_streams_per_user;
    let Some(slot) = StreamSlot::take(&state.store, &grant.user_id, max_streams, now).await? else {
        attempt.refuse(Refused::TooManyStreams, true).await;
        let mut refused = ApiError::new(
            ErrorCode::RateLimited,
            format!("at most {max_streams} streams may be open at once; close one first"),
        );
        refused.retry_after_secs = Some(TOO_MANY_STREAMS_RETRY_SECS);
        return Err(refused);
    };

    let resume_from = resume_point(req, query);
    let page = state
        .store
        .read_events(generation_id.as_str(), resume_from.as_deref())
        .await?;
    if resume_from.is_some() && is_terminal(&record.status) && page.events.is_empty() && !page.reset
    {
        meters::stream_open(transport.as_str(), "finished");
        tracing::info!(generation_id = %generation_id, "reconnect after the terminal event: nothing more to send");
        return Ok(Open::Finished);
    }

    // A fresh single-use resume grant for the next reconnect of this browser.
    let resume_grant = StreamGrant {
        issued_at: now.millis(),
        kind: GrantKind::Resume,
        ..grant.clone()
    };
    let resume = stream_token::mint(&state.store, &resume_grant, resume_ttl, now).await?;
    let cookie = Cookie::build(RESUME_COOKIE, resume.expose().to_owned())
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

/// A WebSocket upgrade is a cross-site request no CORS preflight guards, so a
/// browser's `Origin` must be one of `CORS_ALLOWED_ORIGINS` or the service's own
/// (`STREAM_PUBLIC_URL`; when that is a path, the origin whose host is the request's
/// `Host`). Checked before any token or cookie is looked at. A request without
/// `Origin` is not from a browser page (browsers always send it): allowed.
pub fn check_origin(state: &StreamState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let settings = state.settings();
    let listed = settings
        .common
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    let own = match &settings.public_origin {
        Some(own) => own.eq_ignore_ascii_case(origin),
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            host.zip(authority)
                .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority))
        }
    };
    if listed || own {
        return Ok(());
    }
    meters::stream_open(Transport::WebSocket.as_str(), "forbidden_origin");
    // Visible ASCII only (a `HeaderValue` that is a `str`), and bounded: safe to log.
    let shown: String = origin.chars().take(256).collect();
    tracing::warn!(origin = %shown, "WebSocket refused: its Origin is not allowed");
    Err(ApiError::forbidden(
        "WebSocket connections are not allowed from this origin",
    ))
}

/// `Last-Event-ID`, else `last_event_id` in the query, when it is an event id
/// (`<ms>-<seq>`, digits within range). Anything else is no resume point: it never
/// reaches the store or the log.
fn resume_point(req: &HttpRequest, query: &StreamQuery) -> Option<String> {
    let header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    header
        .or(query.last_event_id.as_deref())
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
