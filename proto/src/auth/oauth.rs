//! The OAuth 2.0 side: service clients' credentials (RFC 6749 §4.4) and the service
//! tokens they get, authorization server metadata (RFC 8414) and the public keys
//! (RFC 7517).

use std::fmt;

use serde::{Deserialize, Serialize};

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
