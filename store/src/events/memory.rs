//! The in-memory twin of the append script and the history reads.

use super::{
    AppendOutcome, EventPage, GenerationStatus, NewEvent, parse_event_id, published_event_payload,
};
use crate::StoreResult;
use crate::memory::{Entry, MemoryStore, Stream, Value};

impl MemoryStore {
    pub(crate) async fn append_event(
        &self,
        record: &str,
        history: &str,
        channels: (&str, &str),
        event: &NewEvent<'_>,
    ) -> StoreResult<AppendOutcome> {
        let appended = self.with(|d, now| {
            let Some(Entry {
                value: Value::Hash(fields),
                expires_at,
            }) = d.live(record, now)
            else {
                return AppendOutcome::NoGeneration;
            };
            // As the script reads it: a status it does not know ends nothing.
            match fields.get("status").map(|s| GenerationStatus::parse(s)) {
                None => return AppendOutcome::NoGeneration,
                Some(Some(status)) if status.is_terminal() => return AppendOutcome::Finished,
                Some(_) => {}
            }
            fields.insert("status".into(), event.status.as_str().to_owned());
            fields.insert("updated_at".into(), event.now_ms.to_string());
            if let Some(p) = event.progress {
                fields.insert("progress".into(), p.to_string());
            }
            if let Some(s) = event.stage {
                fields.insert("stage".into(), s.to_owned());
            }
            *expires_at = Some(now + event.ttl);
            if d.live(history, now).is_none() {
                d.insert(history, Value::Stream(Stream::default()), None, now);
            }
            let Some(Entry {
                value: Value::Stream(stream),
                expires_at,
            }) = d.entries.get_mut(history)
            else {
                return AppendOutcome::NoGeneration;
            };
            *expires_at = Some(now + event.ttl);
            let id = stream.push(event.now_ms, event.data);
            while stream.entries.len() > event.max_len.max(1) {
                stream.entries.pop_front();
            }
            AppendOutcome::Appended {
                id: format!("{}-{}", id.0, id.1),
            }
        })?;
        if let AppendOutcome::Appended { id } = &appended {
            let payload =
                published_event_payload(event.generation_id, id, event.status, event.data);
            // The generation's own channel, then (while upgrading) the old one.
            self.publish(channels.0, &payload).await?;
            if !channels.1.is_empty() {
                self.publish(channels.1, &payload).await?;
            }
        }
        Ok(appended)
    }

    pub(crate) async fn read_events(
        &self,
        history: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<EventPage> {
        self.with(|d, now| {
            let entries: Vec<((u64, u64), String)> = match d.live(history, now) {
                Some(Entry {
                    value: Value::Stream(s),
                    ..
                }) => s.entries.iter().cloned().collect(),
                _ => Vec::new(),
            };
            let render = |e: Vec<((u64, u64), String)>| {
                e.into_iter()
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|((ms, seq), data)| (format!("{ms}-{seq}"), data))
                    .collect()
            };
            let Some(after) = after else {
                return EventPage {
                    events: render(entries),
                    reset: false,
                };
            };
            let oldest = entries.first().map(|(id, _)| *id);
            let newest = entries.last().map(|(id, _)| *id);
            match (parse_event_id(after), oldest.zip(newest)) {
                // Within the kept history; older or newer than it means start over.
                (Some(point), Some((oldest, newest))) if point >= oldest && point <= newest => {
                    EventPage {
                        events: render(entries.into_iter().filter(|(id, _)| *id > point).collect()),
                        reset: false,
                    }
                }
                _ => EventPage {
                    events: render(entries),
                    reset: true,
                },
            }
        })
    }
}
