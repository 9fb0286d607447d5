//! Refresh with rotation, validation (introspection) and revocation of tokens.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use authstream_proto::auth::{Introspection, RefreshBody, Revoked, TokenBody, TokenForm};
use authstream_proto::claims::{AccessClaims, Claims, RefreshClaims, ServiceClaims, TokenType};
use authstream_runtime::UnixTime;
use authstream_security::jwt::TokenError;
use authstream_store::revocations;
use authstream_web::ApiError;
use authstream_web::http;
use authstream_web::http::Anonymous;
use serde::Deserialize;

use super::service_tokens::{authenticate, basic, from_form, invalid_client, is_form};
use crate::sessions::end_session;
use crate::state::AuthState;
use crate::tokens;

#[utoipa::path(
    tag = "accounts", summary = "Rotate the token pair with the refresh token",
    description = "Limited per session (`RATE_LIMIT_REFRESH`, the `refresh` policy), decided by the rotation itself in the same store round trip. A refused refresh (an invalid, unknown, reused or expired refresh token: 401) is charged to the client address's `anon` budget afterwards, and answers 429 once that is spent.",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is retired", body = authstream_proto::auth::TokenPair),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AuthState>,
    req: HttpRequest,
    body: authstream_web::http::JsonObject<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let request = tokens::refresh::Refresh {
        token: &body.refresh_token,
        client_ip: state.limiter.trusted_proxies().client_ip(&req),
        now: UnixTime::now(),
    };
    let mut decisions = Vec::new();
    let pair = tokens::refresh::refresh(&state, &request, &mut decisions).await;
    for limit in decisions {
        http::record_limit(&req, limit);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pair?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// `access` (the default) or `service`
    token_type: Option<String>,
}

/// The claims of a valid token, with `active: true`.
async fn introspect(
    state: &AuthState,
    token: &str,
    token_type: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let now = UnixTime::now();
    let body = match token_type {
        None | Some("access") => {
            Introspection::access(state.validator.validate::<AccessClaims>(token, now).await?)
        }
        Some("service") => Introspection::service(
            state
                .validator
                .validate::<ServiceClaims>(token, now)
                .await?,
        ),
        Some(_) => return Err(ApiError::field("token_type", "must be access or service")),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[utoipa::path(
    tag = "tokens", summary = "Validate a token (introspection)",
    security((), ("bearer" = [])),
    params(ValidateQuery),
    request_body(content = Option<TokenBody>, description = "The token to check; without a body, the Bearer token is checked"),
    responses(
        (status = 200, description = "The token is valid: its claims", body = authstream_proto::auth::Introspection),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/validate")]
pub async fn validate_post(
    state: web::Data<AuthState>,
    req: HttpRequest,
    query: web::Query<ValidateQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let from_body = if body.is_empty() {
        None
    } else {
        authstream_web::http::from_json_object::<TokenBody>(&body)
            .map_err(|_| ApiError::field("body", "expected {\"token\": \"...\"}"))?
            .token
    };
    let token = match from_body {
        Some(token) => token,
        None => http::bearer_token(&req)?.to_owned(),
    };
    introspect(&state, &token, query.token_type.as_deref()).await
}

#[utoipa::path(
    tag = "tokens", summary = "Validate the Bearer token",
    security(("bearer" = [])),
    params(ValidateQuery),
    responses(
        (status = 200, description = "The Bearer token is valid: its claims", body = authstream_proto::auth::Introspection),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/auth/validate")]
pub async fn validate_get(
    state: web::Data<AuthState>,
    req: HttpRequest,
    query: web::Query<ValidateQuery>,
) -> Result<HttpResponse, ApiError> {
    introspect(
        &state,
        http::bearer_token(&req)?,
        query.token_type.as_deref(),
    )
    .await
}

/// RFC 7009: 200 whether or not the token was valid, so it reveals nothing.
#[utoipa::path(
    tag = "tokens", summary = "Revoke a token (RFC 7009)",
    request_body(content(
        (TokenBody = "application/json"),
        (TokenForm = "application/x-www-form-urlencoded"),
    ), description = "The token, as JSON or as the RFC 7009 form"),
    responses(
        (status = 200, description = "Revoked if it was a valid token (RFC 7009: the same answer otherwise)", body = authstream_proto::auth::Revoked, example = json!({})),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/revoke")]
pub async fn revoke(
    state: web::Data<AuthState>,
    req: HttpRequest,
    _: Anonymous,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = if is_form(&req) {
        from_form::<TokenForm>(&body)?.token
    } else {
        authstream_web::http::from_json_object::<TokenBody>(&body)
            .map_err(|e| ApiError::field("body", http::json_problem(&e)))?
            .token
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::field("token", "is required"));
    };
    let now = UnixTime::now();
    let leeway = state.settings.common.jwt.leeway;
    let v = &state.validator;
    match v.decode::<AccessClaims>(&token, now).await {
        Ok(c) => revoke_one(&state, &c, now, leeway).await?,
        Err(TokenError::WrongType(TokenType::Refresh)) => {
            if let Ok(c) = v.decode::<RefreshClaims>(&token, now).await {
                end_session(&state, &c.reg.sub, &c.sid).await?;
            }
        }
        Err(TokenError::WrongType(TokenType::Service)) => {
            if let Ok(c) = v.decode::<ServiceClaims>(&token, now).await {
                revoke_one(&state, &c, now, leeway).await?;
            }
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(_) => {}
    }
    Ok(HttpResponse::Ok().json(Revoked {}))
}

/// RFC 7662: the claims of a valid access or service token with `active: true`
/// (plus `scope` and `client_id` for a service token), `{"active": false}` for
/// anything else. Only a configured service client may ask.
#[utoipa::path(
    tag = "tokens", summary = "Introspect a token (RFC 7662)",
    description = "For configured service clients (HTTP Basic). The same checks as `/auth/validate`, revocation included; any token that is not a valid access or service token (invalid, expired, revoked, a refresh token) is `{\"active\": false}`.",
    security(("basic" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "`token`, and an optional `token_type_hint`"),
    responses(
        (status = 200, description = "`{\"active\": true, ...the claims}` or `{\"active\": false}` (`Cache-Control: no-store`)", body = authstream_proto::auth::Introspection),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/introspect")]
pub async fn introspect_form(
    state: web::Data<AuthState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some((id, secret)) = basic(&req) else {
        return Err(invalid_client());
    };
    authenticate(&state, &req, &id, &secret).await?;
    let form: TokenForm = from_form(&body)?;
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::field("token", "is required"));
    };
    let now = UnixTime::now();
    let v = &state.validator;
    let answer = match v.validate::<AccessClaims>(&token, now).await {
        Ok(claims) => Introspection::access(claims),
        Err(TokenError::WrongType(TokenType::Service)) => {
            match v.validate::<ServiceClaims>(&token, now).await {
                Ok(claims) => Introspection::service_with_client(claims),
                Err(TokenError::Store(e)) => return Err(e.into()),
                Err(_) => Introspection::inactive(),
            }
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(_) => Introspection::inactive(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

async fn revoke_one<C: Claims>(
    state: &AuthState,
    claims: &C,
    now: UnixTime,
    leeway: std::time::Duration,
) -> Result<(), ApiError> {
    let reg = claims.registered();
    revocations::revoke_token(&state.store, &reg.sub, &reg.jti, reg.exp, now, leeway).await?;
    tracing::info!(sub = %reg.sub, jti = %reg.jti, token_type = reg.token_type.as_str(), "token revoked");
    Ok(())
}
