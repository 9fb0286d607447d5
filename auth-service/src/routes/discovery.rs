//! Discovery: the authorization server metadata (RFC 8414), so that off-the-shelf JWT
//! and OAuth 2.0 libraries configure themselves from the issuer URL.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde_json::{Value, json};

use crate::config::KNOWN_SCOPES;
use crate::startup::AuthState;

/// How long clients and caches may keep the document.
const MAX_AGE_SECS: u32 = 300;

/// The metadata document: absolute URLs built from `AUTH_PUBLIC_URL`, never from the
/// request, so that every answer is the same and may be cached.
pub fn metadata(state: &AuthState) -> Value {
    let base = &state.settings.public_url;
    let url = |path: &str| format!("{base}{path}");
    json!({
        "issuer": state.settings.common.jwt.issuer,
        "jwks_uri": url("/.well-known/jwks.json"),
        "token_endpoint": url("/auth/service-token"),
        "revocation_endpoint": url("/auth/revoke"),
        "introspection_endpoint": url("/auth/introspect"),
        "grant_types_supported": ["client_credentials"],
        // REQUIRED by RFC 8414; there is no authorization endpoint, so none.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        // Anyone holding a token may revoke it (RFC 7009 §2.1 lets a server accept that).
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "scopes_supported": KNOWN_SCOPES,
        // An authstream extension (RFC 8414 §2 allows more members): the algorithm of
        // every JWT this server signs. RFC 8414 names signing algorithms only for
        // client authentication by JWT, which is not offered.
        "token_signing_alg_values_supported": [format!("{:?}", state.keys.algorithm())],
    })
}

fn answer(state: &AuthState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={MAX_AGE_SECS}"),
        ))
        .json(metadata(state))
}

#[utoipa::path(
    tag = "tokens", summary = "Authorization server metadata (RFC 8414)",
    responses(
        (status = 200, description = "The metadata (`Cache-Control: public, max-age=300`)", body = crate::openapi::ServerMetadata),
    )
)]
#[get("/.well-known/oauth-authorization-server")]
pub async fn oauth_metadata(state: web::Data<AuthState>) -> HttpResponse {
    answer(&state)
}

#[utoipa::path(
    tag = "tokens", summary = "The same metadata, where OpenID Connect clients look",
    responses(
        (status = 200, description = "The metadata (`Cache-Control: public, max-age=300`)", body = crate::openapi::ServerMetadata),
    )
)]
#[get("/.well-known/openid-configuration")]
pub async fn openid_configuration(state: web::Data<AuthState>) -> HttpResponse {
    answer(&state)
}
