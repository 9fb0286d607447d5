//! Demo mode (`DEMO=true`; on by default in the single-process `authstream`): the demo
//! page, its script and the JavaScript client as embedded files, and a simulated
//! generation that publishes realistic progress events through the store, exactly as a
//! backend publishing through the stream service would.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET /`, `GET /static/app.css`, `GET /static/app.js`, `GET /clients/js/authstream.js` | anyone | the page, with a same-origin-only Content-Security-Policy |
//! | `POST /demo/generations/{id}/simulate` `{duration_ms?, outcome?}` | owner or admin (Bearer access) | 202; publishes ~16 events over `duration_ms` (default 8000, 500–60000), ending `completed` (or `failed` with `"outcome":"failed"`) |
//! | `POST /demo/generations/{id}/disconnect` | owner or admin (Bearer access) | 202; the server ends this generation's open streams of the caller's session (nothing is revoked), which then resume (to show and test resumption) |

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use authstream_proto::auth::{DisconnectAnnounced, SimulateBody, SimulationStarted};
use base64::Engine as _;
use shared::claims::AccessClaims;
use shared::events::{self, GenerationStatus, HistoryLimits, ProgressEvent};
use shared::generation::Generation;
use shared::http::{Authenticated, Caller};
use shared::revocation::{self, StreamNotice};
use shared::store::{AppendOutcome, Store};
use shared::{ApiError, ErrorCode, UnixTime};
use tokio::time::Instant;

use crate::startup::AuthState;

/// Default length of a simulated generation, and its bounds.
pub const DEFAULT_DURATION_MS: u64 = 8_000;
pub const MIN_DURATION_MS: u64 = 500;
pub const MAX_DURATION_MS: u64 = 60_000;
/// A simulate request body is a handful of fields.
const MAX_BODY_BYTES: usize = 4 * 1024;
/// How often one event is tried when the store does not answer.
const PUBLISH_ATTEMPTS: u32 = 3;

pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(page("/", index))
        .service(page("/static/app.css", app_css))
        .service(page("/static/app.js", app_js))
        .service(page("/clients/js/authstream.js", client_js))
        .route(
            "/demo/generations/{generation_id}/simulate",
            web::post().to(simulate),
        )
        .route(
            "/demo/generations/{generation_id}/disconnect",
            web::post().to(disconnect),
        );
}

// ---------------------------------------------------------------------------------
// The page.

/// A page route: GET, and HEAD (answered without the body).
fn page<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    use actix_web::guard::{Any, Get, Head};
    web::resource(path).route(web::route().guard(Any(Get()).or(Head())).to(handler))
}

/// A file served from memory, with a strong ETag of its content.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(digest.as_ref().get(..16).unwrap_or_default());
        Self {
            body,
            content_type,
            etag: format!("\"{tag}\""),
        }
    }
}

static INDEX_HTML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../static/index.html"),
        "text/html; charset=utf-8",
    )
});
static APP_CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../static/app.css"), "text/css; charset=utf-8"));
static APP_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../static/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static CLIENT_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../clients/js/authstream.js"),
        "text/javascript; charset=utf-8",
    )
});

#[utoipa::path(get, path = "/", tag = "demo", summary = "The demo page",
    responses((status = 200, description = "The demo page", body = String, content_type = "text/html"), (status = 304, description = "Not modified (If-None-Match)")))]
pub(crate) async fn index(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&INDEX_HTML, &state, &req)
}

#[utoipa::path(get, path = "/static/app.css", tag = "demo", summary = "The demo page's stylesheet",
    responses((status = 200, description = "The demo page's stylesheet", body = String, content_type = "text/css"), (status = 304, description = "Not modified (If-None-Match)")))]
pub(crate) async fn app_css(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&APP_CSS, &state, &req)
}

#[utoipa::path(get, path = "/static/app.js", tag = "demo", summary = "The demo page's script",
    responses((status = 200, description = "The demo page's script", body = String, content_type = "text/javascript"), (status = 304, description = "Not modified (If-None-Match)")))]
pub(crate) async fn app_js(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&APP_JS, &state, &req)
}

#[utoipa::path(get, path = "/clients/js/authstream.js", tag = "demo", summary = "The JavaScript client",
    responses((status = 200, description = "The JavaScript client (an ES module)", body = String, content_type = "text/javascript"), (status = 304, description = "Not modified (If-None-Match)")))]
pub(crate) async fn client_js(state: web::Data<AuthState>, req: HttpRequest) -> HttpResponse {
    serve(&CLIENT_JS, &state, &req)
}

fn serve(asset: &Asset, state: &AuthState, req: &HttpRequest) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(&state.settings.stream_public_url),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    if fresh {
        return res.finish();
    }
    res.content_type(asset.content_type).body(asset.body)
}

/// Only this origin (and the stream service's, when `STREAM_PUBLIC_URL` names another
/// one): no inline script or style, no other site, no framing.
fn content_security_policy(stream_public_url: &str) -> String {
    let stream_origin = shared::http::origin_of(stream_public_url)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{stream_origin}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

// ---------------------------------------------------------------------------------
// The simulated generation.

/// How a simulated generation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
}

impl Outcome {
    /// The status of the last event (and the request's `outcome`, as written).
    fn status(self) -> GenerationStatus {
        match self {
            Self::Completed => GenerationStatus::Completed,
            Self::Failed => GenerationStatus::Failed,
        }
    }
}

/// One scripted step: when it comes (a share of the whole duration, after the
/// previous one) and what it says.
struct Step {
    weight: u32,
    status: GenerationStatus,
    stage: &'static str,
    progress: f64,
    message: &'static str,
    current_file: Option<&'static str>,
}

const fn step(
    weight: u32,
    stage: &'static str,
    progress: f64,
    message: &'static str,
    current_file: Option<&'static str>,
) -> Step {
    Step {
        weight,
        status: GenerationStatus::Processing,
        stage,
        progress,
        message,
        current_file,
    }
}

/// A code generation as a real backend reports it: stages, progress, messages, files.
#[rustfmt::skip]
const SCRIPT: [Step; 16] = [
    step(0, "initializing", 0.02, "Preparing workspace...", None),
    step(
        3,
        "requirements_analysis",
        0.08,
        "Analyzing requirements...",
        None,
    ),
    step(
        4,
        "requirements_analysis",
        0.14,
        "Identified 4 entities and 12 endpoints",
        None,
    ),
    step(5, "schema_extraction", 0.22, "Extracting schema...", None),
    step(
        5,
        "schema_extraction",
        0.30,
        "Resolving relations between entities...",
        None,
    ),
    step(
        4,
        "architecture_design",
        0.37,
        "Designing the service layout...",
        None,
    ),
    step(
        6,
        "code_generation",
        0.45,
        "Generating models...",
        Some("app/models/user.py"),
    ),
    step(
        7,
        "code_generation",
        0.53,
        "Generating API routes...",
        Some("app/api/routes/users.py"),
    ),
    step(
        7,
        "code_generation",
        0.61,
        "Generating services...",
        Some("app/services/auth.py"),
    ),
    step(
        5,
        "code_generation",
        0.68,
        "Generating database migrations...",
        Some("migrations/0001_initial.py"),
    ),
    step(
        6,
        "testing",
        0.75,
        "Writing tests...",
        Some("tests/test_users.py"),
    ),
    step(
        8,
        "testing",
        0.82,
        "Running the generated tests: 48 passed",
        None,
    ),
    step(
        5,
        "documentation",
        0.88,
        "Writing the README and API docs...",
        Some("README.md"),
    ),
    step(
        5,
        "packaging",
        0.94,
        "Packaging the project archive...",
        None,
    ),
    step(4, "finalizing", 0.98, "Running final checks...", None),
    Step {
        weight: 3,
        status: GenerationStatus::Completed,
        stage: "completed",
        progress: 1.0,
        message: "Generation completed: 37 files",
        current_file: None,
    },
];

/// Where a failing run stops: the generated tests fail.
const FAILS_AT: usize = 11;
const FAILURE: Step = Step {
    weight: 8,
    status: GenerationStatus::Failed,
    stage: "testing",
    progress: 0.82,
    message: "Generation failed: 3 of 48 generated tests failed",
    current_file: None,
};

fn script(outcome: Outcome) -> Vec<&'static Step> {
    match outcome {
        Outcome::Completed => SCRIPT.iter().collect(),
        Outcome::Failed => SCRIPT
            .iter()
            .take(FAILS_AT)
            .chain(std::iter::once(&FAILURE))
            .collect(),
    }
}

/// When each step is due, from the start, so that the whole run takes `total`.
fn schedule(steps: &[&Step], total: Duration) -> Vec<Duration> {
    let sum: u32 = steps.iter().map(|s| s.weight).sum::<u32>().max(1);
    let mut elapsed = 0;
    steps
        .iter()
        .map(|s| {
            elapsed += s.weight;
            total.mul_f64(f64::from(elapsed) / f64::from(sum))
        })
        .collect()
}

/// Everything the background task needs.
struct Simulation {
    store: Store,
    generation_id: String,
    steps: Vec<&'static Step>,
    due: Vec<Duration>,
    history: HistoryLimits,
    lock: String,
}

impl Simulation {
    /// Appends `step`, due at `due` from the start, now.
    async fn publish(&self, step: &Step, due: Duration) -> Result<AppendOutcome, ApiError> {
        let end = self.due.last().copied().unwrap_or_default();
        let now = UnixTime::now();
        let mut event = ProgressEvent::new(&self.generation_id, step.status, now.millis());
        event.stage = Some(step.stage.to_owned());
        event.progress = Some(step.progress);
        event.message = Some(step.message.to_owned());
        if !step.status.is_terminal() {
            let remaining = end.saturating_sub(due).as_secs_f64().ceil() as u64;
            event
                .extra
                .insert("estimated_time_remaining".to_owned(), remaining.into());
        }
        if let Some(file) = step.current_file {
            event.extra.insert("current_file".to_owned(), file.into());
        }
        let mut attempt = 1;
        loop {
            match events::publish(&self.store, &event, self.history, now).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) if attempt >= PUBLISH_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    /// Publishes steps 1.. on schedule (step 0 went out with the request), then lets
    /// the generation be simulated by nobody else. When the store fails mid-way, the
    /// generation is ended with a `failed` event if the store takes it, so that no
    /// client waits for a `processing` generation that nothing feeds any more.
    async fn run(self, started: Instant) {
        let mut last = self.steps.first().copied();
        for (step, due) in self.steps.iter().zip(&self.due).skip(1) {
            tokio::time::sleep_until(started + *due).await;
            match self.publish(step, *due).await {
                Ok(AppendOutcome::Appended { .. }) => last = Some(step),
                Ok(other) => {
                    tracing::info!(generation_id = %self.generation_id, outcome = ?other, "demo: simulation stopped early");
                    break;
                }
                Err(e) => {
                    tracing::warn!(generation_id = %self.generation_id, error = %e, "demo: simulation abandoned");
                    self.fail_after(last, *due).await;
                    break;
                }
            }
        }
        if let Err(e) = self.store.del(&self.lock).await {
            tracing::debug!(error = %e, "demo: cannot release the simulation lock");
        }
        tracing::info!(generation_id = %self.generation_id, "demo: simulation finished");
    }

    /// Best effort: a final `failed` event where the run stopped. If the store does not
    /// take it either, the generation stays `processing` (a new one can be simulated).
    async fn fail_after(&self, last: Option<&Step>, due: Duration) {
        let failed = Step {
            weight: 0,
            status: GenerationStatus::Failed,
            stage: last.map_or("initializing", |s| s.stage),
            progress: last.map_or(0.0, |s| s.progress),
            message: "Generation failed: the simulation could not publish its progress",
            current_file: None,
        };
        if let Err(e) = self.publish(&failed, due).await {
            tracing::warn!(generation_id = %self.generation_id, error = %e, "demo: cannot mark the abandoned simulation failed");
        }
    }
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
        shared::http::from_json_object(raw)
            .map_err(|e| ApiError::field("body", shared::http::json_problem(&e)))?
    };
    let mut errors = shared::error::FieldErrors::default();
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
    crate::routes::visible(state, &Caller::User(claims.clone()), raw_id).await
}

/// `POST /demo/generations/{generation_id}/simulate`: starts publishing a scripted
/// generation's events. Only a `pending` generation can be simulated, once.
#[utoipa::path(post, path = "/demo/generations/{generation_id}/simulate", tag = "demo", summary = "Simulate a generation (demo)",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "One of the caller's generations")),
    request_body(content = Option<SimulateBody>, description = "Optional: how long (500-60000 ms, default 8000) and how it ends (`completed` or `failed`)"),
    responses(
        (status = 202, description = "The simulation started", body = authstream_proto::auth::SimulationStarted),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 404, response = shared::openapi::NotFound),
        (status = 409, response = shared::openapi::Conflict),
        (status = 413, response = shared::openapi::PayloadTooLarge),
        (status = 422, response = shared::openapi::Unprocessable),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
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
#[utoipa::path(post, path = "/demo/generations/{generation_id}/disconnect", tag = "demo", summary = "Drop this session's streams of a generation (demo)",
    security(("bearer" = [])),
    params(("generation_id" = String, Path, description = "One of the caller's generations")),
    responses(
        (status = 202, description = "This session's streams of the generation are told to drop (nothing is revoked)", body = authstream_proto::auth::DisconnectAnnounced),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 403, response = shared::openapi::Forbidden),
        (status = 404, response = shared::openapi::NotFound),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
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
    revocation::announce(&state.store, &notice).await?;
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
    use shared::http::origin_of;

    #[test]
    fn the_script_climbs_to_its_end() {
        for outcome in [Outcome::Completed, Outcome::Failed] {
            let steps = script(outcome);
            assert!((12..=20).contains(&steps.len()));
            assert!(steps.windows(2).all(|w| w[0].progress <= w[1].progress));
            let last = steps.last().map(|s| s.status);
            assert_eq!(last, Some(outcome.status()));
            assert!(
                steps
                    .iter()
                    .rev()
                    .skip(1)
                    .all(|s| s.status == GenerationStatus::Processing)
            );
        }
        assert_eq!(SCRIPT[SCRIPT.len() - 1].progress, 1.0);
    }

    #[test]
    fn the_schedule_spans_the_duration() {
        let steps = script(Outcome::Completed);
        let due = schedule(&steps, Duration::from_millis(8_000));
        assert_eq!(due.len(), steps.len());
        assert!(due.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(due.last().copied(), Some(Duration::from_millis(8_000)));
    }

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

    #[test]
    fn the_policy_allows_only_this_origin_and_the_stream_service() {
        let own = content_security_policy("");
        assert!(own.contains("connect-src 'self';"));
        assert!(own.contains("script-src 'self';"));
        assert!(!own.contains("unsafe"));
        let split = content_security_policy("https://stream.example.com:8443/base");
        assert!(split.contains("connect-src 'self' https://stream.example.com:8443;"));
        assert_eq!(
            origin_of("http://localhost:8082"),
            Some("http://localhost:8082")
        );
        assert_eq!(origin_of("/relative"), None);
        assert_eq!(origin_of("http://evil; script-src *"), None);
        assert_eq!(origin_of("ftp://x"), None);
    }
}
