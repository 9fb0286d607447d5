use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

use crate::state::AuthState;

/// The public verification keys; cacheable, since new keys are added before they sign.
#[utoipa::path(
    tag = "tokens", summary = "The public verification keys (JWKS)",
    responses(
        (status = 200, description = "The public keys (`Cache-Control: public, max-age=300`)", body = authstream_proto::auth::Jwks),

    )
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AuthState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.jwks())
}
