//! Every route path, and URL builders for the routes with parameters. Append a
//! path to a service's base URL (`http://host:port`).
//!
//! The route attributes of the handlers hold the same paths as literals (attribute
//! macros take no constants); the services' OpenAPI tests check that every route is
//! documented, and the clients (bench, tests) build their URLs from here.

use crate::ids::GenerationId;

/// `POST`: register a user.
pub const REGISTER: &str = "/auth/register";
/// `POST`: sign in.
pub const LOGIN: &str = "/auth/login";
/// `POST`: rotate the token pair.
pub const REFRESH: &str = "/auth/refresh";
/// `POST`: end the caller's session.
pub const LOGOUT: &str = "/auth/logout";
/// `POST`: end every session of the caller.
pub const LOGOUT_ALL: &str = "/auth/logout-all";
/// `GET`: the caller's sessions.
pub const SESSIONS: &str = "/auth/sessions";
/// `GET`, `PATCH`: the caller's profile.
pub const ME: &str = "/auth/me";
/// `GET`, `POST`: validate a token.
pub const VALIDATE: &str = "/auth/validate";
/// `POST`: revoke a token (RFC 7009).
pub const REVOKE: &str = "/auth/revoke";
/// `POST`: introspect a token (RFC 7662).
pub const INTROSPECT: &str = "/auth/introspect";
/// `GET`: the revocation feed (SSE).
pub const REVOCATIONS: &str = "/auth/revocations";
/// `POST`: a service token (client credentials).
pub const SERVICE_TOKEN: &str = "/auth/service-token";
/// `GET`: the public keys.
pub const JWKS: &str = "/.well-known/jwks.json";
/// `GET`: authorization server metadata (RFC 8414).
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// `GET`: the same metadata, where OpenID Connect clients look.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// `POST`: create a generation.
pub const GENERATIONS: &str = "/generations";
/// `GET`: stream-token statistics.
pub const STREAM_TOKEN_STATS: &str = "/admin/stream-tokens/stats";
/// `GET`: liveness.
pub const HEALTHZ: &str = "/healthz";
/// `GET`: readiness.
pub const READYZ: &str = "/readyz";
/// `GET`: Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// `GET`: the OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";

/// `DELETE`: one of the caller's sessions.
pub fn session(session_id: &str) -> String {
    format!("{SESSIONS}/{session_id}")
}

/// `PATCH`: a user (administrators).
pub fn user(user_id: &str) -> String {
    format!("/auth/users/{user_id}")
}

/// `POST`: revoke every token of a user (administrators).
pub fn user_revoke(user_id: &str) -> String {
    format!("/auth/users/{user_id}/revoke")
}

/// `DELETE`: clear a user's failed-login budgets (administrators).
pub fn user_login_failures(user_id: &str) -> String {
    format!("/auth/users/{user_id}/login-failures")
}

/// `GET`: a generation record.
pub fn generation(id: &GenerationId) -> String {
    format!("{GENERATIONS}/{id}")
}

/// `POST`: mint a stream token for a generation.
pub fn stream_token(id: &GenerationId) -> String {
    format!("/generations/generate/{id}/stream-token")
}

/// `GET`: a generation's events over Server-Sent Events.
pub fn generation_stream(id: &GenerationId) -> String {
    format!("/generations/generate/{id}/stream")
}

/// `GET`: a generation's events over WebSocket.
pub fn generation_ws(id: &GenerationId) -> String {
    format!("/generations/generate/{id}/ws")
}

/// `POST`: publish a generation's event (services).
pub fn generation_events(id: &GenerationId) -> String {
    format!("{GENERATIONS}/{id}/events")
}

/// `POST`: the demo's simulated generation.
pub fn demo_simulate(id: &GenerationId) -> String {
    format!("/demo/generations/{id}/simulate")
}

/// `POST`: the demo's disconnect.
pub fn demo_disconnect(id: &GenerationId) -> String {
    format!("/demo/generations/{id}/disconnect")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_route_templates() {
        let id = GenerationId::parse("g-1").unwrap();
        assert_eq!(generation_events(&id), "/generations/g-1/events");
        assert_eq!(generation_stream(&id), "/generations/generate/g-1/stream");
        assert_eq!(stream_token(&id), "/generations/generate/g-1/stream-token");
        assert_eq!(session("s"), "/auth/sessions/s");
    }
}
