//! Opening a stream, for SSE and WebSocket alike: take the stream token (or the
//! `as_resume` cookie) with the record, the history after the resume point and the
//! next resume grant in one step on the generation's slot, admit the user in one step
//! on theirs, and hand over a `Feed`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use serde::Deserialize;
use shared::generation::GenerationId;
use shared::rate_limit::{Cost, Limit, Policy, Subject};
use shared::store::{
    Admission, GrantFound, StreamAdmission, StreamOpened, StreamOpening, parse_event_id,
};
use shared::stream_token::{self, Refusal, StreamGrant, StreamSecret};
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

/// The places of every stream open in this process (`STREAM_MAX_PER_USER`, counted
/// in the store across replicas), renewed together by one task: one timer for all
/// streams, not a task and a timer each (an idle stream's memory is what it keeps).
#[derive(Clone)]
pub struct Leases(Arc<LeaseBook>);

struct LeaseBook {
    store: Store,
    /// Place number -> (the user's set of places, the place's id).
    held: Mutex<HashMap<u64, (String, String)>>,
    /// Places of closed streams not yet given back: the user's set -> place ids.
    released: Mutex<HashMap<String, Vec<String>>>,
    next: AtomicU64,
    renewing: Once,
}

impl Leases {
    pub fn new(store: Store) -> Self {
        Self(Arc::new(LeaseBook {
            store,
            held: Mutex::new(HashMap::new()),
            released: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            renewing: Once::new(),
        }))
    }

    /// The place `id` in `key`, taken by `Store::admit_stream`: renewed from now on.
    fn hold(&self, key: String, id: String) -> StreamSlot {
        let book = &self.0;
        // Started by the first stream, inside the runtime; they end with the book.
        book.renewing.call_once(|| {
            drop(tokio::spawn(renew(Arc::downgrade(book))));
            drop(tokio::spawn(give_back(Arc::downgrade(book))));
        });
        let number = book.next.fetch_add(1, Ordering::Relaxed);
        book.held.lock().insert(number, (key, id));
        StreamSlot {
            leases: self.clone(),
            number,
        }
    }
}

impl Leases {
    /// The places of `key` (a user's set) given back since the last `GIVE_BACK_INTERVAL`,
    /// taken out of the book: the user's next admission here removes them in its own
    /// script, so a user's next stream finds its closed ones gone at no cost of its own.
    fn take_released(&self, key: &str) -> Vec<String> {
        self.0.released.lock().remove(key).unwrap_or_default()
    }

    /// Places taken by `take_released` that the store did not get: for the next time.
    fn keep_released(&self, key: String, places: Vec<String>) {
        if !places.is_empty() {
            self.0
                .released
                .lock()
                .entry(key)
                .or_default()
                .extend(places);
        }
    }
}

/// How long a closed stream's place waits to be given back with the user's next
/// admission in this process before it is given back on its own (one command per user
/// for all of theirs closed meanwhile).
const GIVE_BACK_INTERVAL: Duration = Duration::from_secs(1);

/// Every `GIVE_BACK_INTERVAL`, gives back the places of the streams closed meanwhile:
/// one `ZREM` per user, whatever the number of streams.
async fn give_back(book: Weak<LeaseBook>) {
    let mut every = tokio::time::interval(GIVE_BACK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(book) = book.upgrade() else { return };
        let released = std::mem::take(&mut *book.released.lock());
        futures_util::stream::iter(released)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |(key, places)| {
                let book = &book;
                async move {
                    if let Err(e) = book.store.expiring_remove_all(&key, &places).await {
                        tracing::debug!(error = %e, "cannot give back closed streams' places; they expire");
                    }
                }
            })
            .await;
    }
}

/// A stream's place among its user's open streams: renewed while the stream lives,
/// given back once it is dropped (with the user's next admission in this process, else
/// within `GIVE_BACK_INTERVAL`), and gone by itself within `STREAM_LEASE` if this
/// process dies.
pub struct StreamSlot {
    leases: Leases,
    number: u64,
}

/// Every `STREAM_LEASE / 3`, renews every place still held (the lease outlasts two
/// missed renewals).
async fn renew(book: Weak<LeaseBook>) {
    let mut every = tokio::time::interval(STREAM_LEASE / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(book) = book.upgrade() else { return };
        let numbers: Vec<u64> = book.held.lock().keys().copied().collect();
        let now = UnixTime::now();
        let expires_at = now.plus(STREAM_LEASE).millis();
        futures_util::stream::iter(numbers)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |number| {
                let book = &book;
                async move {
                    // A place given back meanwhile is not taken again.
                    let Some((key, id)) = book.held.lock().get(&number).cloned() else {
                        return;
                    };
                    if let Err(e) = book
                        .store
                        .expiring_add(&key, &id, expires_at, now.millis())
                        .await
                    {
                        tracing::debug!(error = %e, "cannot renew an open stream's place");
                    }
                }
            })
            .await;
    }
}

/// Renewals sent at once: they share one multiplexed connection.
const RENEWALS_IN_FLIGHT: usize = 64;

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let book = &self.leases.0;
        let Some((key, id)) = book.held.lock().remove(&self.number) else {
            return;
        };
        book.released.lock().entry(key).or_default().push(id);
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
            Refusal::WrongKind => Self::WrongKind,
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
    generation_id: &'a str,
    transport: Transport,
    store: &'a Store,
    /// Set by a refusal that asked the store: it is charged to the client address.
    charged: AtomicBool,
}

impl Attempt<'_> {
    /// Logs, counts and answers a refusal. Nothing here names the token.
    fn refuse(&self, why: Refused, store_touched: bool) -> ApiError {
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
        if store_touched {
            stream_token::record_rejected(self.store);
            if why != Refused::TooManyStreams {
                self.charged.store(true, Ordering::Relaxed);
            }
        }
        invalid_stream_token()
    }
}

/// Opens a stream of `raw_generation_id` for the holder of the request's token or
/// cookie, in two store round trips: `Store::open_stream` on the generation's hash tag
/// (take the grant, read the record and history, store the next resume grant), then
/// `Store::admit_stream` on the user's (rate limit, revocation, session and role for a
/// resume, a place among the user's streams).
///
/// A refused open that asked the store (`invalid_stream_token`) spends the client
/// address's `anon` budget afterwards; when that budget is spent, the answer is 429,
/// and until it comes back every open from that address is refused here, before the
/// store is asked (`SpentBudgets`). A stream token cannot be checked without the store,
/// so this gate is per address, not per token: users behind one NAT share it.
pub async fn open(
    state: &StreamState,
    req: &HttpRequest,
    raw_generation_id: &str,
    query: &StreamQuery,
    transport: Transport,
    now: UnixTime,
) -> Result<Open, ApiError> {
    let client_ip = state.settings.common.trusted_proxies.client_ip(req);
    let subject = Subject::Address(client_ip);
    let (budget, quota) = state.limiter.budget(Policy::Anon, subject);
    let clock = Instant::now();
    if let Some(until) = state.spent_addresses.refused_until(&budget, clock) {
        meters::stream_open(transport.as_str(), "address_limited");
        tracing::debug!(
            transport = transport.as_str(),
            "stream open refused: this address spent its budget on refused opens"
        );
        let limit = Limit::refused(Policy::Anon, quota, until.saturating_duration_since(clock));
        shared::http::record_limit(req, limit);
        return Err(refusal_of(limit));
    }
    let parsed_id = GenerationId::parse(raw_generation_id).ok();
    let attempt = Attempt {
        // A malformed id is not echoed into the log: it is whatever the client sent.
        generation_id: parsed_id.as_ref().map_or("(invalid)", GenerationId::as_str),
        transport,
        store: &state.store,
        charged: AtomicBool::new(false),
    };
    let opened = open_as(
        state,
        req,
        &attempt,
        parsed_id.as_ref(),
        client_ip,
        query,
        now,
    )
    .await;
    let refused = match opened {
        Err(refused) if attempt.charged.load(Ordering::Relaxed) => refused,
        other => return other,
    };
    // The refusal stands whatever the budget says; a spent budget makes it a 429.
    match state
        .limiter
        .decide(Policy::Anon, subject, Cost::Take)
        .await
    {
        Ok(limit) => {
            shared::http::record_limit(req, limit);
            if limit.decision.allowed {
                return Err(refused);
            }
            let retry_after = u64::try_from(limit.decision.retry_after_us).unwrap_or(0);
            state
                .spent_addresses
                .note(&budget, Duration::from_micros(retry_after), Instant::now());
            tracing::info!(
                transport = transport.as_str(),
                retry_after_secs = limit.decision.retry_after_secs(),
                "stream opens refused from this address until its budget comes back: it spent it on refused opens"
            );
            Err(refusal_of(limit))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot charge a refused stream open to its address");
            Err(refused)
        }
    }
}

/// The 429 of a refused decision.
fn refusal_of(limit: Limit) -> ApiError {
    limit
        .check()
        .err()
        .unwrap_or_else(|| ApiError::internal("a refused decision allowed"))
}

async fn open_as(
    state: &StreamState,
    req: &HttpRequest,
    attempt: &Attempt<'_>,
    parsed_id: Option<&GenerationId>,
    client_ip: Option<IpAddr>,
    query: &StreamQuery,
    now: UnixTime,
) -> Result<Open, ApiError> {
    let transport = attempt.transport;
    // A JWT or junk is refused outright; it never reaches the store.
    let token = match query.token.as_deref().filter(|t| !t.is_empty()) {
        Some(raw) => match StreamSecret::parse(raw) {
            Some(secret) => Some(secret),
            None => return Err(attempt.refuse(Refused::Malformed, false)),
        },
        None => None,
    };
    let cookie = req.cookie(RESUME_COOKIE);
    let resume = cookie.as_ref().and_then(|c| StreamSecret::parse(c.value()));
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
    let resume_from = resume_point(req, query);
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
        stream_token::record_consumed(&state.store, grant.expiry(ttl));
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
    let place = shared::jwt::new_jti();
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
    shared::http::record_limit(req, limit);
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

    #[tokio::test(start_paused = true)]
    async fn open_places_are_renewed_by_one_task_and_given_back_when_dropped() {
        let store = Store::memory("leases");
        let leases = Leases::new(store.clone());
        let count = || async { store.expiring_count("k", UnixTime::now().millis()).await };
        let a = leases.hold("k".into(), "a".into());
        let _b = leases.hold("k".into(), "b".into());
        // `admit_stream` wrote the places; holding them writes nothing.
        assert_eq!(count().await.unwrap(), 0);

        // Half-way between two give-backs.
        tokio::time::sleep(STREAM_LEASE / 3 + GIVE_BACK_INTERVAL / 2).await;
        assert_eq!(count().await.unwrap(), 2, "both renewed");

        drop(a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            count().await.unwrap(),
            2,
            "not yet: it waits for a next admission"
        );
        assert_eq!(leases.take_released("k"), ["a"]);
        leases.keep_released("k".into(), vec!["a".into()]);
        tokio::time::sleep(GIVE_BACK_INTERVAL).await;
        assert_eq!(count().await.unwrap(), 1, "given back");
        assert!(leases.take_released("k").is_empty());
        tokio::time::sleep(STREAM_LEASE / 3).await;
        assert_eq!(count().await.unwrap(), 1, "not renewed once given back");
    }
}
