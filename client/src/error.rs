//! [`ClientError`]: what went wrong with a call, safe to print and to log.

use std::fmt;
use std::time::Duration;

use authstream_proto::{ErrorCode, Problem};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

/// The media type of every error answer of both services (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What kind of failure a [`ClientError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No answer in time (the client's or the request's timeout).
    Timeout,
    /// The server could not be reached.
    Connect,
    /// Another failure to send the request or to read the answer.
    Transport,
    /// An answer with another status than the route's success.
    Status,
    /// The expected status, with a body that is not the route's answer (or an event
    /// whose data is not what the stream sends).
    Body,
}

/// A failed call: the route, and what the server answered if it did (status,
/// problem document, `Retry-After`).
///
/// Neither `Display` nor `Debug` ever prints a token: the route is a template
/// (`POST /generations/generate/{generation_id}/stream-token`), transport errors lose
/// their URL (a stream's URL carries its token), a body that does not parse is
/// described by position only, and problem documents never hold secrets.
#[derive(Debug)]
pub struct ClientError {
    route: &'static str,
    kind: ErrorKind,
    status: Option<StatusCode>,
    problem: Option<Problem>,
    retry_after: Option<Duration>,
    /// Transport errors (without their URL), or where a body failed to parse.
    cause: Option<Cause>,
}

#[derive(Debug)]
enum Cause {
    Http(reqwest::Error),
    Parse(String),
}

impl ClientError {
    /// The route as a template, e.g. `POST /auth/login`.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status of the answer, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The problem document, when the answer was `application/problem+json`.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The problem's code, when there is a problem document.
    pub fn code(&self) -> Option<ErrorCode> {
        self.problem.as_ref().map(|p| p.code)
    }

    /// The answer's `Retry-After` (seconds), e.g. of a `429`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the call failed before any answer (timeout, connection, transport).
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Transport
        )
    }

    /// The error of an answer that is not the route's success: its status, its problem
    /// document (when the body is `application/problem+json`) and `Retry-After`.
    /// Reads the body.
    pub async fn from_response(route: &'static str, res: Response) -> Self {
        let status = res.status();
        let retry_after = retry_after(res.headers());
        let problem = match is_problem(res.headers()) {
            true => res
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Problem>(&b).ok()),
            false => None,
        };
        Self {
            route,
            kind: ErrorKind::Status,
            status: Some(status),
            problem,
            retry_after,
            cause: None,
        }
    }

    /// The same error, of another kind.
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// A failure to send or to read, with the URL taken out of it.
    pub(crate) fn transport(route: &'static str, error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if error.is_connect() {
            ErrorKind::Connect
        } else {
            ErrorKind::Transport
        };
        Self {
            route,
            kind,
            status: error.status(),
            problem: None,
            retry_after: None,
            cause: Some(Cause::Http(error.without_url())),
        }
    }

    /// A body (or an event's data) that is not what the route answers; only where
    /// the parse failed is kept, never the text (it could hold a token).
    pub(crate) fn body(
        route: &'static str,
        status: Option<StatusCode>,
        error: &serde_json::Error,
    ) -> Self {
        let cause = format!(
            "{:?} error at line {} column {}",
            error.classify(),
            error.line(),
            error.column()
        );
        Self {
            route,
            kind: ErrorKind::Body,
            status,
            problem: None,
            retry_after: None,
            cause: Some(Cause::Parse(cause)),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.route)?;
        match self.kind {
            ErrorKind::Timeout => f.write_str("timed out"),
            ErrorKind::Connect => f.write_str("cannot connect"),
            ErrorKind::Transport => f.write_str("transport error"),
            ErrorKind::Status => {
                match self.status {
                    Some(status) => write!(f, "{status}")?,
                    None => f.write_str("unexpected status")?,
                }
                if let Some(problem) = &self.problem {
                    write!(f, " {}: {}", problem.code, problem.detail)?;
                }
                Ok(())
            }
            ErrorKind::Body => {
                f.write_str("unexpected body")?;
                if let Some(Cause::Parse(at)) = &self.cause {
                    write!(f, " ({at})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Some(Cause::Http(e)) => Some(e),
            _ => None,
        }
    }
}

/// Whether these headers say `application/problem+json`.
pub(crate) fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(PROBLEM_JSON))
}

/// `Retry-After` in seconds (the only form the services send).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &'static str) -> Response {
        let mut builder = http::Response::builder().status(status);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        Response::from(builder.body(body).unwrap())
    }

    #[tokio::test]
    async fn an_error_answer_keeps_its_status_problem_and_retry_after() {
        let body = r#"{"type":"about:blank","title":"Too many requests","status":429,"detail":"try later","code":"rate_limited"}"#;
        let res = response(
            429,
            &[("content-type", PROBLEM_JSON), ("retry-after", "7")],
            body,
        );
        let err = ClientError::from_response("POST /auth/login", res).await;
        assert_eq!(err.kind(), ErrorKind::Status);
        assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(err.code(), Some(ErrorCode::RateLimited));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            err.to_string(),
            "POST /auth/login: 429 Too Many Requests rate_limited: try later"
        );
    }

    #[tokio::test]
    async fn a_body_of_another_type_is_no_problem() {
        let body = r#"{"code":"rate_limited"}"#;
        let res = response(502, &[("content-type", "application/json")], body);
        let err = ClientError::from_response("GET /healthz", res).await;
        assert!(err.problem().is_none());
        assert_eq!(err.to_string(), "GET /healthz: 502 Bad Gateway");
    }

    #[test]
    fn a_body_that_does_not_parse_is_described_by_position_alone() {
        let token = "eyJhbGciOiJFZERTQSJ9.secret.part";
        let error = serde_json::from_str::<u64>(&format!("\"{token}\"")).unwrap_err();
        let err = ClientError::body("POST /auth/login", Some(StatusCode::OK), &error);
        assert!(!err.to_string().contains(token), "{err}");
        assert!(!format!("{err:?}").contains(token), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Body);
    }

    #[test]
    fn problem_json_is_told_by_its_media_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/problem+json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_problem(&headers));
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_problem(&headers));
    }
}
