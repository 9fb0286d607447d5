//! The session record, typed once: the auth service writes it, the rotation script
//! (`lua/rotate_session.lua`) reads and rewrites its fields by these serde names, and
//! the in-memory twin does the same through `Rotating`, the part of it a rotation
//! touches. Tests below hold the Lua and `Rotating` to the record's names.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use authstream_runtime::clock::UnixTime;

/// One session's record, stored as JSON under `Keys::session`. It holds the ids of
/// the current token pair (never the tokens).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub user_id: String,
    /// The rotation family: every refresh token of this session carries it.
    pub family: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub user_agent: String,
    pub ip: Option<String>,
    /// The pair currently issued: its jtis and issue time (Unix seconds).
    pub access_jti: String,
    pub refresh_jti: String,
    pub issued_at: i64,
    /// The refresh token this pair replaced, and when (ms): the grace window.
    pub previous_refresh_jti: Option<String>,
    pub rotated_at: Option<i64>,
}

impl SessionRecord {
    /// When the session ends however often it is refreshed (Unix ms):
    /// `SESSION_MAX_AGE_SECS` after it began.
    pub fn expires_at(&self, max_age: Duration) -> UnixTime {
        UnixTime(self.created_at).plus(max_age)
    }
}

/// The fields of a `SessionRecord` a rotation reads and writes, by the record's serde
/// names; every other field is kept as it is, as the script's `cjson` decode and encode
/// keep it. The in-memory twin of `lua/rotate_session.lua` works on this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Rotating {
    #[serde(default)]
    pub(crate) created_at: i64,
    #[serde(default)]
    pub(crate) refresh_jti: Option<String>,
    #[serde(default)]
    pub(crate) previous_refresh_jti: Option<String>,
    #[serde(default)]
    pub(crate) rotated_at: Option<i64>,
    #[serde(default)]
    pub(crate) last_seen_at: i64,
    #[serde(default)]
    pub(crate) access_jti: String,
    #[serde(default)]
    pub(crate) issued_at: i64,
    /// The rest of the record, untouched.
    #[serde(flatten)]
    pub(crate) rest: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The names after `s.` in the rotation script: the record's fields it reads and writes.
    fn fields_the_lua_reads() -> BTreeSet<String> {
        let lua = include_str!("lua/rotate_session.lua");
        let mut found = BTreeSet::new();
        for (at, _) in lua.match_indices("s.") {
            let before = lua[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let name: String = lua[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        found
    }

    fn record() -> SessionRecord {
        SessionRecord {
            session_id: "s".into(),
            user_id: "u".into(),
            family: "f".into(),
            created_at: 1,
            last_seen_at: 1,
            user_agent: "a".into(),
            ip: None,
            access_jti: "a".into(),
            refresh_jti: "r".into(),
            issued_at: 1,
            previous_refresh_jti: None,
            rotated_at: Some(2),
        }
    }

    fn names(value: serde_json::Value) -> BTreeSet<String> {
        match value {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn every_field_the_rotation_script_reads_is_a_field_of_the_record() {
        let record = record();
        let serde_names: BTreeSet<String> = match serde_json::to_value(&record) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            other => panic!("not an object: {other:?}"),
        };
        let read = fields_the_lua_reads();
        let expected: BTreeSet<String> = [
            "created_at",
            "refresh_jti",
            "previous_refresh_jti",
            "rotated_at",
            "last_seen_at",
            "access_jti",
            "issued_at",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            read, expected,
            "the script's fields changed: update this list"
        );
        let unknown: Vec<_> = read.difference(&serde_names).collect();
        assert!(
            unknown.is_empty(),
            "the Lua reads fields the record lacks: {unknown:?}"
        );
        // The twin's view touches exactly the fields the script does.
        let rotating: Rotating =
            serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
        let touched = names(
            serde_json::to_value(Rotating {
                rest: Default::default(),
                ..rotating
            })
            .unwrap(),
        );
        assert_eq!(touched, read);
    }

    #[test]
    fn a_record_goes_through_the_twins_view_unchanged() {
        let record = record();
        let value = serde_json::to_value(&record).unwrap();
        let rotating: Rotating = serde_json::from_value(value.clone()).unwrap();
        let back = serde_json::to_value(&rotating).unwrap();
        assert_eq!(back, value);
        assert_eq!(
            serde_json::from_value::<SessionRecord>(back).unwrap(),
            record
        );
    }
}
