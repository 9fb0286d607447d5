//! The auth service's OpenAPI 3.1 document, generated from the `#[utoipa::path]`
//! attributes of its handlers and the schemas of its bodies. Answers that handlers
//! build as JSON literals are described by the types below.

use serde_json::Value;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

use shared::openapi::{OperationsDoc, SharedComponents};

/// `201` of `POST /auth/register`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Registered {
    user_id: String,
    email: String,
    /// `free` or `paid`
    tier: String,
}

/// The caller's profile (`GET /auth/me`, `PATCH /auth/me`), with an `ETag` header.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Profile {
    user_id: String,
    email: String,
    tier: String,
    roles: Vec<String>,
    display_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    preferences: Option<Value>,
}

/// One session of the caller (one per login).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionView {
    session_id: String,
    /// Unix milliseconds
    created_at: i64,
    /// Unix milliseconds: login or the last refresh
    last_seen_at: i64,
    user_agent: String,
    ip: Option<String>,
    /// The session of the token this request was made with
    current: bool,
}

/// The claims of a valid token (`sub`, `exp`, `jti`, `token_type`, and `sid`, `tier`,
/// `roles` for access tokens or `scopes` for service tokens), with `active: true`.
/// `POST /auth/introspect` answers `{"active": false}` alone for a token that is not
/// valid, and adds `scope` and `client_id` for a service token.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Introspection {
    /// `true` for a valid token (`/auth/validate` answers 401 otherwise;
    /// `/auth/introspect` answers `{"active": false}`)
    active: bool,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    /// `access` or `service`
    token_type: Option<String>,
    /// `/auth/introspect`, service tokens: space-separated scopes
    scope: Option<String>,
    /// `/auth/introspect`, service tokens: the client id
    client_id: Option<String>,
}

/// Authorization server metadata (RFC 8414), the same at
/// `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
/// Absolute URLs start with `AUTH_PUBLIC_URL`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServerMetadata {
    /// `JWT_ISSUER`: the `iss` of every token
    issuer: String,
    jwks_uri: String,
    /// `/auth/service-token`
    token_endpoint: String,
    /// `/auth/revoke`
    revocation_endpoint: String,
    /// `/auth/introspect`
    introspection_endpoint: String,
    /// `["client_credentials"]`
    grant_types_supported: Vec<String>,
    /// `[]`: there is no authorization endpoint
    response_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`
    token_endpoint_auth_methods_supported: Vec<String>,
    /// `["none"]`: anyone holding a token may revoke it
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `["client_secret_basic"]`
    introspection_endpoint_auth_methods_supported: Vec<String>,
    scopes_supported: Vec<String>,
    /// The algorithm of every JWT this server signs (`EdDSA` or `HS256`); an authstream
    /// extension
    token_signing_alg_values_supported: Vec<String>,
}

/// A service token.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServiceToken {
    access_token: String,
    /// `Bearer`
    token_type: String,
    /// Seconds
    expires_in: u64,
    /// Space-separated scopes the token carries
    scope: String,
}

/// A single-use stream token (`Cache-Control: no-store`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StreamTokenAnswer {
    /// 43 characters of URL-safe base64: pass it as `token` when opening the stream
    sse_token: String,
    /// Seconds
    expires_in: u64,
    /// Where to open the stream (`STREAM_PUBLIC_URL` prefix, or a path)
    stream_url: String,
    generation_id: String,
}

/// `201` of `POST /generations`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreatedGeneration {
    generation_id: String,
    owner_id: String,
    status: String,
    /// Unix milliseconds
    created_at: i64,
}

/// A generation record.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GenerationView {
    generation_id: String,
    owner_id: String,
    /// `pending`, `processing`, `completed` or `failed`
    status: String,
    /// 0.0 to 1.0
    progress: f64,
    stage: Option<String>,
    /// Unix milliseconds
    created_at: i64,
    /// Unix milliseconds
    updated_at: i64,
}

/// Stream-token statistics: counts only.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StreamTokenStats {
    active: u64,
    issued_total: u64,
    consumed_total: u64,
    rejected_total: u64,
}

/// The public verification keys (RFC 7517).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<Value>,
}

/// `202` of the demo's simulate route.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SimulationStarted {
    generation_id: String,
    /// How many events will be published
    events: u64,
    duration_ms: u64,
    /// `completed` or `failed`
    outcome: String,
}

/// `202` of the demo's disconnect route.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DisconnectAnnounced {
    generation_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "authstream auth-service", description = "Users, sessions, JWTs, service clients, generation ownership and single-use stream tokens. Every error is `application/problem+json` with a stable `code`."),
    paths(
        crate::routes::account::register,
        crate::routes::account::login,
        crate::routes::tokens::refresh,
        crate::routes::account::logout,
        crate::routes::account::logout_all,
        crate::routes::sessions::list,
        crate::routes::sessions::revoke,
        crate::routes::me::get,
        crate::routes::me::patch,
        crate::routes::tokens::validate_post,
        crate::routes::tokens::validate_get,
        crate::routes::tokens::revoke,
        crate::routes::tokens::introspect_form,
        crate::routes::revocations::follow,
        crate::routes::discovery::oauth_metadata,
        crate::routes::discovery::openid_configuration,
        crate::routes::service_tokens::issue,
        crate::routes::admin::revoke_user,
        crate::routes::admin::update_user,
        crate::routes::admin::clear_login_failures,
        crate::routes::generations::create,
        crate::routes::generations::get,
        crate::routes::stream_tokens::mint,
        crate::routes::stream_tokens::stats,
        crate::routes::jwks::jwks,
    ),
    components(schemas(crate::feed::FeedRevocation)),
    modifiers(&SharedComponents),
    tags(
        (name = "accounts", description = "Registration, login, refresh, logout"),
        (name = "sessions", description = "The caller's sessions and profile"),
        (name = "tokens", description = "Validation, revocation, service tokens, keys"),
        (name = "admin", description = "Administration (role admin or scope users:admin)"),
        (name = "generations", description = "Generation ownership and stream tokens"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct AuthApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::demo::index,
        crate::demo::app_css,
        crate::demo::app_js,
        crate::demo::client_js,
        crate::demo::simulate,
        crate::demo::disconnect,
    ),
    tags((name = "demo", description = "The demo page and its simulated generation (DEMO=true only)"))
)]
struct DemoApi;

/// The document of the auth routes (and the demo routes when they are on), without the
/// routes every server has.
pub fn routes_document(demo: bool) -> Document {
    let mut doc = AuthApi::openapi();
    if demo {
        doc.merge(DemoApi::openapi());
    }
    doc
}

/// The whole document of the auth service: its routes, health, metrics and this document.
pub fn document(demo: bool) -> Document {
    let mut doc = routes_document(demo);
    doc.merge(OperationsDoc::openapi());
    doc
}
