//! Events on Redis: the append script and the history reads.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, FromRedisValue, Script};

use super::{AppendOutcome, EventPage, NewEvent, parse_event_id};
use crate::StoreResult;
use crate::redis::unavailable;
use crate::redis::{RedisStore, ms};

/// `Store::append_event`.
pub(crate) static APPEND_EVENT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/append_event.lua")));

impl RedisStore {
    pub(crate) async fn append_event(
        &self,
        record: &str,
        history: &str,
        channels: (&str, &str),
        event: &NewEvent<'_>,
    ) -> StoreResult<AppendOutcome> {
        let mut inv = APPEND_EVENT.prepare_invoke();
        inv.key(record)
            .key(history)
            .arg(event.data)
            .arg(event.max_len.max(1))
            .arg(event.status.as_str())
            .arg(event.now_ms)
            .arg(ms(event.ttl))
            .arg(channels.0)
            .arg(event.generation_id)
            .arg(event.progress.map(|p| p.to_string()).unwrap_or_default())
            .arg(event.stage.unwrap_or_default())
            .arg(channels.1);
        // An acknowledged event is on a replica before its 202 (on a Cluster).
        let confirming = self.confirming();
        let reply: Vec<redis::Value> = confirming.invoke(inv).await?;
        confirming.confirm(&[record]).await?;
        let code = reply
            .first()
            .and_then(|v| i64::from_redis_value_ref(v).ok());
        match code {
            Some(0) => Ok(AppendOutcome::NoGeneration),
            Some(1) => Ok(AppendOutcome::Finished),
            _ => {
                let id = reply
                    .get(1)
                    .and_then(|v| String::from_redis_value_ref(v).ok())
                    .ok_or_else(|| unavailable("unexpected reply to append"))?;
                Ok(AppendOutcome::Appended { id })
            }
        }
    }

    pub(crate) async fn read_events(
        &self,
        history: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<EventPage> {
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let data = |entries: Entries| {
            entries
                .into_iter()
                .filter_map(|(id, fields)| {
                    fields
                        .into_iter()
                        .find(|(f, _)| f == "d")
                        .map(|(_, d)| (id, d))
                })
                .collect::<Vec<_>>()
        };
        // `XRANGE <history> <from> + [COUNT limit]`
        let range = |from: &str| {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(history).arg(from).arg("+");
            if let Some(limit) = limit {
                cmd.arg("COUNT").arg(limit);
            }
            cmd
        };
        let Some(after) = after else {
            let all: Entries = self.query(&range("-")).await?;
            return Ok(EventPage {
                events: data(all),
                reset: false,
            });
        };
        let Some(point) = parse_event_id(after) else {
            let all: Entries = self.query(&range("-")).await?;
            return Ok(EventPage {
                events: data(all),
                reset: true,
            });
        };
        // The oldest and newest kept ids tell whether `after` is within the history.
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(history)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        pipe.cmd("XREVRANGE")
            .arg(history)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        pipe.add_command(range(&format!("({after}")));
        let (oldest, newest, rest): (Entries, Entries, Entries) = self.pipe(&pipe).await?;
        let id_of = |e: &Entries| e.first().and_then(|(id, _)| parse_event_id(id));
        match (id_of(&oldest), id_of(&newest)) {
            (Some(oldest), Some(newest)) if point >= oldest && point <= newest => Ok(EventPage {
                events: data(rest),
                reset: false,
            }),
            (None, _) | (_, None) => Ok(EventPage {
                events: Vec::new(),
                reset: true,
            }),
            // Older than what is kept, or newer than anything published: start over.
            _ => {
                let all: Entries = self.query(&range("-")).await?;
                Ok(EventPage {
                    events: data(all),
                    reset: true,
                })
            }
        }
    }
}
