//! Generations: the id rules and the record both services read (a store hash under
//! `{g:<id>}`, so it shares a Cluster slot with the event history).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::clock::UnixTime;
use crate::events::GenerationStatus;
use crate::store::{Store, StoreResult};

/// 1–128 of `A-Z a-z 0-9 . _ ~ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationId(String);

impl GenerationId {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > 128 {
            return Err("must be 1 to 128 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-'))
        {
            return Err("may only hold A-Z a-z 0-9 . _ ~ : -");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GenerationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a record's status ends the generation (see `GenerationStatus`).
pub fn is_terminal(status: &str) -> bool {
    GenerationStatus::parse(status).is_some_and(GenerationStatus::is_terminal)
}

/// The public view of a generation record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    pub generation_id: String,
    pub owner_id: String,
    pub status: String,
    pub progress: f64,
    pub stage: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Generation {
    fn from_fields(id: &GenerationId, mut f: HashMap<String, String>) -> Option<Self> {
        let int = |v: Option<String>| v.and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Self {
            generation_id: id.as_str().to_owned(),
            owner_id: f.remove("owner_id")?,
            status: f.remove("status").unwrap_or_else(|| "pending".to_owned()),
            progress: f
                .remove("progress")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0.0),
            stage: f.remove("stage").filter(|s| !s.is_empty()),
            created_at: int(f.remove("created_at")),
            updated_at: int(f.remove("updated_at")),
        })
    }
}

/// Creates the record unless the id is taken. `None` when it exists already.
pub async fn create(
    store: &Store,
    id: &GenerationId,
    owner_id: &str,
    now: UnixTime,
    ttl: Duration,
) -> StoreResult<Option<Generation>> {
    let now_ms = now.millis().to_string();
    let fields = [
        ("owner_id", owner_id.to_owned()),
        ("status", "pending".to_owned()),
        ("progress", "0".to_owned()),
        ("created_at", now_ms.clone()),
        ("updated_at", now_ms),
    ];
    if !store
        .hash_create(&store.keys().generation(id.as_str()), &fields, ttl)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(Generation {
        generation_id: id.as_str().to_owned(),
        owner_id: owner_id.to_owned(),
        status: "pending".to_owned(),
        progress: 0.0,
        stage: None,
        created_at: now.millis(),
        updated_at: now.millis(),
    }))
}

pub async fn load(store: &Store, id: &GenerationId) -> StoreResult<Option<Generation>> {
    let fields = store
        .hash_get_all(&store.keys().generation(id.as_str()))
        .await?;
    Ok(Generation::from_fields(id, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(GenerationId::parse("abc-123").is_ok());
        assert!(GenerationId::parse("a.b_c~d:e-F9").is_ok());
        assert!(GenerationId::parse(&"x".repeat(128)).is_ok());
        for bad in ["", "a b", "a/b", "ü", "{x}", &"x".repeat(129)] {
            assert!(GenerationId::parse(bad).is_err(), "{bad}");
        }
    }
}
