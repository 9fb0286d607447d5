//! Users in the store: a JSON record under `{u:<id>}:user` and an email index.
//! Updates are compare-and-swap on the whole record, which is also the ETag source.

use authstream_proto::claims::Tier;
use authstream_runtime::UnixTime;
use authstream_store::Store;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use serde::{Deserialize, Serialize};

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
    pub fn profile(&self) -> authstream_proto::auth::Profile {
        authstream_proto::auth::Profile {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            tier: self.tier,
            roles: self.roles.clone(),
            display_name: self.display_name.clone(),
            preferences: self.preferences.clone(),
        }
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
    Loaded::from_stored(store.get(&store.keys().user(user_id)).await?)
}

impl Loaded {
    /// A record as read from the store (`None`: no such user).
    pub fn from_stored(raw: Option<String>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let user = serde_json::from_str(&raw).map_err(ApiError::internal)?;
        Ok(Some(Self { user, raw }))
    }
}

/// Where the user id of `email` is kept (`None`: not even an email, a key that never
/// exists: an empty email never parses).
pub fn login_index(store: &Store, email: Option<&Email>) -> String {
    store.keys().email(email.map_or("", Email::as_str))
}

/// The record to read for a login, once the email index has answered: the user's,
/// or for an unknown or malformed email a placeholder that never exists, so neither
/// the timing nor the store's traffic tells them apart.
pub fn login_record(store: &Store, user_id: Option<&str>) -> String {
    store.keys().user(user_id.unwrap_or(NO_USER))
}

/// The user signing in, from the two reads above.
pub fn for_login(
    user_id: Option<&str>,
    record: Option<String>,
) -> Result<Option<UserRecord>, ApiError> {
    let loaded = Loaded::from_stored(record)?;
    Ok(loaded.map(|l| l.user).filter(|_| user_id.is_some()))
}

// No v4 UUID is nil.
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
