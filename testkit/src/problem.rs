//! The one check of an error answer: its status, the exact problem+json media type,
//! and its code, read into the wire type so that a renamed field breaks the build.

use authstream_proto::Problem;

/// The media type every error answer carries (RFC 9457), exactly.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Asserts an error answer with this status and `code`, and returns its problem.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Problem {
    assert_eq!(
        res.status().as_u16(),
        status,
        "status of {}",
        res.url().path()
    );
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, PROBLEM_JSON, "content type");
    let text = res.text().await.unwrap();
    let problem: Problem = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a problem document ({e}): {text}"));
    assert_eq!(problem.code.as_str(), code, "{text}");
    assert_eq!(problem.status, status, "{text}");
    problem
}
