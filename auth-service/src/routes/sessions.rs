//! The caller's sessions: list and revoke.

use actix_web::{HttpResponse, delete, get, web};
use authstream_proto::auth::SessionView;
use authstream_proto::claims::AccessClaims;
use authstream_store::Read;
use authstream_web::ApiError;
use authstream_web::http::Pending;

use crate::sessions;
use crate::sessions::end_session;
use crate::state::AuthState;

#[utoipa::path(
    tag = "sessions", summary = "List the caller's sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's sessions", body = Vec<authstream_proto::auth::SessionView>),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/auth/sessions")]
pub async fn list(
    state: web::Data<AuthState>,
    caller: Pending<AccessClaims>,
) -> Result<HttpResponse, ApiError> {
    // Admitted together with the read of the session index: one round trip.
    let index = state.store.keys().sessions(caller.presented().user_id());
    let (claims, ids) = caller.admit_reading(Read::SetMembers(&index)).await?;
    let sessions = sessions::records(&state.store, claims.user_id(), ids.into_members()).await?;
    let body: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.session_id == claims.sid,
            session_id: s.session_id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            user_agent: s.user_agent,
            ip: s.ip,
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
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 404, response = authstream_web::openapi::NotFound),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[delete("/auth/sessions/{session_id}")]
pub async fn revoke(
    state: web::Data<AuthState>,
    caller: Pending<AccessClaims>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Looked up under the caller's own key: another user's session is simply not
    // found. Admitted together with that read: one round trip, then the revocation.
    let key = state
        .store
        .keys()
        .session(caller.presented().user_id(), &path);
    let (claims, found) = caller.admit_reading(Read::Get(&key)).await?;
    if found.into_value().is_none() {
        return Err(ApiError::not_found("session"));
    }
    end_session(&state, claims.user_id(), &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
