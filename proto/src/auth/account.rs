//! Accounts and sessions: registration and login credentials, profiles and their
//! changes, an administrator's changes to a user, and the caller's sessions.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::claims::Tier;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

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
