//! Demo mode (`DEMO=true`; on by default in the single-process `authstream`): the demo
//! page, its scripts and the JavaScript client's modules as embedded files (`pages`), and a
//! simulated generation (`script`, `simulation`) that publishes realistic progress
//! events through the store, exactly as a backend publishing through the stream service
//! would. The two demo routes are here.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET /`, `GET /static/{file}` (`app.css`, `app.js` and the modules it imports), `GET /clients/js/{file}` (`authstream.js` and the modules it re-exports from) | anyone | the page, with a same-origin-only Content-Security-Policy; another file name is a 404 |
//! | `POST /demo/generations/{id}/simulate` `{duration_ms?, outcome?}` | owner or admin (Bearer access) | 202; publishes ~16 events over `duration_ms` (default 8000, 500–60000), ending `completed` (or `failed` with `"outcome":"failed"`) |
//! | `POST /demo/generations/{id}/disconnect` | owner or admin (Bearer access) | 202; the server ends this generation's open streams of the caller's session (nothing is revoked), which then resume (to show and test resumption) |

mod pages;
mod script;
mod simulation;

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, post, web};
use authstream_proto::auth::{DisconnectAnnounced, SimulateBody, SimulationStarted};
use authstream_proto::claims::AccessClaims;
use authstream_store::AppendOutcome;
use authstream_store::events::{GenerationStatus, HistoryLimits};
use authstream_store::generations::Generation;
use authstream_store::revocations::{self, StreamNotice};
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::http::{Authenticated, Caller};
use tokio::time::Instant;
use utoipa_actix_web::service_config::ServiceConfig;

pub use pages::*;
use script::{Outcome, schedule, script};
use simulation::Simulation;

use crate::state::AuthState;

/// Default length of a simulated generation, and its bounds.
pub const DEFAULT_DURATION_MS: u64 = 8_000;
pub const MIN_DURATION_MS: u64 = 500;
pub const MAX_DURATION_MS: u64 = 60_000;
/// A simulate request body is a handful of fields.
const MAX_BODY_BYTES: usize = 4 * 1024;
/// How often one event is tried when the store does not answer.
const PUBLISH_ATTEMPTS: u32 = 3;

/// Registers the demo routes (only when demo mode is on): registering a handler here is
/// what documents it, as for `crate::routes::configure`. The pages take GET and HEAD
/// (answered without the body); their documents list GET.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(index)
        .service(static_file)
        .service(client_file)
        .service(simulate)
        .service(disconnect);
}

fn parse_body(raw: &[u8]) -> Result<(Duration, Outcome), ApiError> {
    if raw.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let body: SimulateBody = if raw.iter().all(u8::is_ascii_whitespace) {
        SimulateBody::default()
    } else {
        authstream_web::http::from_json_object(raw)
            .map_err(|e| ApiError::field("body", authstream_web::http::json_problem(&e)))?
    };
    let mut errors = authstream_web::error::FieldErrors::default();
    let duration_ms = body.duration_ms.unwrap_or(DEFAULT_DURATION_MS);
    if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration_ms) {
        errors.add(
            "duration_ms",
            format!("must be from {MIN_DURATION_MS} to {MAX_DURATION_MS}"),
        );
    }
    let outcome = match body.outcome.as_deref().map(GenerationStatus::parse) {
        None | Some(Some(GenerationStatus::Completed)) => Outcome::Completed,
        Some(Some(GenerationStatus::Failed)) => Outcome::Failed,
        Some(_) => {
            errors.add(
                "outcome",
                format!(
                    "must be {} or {}",
                    GenerationStatus::Completed,
                    GenerationStatus::Failed
                ),
            );
            Outcome::Completed
        }
    };
    errors.into_result()?;
    Ok((Duration::from_millis(duration_ms), outcome))
}

/// The generation, if the caller owns it or is an admin (the rule of every route).
async fn owned_generation(
    state: &AuthState,
    claims: &AccessClaims,
    raw_id: &str,
) -> Result<Generation, ApiError> {
    crate::routes::generations::visible(state, &Caller::User(claims.clone()), raw_id).await
}

/// `POST /demo/generations/{generation_id}/simulate`: starts publishing a scripted
/// generation's events. Only a `pending` generation can be simulated, once.
#[utoipa::path(tag = "demo", summary = "Simulate a generation (demo)",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "One of the caller's generations")),
    request_body(content = Option<SimulateBody>, description = "Optional: how long (500-60000 ms, default 8000) and how it ends (`completed` or `failed`)"),
    responses(
        (status = 202, description = "The simulation started", body = authstream_proto::auth::SimulationStarted),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 409, response = authstream_web::openapi::Conflict),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/demo/generations/{generation_id}/simulate")]
pub(crate) async fn simulate(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    let (duration, outcome) = parse_body(&body)?;
    let generation = owned_generation(&state, &claims, &path).await?;
    let already_started = || {
        ApiError::new(
            ErrorCode::GenerationExists,
            "this generation has already been started; create a new one to simulate",
        )
    };
    if generation.status.is_terminal() {
        return Err(ApiError::new(
            ErrorCode::GenerationFinished,
            "the generation has already completed or failed",
        ));
    }
    if generation.status != GenerationStatus::Pending {
        return Err(already_started());
    }
    // One simulation per generation, even when two requests race.
    let lock = state
        .store
        .keys()
        .demo_simulation(generation.generation_id.as_str());
    if !state
        .store
        .set_nx(&lock, "1", duration + Duration::from_secs(60))
        .await?
    {
        return Err(already_started());
    }
    let steps = script(outcome);
    let mut due = schedule(&steps, duration);
    // The first event goes out before the answer, so the generation is `processing` as
    // soon as the client hears back.
    if let Some(first) = due.first_mut() {
        *first = Duration::ZERO;
    }
    let simulation = Simulation {
        store: state.store.clone(),
        generation_id: generation.generation_id.to_string(),
        steps,
        due,
        history: HistoryLimits {
            max_len: state.settings.common.event_history_max,
            ttl: state.settings.common.generation_ttl,
        },
        lock,
    };
    let started = Instant::now();
    let first = match simulation.steps.first() {
        Some(step) => simulation.publish(step, Duration::ZERO).await,
        None => Err(ApiError::internal("an empty simulation script")),
    };
    let refused = match first {
        Ok(AppendOutcome::Appended { .. }) => None,
        Ok(AppendOutcome::NoGeneration) => Some(ApiError::not_found("generation")),
        Ok(AppendOutcome::Finished) => Some(ApiError::new(
            ErrorCode::GenerationFinished,
            "the generation has already completed or failed",
        )),
        Err(e) => Some(e),
    };
    if let Some(err) = refused {
        state.store.del(&simulation.lock).await.ok();
        return Err(err);
    }
    let events = simulation.steps.len();
    tracing::info!(
        generation_id = %generation.generation_id,
        user_id = %claims.user_id(),
        events,
        duration_ms = duration.as_millis() as u64,
        "demo: simulation started"
    );
    tokio::spawn(simulation.run(started));
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SimulationStarted {
            generation_id: generation.generation_id,
            events: events as u64,
            duration_ms: duration.as_millis() as u64,
            outcome: outcome.status(),
        }))
}

/// `POST /demo/generations/{generation_id}/disconnect`: the server drops the open
/// streams of the caller's session, as a network failure or a restart would, to show
/// (and test) that they resume with nothing lost and nothing twice.
///
/// It announces a disconnect notice for this generation's streams of the caller's
/// session: the stream service ends them on every replica, revoking nothing, so
/// their reconnects pass.
#[utoipa::path(tag = "demo", summary = "Drop this session's streams of a generation (demo)",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "One of the caller's generations")),
    responses(
        (status = 202, description = "This session's streams of the generation are told to drop (nothing is revoked)", body = authstream_proto::auth::DisconnectAnnounced),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/demo/generations/{generation_id}/disconnect")]
pub(crate) async fn disconnect(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    let generation = owned_generation(&state, &claims, &path).await?;
    let notice = StreamNotice::disconnect(
        claims.user_id(),
        &claims.sid,
        generation.generation_id.as_str(),
    );
    revocations::announce(&state.store, &notice).await?;
    tracing::info!(
        generation_id = %generation.generation_id,
        user_id = %claims.user_id(),
        "demo: this generation's streams of the session told to disconnect"
    );
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(DisconnectAnnounced {
            generation_id: generation.generation_id,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked() {
        assert_eq!(
            parse_body(b"").ok(),
            Some((
                Duration::from_millis(DEFAULT_DURATION_MS),
                Outcome::Completed
            ))
        );
        assert_eq!(
            parse_body(br#"{"duration_ms":3000,"outcome":"failed"}"#).ok(),
            Some((Duration::from_millis(3000), Outcome::Failed))
        );
        let err = parse_body(br#"{"duration_ms":1,"outcome":"maybe"}"#).err();
        let fields: Vec<_> = err
            .iter()
            .flat_map(|e| e.fields.keys().map(String::as_str))
            .collect();
        assert_eq!(fields, ["duration_ms", "outcome"]);
        let err = parse_body(br#"{"speed":2}"#).err();
        assert!(err.is_some_and(|e| e.fields.contains_key("body")));
        assert!(parse_body(b"[").is_err());
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(parse_body(&big).is_err_and(|e| e.code == ErrorCode::PayloadTooLarge));
    }
}
