//! The routes of the auth service: accounts, sessions, tokens, OAuth, keys,
//! generations, stream tokens, administration and the demo.

use authstream_proto::auth::{
    ClientCredentials, ClientCredentialsForm, CreatedGeneration, Credentials, DisconnectAnnounced,
    GenerationView, Introspection, Jwks, NewGeneration, Profile, ProfilePatch, RefreshBody,
    Registered, Revoked, ServerMetadata, ServiceToken, SessionView, SimulateBody,
    SimulationStarted, StreamTokenAnswer, StreamTokenStats, TokenBody, TokenForm, TokenPair,
    UserPatch,
};
use authstream_proto::{GenerationId, TokenType, paths};
use reqwest::header::{CONTENT_TYPE, IF_MATCH};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;

use crate::{Auth, Call, Client, SseReader, stream::STREAM_TIMEOUT};

/// The header a client without cookies sends its device token in.
pub const DEVICE_TOKEN: &str = "x-device-token";

/// `request` with `form` as an `application/x-www-form-urlencoded` body.
fn form<T: Serialize>(request: RequestBuilder, form: &T) -> RequestBuilder {
    // The forms here are structs of optional strings: they always serialize.
    let body = serde_urlencoded::to_string(form).unwrap_or_default();
    request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
}

/// `path` with `?token_type=` when one is asked for.
fn with_token_type(path: &str, token_type: Option<TokenType>) -> String {
    match token_type {
        Some(t) => format!("{path}?token_type={}", t.as_str()),
        None => path.to_owned(),
    }
}

/// The routes of the auth service. Those marked *Bearer* send the client's token
/// ([`Client::with_token`]) or one given with [`Call::bearer`].
impl Client<Auth> {
    /// `POST /auth/register`: `201` [`Registered`].
    pub fn register(&self, credentials: &Credentials) -> Call<Registered> {
        let request = self
            .request(Method::POST, paths::REGISTER)
            .json(credentials);
        Call::json("POST /auth/register", request, StatusCode::CREATED)
    }

    /// `POST /auth/login`: a new session's [`TokenPair`]. Send a device token back
    /// with `.header(DEVICE_TOKEN, token)`.
    pub fn login(&self, credentials: &Credentials) -> Call<TokenPair> {
        let request = self.request(Method::POST, paths::LOGIN).json(credentials);
        Call::json("POST /auth/login", request, StatusCode::OK)
    }

    /// `POST /auth/refresh`: the rotated [`TokenPair`].
    pub fn refresh(&self, body: &RefreshBody) -> Call<TokenPair> {
        let request = self.request(Method::POST, paths::REFRESH).json(body);
        Call::json("POST /auth/refresh", request, StatusCode::OK)
    }

    /// `POST /auth/logout` (Bearer): `204`, the session is revoked.
    pub fn logout(&self) -> Call<()> {
        self.empty(
            "POST /auth/logout",
            Method::POST,
            paths::LOGOUT,
            StatusCode::NO_CONTENT,
        )
    }

    /// `POST /auth/logout-all` (Bearer): `204`, every session of the user is revoked.
    pub fn logout_all(&self) -> Call<()> {
        self.empty(
            "POST /auth/logout-all",
            Method::POST,
            paths::LOGOUT_ALL,
            StatusCode::NO_CONTENT,
        )
    }

    /// `GET /auth/sessions` (Bearer): the caller's sessions.
    pub fn sessions(&self) -> Call<Vec<SessionView>> {
        self.json(
            "GET /auth/sessions",
            Method::GET,
            paths::SESSIONS,
            StatusCode::OK,
        )
    }

    /// `DELETE /auth/sessions/{session_id}` (Bearer): `204`, that session is revoked.
    pub fn delete_session(&self, session_id: &str) -> Call<()> {
        self.empty(
            "DELETE /auth/sessions/{session_id}",
            Method::DELETE,
            &paths::session(session_id),
            StatusCode::NO_CONTENT,
        )
    }

    /// `GET /auth/me` (Bearer): the caller's [`Profile`] (its `ETag` header: send the
    /// call with [`Call::send`] to read it).
    pub fn me(&self) -> Call<Profile> {
        self.json("GET /auth/me", Method::GET, paths::ME, StatusCode::OK)
    }

    /// `PATCH /auth/me` (Bearer) with `If-Match` when given (without it: `428`).
    pub fn update_me(&self, patch: &ProfilePatch, if_match: Option<&str>) -> Call<Profile> {
        let mut request = self.request(Method::PATCH, paths::ME).json(patch);
        if let Some(etag) = if_match {
            request = request.header(IF_MATCH, etag);
        }
        Call::json("PATCH /auth/me", request, StatusCode::OK)
    }

    /// `GET /auth/validate` (Bearer): the claims of the Bearer token, an access token
    /// unless `token_type` says `service`.
    pub fn validate(&self, token_type: Option<TokenType>) -> Call<Introspection> {
        let path = with_token_type(paths::VALIDATE, token_type);
        let request = self.request(Method::GET, &path);
        Call::json("GET /auth/validate", request, StatusCode::OK)
    }

    /// `POST /auth/validate`: the claims of the token in the body (without one, of the
    /// Bearer token).
    pub fn validate_token(
        &self,
        body: &TokenBody,
        token_type: Option<TokenType>,
    ) -> Call<Introspection> {
        let path = with_token_type(paths::VALIDATE, token_type);
        let request = self.request(Method::POST, &path).json(body);
        Call::json("POST /auth/validate", request, StatusCode::OK)
    }

    /// `POST /auth/revoke` with a JSON body: `200` whatever the token was (RFC 7009).
    pub fn revoke(&self, body: &TokenBody) -> Call<Revoked> {
        let request = self.request(Method::POST, paths::REVOKE).json(body);
        Call::json("POST /auth/revoke", request, StatusCode::OK)
    }

    /// `POST /auth/revoke` with the RFC 7009 form.
    pub fn revoke_form(&self, body: &TokenForm) -> Call<Revoked> {
        let request = form(self.request(Method::POST, paths::REVOKE), body);
        Call::json("POST /auth/revoke", request, StatusCode::OK)
    }

    /// `POST /auth/introspect` (RFC 7662): for a service client, whose id and secret
    /// go with [`Call::basic_auth`]. `{"active": false}` for any token not valid.
    pub fn introspect(&self, body: &TokenForm) -> Call<Introspection> {
        let request = form(self.request(Method::POST, paths::INTROSPECT), body);
        Call::json("POST /auth/introspect", request, StatusCode::OK)
    }

    /// `POST /auth/service-token` with the client's id and secret as HTTP Basic.
    pub fn service_token(&self, client_id: &str, client_secret: &str) -> Call<ServiceToken> {
        let request = self
            .request(Method::POST, paths::SERVICE_TOKEN)
            .basic_auth(client_id, Some(client_secret));
        Call::json("POST /auth/service-token", request, StatusCode::OK)
    }

    /// `POST /auth/service-token` with the credentials (and a narrower `scope`) as JSON.
    pub fn service_token_json(&self, body: &ClientCredentials) -> Call<ServiceToken> {
        let request = self.request(Method::POST, paths::SERVICE_TOKEN).json(body);
        Call::json("POST /auth/service-token", request, StatusCode::OK)
    }

    /// `POST /auth/service-token` with the RFC 6749 §4.4 form.
    pub fn service_token_form(&self, body: &ClientCredentialsForm) -> Call<ServiceToken> {
        let request = form(self.request(Method::POST, paths::SERVICE_TOKEN), body);
        Call::json("POST /auth/service-token", request, StatusCode::OK)
    }

    /// `GET /auth/revocations` (Bearer, a service token with `revocations:read`): the
    /// revocation feed, resuming after `last_event_id` when given. Its frames' data are
    /// `authstream_proto::feed` bodies: read them with [`SseReader::next_frame`].
    pub fn revocations(&self, last_event_id: Option<&str>) -> Call<SseReader> {
        let mut request = self
            .request(Method::GET, paths::REVOCATIONS)
            .timeout(STREAM_TIMEOUT);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Call::events("GET /auth/revocations", request)
    }

    /// `GET /.well-known/jwks.json`: the public keys.
    pub fn jwks(&self) -> Call<Jwks> {
        self.json(
            "GET /.well-known/jwks.json",
            Method::GET,
            paths::JWKS,
            StatusCode::OK,
        )
    }

    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    pub fn oauth_metadata(&self) -> Call<ServerMetadata> {
        self.json(
            "GET /.well-known/oauth-authorization-server",
            Method::GET,
            paths::OAUTH_METADATA,
            StatusCode::OK,
        )
    }

    /// `GET /.well-known/openid-configuration`: the same metadata.
    pub fn openid_configuration(&self) -> Call<ServerMetadata> {
        self.json(
            "GET /.well-known/openid-configuration",
            Method::GET,
            paths::OPENID_CONFIGURATION,
            StatusCode::OK,
        )
    }

    /// `POST /generations` (Bearer): `201` [`CreatedGeneration`].
    pub fn create_generation(&self, body: &NewGeneration) -> Call<CreatedGeneration> {
        let request = self.request(Method::POST, paths::GENERATIONS).json(body);
        Call::json("POST /generations", request, StatusCode::CREATED)
    }

    /// `GET /generations/{generation_id}` (Bearer): the generation record.
    pub fn generation(&self, id: &GenerationId) -> Call<GenerationView> {
        self.json(
            "GET /generations/{generation_id}",
            Method::GET,
            &paths::generation(id),
            StatusCode::OK,
        )
    }

    /// `POST /generations/generate/{generation_id}/stream-token` (Bearer, the owner's
    /// access token): a single-use stream token; open it with
    /// [`StreamClient::open_minted`](crate::StreamClient::open_minted).
    pub fn stream_token(&self, id: &GenerationId) -> Call<StreamTokenAnswer> {
        self.json(
            "POST /generations/generate/{generation_id}/stream-token",
            Method::POST,
            &paths::stream_token(id),
            StatusCode::OK,
        )
    }

    /// `GET /admin/stream-tokens/stats` (Bearer, an administrator or `users:admin`).
    pub fn stream_token_stats(&self) -> Call<StreamTokenStats> {
        self.json(
            "GET /admin/stream-tokens/stats",
            Method::GET,
            paths::STREAM_TOKEN_STATS,
            StatusCode::OK,
        )
    }

    /// `PATCH /auth/users/{user_id}` (Bearer, administrators): the changed user.
    pub fn update_user(&self, user_id: &str, patch: &UserPatch) -> Call<Profile> {
        let request = self
            .request(Method::PATCH, &paths::user(user_id))
            .json(patch);
        Call::json("PATCH /auth/users/{user_id}", request, StatusCode::OK)
    }

    /// `POST /auth/users/{user_id}/revoke` (Bearer, administrators): `204`.
    pub fn revoke_user(&self, user_id: &str) -> Call<()> {
        self.empty(
            "POST /auth/users/{user_id}/revoke",
            Method::POST,
            &paths::user_revoke(user_id),
            StatusCode::NO_CONTENT,
        )
    }

    /// `DELETE /auth/users/{user_id}/login-failures` (Bearer, administrators): `204`.
    pub fn clear_login_failures(&self, user_id: &str) -> Call<()> {
        self.empty(
            "DELETE /auth/users/{user_id}/login-failures",
            Method::DELETE,
            &paths::user_login_failures(user_id),
            StatusCode::NO_CONTENT,
        )
    }

    /// `POST /demo/generations/{generation_id}/simulate` (Bearer): `202`.
    pub fn simulate(
        &self,
        id: &GenerationId,
        body: Option<&SimulateBody>,
    ) -> Call<SimulationStarted> {
        let mut request = self.request(Method::POST, &paths::demo_simulate(id));
        if let Some(body) = body {
            request = request.json(body);
        }
        Call::json(
            "POST /demo/generations/{generation_id}/simulate",
            request,
            StatusCode::ACCEPTED,
        )
    }

    /// `POST /demo/generations/{generation_id}/disconnect` (Bearer): `202`.
    pub fn disconnect(&self, id: &GenerationId) -> Call<DisconnectAnnounced> {
        self.json(
            "POST /demo/generations/{generation_id}/disconnect",
            Method::POST,
            &paths::demo_disconnect(id),
            StatusCode::ACCEPTED,
        )
    }
}
