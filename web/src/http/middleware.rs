//! The request middleware (`observe`: request id, one access log line, request
//! metrics, framework errors as problem+json, the rate-limit headers) and CORS.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _};
use tracing::Instrument as _;

use super::limits::AppliedLimits;
use super::problem::{code_for_status, is_problem};
use crate::error::{ApiError, ErrorCode};
use crate::rate_limit::Limit;
use authstream_runtime::telemetry;

/// Request middleware: a request id (kept from `X-Request-Id` when sane), one log
/// line per request with secrets redacted from the query, request metrics by route
/// and status, and framework errors rewritten as problem+json.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let query = telemetry::redact_query(req.query_string());
    let span = tracing::info_span!("request", request_id = %request_id);

    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status();
    let mut res = if status.as_u16() >= 400 && !is_problem(&res) {
        let error = res
            .response()
            .error()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let code = code_for_status(status);
        let detail = match code {
            ErrorCode::NotFound => "no such route".to_owned(),
            ErrorCode::MethodNotAllowed => "this route does not take that method".to_owned(),
            _ if error.is_empty() => code.title().to_owned(),
            _ => error,
        };
        let mut api = ApiError::new(code, detail);
        if code == ErrorCode::ValidationFailed {
            api = api.with_field("body", "could not be read");
        }
        res.into_response(api.error_response())
    } else {
        res.map_into_boxed_body()
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    let limits = res.request().extensions().get::<AppliedLimits>().cloned();
    if let Some(AppliedLimits(limits)) = limits.filter(|l| !l.0.is_empty()) {
        let list = |item: fn(&Limit) -> String| {
            HeaderValue::from_str(&limits.iter().map(item).collect::<Vec<_>>().join(", ")).ok()
        };
        let headers = res.headers_mut();
        if let Some(v) = list(Limit::policy_item) {
            headers.insert(header::HeaderName::from_static("ratelimit-policy"), v);
        }
        if let Some(v) = list(Limit::state_item) {
            headers.insert(header::HeaderName::from_static("ratelimit"), v);
        }
    }

    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let labels = [
        ("method", method_label(&method).to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("authstream_http_requests_total", &labels).increment(1);
    metrics::histogram!("authstream_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    let _entered = span.enter();
    tracing::info!(
        target: "authstream::access",
        %method, %path, query = %query, %route, status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// The `method` label: the methods the routes take, and `other` for any token a
/// client makes up (actix accepts any), so no request can add a series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL whose origin is safe to put in a
/// header; `None` for a path (the default: the stream routes are on this origin).
pub fn origin_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let origin = url.get(..url.len() - rest.len() + authority.len())?;
    let clean = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    clean.then_some(origin)
}

/// CORS for browsers on the configured origins; none configured allows none.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("last-event-id"),
            header::HeaderName::from_static("x-device-token"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::HeaderName::from_static("ratelimit"),
        ])
        .supports_credentials()
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
