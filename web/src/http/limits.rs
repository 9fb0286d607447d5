//! Spending a request's rate-limit budget from a handler or extractor, and the
//! decisions recorded for the answer's `RateLimit-Policy` / `RateLimit` headers.

use actix_web::{HttpMessage as _, HttpRequest, web};

use crate::error::ApiError;
use crate::rate_limit::{Cost, Limit, Policy, RateLimiter, Subject};
use authstream_store::{Read, ReadAnswer};

/// The rate-limit decisions made for a request, which `observe` writes as the
/// `RateLimit-Policy` and `RateLimit` headers of its answer (429 or not).
#[derive(Debug, Clone, Default)]
pub(super) struct AppliedLimits(pub(super) Vec<Limit>);

/// Records a decision for the answer's headers. A later decision of the same policy
/// replaces the earlier one (a login given back its attempt).
pub fn record_limit(req: &HttpRequest, limit: Limit) {
    let mut extensions = req.extensions_mut();
    let applied = extensions.get_or_insert_with(AppliedLimits::default);
    applied.0.retain(|l| l.policy != limit.policy);
    applied.0.push(limit);
}

pub(super) fn limiter_of(req: &HttpRequest) -> Result<web::Data<RateLimiter>, ApiError> {
    // Missing is a wiring bug, and a refusal: nothing fails open.
    req.app_data::<web::Data<RateLimiter>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no rate limiter registered"))
}

/// Spends one request of `subject`'s budget under `policy`: the decision goes into the
/// answer's headers, and a refusal is 429 `rate_limited` with `Retry-After`.
pub async fn spend(
    req: &HttpRequest,
    limiter: &RateLimiter,
    policy: Policy,
    subject: Subject<'_>,
) -> Result<Limit, ApiError> {
    let limit = limiter.decide(policy, subject, Cost::Take).await?;
    record_limit(req, limit);
    limit.check()?;
    Ok(limit)
}

/// `spend`, with one read of the request's sent in the same round trip.
pub async fn spend_and_read(
    req: &HttpRequest,
    limiter: &RateLimiter,
    policy: Policy,
    subject: Subject<'_>,
    read: Read<'_>,
) -> Result<ReadAnswer, ApiError> {
    let (limit, found) = limiter
        .decide_and_read(policy, subject, Cost::Take, read)
        .await?;
    record_limit(req, limit);
    limit.check()?;
    Ok(found)
}
