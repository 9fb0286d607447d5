//! Problem responses: the ONE mapping of `ApiError` to `application/problem+json`
//! (status, `WWW-Authenticate`, `Retry-After`), the code for an error the framework
//! made itself, and the default service for a request no route matched.

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::{ApiError, Challenge, ErrorCode};

pub use crate::error::PROBLEM_JSON;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = authstream_proto::Problem {
            fields: self.fields.clone(),
            ..authstream_proto::Problem::new(self.code, self.detail.clone())
        };
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON)
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status() == 401 && self.code != ErrorCode::InvalidStreamToken {
            // RFC 6750: `error="invalid_token"` only for a token that was presented and refused.
            let error = match self.code {
                ErrorCode::MissingToken | ErrorCode::InvalidCredentials => "",
                _ => ", error=\"invalid_token\"",
            };
            let scheme = match self.challenge {
                Challenge::Bearer => "Bearer",
                Challenge::Basic => "Basic",
            };
            res.insert_header((
                header::WWW_AUTHENTICATE,
                format!("{scheme} realm=\"authstream\"{error}"),
            ));
        }
        res.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// The code for an error response the framework produced itself (no route, wrong
/// method, unreadable body), so that every error is problem+json.
pub(super) fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::MissingToken,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        400..=499 => ErrorCode::ValidationFailed,
        503 => ErrorCode::StoreUnavailable,
        _ => ErrorCode::Internal,
    }
}

pub(super) fn is_problem<B>(res: &ServiceResponse<B>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// The default service: no route matched. When the path matched but the method did
/// not, that is a 405.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    match req.match_pattern() {
        Some(_) => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        ),
        None => ApiError::new(ErrorCode::NotFound, "no such route"),
    }
    .error_response()
}
