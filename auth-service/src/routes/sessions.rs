//! The caller's sessions: list and revoke.

use actix_web::{HttpResponse, delete, get, web};
use serde_json::json;
use shared::ApiError;
use shared::claims::AccessClaims;
use shared::http::Authenticated;

use super::account::end_session;
use crate::sessions;
use crate::startup::AuthState;

#[utoipa::path(
    tag = "sessions", summary = "List the caller's sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's sessions", body = Vec<crate::openapi::SessionView>),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[get("/auth/sessions")]
pub async fn list(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.0;
    let sessions = sessions::list(&state.store, claims.user_id()).await?;
    let body: Vec<_> = sessions
        .iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "created_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "user_agent": s.user_agent,
                "ip": s.ip,
                "current": s.session_id == claims.sid,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(
    tag = "sessions", summary = "Revoke one of your sessions",
    security(("bearer" = [])),
    params(("session_id" = String, Path, description = "One of the caller's sessions")),
    responses(
        (status = 204, description = "The session is revoked, its streams end"),
        (status = 401, response = shared::openapi::Unauthorized),
        (status = 404, response = shared::openapi::NotFound),
        (status = 429, response = shared::openapi::TooManyRequests),
        (status = 503, response = shared::openapi::Unavailable)
    )
)]
#[delete("/auth/sessions/{session_id}")]
pub async fn revoke(
    state: web::Data<AuthState>,
    caller: Authenticated<AccessClaims>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = caller.0.user_id().to_owned();
    // Looked up under the caller's own key: another user's session is simply not found.
    if sessions::load(&state.store, &user_id, &path)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("session"));
    }
    end_session(&state, &user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
