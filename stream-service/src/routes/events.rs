//! `POST /generations/{generation_id}/events`: a service with scope `events:publish`
//! appends one progress event; every stream of the generation, on any replica, gets it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use authstream_proto::Scope;
use authstream_proto::claims::ServiceClaims;
use authstream_proto::stream::Published;
use authstream_runtime::UnixTime;
use authstream_store::AppendOutcome;
use authstream_store::events::{self, GenerationStatus, HistoryLimits, ProgressEvent};
use authstream_store::generations::GenerationId;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::error::FieldErrors;
use authstream_web::http::Authenticated;
use futures_util::StreamExt as _;
use serde_json::{Map, Value};

use crate::meters;
use crate::state::StreamState;

/// Event bodies larger than this are refused with 413.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

pub const PUBLISH_SCOPE: Scope = Scope::EventsPublish;
const MAX_STAGE_CHARS: usize = 128;
const MAX_MESSAGE_CHARS: usize = 1024;

/// The caller is authenticated (the extractor runs first) before the body is read.
#[utoipa::path(
    tag = "events", summary = "Publish a progress event",
    params(("generation_id" = String, Path, description = "The generation")),
    security(("bearer" = [])),
    request_body(content = authstream_proto::stream::NewEventBody, description = "At most 16 KiB"),
    responses(
        (status = 202, description = "Stored and sent to every open stream", body = authstream_proto::stream::Published),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 409, response = authstream_web::openapi::Conflict),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 503, response = authstream_web::openapi::Unavailable),
    )
)]
#[post("/generations/{generation_id}/events")]
pub async fn publish(
    state: web::Data<StreamState>,
    caller: Authenticated<ServiceClaims>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let now = UnixTime::now();
    let claims = caller.0;
    if !claims.has_scope(PUBLISH_SCOPE) {
        return Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!("publishing events needs the scope {PUBLISH_SCOPE}"),
        ));
    }
    let generation_id =
        GenerationId::parse(&path).map_err(|_| ApiError::not_found("generation"))?;
    let raw = read_body(&req, body).await?;
    let event = parse_event(&raw, generation_id.as_str(), now)?;
    let common = &state.settings().common;
    let limits = HistoryLimits {
        max_len: common.event_history_max,
        ttl: common.generation_ttl,
    };
    match events::publish(&state.store, &event, limits, now).await? {
        AppendOutcome::Appended { id } => {
            meters::event_published(event.status);
            tracing::info!(
                generation_id = %generation_id,
                event_id = %id,
                status = %event.status,
                client = claims.client_id(),
                "event published"
            );
            Ok(HttpResponse::Accepted()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(Published { id }))
        }
        AppendOutcome::NoGeneration => Err(ApiError::not_found("generation")),
        AppendOutcome::Finished => Err(ApiError::new(
            ErrorCode::GenerationFinished,
            "the generation has already completed or failed",
        )),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("an event body may hold at most {MAX_EVENT_BYTES} bytes"),
    )
}

/// The body, refused as soon as it is known to be larger than the limit.
async fn read_body(req: &HttpRequest, mut body: web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_EVENT_BYTES as u64) {
        return Err(too_large());
    }
    let mut raw = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::field("body", "could not be read"))?;
        if raw.len() + chunk.len() > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw)
}

/// Checks every field and reports all problems at once.
fn parse_event<'a>(
    raw: &[u8],
    generation_id: &'a str,
    now: UnixTime,
) -> Result<ProgressEvent<'a>, ApiError> {
    let Ok(value) = serde_json::from_slice::<Value>(raw) else {
        return Err(ApiError::field("body", "is not valid JSON"));
    };
    let Value::Object(mut fields) = value else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    // Set by the server: a publisher cannot forge them.
    for reserved in ["event", "generation_id", "id"] {
        fields.remove(reserved);
    }
    let mut errors = FieldErrors::default();
    let status = match fields.remove("status") {
        None | Some(Value::Null) => {
            errors.add("status", "is required");
            None
        }
        Some(given) => {
            let status = given.as_str().and_then(GenerationStatus::parse);
            if status.is_none() {
                errors.add(
                    "status",
                    "must be one of pending, processing, completed, failed",
                );
            }
            status
        }
    };
    let stage = optional_text(&mut fields, &mut errors, "stage", MAX_STAGE_CHARS);
    let message = optional_text(&mut fields, &mut errors, "message", MAX_MESSAGE_CHARS);
    let progress = match fields.remove("progress") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)) => {
            n.as_f64()
        }
        Some(_) => {
            errors.add("progress", "must be a number from 0.0 to 1.0");
            None
        }
    };
    let timestamp = match fields.remove("timestamp") {
        None | Some(Value::Null) => Some(now.millis()),
        Some(Value::Number(n)) if n.as_i64().is_some_and(|t| t >= 0) => n.as_i64(),
        Some(_) => {
            errors.add("timestamp", "must be a whole number of Unix milliseconds");
            None
        }
    };
    errors.into_result()?;
    match (status, timestamp) {
        (Some(status), Some(timestamp)) => {
            let mut event = ProgressEvent::new(generation_id, status, timestamp);
            event.stage = stage;
            event.progress = progress;
            event.message = message;
            event.extra = fields;
            Ok(event)
        }
        // Unreachable: a missing value was recorded as a field error above.
        _ => Err(ApiError::field("body", "is incomplete")),
    }
}

fn optional_text(
    fields: &mut Map<String, Value>,
    errors: &mut FieldErrors,
    name: &str,
    max_chars: usize,
) -> Option<String> {
    match fields.remove(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= max_chars => Some(s),
        Some(_) => {
            errors.add(
                name,
                format!("must be a string of at most {max_chars} characters"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<String, ApiError> {
        parse_event(body.as_bytes(), "g-1", UnixTime(1_700_000_000_000))
            .map(|e| serde_json::to_string(&e).unwrap())
    }

    #[test]
    fn known_fields_come_first_extra_fields_pass_and_reserved_ones_are_ours() {
        let data = parse(
            r#"{"status":"processing","stage":"s","progress":0.5,"message":"m","timestamp":5,
                "current_file":"a.rs","event":"connected","generation_id":"other","id":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            data,
            r#"{"event":"progress","generation_id":"g-1","status":"processing","stage":"s","progress":0.5,"message":"m","timestamp":5,"current_file":"a.rs"}"#
        );
        let data = parse(r#"{"status":"pending"}"#).unwrap();
        assert_eq!(
            data,
            r#"{"event":"progress","generation_id":"g-1","status":"pending","timestamp":1700000000000}"#
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let err =
            parse(r#"{"status":"done","stage":7,"progress":1.5,"message":true,"timestamp":1.5}"#)
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        let named: Vec<_> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(
            named,
            ["message", "progress", "stage", "status", "timestamp"]
        );
        assert!(parse("{}").unwrap_err().fields.contains_key("status"));
        assert!(parse("[1]").unwrap_err().fields.contains_key("body"));
        assert!(parse("nope").unwrap_err().fields.contains_key("body"));
        let long = format!(r#"{{"status":"pending","stage":"{}"}}"#, "x".repeat(129));
        assert!(parse(&long).unwrap_err().fields.contains_key("stage"));
    }
}
