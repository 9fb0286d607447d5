//! Discovery: the authorization server metadata (RFC 8414), so that off-the-shelf JWT
//! and OAuth 2.0 libraries configure themselves from the issuer URL.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use authstream_proto::Scope;
use authstream_proto::auth::ServerMetadata;
use authstream_proto::paths;

use crate::state::AuthState;

/// How long clients and caches may keep the document.
const MAX_AGE_SECS: u32 = 300;

/// The metadata document: absolute URLs built from `AUTH_PUBLIC_URL`, never from the
/// request, so that every answer is the same and may be cached.
pub fn metadata(state: &AuthState) -> ServerMetadata {
    let base = &state.settings.public_url;
    let url = |path: &str| format!("{base}{path}");
    let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    ServerMetadata {
        issuer: state.settings.common.jwt.issuer.clone(),
        jwks_uri: url(paths::JWKS),
        token_endpoint: url(paths::SERVICE_TOKEN),
        revocation_endpoint: url(paths::REVOKE),
        introspection_endpoint: url(paths::INTROSPECT),
        grant_types_supported: names(&["client_credentials"]),
        // REQUIRED by RFC 8414; there is no authorization endpoint, so none.
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: names(&[
            "client_secret_basic",
            "client_secret_post",
        ]),
        // Anyone holding a token may revoke it (RFC 7009 §2.1 lets a server accept that).
        revocation_endpoint_auth_methods_supported: names(&["none"]),
        introspection_endpoint_auth_methods_supported: names(&["client_secret_basic"]),
        scopes_supported: Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
        // An authstream extension (RFC 8414 §2 allows more members): the algorithm of
        // every JWT this server signs. RFC 8414 names signing algorithms only for
        // client authentication by JWT, which is not offered.
        token_signing_alg_values_supported: vec![format!("{:?}", state.keys.algorithm())],
    }
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
        (status = 200, description = "The metadata (`Cache-Control: public, max-age=300`)", body = authstream_proto::auth::ServerMetadata),
    )
)]
#[get("/.well-known/oauth-authorization-server")]
pub async fn oauth_metadata(state: web::Data<AuthState>) -> HttpResponse {
    answer(&state)
}

#[utoipa::path(
    tag = "tokens", summary = "The same metadata, where OpenID Connect clients look",
    responses(
        (status = 200, description = "The metadata (`Cache-Control: public, max-age=300`)", body = authstream_proto::auth::ServerMetadata),
    )
)]
#[get("/.well-known/openid-configuration")]
pub async fn openid_configuration(state: web::Data<AuthState>) -> HttpResponse {
    answer(&state)
}
