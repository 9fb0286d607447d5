//! Tokens of a session and of any holder: the token pair and its rotation, a token to
//! validate, revoke (RFC 7009) or introspect (RFC 7662), and what introspection answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::claims::{AccessClaims, Registered, ServiceClaims, Tier, TokenType};

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
        Self {
            email: Some(claims.email),
            roles: Some(claims.roles),
            tier: Some(claims.tier),
            sid: Some(claims.sid),
            ..Self::registered(claims.reg)
        }
    }

    /// A valid service token's claims (`/auth/validate`).
    pub fn service(claims: ServiceClaims) -> Self {
        Self {
            scopes: Some(claims.scopes),
            ..Self::registered(claims.reg)
        }
    }

    /// The registered claims every valid token has, with `active: true`.
    fn registered(reg: Registered) -> Self {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reg(token_type: TokenType) -> Registered {
        Registered {
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
    fn a_revocation_answer_is_an_empty_object() {
        assert_eq!(serde_json::to_string(&Revoked {}).unwrap(), "{}");
    }
}
