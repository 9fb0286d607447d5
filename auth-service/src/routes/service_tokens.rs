//! Service-to-service tokens for configured clients (client credentials).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use authstream_proto::auth::{ClientCredentials, ClientCredentialsForm, ServiceToken};
use authstream_proto::claims::{SERVICE_SUBJECT_PREFIX, ServiceClaims, TokenType};
use authstream_runtime::UnixTime;
use authstream_security::jwt::new_jti;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::error::Challenge;
use authstream_web::rate_limit::{Cost, Limit, Policy, Subject};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use crate::config::ServiceClient;
use crate::state::AuthState;

/// Each decision into the answer's headers; the first refusal as 429.
fn check_all(req: &HttpRequest, limits: &[Limit]) -> Result<(), ApiError> {
    for limit in limits {
        authstream_web::http::record_limit(req, *limit);
    }
    limits.iter().try_for_each(Limit::check)
}

fn digest(secret: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `client_id:client_secret` from HTTP Basic, as sent (see `authenticate` for the
/// form-urlencoding of RFC 6749 §2.3.1).
pub(crate) fn basic(req: &HttpRequest) -> Option<(String, SecretString)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), SecretString::from(secret.to_owned())))
}

/// `part` form-urlencoding decoded, when it holds any encoding (`%`, `+`).
fn form_decoded(part: &str) -> Option<String> {
    if !part.contains(['%', '+']) {
        return None;
    }
    // `a=` makes it a form of one field; the value is the part, decoded.
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("a={part}"))
        .ok()?
        .pop()
        .map(|(_, v)| v)
}

/// The invalid-credentials answer of a client authentication, with `WWW-Authenticate: Basic`.
pub(crate) fn invalid_client() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "unknown client or wrong secret",
    )
    .with_challenge(Challenge::Basic)
}

/// A configured service client, by its id and secret, under its failure budgets:
/// failed attempts are counted per client and address (every unknown id shares one
/// budget); an address that has spent it gets 429 before its secret is looked at,
/// right or wrong, so a guesser is stopped while the real client, from its own
/// address, is not. A success spends nothing.
pub(crate) async fn authenticate<'s>(
    state: &'s AuthState,
    req: &HttpRequest,
    id: &str,
    secret: &SecretString,
) -> Result<&'s ServiceClient, ApiError> {
    let client = state.settings.service_clients.iter().find(|c| c.id == id);
    let address = super::client_addr(state, req);
    let failures = state
        .limiter
        .client_failures(client.map_or("?", |c| c.id.as_str()), address);
    let (gate, _) = state
        .limiter
        .spend_failures(&failures, Cost::Peek, None)
        .await?;
    // Looked at, not spent: its headers only go on a refusal.
    if gate.iter().any(|l| !l.decision.allowed) {
        check_all(req, &gate)?;
    }
    // Compare digests in constant time; an unknown id is compared against a dummy so
    // both failures take the same time.
    let expected = digest(client.map_or("no such client: never matches", |c| {
        c.secret.expose_secret()
    }));
    // RFC 6749 §2.3.1 has clients form-urlencode the secret in HTTP Basic (standard
    // libraries do); others send it as it is: either matches.
    let decoded = form_decoded(secret.expose_secret()).unwrap_or_default();
    let matches: bool = (digest(secret.expose_secret()).ct_eq(&expected)
        | digest(&decoded).ct_eq(&expected))
    .into();
    if let Some(client) = client.filter(|_| matches) {
        return Ok(client);
    }
    // Only a configured id is named: what was sent may be a secret in the wrong field.
    match client {
        Some(known) => {
            tracing::info!(client_id = %known.id, "client authentication refused: wrong secret")
        }
        None => tracing::info!("client authentication refused: unknown client"),
    }
    // The failure spends the address's anonymous budget and the failure budget, in
    // one wave.
    let (anon, (spent, _)) = tokio::try_join!(
        state
            .limiter
            .decide(Policy::Anon, Subject::Address(address), Cost::Take),
        state.limiter.spend_failures(&failures, Cost::Take, None),
    )?;
    authstream_web::http::record_limit(req, anon);
    check_all(req, &spent)?;
    anon.check()?;
    Err(invalid_client())
}

/// True when the body is a form (`application/x-www-form-urlencoded`).
pub(crate) fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A form body; `validation_failed` naming `body` when it is not one (never echoed).
pub(crate) fn from_form<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|_| ApiError::field("body", "is not a form of the expected fields"))
}

#[utoipa::path(
    tag = "tokens", summary = "A service token for a configured client",
    description = "Client credentials as HTTP Basic, or in a JSON body, or the RFC 6749 §4.4 form (`grant_type=client_credentials`, with HTTP Basic or `client_id` and `client_secret` fields). A form with another `grant_type` is 422 `validation_failed` naming `grant_type`.",
    security(("basic" = []), ()),
    request_body(content(
        (Option<ClientCredentials> = "application/json"),
        (ClientCredentialsForm = "application/x-www-form-urlencoded"),
    ), description = "The credentials, when not sent as HTTP Basic; `scope` narrows the token"),
    responses(
        (status = 200, description = "A service token (`Cache-Control: no-store`)", body = authstream_proto::auth::ServiceToken),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 413, response = authstream_web::openapi::PayloadTooLarge),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[post("/auth/service-token")]
pub async fn issue(
    state: web::Data<AuthState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let json: ClientCredentials = if is_form(&req) {
        let form: ClientCredentialsForm = from_form(&body)?;
        match form.grant_type.as_deref() {
            Some("client_credentials") => {}
            Some(_) => {
                return Err(ApiError::field(
                    "grant_type",
                    "must be client_credentials, the only grant type of this endpoint",
                ));
            }
            None => return Err(ApiError::field("grant_type", "is required")),
        }
        ClientCredentials {
            client_id: form.client_id,
            client_secret: form.client_secret,
            scope: form.scope,
        }
    } else if body.is_empty() {
        ClientCredentials::default()
    } else {
        authstream_web::http::from_json_object(&body)
            .map_err(|_| ApiError::field("body", "expected {client_id, client_secret}"))?
    };
    let (id, secret) = match (basic(&req), json.client_id, json.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id, SecretString::from(secret)),
        _ => return Err(invalid_client()),
    };
    let client = authenticate(&state, &req, &id, &secret).await?;

    let scopes = match json.scope.as_deref().map(str::split_whitespace) {
        None => client.scopes.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked.map(str::to_owned).collect();
            if let Some(extra) = asked.iter().find(|s| !client.scopes.contains(s)) {
                // Named only when it is a scope we know: never echo arbitrary input.
                let detail = match authstream_proto::Scope::parse(extra).is_some() {
                    true => format!("the client does not have the scope {extra}"),
                    false => "the client does not have a scope it asked for".to_owned(),
                };
                return Err(ApiError::new(ErrorCode::InsufficientScope, detail));
            }
            asked
        }
    };
    let now = UnixTime::now();
    let ttl = state.settings.common.service_ttl;
    let claims = ServiceClaims {
        reg: state.signer.registered(
            &format!("{SERVICE_SUBJECT_PREFIX}{}", client.id),
            TokenType::Service,
            new_jti(),
            now,
            ttl,
        ),
        scopes,
    };
    let token = state.signer.sign(&claims)?;
    tracing::info!(client_id = %client.id, "service token issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ServiceToken {
            access_token: token,
            token_type: "Bearer".to_owned(),
            expires_in: ttl.as_secs(),
            scope: claims.scopes.join(" "),
        }))
}
