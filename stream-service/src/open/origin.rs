//! The `Origin` check of a WebSocket open, made before any token is looked at.

use authstream_web::ApiError;

use super::Transport;
use crate::meters;
use crate::state::StreamState;

/// A WebSocket upgrade is a cross-site request no CORS preflight guards, so a
/// browser's `Origin` must be one of `CORS_ALLOWED_ORIGINS` or the service's own
/// (`STREAM_PUBLIC_URL`; when that is a path, the origin whose host is the request's
/// `Host`). Checked before any token or cookie is looked at. A request without
/// `Origin` is not from a browser page (browsers always send it): allowed.
pub(super) fn check_origin(
    state: &StreamState,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<(), ApiError> {
    let Some(origin) = origin else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let settings = state.settings();
    let listed = settings
        .common
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    let own = match &settings.public_origin {
        Some(own) => own.eq_ignore_ascii_case(origin),
        None => {
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
