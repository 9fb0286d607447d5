use serde::{Deserialize, Serialize};

/// The claims of a verified token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer (`JWT_ISSUER` of the auth service).
    pub iss: String,
    /// The audience.
    pub aud: String,
    /// The subject: a user id, or `service:<client id>` for a service token.
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// The token's unique id.
    pub jti: String,
    /// `access` or `service`.
    pub token_type: String,
    /// The session (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's email (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's roles, e.g. `admin` (access tokens).
    #[serde(default)]
    pub roles: Vec<String>,
    /// `free` or `paid` (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The scopes of a service token.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Claims {
    /// True when the roles name `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == authstream_proto::ROLE_ADMIN)
    }

    /// True when a service token holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
