//! Users in the store: a JSON record under `{u:<id>}:user` and an email index.
//! Updates are compare-and-swap on the whole record, which is also the ETag source.

use serde::{Deserialize, Serialize};
use shared::claims::Tier;
use shared::{ApiError, ErrorCode, Store, UnixTime};

use crate::domain::Email;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    pub email: String,
    /// Argon2id PHC string; the only form a password is ever kept in.
    pub password_hash: String,
    pub tier: Tier,
    pub roles: Vec<String>,
    pub display_name: Option<String>,
    pub preferences: serde_json::Map<String, serde_json::Value>,
    /// Bumped by every change; the ETag of `/auth/me`.
    pub version: u64,
    pub created_at: i64,
}

impl UserRecord {
    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }

    /// The profile as `/auth/me` shows it.
    pub fn profile(&self) -> serde_json::Value {
        serde_json::json!({
            "user_id": self.user_id,
            "email": self.email,
            "tier": self.tier,
            "roles": self.roles,
            "display_name": self.display_name,
            "preferences": self.preferences,
        })
    }
}

/// A loaded record with the exact stored text, for compare-and-swap.
pub struct Loaded {
    pub user: UserRecord,
    raw: String,
}

fn encode(user: &UserRecord) -> Result<String, ApiError> {
    serde_json::to_string(user).map_err(ApiError::internal)
}

/// Creates a user; 409 `email_taken` when the email is registered.
pub async fn create(
    store: &Store,
    email: &Email,
    password_hash: String,
    now: UnixTime,
) -> Result<UserRecord, ApiError> {
    let user = UserRecord {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: email.as_str().to_owned(),
        password_hash,
        tier: Tier::Free,
        roles: Vec::new(),
        display_name: None,
        preferences: serde_json::Map::new(),
        version: 1,
        created_at: now.millis(),
    };
    // The record first: if claiming the email fails, an unreferenced record is harmless,
    // while an index pointing nowhere would lock the email out.
    store
        .set(&store.keys().user(&user.user_id), &encode(&user)?, None)
        .await?;
    if !store
        .set_nx_no_expiry(&store.keys().email(email.as_str()), &user.user_id)
        .await?
    {
        store.del(&store.keys().user(&user.user_id)).await?;
        return Err(ApiError::new(
            ErrorCode::EmailTaken,
            "this email is already registered",
        ));
    }
    Ok(user)
}

pub async fn load(store: &Store, user_id: &str) -> Result<Option<Loaded>, ApiError> {
    let Some(raw) = store.get(&store.keys().user(user_id)).await? else {
        return Ok(None);
    };
    let user = serde_json::from_str(&raw).map_err(ApiError::internal)?;
    Ok(Some(Loaded { user, raw }))
}

/// The user signing in as `email` (`None`: not even an email). An unknown or
/// malformed email costs the very same store reads as a known one (the email index,
/// then a user record), so neither the timing nor the store's traffic tells them apart.
pub async fn find_for_login(
    store: &Store,
    email: Option<&Email>,
) -> Result<Option<UserRecord>, ApiError> {
    // Neither can exist: an empty email never parses, and no v4 UUID is nil.
    let index = store.keys().email(email.map_or("", Email::as_str));
    let user_id = store.get(&index).await?;
    let loaded = load(store, user_id.as_deref().unwrap_or(NO_USER)).await?;
    Ok(loaded.map(|l| l.user).filter(|_| user_id.is_some()))
}

const NO_USER: &str = "00000000-0000-0000-0000-000000000000";

/// Applies `change` unless someone else changed the record since it was loaded:
/// then `Ok(None)`.
pub async fn update(
    store: &Store,
    loaded: Loaded,
    change: impl FnOnce(&mut UserRecord),
) -> Result<Option<UserRecord>, ApiError> {
    let mut user = loaded.user;
    change(&mut user);
    user.version += 1;
    let key = store.keys().user(&user.user_id);
    let swapped = store
        .compare_and_swap(&key, &loaded.raw, Some(&encode(&user)?), None)
        .await?;
    Ok(swapped.then_some(user))
}
