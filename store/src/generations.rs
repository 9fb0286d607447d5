//! Generations: the id rules and the record both services read (a store hash under
//! `{g:<id>}`, so it shares a Cluster slot with the event history).

use std::collections::HashMap;
use std::time::Duration;

use crate::events::{GenerationStatus, stored_status};
use crate::{Store, StoreResult};
use authstream_runtime::clock::UnixTime;

pub use authstream_proto::GenerationId;
/// The public view of a generation record (a wire type).
pub use authstream_proto::auth::GenerationView as Generation;

/// The record's fields as stored (`None`: no such record).
pub fn from_fields(id: &GenerationId, mut f: HashMap<String, String>) -> Option<Generation> {
    let int = |v: Option<String>| v.and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(Generation {
        generation_id: id.clone(),
        owner_id: f.remove("owner_id")?,
        status: stored_status(id.as_str(), f.get("status").map(String::as_str)),
        progress: f
            .remove("progress")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0.0),
        stage: f.remove("stage").filter(|s| !s.is_empty()),
        created_at: int(f.remove("created_at")),
        updated_at: int(f.remove("updated_at")),
    })
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
        ("status", GenerationStatus::Pending.as_str().to_owned()),
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
        generation_id: id.clone(),
        owner_id: owner_id.to_owned(),
        status: GenerationStatus::Pending,
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
    Ok(from_fields(id, fields))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(status: Option<&str>) -> HashMap<String, String> {
        let mut fields: HashMap<String, String> = [
            ("owner_id", "u-1"),
            ("progress", "0.5"),
            ("stage", "render"),
            ("created_at", "1"),
            ("updated_at", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(status) = status {
            fields.insert("status".to_owned(), status.to_owned());
        }
        fields
    }

    #[test]
    fn the_stored_status_is_read_once_as_the_enum() {
        let id = GenerationId::parse("g-1").unwrap();
        for status in GenerationStatus::ALL {
            let generation = from_fields(&id, record(Some(status.as_str()))).unwrap();
            assert_eq!(generation.status, status);
        }
        // None stored, or none known (a corrupt record): pending, as a bad progress is 0.
        for raw in [None, Some("paused"), Some(""), Some("Completed")] {
            let generation = from_fields(&id, record(raw)).unwrap();
            assert_eq!(generation.status, GenerationStatus::Pending, "{raw:?}");
        }
        assert_eq!(from_fields(&id, HashMap::new()), None);
    }

    #[test]
    fn the_record_serialises_its_status_as_the_stored_string() {
        let id = GenerationId::parse("g-1").unwrap();
        let generation = from_fields(&id, record(Some("processing"))).unwrap();
        assert_eq!(
            serde_json::to_string(&generation).unwrap(),
            r#"{"generation_id":"g-1","owner_id":"u-1","status":"processing","progress":0.5,"stage":"render","created_at":1,"updated_at":2}"#
        );
    }

    /// The record's fields the scripts read and write by name (`HGET`, `HMGET`, `HSET`)
    /// are the fields of `Generation`, as `create` writes them and `from_fields` reads.
    #[test]
    fn the_scripts_name_the_records_fields() {
        let scripts = [
            include_str!("events/lua/append_event.lua"),
            include_str!("streams/lua/open_stream.lua"),
            include_str!("streams/lua/mint_stream_token.lua"),
        ];
        let mut named = std::collections::BTreeSet::new();
        for line in scripts.iter().flat_map(|lua| lua.lines()) {
            for call in ["'HGET'", "'HMGET'", "'HSET'"] {
                if let Some(at) = line.find(call) {
                    let args = &line[at + call.len()..];
                    named.extend(args.split('\'').skip(1).step_by(2));
                }
            }
        }
        assert_eq!(
            named,
            ["owner_id", "progress", "stage", "status", "updated_at"].into(),
            "the scripts' fields changed: update this list"
        );
        let id = GenerationId::generate();
        let generation = from_fields(&id, record(Some("pending"))).unwrap();
        let fields = serde_json::to_value(&generation).unwrap();
        for name in &named {
            assert!(
                fields.get(name).is_some(),
                "Generation has no field {name:?}"
            );
        }
    }
}
