use authstream_proto::claims::Registered;
use serde::{Deserialize, Serialize};

/// The claims of a verified token: those every token carries (`reg`, flattened on the
/// wire) and those of an access or a service token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `iss`, `aud`, `sub` (a user id, or `service:<client id>` for a service token),
    /// `iat`, `nbf`, `exp`, `jti` and `token_type` (`access` or `service`).
    #[serde(flatten)]
    pub reg: Registered,
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
