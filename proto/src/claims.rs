//! The claims of the three JWT types, and the token types, tiers and scopes they name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a token is for: `access` (a user's requests), `refresh` (a new pair for a
/// session) or `service` (a service client's requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// A user's token for requests.
    Access,
    /// A session's token for a new pair.
    Refresh,
    /// A service client's token for requests.
    Service,
}

impl TokenType {
    /// The name in `token_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::Service => "service",
        }
    }

    /// The type named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Access, Self::Refresh, Self::Service]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's tier: its rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The default tier.
    #[default]
    Free,
    /// The paid tier: higher limits.
    Paid,
}

impl Tier {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }

    /// The tier named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Free, Self::Paid]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope a service client may hold, and its service tokens carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// `generations:write`: create generations for users.
    #[serde(rename = "generations:write")]
    GenerationsWrite,
    /// `events:publish`: publish a generation's events.
    #[serde(rename = "events:publish")]
    EventsPublish,
    /// `users:admin`: administer users, as the `admin` role does.
    #[serde(rename = "users:admin")]
    UsersAdmin,
    /// `revocations:read`: follow the revocation feed.
    #[serde(rename = "revocations:read")]
    RevocationsRead,
}

impl Scope {
    /// Every scope, in the order the discovery document lists them.
    pub const ALL: [Self; 4] = [
        Self::GenerationsWrite,
        Self::EventsPublish,
        Self::UsersAdmin,
        Self::RevocationsRead,
    ];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerationsWrite => "generations:write",
            Self::EventsPublish => "events:publish",
            Self::UsersAdmin => "users:admin",
            Self::RevocationsRead => "revocations:read",
        }
    }

    /// The scope named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims every token carries. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The issuer (`JWT_ISSUER`).
    pub iss: String,
    /// The audience.
    pub aud: String,
    /// The subject: a user id, or `service:<client id>`.
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// The token's unique id.
    pub jti: String,
    /// What the token is for.
    pub token_type: TokenType,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The claims every token carries.
    #[serde(flatten)]
    pub reg: Registered,
    /// The user's email.
    pub email: String,
    /// The user's roles (`admin`).
    pub roles: Vec<String>,
    /// The user's tier.
    pub tier: Tier,
    /// The session.
    pub sid: String,
}

/// The claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// The claims every token carries.
    #[serde(flatten)]
    pub reg: Registered,
    /// The session.
    pub sid: String,
    /// The session's refresh-token family.
    pub fam: String,
}

/// The claims of a service token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The claims every token carries.
    #[serde(flatten)]
    pub reg: Registered,
    /// The scopes the token carries, by name.
    pub scopes: Vec<String>,
}

/// The role of administrators.
pub const ROLE_ADMIN: &str = "admin";
/// The `sub` of a service token is this prefix and the client id.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";

/// What a validator needs to know of a claim set.
pub trait Claims: serde::de::DeserializeOwned + Serialize + Clone + Send + Sync + 'static {
    /// The token type these claims belong to.
    const TYPE: TokenType;
    /// The claims every token carries.
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
    /// The user (`sub`).
    pub fn user_id(&self) -> &str {
        &self.reg.sub
    }

    /// Whether the roles name `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }
}

impl ServiceClaims {
    /// The client id (`sub` without its `service:` prefix).
    pub fn client_id(&self) -> &str {
        self.reg
            .sub
            .strip_prefix(SERVICE_SUBJECT_PREFIX)
            .unwrap_or(&self.reg.sub)
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s == scope.as_str())
    }
}
