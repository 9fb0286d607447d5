//! Opening a stream, for SSE and WebSocket alike: take the stream token (or the
//! `as_resume` cookie) with the record, the history after the resume point and the
//! next resume grant in one step on the generation's slot, admit the user in one step
//! on theirs, and hand over a `Feed`.
//!
//! The route (`routes/stream.rs`, `routes/ws.rs`) reads what an open needs from the
//! request into an `OpenRequest` and calls `open`, here: the per-address gate and
//! charge. The store steps are in `grant`, the refusals in `refusal`, the places in
//! `crate::leases`, the WebSocket `Origin` check in `origin`. Tests: `stream-service/tests/api/admission.rs`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::cookie::Cookie;
use authstream_runtime::UnixTime;
use authstream_store::generations::GenerationId;
use authstream_web::ApiError;
use authstream_web::rate_limit::{Cost, Limit, Policy, Subject};

use crate::feed::Feed;
use crate::meters;
use crate::state::StreamState;

mod grant;
mod origin;
mod refusal;

pub use crate::leases::{Leases, StreamSlot};
use refusal::{Attempt, refusal_of};

/// The cookie that lets a plain browser `EventSource` reconnect.
pub const RESUME_COOKIE: &str = "as_resume";

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

/// What an open needs from its request, read by the route so that nothing here sees
/// the request: the path's generation id as sent, the token, the resume cookie, the
/// resume point, the client address (`TRUSTED_PROXIES` applied) and, for a WebSocket,
/// the `Origin` and `Host` headers.
#[derive(Debug, Clone, Default)]
pub struct OpenRequest {
    /// The `{generation_id}` of the path, unparsed.
    pub generation_id: String,
    /// `?token=`.
    pub token: Option<String>,
    /// The value of the `as_resume` cookie, when one was sent.
    pub resume_cookie: Option<String>,
    /// `Last-Event-ID` (when readable), else `?last_event_id=`.
    pub last_event_id: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// `Origin` (empty when not readable), checked for a WebSocket only.
    pub origin: Option<String>,
    /// `Host`, when readable: the own origin when `STREAM_PUBLIC_URL` is a path.
    pub host: Option<String>,
}

/// The rate-limit decisions an open made, in order, for the answer's
/// `RateLimit-Policy` / `RateLimit` headers (429 or not).
pub type Decisions = Vec<Limit>;

/// Opens a stream of `request.generation_id` for the holder of the request's token or
/// cookie (a WebSocket's `Origin` checked first, see `origin`), in two store round trips: `Store::open_stream` on the generation's hash tag
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
    request: &OpenRequest,
    transport: Transport,
    now: UnixTime,
    decisions: &mut Decisions,
) -> Result<Open, ApiError> {
    if transport == Transport::WebSocket {
        origin::check_origin(state, request.origin.as_deref(), request.host.as_deref())?;
    }
    let client_ip = request.client_ip;
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
        decisions.push(limit);
        return Err(refusal_of(limit));
    }
    let parsed_id = GenerationId::parse(&request.generation_id).ok();
    let attempt = Attempt {
        // A malformed id is not echoed into the log: it is whatever the client sent.
        generation_id: parsed_id.as_ref().map_or("(invalid)", GenerationId::as_str),
        transport,
        store: &state.store,
        charged: AtomicBool::new(false),
    };
    let opened = grant::open_as(state, request, &attempt, parsed_id.as_ref(), now, decisions).await;
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
            decisions.push(limit);
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
