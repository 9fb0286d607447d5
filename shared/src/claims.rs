//! The claims of the three JWT types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
    Service,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::Service => "service",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Free,
    Paid,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
}

/// The claims every token carries. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub token_type: TokenType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    #[serde(flatten)]
    pub reg: Registered,
    pub email: String,
    pub roles: Vec<String>,
    pub tier: Tier,
    pub sid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    #[serde(flatten)]
    pub reg: Registered,
    pub sid: String,
    pub fam: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    #[serde(flatten)]
    pub reg: Registered,
    pub scopes: Vec<String>,
}

pub const ROLE_ADMIN: &str = "admin";
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";

/// What the validator needs to know of a claim set.
pub trait Claims: serde::de::DeserializeOwned + Serialize + Clone + Send + Sync + 'static {
    const TYPE: TokenType;
    fn registered(&self) -> &Registered;
    /// The session the token belongs to, if any.
    fn session_id(&self) -> Option<&str>;
    /// The user whose per-tier rate limit a request with this token spends; none for
    /// service clients (trusted callers).
    fn rate_limited_user(&self) -> Option<(&str, Tier)> {
        None
    }
}

impl Claims for AccessClaims {
    const TYPE: TokenType = TokenType::Access;
    fn registered(&self) -> &Registered {
        &self.reg
    }
    fn session_id(&self) -> Option<&str> {
        Some(&self.sid)
    }
    fn rate_limited_user(&self) -> Option<(&str, Tier)> {
        Some((&self.reg.sub, self.tier))
    }
}

impl Claims for RefreshClaims {
    const TYPE: TokenType = TokenType::Refresh;
    fn registered(&self) -> &Registered {
        &self.reg
    }
    fn session_id(&self) -> Option<&str> {
        Some(&self.sid)
    }
}

impl Claims for ServiceClaims {
    const TYPE: TokenType = TokenType::Service;
    fn registered(&self) -> &Registered {
        &self.reg
    }
    fn session_id(&self) -> Option<&str> {
        None
    }
}

impl AccessClaims {
    pub fn user_id(&self) -> &str {
        &self.reg.sub
    }
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }
}

impl ServiceClaims {
    pub fn client_id(&self) -> &str {
        self.reg
            .sub
            .strip_prefix(SERVICE_SUBJECT_PREFIX)
            .unwrap_or(&self.reg.sub)
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
