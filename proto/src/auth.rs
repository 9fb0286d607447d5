//! The bodies of the auth service: accounts, sessions, tokens, discovery, keys,
//! generations, stream tokens and the demo routes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::claims::{AccessClaims, ServiceClaims, Tier, TokenType};
use crate::ids::GenerationId;
use crate::stream::GenerationStatus;

/// An email and a password (`POST /auth/register`, `POST /auth/login`).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credentials {
    #[cfg_attr(feature = "openapi", schema(example = "ada@example.com"))]
    pub email: String,
    /// 8 to 1024 characters
    #[cfg_attr(feature = "openapi", schema(example = "correct horse"))]
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// `201` of `POST /auth/register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    pub user_id: String,
    pub email: String,
    /// `free` or `paid`
    pub tier: Tier,
}

/// A session's token pair (`POST /auth/login`, `POST /auth/refresh`), never cached.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// `Bearer`
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub session_id: String,
    /// On login only: this device's token, to send back on later logins
    /// (`X-Device-Token`) where no cookie is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("session_id", &self.session_id)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// The refresh token to rotate (`POST /auth/refresh`).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshBody {
    pub refresh_token: String,
}

impl fmt::Debug for RefreshBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshBody { .. }")
    }
}

/// A token, as JSON (`POST /auth/validate`, `POST /auth/revoke`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A token as an RFC 7009 / RFC 7662 form (`application/x-www-form-urlencoded`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `access_token` or `refresh_token`: a hint only, every kind is looked at
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

/// A service client's credentials and the scopes it asks for, as JSON
/// (`POST /auth/service-token`; HTTP Basic may carry the id and secret instead).
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Optional narrowing: space-separated scopes, each one the client has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The RFC 6749 §4.4 client credentials grant, as a form
/// (`application/x-www-form-urlencoded`); the credentials as HTTP Basic or in
/// `client_id` and `client_secret`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientCredentialsForm {
    /// `client_credentials`, the only grant type of this endpoint
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Optional narrowing: space-separated scopes, each one the client has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The caller's profile (`GET /auth/me`, `PATCH /auth/me`), with an `ETag` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub user_id: String,
    pub email: String,
    pub tier: Tier,
    pub roles: Vec<String>,
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub preferences: Map<String, Value>,
}

/// Changes to the caller's profile (`PATCH /auth/me`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Absent: unchanged; `null`: cleared.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub display_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub preferences: Option<Value>,
}

/// Tells an absent field (`None`, by `default`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Changes to a user (`PATCH /auth/users/{user_id}`, administrators).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `free` or `paid`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// One session of the caller (one per login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub session_id: String,
    /// Unix milliseconds
    pub created_at: i64,
    /// Unix milliseconds: login or the last refresh
    pub last_seen_at: i64,
    pub user_agent: String,
    pub ip: Option<String>,
    /// The session of the token this request was made with
    pub current: bool,
}

/// The claims of a valid token (`sub`, `exp`, `jti`, `token_type`, and `sid`, `tier`,
/// `roles` for access tokens or `scopes` for service tokens), with `active: true`.
/// `POST /auth/introspect` answers `{"active": false}` alone for a token that is not
/// valid, and adds `scope` and `client_id` for a service token.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Introspection {
    /// `true` for a valid token (`/auth/validate` answers 401 otherwise;
    /// `/auth/introspect` answers `{"active": false}`)
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `access` or `service`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    /// Access tokens: the user's email
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Access tokens: the user's roles
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Access tokens: the user's tier
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Access tokens: the session
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Service tokens: the scopes
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `/auth/introspect`, service tokens: space-separated scopes
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `/auth/introspect`, service tokens: the client id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Introspection {
    /// `{"active": false}`: not a valid token.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// A valid access token's claims.
    pub fn access(claims: AccessClaims) -> Self {
        let reg = claims.reg;
        Self {
            active: true,
            sub: Some(reg.sub),
            iss: Some(reg.iss),
            aud: Some(reg.aud),
            exp: Some(reg.exp),
            iat: Some(reg.iat),
            nbf: Some(reg.nbf),
            jti: Some(reg.jti),
            token_type: Some(reg.token_type),
            email: Some(claims.email),
            roles: Some(claims.roles),
            tier: Some(claims.tier),
            sid: Some(claims.sid),
            ..Self::default()
        }
    }

    /// A valid service token's claims (`/auth/validate`).
    pub fn service(claims: ServiceClaims) -> Self {
        let reg = claims.reg;
        Self {
            active: true,
            sub: Some(reg.sub),
            iss: Some(reg.iss),
            aud: Some(reg.aud),
            exp: Some(reg.exp),
            iat: Some(reg.iat),
            nbf: Some(reg.nbf),
            jti: Some(reg.jti),
            token_type: Some(reg.token_type),
            scopes: Some(claims.scopes),
            ..Self::default()
        }
    }

    /// A valid service token's claims with its RFC 7662 `scope` (space-separated) and
    /// `client_id` (`/auth/introspect`).
    pub fn service_with_client(claims: ServiceClaims) -> Self {
        let scope = claims.scopes.join(" ");
        let client_id = claims.client_id().to_owned();
        Self {
            scope: Some(scope),
            client_id: Some(client_id),
            ..Self::service(claims)
        }
    }
}

/// `200` of `POST /auth/revoke`: always empty (RFC 7009: the same answer whether or
/// not the token was valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {}

/// Authorization server metadata (RFC 8414), the same at
/// `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
/// Absolute URLs start with `AUTH_PUBLIC_URL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerMetadata {
    /// `JWT_ISSUER`: the `iss` of every token
    pub issuer: String,
    pub jwks_uri: String,
    /// `/auth/service-token`
    pub token_endpoint: String,
    /// `/auth/revoke`
    pub revocation_endpoint: String,
    /// `/auth/introspect`
    pub introspection_endpoint: String,
    /// `["client_credentials"]`
    pub grant_types_supported: Vec<String>,
    /// `[]`: there is no authorization endpoint
    pub response_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `["none"]`: anyone holding a token may revoke it
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `["client_secret_basic"]`
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    /// The algorithm of every JWT this server signs (`EdDSA` or `HS256`); an authstream
    /// extension
    pub token_signing_alg_values_supported: Vec<String>,
}

/// A service token (`POST /auth/service-token`), never cached.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceToken {
    pub access_token: String,
    /// `Bearer`
    pub token_type: String,
    /// Seconds
    pub expires_in: u64,
    /// Space-separated scopes the token carries
    pub scope: String,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One public verification key (RFC 7517): an Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// `OKP`
    pub kty: String,
    /// `Ed25519`
    pub crv: String,
    /// `EdDSA`
    pub alg: String,
    /// `sig`
    #[serde(rename = "use")]
    pub use_: String,
    /// The key id, the `kid` of the tokens it verifies
    pub kid: String,
    /// The public key, URL-safe base64 without padding
    pub x: String,
}

impl Jwk {
    /// The JWK of an Ed25519 public key (`x`: URL-safe base64 without padding).
    pub fn ed25519(kid: String, x: String) -> Self {
        Self {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            alg: "EdDSA".to_owned(),
            use_: "sig".to_owned(),
            kid,
            x,
        }
    }
}

/// The public verification keys (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A generation to create (`POST /generations`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewGeneration {
    /// Generated (UUID v4) when left out
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

/// `201` of `POST /generations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedGeneration {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    pub owner_id: String,
    pub status: GenerationStatus,
    /// Unix milliseconds
    pub created_at: i64,
}

/// A generation record (`GET /generations/{generation_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerationView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    pub owner_id: String,
    /// `pending`, `processing`, `completed` or `failed`
    pub status: GenerationStatus,
    /// 0.0 to 1.0
    pub progress: f64,
    pub stage: Option<String>,
    /// Unix milliseconds
    pub created_at: i64,
    /// Unix milliseconds
    pub updated_at: i64,
}

impl GenerationView {
    /// The `201` answer of its creation.
    pub fn created(&self) -> CreatedGeneration {
        CreatedGeneration {
            generation_id: self.generation_id.clone(),
            owner_id: self.owner_id.clone(),
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// A single-use stream token (`Cache-Control: no-store`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTokenAnswer {
    /// 43 characters of URL-safe base64: pass it as `token` when opening the stream
    pub sse_token: String,
    /// Seconds
    pub expires_in: u64,
    /// Where to open the stream (`STREAM_PUBLIC_URL` prefix, or a path)
    pub stream_url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
}

impl fmt::Debug for StreamTokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTokenAnswer")
            .field("generation_id", &self.generation_id)
            .field("stream_url", &self.stream_url)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Stream-token statistics: counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTokenStats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}

/// How the demo's simulated generation runs (`POST .../simulate`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `completed` or `failed`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// `202` of the demo's simulate route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimulationStarted {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    /// How many events will be published
    pub events: u64,
    pub duration_ms: u64,
    /// `completed` or `failed`
    pub outcome: GenerationStatus,
}

/// `202` of the demo's disconnect route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisconnectAnnounced {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::claims::Registered as RegisteredClaims;

    fn reg(token_type: TokenType) -> RegisteredClaims {
        RegisteredClaims {
            iss: "i".to_owned(),
            aud: "a".to_owned(),
            sub: "service:backend".to_owned(),
            iat: 1,
            nbf: 1,
            exp: 2,
            jti: "j".to_owned(),
            token_type,
        }
    }

    #[test]
    fn an_introspection_is_the_claims_with_active() {
        let access = AccessClaims {
            reg: reg(TokenType::Access),
            email: "e".to_owned(),
            roles: vec![],
            tier: Tier::Free,
            sid: "s".to_owned(),
        };
        let mut expected = serde_json::to_value(&access).unwrap();
        expected["active"] = json!(true);
        assert_eq!(
            serde_json::to_value(Introspection::access(access)).unwrap(),
            expected
        );

        let service = ServiceClaims {
            reg: reg(TokenType::Service),
            scopes: vec!["events:publish".to_owned(), "users:admin".to_owned()],
        };
        let mut expected = serde_json::to_value(&service).unwrap();
        expected["active"] = json!(true);
        assert_eq!(
            serde_json::to_value(Introspection::service(service.clone())).unwrap(),
            expected
        );
        expected["scope"] = json!("events:publish users:admin");
        expected["client_id"] = json!("backend");
        assert_eq!(
            serde_json::to_value(Introspection::service_with_client(service)).unwrap(),
            expected
        );
        assert_eq!(
            serde_json::to_value(Introspection::inactive()).unwrap(),
            json!({"active": false})
        );
    }

    #[test]
    fn absent_fields_of_answers_are_null_where_they_were() {
        let profile = Profile {
            user_id: "u".to_owned(),
            email: "e".to_owned(),
            tier: Tier::Paid,
            roles: vec![],
            display_name: None,
            preferences: Map::new(),
        };
        assert_eq!(
            serde_json::to_value(profile).unwrap(),
            json!({"user_id": "u", "email": "e", "tier": "paid", "roles": [],
                "display_name": null, "preferences": {}})
        );
        assert_eq!(serde_json::to_string(&Revoked {}).unwrap(), "{}");
    }

    #[test]
    fn a_profile_patch_tells_null_from_absent() {
        let patch: ProfilePatch = serde_json::from_str(r#"{"display_name": null}"#).unwrap();
        assert_eq!(patch.display_name, Some(None));
        let patch: ProfilePatch = serde_json::from_str("{}").unwrap();
        assert_eq!(patch.display_name, None);
        assert!(serde_json::from_str::<ProfilePatch>(r#"{"other": 1}"#).is_err());
    }
}
