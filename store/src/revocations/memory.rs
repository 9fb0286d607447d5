//! The in-memory twin of the revocation script and the log read.

use super::RevocationWrite;
use crate::StoreResult;
use crate::memory::{Entry, MemoryStore, Stream, Value};
use crate::parse_event_id;

impl MemoryStore {
    pub(crate) async fn revoke(
        &self,
        write: &RevocationWrite,
        logs: &[String],
        entry: &str,
        now_ms: i64,
        oldest_kept_ms: i64,
    ) -> StoreResult<String> {
        let (markers, keep_for) = (&write.markers, write.keep_for);
        self.with(|d, now| {
            for (key, value) in markers {
                d.insert(key, Value::Str(value.clone()), Some(keep_for), now);
            }
            let mut ended_ids = write.session_ids.clone();
            if let (Some(index), Some(_)) = (&write.index, &write.all)
                && let Some(Entry {
                    value: Value::Set(members),
                    ..
                }) = d.live(index, now)
            {
                ended_ids.extend(members.iter().cloned());
            }
            for session_id in &ended_ids {
                if let Some(all) = &write.all {
                    let marker = format!("{}{session_id}", all.marker_prefix);
                    d.insert(&marker, Value::Str("1".into()), Some(keep_for), now);
                    d.entries
                        .remove(&format!("{}{session_id}", all.record_prefix));
                }
            }
            for record in &write.records {
                d.entries.remove(record);
            }
            if let Some(index) = &write.index {
                if write.all.is_some() {
                    d.entries.remove(index);
                } else if let Some(Entry {
                    value: Value::Set(members),
                    ..
                }) = d.live(index, now)
                {
                    for session_id in &write.session_ids {
                        members.remove(session_id);
                    }
                    if members.is_empty() {
                        d.entries.remove(index);
                    }
                }
            }
            let mut ids = logs.iter().map(|log| {
                if d.live(log, now).is_none() {
                    d.insert(log, Value::Stream(Stream::default()), None, now);
                }
                let Some(Entry {
                    value: Value::Stream(stream),
                    ..
                }) = d.entries.get_mut(log)
                else {
                    return String::new();
                };
                let oldest = u64::try_from(oldest_kept_ms).unwrap_or(0);
                stream.entries.retain(|((ms, _), _)| *ms >= oldest);
                let (ms, seq) = stream.push(now_ms, entry);
                format!("{ms}-{seq}")
            });
            ids.next().unwrap_or_default()
        })
    }

    pub(crate) async fn read_log(
        &self,
        log: &str,
        after: &str,
        count: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        let after = parse_event_id(after).unwrap_or((0, 0));
        self.with(|d, now| match d.live(log, now) {
            Some(Entry {
                value: Value::Stream(s),
                ..
            }) => s
                .entries
                .iter()
                .filter(|(id, _)| *id > after)
                .take(count)
                .map(|((ms, seq), entry)| (format!("{ms}-{seq}"), entry.clone()))
                .collect(),
            _ => Vec::new(),
        })
    }
}
