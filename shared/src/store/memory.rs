//! The in-memory store for the single-process default: the same semantics as Redis
//! (expiry, atomic get-and-delete, compare-and-swap, capped event history, pub/sub),
//! one mutex, no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::events::GenerationStatus;
use crate::generation::stored_status;
use crate::rate_limit::{self, Cost, Decision, Gcra, TatUpdate};

use super::{
    Admission, AppendOutcome, EventPage, GrantFound, MintAdmission, MintOutcome, Minted, NewEvent,
    NewSession, NewStreamToken, PubSubMessage, Read, ReadAnswer, RevocationWrite, Rotation,
    SessionRotation, Spend, StoreResult, StreamAdmission, StreamOpened, StreamOpening, Taken,
    Write, parse_event_id, published_event_payload,
};
use crate::stream_token::{ISSUED, Refusal, Stats, StatsFlush, USED};

/// The twin of `GCRA_SCRIPT` on the wall clock in microseconds, as Redis's `TIME`
/// gives it.
fn decide(d: &mut Data, key: &str, gcra: Gcra, cost: Cost, now: Instant) -> Decision {
    let now_us = wall_clock_us();
    let stored = match d.live(key, now) {
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => s.parse().ok(),
        _ => None,
    };
    let (decision, update) = rate_limit::gcra(stored, now_us, gcra, cost);
    match update {
        TatUpdate::Keep => {}
        TatUpdate::Set { tat_us, ttl } => {
            d.insert(key, Value::Str(tat_us.to_string()), Some(ttl), now);
        }
        TatUpdate::Delete => {
            d.entries.remove(key);
        }
    }
    decision
}

/// A counter's value (0 when missing or not a number).
fn counter(d: &mut Data, key: &str, now: Instant) -> u64 {
    match d.live(key, now) {
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// The wall clock in microseconds, as Redis's `TIME` gives it.
fn wall_clock_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

enum Value {
    Str(String),
    Set(BTreeSet<String>),
    /// member -> score (an expiry time in ms)
    Expiring(BTreeMap<String, i64>),
    Hash(HashMap<String, String>),
    Stream(Stream),
}

#[derive(Default)]
struct Stream {
    entries: VecDeque<((u64, u64), String)>,
    last: (u64, u64),
}

impl Stream {
    /// Appends with the next id at `now_ms`, as `XADD *` does.
    fn push(&mut self, now_ms: i64, data: &str) -> (u64, u64) {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let id = if ms > self.last.0 {
            (ms, 0)
        } else {
            (self.last.0, self.last.1 + 1)
        };
        self.last = id;
        self.entries.push_back((id, data.to_owned()));
        id
    }
}

struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

#[derive(Default)]
struct Data {
    entries: HashMap<String, Entry>,
    writes_since_sweep: usize,
}

impl Data {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|t| t <= now))
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: &str, value: Value, ttl: Option<Duration>, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 256 {
            // Amortised cleanup so expired keys never pile up.
            self.writes_since_sweep = 0;
            self.entries
                .retain(|_, e| e.expires_at.is_none_or(|t| t > now));
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at: ttl.map(|d| now + d),
            },
        );
    }
}

#[derive(Clone)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    sender: broadcast::Sender<PubSubMessage>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            data: Arc::new(Mutex::new(Data::default())),
            sender: broadcast::channel(4096).0,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data, Instant) -> T) -> StoreResult<T> {
        let now = Instant::now();
        Ok(f(&mut self.data.lock(), now))
    }

    pub(super) async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    pub(super) async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Some(s.clone()),
            _ => None,
        })
    }

    pub(super) async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        self.with(|d, now| {
            keys.iter()
                .map(|k| match d.live(k, now) {
                    Some(Entry {
                        value: Value::Str(s),
                        ..
                    }) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> StoreResult<()> {
        self.with(|d, now| d.insert(key, Value::Str(value.to_owned()), ttl, now))
    }

    pub(super) async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        self.set_if_absent(key, value, Some(ttl))
    }

    pub(super) async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        self.set_if_absent(key, value, None)
    }

    fn set_if_absent(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<bool> {
        self.with(|d, now| {
            if d.live(key, now).is_some() {
                return false;
            }
            d.insert(key, Value::Str(value.to_owned()), ttl, now);
            true
        })
    }

    pub(super) async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|d, now| {
            d.live(key, now)?;
            match d.entries.remove(key) {
                Some(Entry {
                    value: Value::Str(s),
                    ..
                }) => Some(s),
                _ => None,
            }
        })
    }

    pub(super) async fn get_del_marking(
        &self,
        key: &str,
        marker: &str,
        mark: &str,
    ) -> StoreResult<Taken> {
        self.with(|d, now| {
            let removed = d.live(key, now).is_some().then(|| d.entries.remove(key));
            let value = match removed.flatten() {
                Some(Entry {
                    value: Value::Str(s),
                    ..
                }) => Some(s),
                _ => None,
            };
            let state = d.live(marker, now);
            match value {
                Some(value) => {
                    if let Some(entry) = state {
                        entry.value = Value::Str(mark.to_owned());
                    }
                    Taken::Value(value)
                }
                None => Taken::Missing {
                    marker: match state {
                        Some(Entry {
                            value: Value::Str(s),
                            ..
                        }) => Some(s.clone()),
                        _ => None,
                    },
                },
            }
        })
    }

    pub(super) async fn del(&self, key: &str) -> StoreResult<bool> {
        self.with(|d, now| d.live(key, now).is_some() && d.entries.remove(key).is_some())
    }

    pub(super) async fn exists(&self, key: &str) -> StoreResult<bool> {
        self.with(|d, now| d.live(key, now).is_some())
    }

    pub(super) async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        self.with(|d, now| {
            d.live(key, now)
                .and_then(|e| e.expires_at)
                .map(|t| t.saturating_duration_since(now))
        })
    }

    pub(super) async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: Option<&str>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.with(|d, now| {
            let matches = matches!(d.live(key, now), Some(Entry { value: Value::Str(s), .. }) if s == expected);
            if matches {
                match new {
                    Some(v) => d.insert(key, Value::Str(v.to_owned()), ttl, now),
                    None => {
                        d.entries.remove(key);
                    }
                }
            }
            matches
        })
    }

    pub(super) async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        let mut created = true;
        for write in writes {
            match *write {
                Write::Set { key, value, ttl } => self.set(key, value, ttl).await?,
                Write::SetNx { key, value, ttl } => {
                    created &= self.set_if_absent(key, value, Some(ttl))?;
                }
                Write::IncrBy { key, by } => self.incr_by(key, by).map(drop)?,
                Write::ExpiringAdd {
                    key,
                    member,
                    expires_at_ms,
                    now_ms,
                } => {
                    self.expiring_add(key, member, expires_at_ms, now_ms)
                        .await?;
                }
                Write::ExpiringRemove { key, member } => self.expiring_remove(key, member).await?,
            }
        }
        Ok(created)
    }

    pub(super) async fn incr(&self, key: &str) -> StoreResult<i64> {
        self.incr_by(key, 1)
    }

    fn incr_by(&self, key: &str, by: i64) -> StoreResult<i64> {
        self.with(|d, now| {
            let (current, expires) = match d.live(key, now) {
                Some(Entry {
                    value: Value::Str(s),
                    expires_at,
                }) => (s.parse::<i64>().unwrap_or(0), *expires_at),
                _ => (0, None),
            };
            let next = current.saturating_add(by);
            d.insert(
                key,
                Value::Str(next.to_string()),
                expires.map(|t| t.saturating_duration_since(now)),
                now,
            );
            next
        })
    }

    fn update<T>(
        &self,
        key: &str,
        make: impl FnOnce() -> Value,
        f: impl FnOnce(&mut Value) -> T,
    ) -> StoreResult<Option<T>> {
        self.with(|d, now| {
            if d.live(key, now).is_none() {
                d.insert(key, make(), None, now);
            }
            let entry = d.entries.get_mut(key).map(|e| &mut e.value);
            entry.map(f)
        })
    }

    pub(super) async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        self.update(
            key,
            || Value::Set(BTreeSet::new()),
            |v| {
                if let Value::Set(s) = v {
                    s.insert(member.to_owned());
                }
            },
        )?;
        self.with(|d, now| {
            if let Some(e) = d.entries.get_mut(key) {
                e.expires_at = Some(now + ttl);
            }
        })
    }

    pub(super) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.with(|d, now| {
            if let Some(Entry {
                value: Value::Set(s),
                ..
            }) = d.live(key, now)
            {
                s.remove(member);
                if s.is_empty() {
                    d.entries.remove(key);
                }
            }
        })
    }

    pub(super) async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Set(s),
                ..
            }) => s.iter().cloned().collect(),
            _ => Vec::new(),
        })
    }

    pub(super) async fn expiring_add(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let lives_for =
            Duration::from_millis(u64::try_from(expires_at_ms - now_ms).unwrap_or(0).max(1));
        self.update(
            key,
            || Value::Expiring(BTreeMap::new()),
            |v| {
                if let Value::Expiring(z) = v {
                    z.retain(|_, expires| *expires > now_ms);
                    z.insert(member.to_owned(), expires_at_ms);
                }
            },
        )?;
        // The set itself goes when its longest-lived member does.
        self.with(|d, now| {
            if let Some(e) = d.entries.get_mut(key) {
                let until = now + lives_for;
                e.expires_at = Some(e.expires_at.map_or(until, |t| t.max(until)));
            }
        })
    }

    pub(super) async fn expiring_add_capped(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
        max: usize,
    ) -> StoreResult<bool> {
        let lives_for =
            Duration::from_millis(u64::try_from(expires_at_ms - now_ms).unwrap_or(0).max(1));
        // Under one lock: the check and the add are one step, as in the Redis script.
        self.with(|d, now| {
            if d.live(key, now).is_none() {
                if max == 0 {
                    return false;
                }
                d.insert(key, Value::Expiring(BTreeMap::new()), None, now);
            }
            let Some(entry) = d.entries.get_mut(key) else {
                return false;
            };
            let Value::Expiring(z) = &mut entry.value else {
                return false;
            };
            z.retain(|_, expires| *expires > now_ms);
            if !z.contains_key(member) && z.len() >= max {
                return false;
            }
            z.insert(member.to_owned(), expires_at_ms);
            let until = now + lives_for;
            entry.expires_at = Some(entry.expires_at.map_or(until, |t| t.max(until)));
            true
        })
    }

    pub(super) async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.with(|d, now| {
            if let Some(Entry {
                value: Value::Expiring(z),
                ..
            }) = d.live(key, now)
            {
                z.remove(member);
            }
        })
    }

    pub(super) async fn expiring_remove_all(
        &self,
        key: &str,
        members: &[String],
    ) -> StoreResult<()> {
        self.with(|d, now| {
            if let Some(Entry {
                value: Value::Expiring(z),
                ..
            }) = d.live(key, now)
            {
                for member in members {
                    z.remove(member);
                }
            }
        })
    }

    pub(super) async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Expiring(z),
                ..
            }) => {
                z.retain(|_, expires| *expires > now_ms);
                z.len() as u64
            }
            _ => 0,
        })
    }

    /// The twin of Redis's `STREAM_STATS` script, step for step.
    pub(super) async fn stream_stats(
        &self,
        keys: &[String; 4],
        flush: &StatsFlush,
        read: bool,
    ) -> StoreResult<Stats> {
        let counted = |second: i64| second.saturating_mul(1000) > flush.now_ms;
        self.with(|d, now| {
            let [issued, consumed, rejected, live] = keys;
            for (key, by) in [
                (issued, flush.issued),
                (consumed, flush.consumed),
                (rejected, flush.rejected),
            ] {
                if by == 0 {
                    continue;
                }
                let total = counter(d, key, now).saturating_add(by);
                d.insert(key, Value::Str(total.to_string()), None, now);
            }
            let last = flush
                .live
                .iter()
                .map(|(s, _)| *s)
                .filter(|s| counted(*s))
                .max();
            if let Some(last) = last {
                if !matches!(
                    d.live(live, now),
                    Some(Entry {
                        value: Value::Hash(_),
                        ..
                    })
                ) {
                    d.insert(live, Value::Hash(HashMap::new()), None, now);
                }
                let until = now
                    + Duration::from_millis(
                        u64::try_from(last.saturating_mul(1000) - flush.now_ms).unwrap_or(0),
                    );
                if let Some(entry) = d.entries.get_mut(live.as_str()) {
                    if let Value::Hash(fields) = &mut entry.value {
                        for (second, change) in &flush.live {
                            if !counted(*second) {
                                continue;
                            }
                            let field = second.to_string();
                            let left = fields
                                .get(&field)
                                .and_then(|v| v.parse::<i64>().ok())
                                .unwrap_or(0)
                                + change;
                            if left == 0 {
                                fields.remove(&field);
                            } else {
                                fields.insert(field, left.to_string());
                            }
                        }
                        fields.retain(|field, _| field.parse().is_ok_and(counted));
                    }
                    entry.expires_at = Some(entry.expires_at.map_or(until, |t| t.max(until)));
                }
                if matches!(
                    d.live(live, now),
                    Some(Entry { value: Value::Hash(h), .. }) if h.is_empty()
                ) {
                    d.entries.remove(live.as_str());
                }
            }
            if !read {
                return Stats::default();
            }
            let active = match d.live(live, now) {
                Some(Entry {
                    value: Value::Hash(fields),
                    ..
                }) => fields
                    .iter()
                    .filter(|(field, _)| field.parse().is_ok_and(counted))
                    .filter_map(|(_, v)| v.parse::<i64>().ok())
                    .sum::<i64>(),
                _ => 0,
            };
            Stats {
                active: u64::try_from(active).unwrap_or(0),
                issued_total: counter(d, issued, now),
                consumed_total: counter(d, consumed, now),
                rejected_total: counter(d, rejected, now),
            }
        })
    }

    pub(super) async fn hash_create(
        &self,
        key: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.with(|d, now| {
            if d.live(key, now).is_some() {
                return false;
            }
            let map = fields
                .iter()
                .map(|(f, v)| ((*f).to_owned(), v.clone()))
                .collect();
            d.insert(key, Value::Hash(map), Some(ttl), now);
            true
        })
    }

    pub(super) async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => h.clone(),
            _ => HashMap::new(),
        })
    }

    /// The twin of `FIELDS_SCRIPT`, under the one lock.
    pub(super) async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        let now_us = wall_clock_us();
        let decisions = self.with(|d, now| {
            let (mut fields, expires_at) = match d.live(spend.key, now) {
                Some(Entry {
                    value: Value::Hash(h),
                    expires_at,
                }) => (h.clone(), *expires_at),
                _ => (HashMap::new(), None),
            };
            let stored: Vec<Option<i64>> = spend
                .budgets
                .iter()
                .map(|b| fields.get(b.field).and_then(|v| v.parse().ok()))
                .collect();
            let gcras: Vec<Gcra> = spend.budgets.iter().map(|b| b.gcra).collect();
            let decided = rate_limit::gcra_all(&stored, now_us, &gcras, spend.cost);
            let mut longest = expires_at.map_or(Duration::ZERO, |t| t - now);
            for (budget, (_, update)) in spend.budgets.iter().zip(&decided) {
                match update {
                    TatUpdate::Keep => {}
                    TatUpdate::Set { tat_us, ttl } => {
                        fields.insert(budget.field.to_owned(), tat_us.to_string());
                        longest = longest.max(*ttl);
                    }
                    TatUpdate::Delete => {
                        fields.remove(budget.field);
                    }
                }
            }
            fields.retain(|_, tat| tat.parse::<i64>().is_ok_and(|t| t > now_us));
            if fields.is_empty() || longest.is_zero() {
                d.entries.remove(spend.key);
            } else {
                d.insert(spend.key, Value::Hash(fields), Some(longest), now);
            }
            decided.into_iter().map(|(decision, _)| decision).collect()
        })?;
        let found = match read {
            Some(read) => Some(self.read(read).await?),
            None => None,
        };
        Ok((decisions, found))
    }

    pub(super) async fn rate_limit(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
    ) -> StoreResult<Decision> {
        self.with(|d, now| decide(d, key, gcra, cost, now))
    }

    pub(super) async fn append_event(
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

    pub(super) async fn read_events(
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

    pub(super) async fn rate_limit_and_read(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        Ok((
            self.rate_limit(key, gcra, cost).await?,
            self.read(read).await?,
        ))
    }

    pub(super) async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        Ok(match read {
            Read::Get(key) => ReadAnswer::Value(self.get(key).await?),
            Read::HashGetAll(key) => ReadAnswer::Hash(self.hash_get_all(key).await?),
            Read::SetMembers(key) => ReadAnswer::Members(self.set_members(key).await?),
        })
    }

    pub(super) async fn save_session(
        &self,
        record: &str,
        index: &str,
        session: &NewSession<'_>,
        along: Option<Spend<'_>>,
    ) -> StoreResult<(usize, Vec<Decision>)> {
        self.set(record, session.record, Some(session.ttl)).await?;
        self.set_add(index, session.session_id, session.index_ttl)
            .await?;
        let count = self.set_members(index).await?.len();
        let decisions = match along {
            Some(spend) => self.rate_limit_fields(&spend, None).await?.0,
            None => Vec::new(),
        };
        Ok((count, decisions))
    }

    /// The twin of the Redis script, step for step, under the one lock.
    pub(super) async fn rotate_session(
        &self,
        session: &str,
        index: &str,
        user: &str,
        r: &SessionRotation<'_>,
    ) -> StoreResult<(Rotation, Option<Decision>)> {
        self.with(|d, now| {
            let mut decision = None;
            let text = |d: &mut Data, key: &str| match d.live(key, now) {
                Some(Entry {
                    value: Value::Str(s),
                    ..
                }) => Some(s.clone()),
                _ => None,
            };
            let Some(raw) = text(d, session) else {
                return (Rotation::Gone, None);
            };
            let Ok(serde_json::Value::Object(mut record)) = serde_json::from_str(&raw) else {
                return (Rotation::Gone, None);
            };
            let number = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_i64);
            let now_ms = r.now.millis();
            let max_age = i64::try_from(r.max_age.as_millis()).unwrap_or(i64::MAX);
            let left = number(record.get("created_at"))
                .unwrap_or(0)
                .saturating_add(max_age)
                .saturating_sub(now_ms);
            if left <= 0 {
                return (Rotation::Expired, None);
            }
            let current =
                record.get("refresh_jti").and_then(|v| v.as_str()) == Some(r.presented_jti);
            let grace = i64::try_from(r.grace.as_millis()).unwrap_or(i64::MAX);
            let retired = record.get("previous_refresh_jti").and_then(|v| v.as_str());
            let in_grace = retired == Some(r.presented_jti)
                && number(record.get("rotated_at")).is_some_and(|at| now_ms - at <= grace);
            if !current && !in_grace {
                return (Rotation::Reused, None);
            }
            if let Some(budget) = &r.budget {
                let spent = decide(d, budget.key, budget.gcra, budget.cost, now);
                decision = Some(spent);
                if !spent.allowed {
                    return (Rotation::Limited, decision);
                }
            }
            if !current {
                let rotation = Rotation::Grace {
                    session: raw,
                    user: text(d, user),
                };
                return (rotation, decision);
            }
            let retired = record.get("refresh_jti").cloned();
            record.insert("previous_refresh_jti".into(), retired.unwrap_or_default());
            record.insert("rotated_at".into(), now_ms.into());
            record.insert("last_seen_at".into(), now_ms.into());
            record.insert("access_jti".into(), r.access_jti.into());
            record.insert("refresh_jti".into(), r.refresh_jti.into());
            record.insert("issued_at".into(), r.now.secs().into());
            let rotated = serde_json::Value::Object(record).to_string();
            let lives_for =
                Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(r.refresh_ttl);
            d.insert(session, Value::Str(rotated.clone()), Some(lives_for), now);
            if !matches!(
                d.live(index, now),
                Some(Entry {
                    value: Value::Set(_),
                    ..
                })
            ) {
                d.insert(index, Value::Set(BTreeSet::new()), None, now);
            }
            if let Some(entry) = d.entries.get_mut(index) {
                if let Value::Set(members) = &mut entry.value {
                    members.insert(r.session_id.to_owned());
                }
                entry.expires_at = Some(now + r.refresh_ttl);
            }
            let rotation = Rotation::Rotated {
                session: rotated,
                user: text(d, user),
            };
            (rotation, decision)
        })
    }

    /// The twin of Redis's `OPEN_STREAM` script, step for step. Only the take is
    /// atomic here, and only it needs to be: the rest reads, or writes a fresh key.
    pub(super) async fn open_stream(
        &self,
        keys: &[String; 8],
        opening: &StreamOpening<'_>,
    ) -> StoreResult<StreamOpened> {
        let [
            token,
            token_state,
            cookie,
            cookie_state,
            record,
            history,
            resume,
            resume_state,
        ] = keys;
        let presented = [
            (opening.token.is_some(), token, token_state, "token", false),
            (
                opening.cookie.is_some(),
                cookie,
                cookie_state,
                "resume",
                true,
            ),
        ];
        let mut refusal = None;
        let mut taken = None;
        for (present, key, state, kind, via_cookie) in presented {
            if !present || taken.is_some() {
                continue;
            }
            match self.take_grant(key, state, kind).await? {
                Ok((value, grant)) => taken = Some((value, grant, via_cookie)),
                Err(why) => {
                    refusal.get_or_insert(why);
                }
            }
        }
        let Some((value, mut grant, via_cookie)) = taken else {
            return Ok(StreamOpened::Refused(refusal.unwrap_or(Refusal::Unknown)));
        };
        let found = 'found: {
            let mut fields = self.hash_get_all(record).await?;
            let Some(owner_id) = fields.remove("owner_id") else {
                break 'found GrantFound::Gone;
            };
            if grant["user_id"].as_str() != Some(owner_id.as_str())
                && grant["admin"].as_bool() != Some(true)
            {
                break 'found GrantFound::NotOwner;
            }
            let left = grant["session_expires_at"].as_i64().unwrap_or(0) - opening.now_ms;
            let Some(left) = u64::try_from(left).ok().filter(|&ms| ms > 0) else {
                break 'found GrantFound::SessionEnded;
            };
            let page = self
                .read_events(history, opening.after, Some(opening.page_size.max(1)))
                .await?;
            let resume_ttl = opening.resume_ttl.min(Duration::from_millis(left));
            grant["kind"] = "resume".into();
            grant["issued_at"] = opening.now_ms.into();
            if !self.set_nx(resume, &grant.to_string(), resume_ttl).await? {
                break 'found GrantFound::Collision;
            }
            self.set_nx(resume_state, ISSUED, resume_ttl.saturating_mul(2))
                .await?;
            GrantFound::Open {
                owner_id,
                status: stored_status(
                    opening.generation_id,
                    fields.get("status").map(String::as_str),
                ),
                page,
                resume_ttl,
            }
        };
        Ok(StreamOpened::Taken {
            grant: value,
            via_cookie,
            found,
        })
    }

    /// The twin of the pipelined `ADMIT_MINT` and `MINT_STREAM_TOKEN` scripts.
    pub(super) async fn mint_stream_token(
        &self,
        user: Option<(&MintAdmission<'_>, &[String; 2])>,
        token: Option<(&NewStreamToken<'_>, &[String; 3])>,
    ) -> StoreResult<MintOutcome> {
        let mut outcome = MintOutcome::default();
        if let Some((admission, [budget, session])) = user {
            let decision = self.rate_limit(budget, admission.gcra, Cost::Take).await?;
            outcome.admission = Some((decision, self.get(session).await?));
        }
        if let Some((token, [record, key, state])) = token {
            let owner = self.hash_get_all(record).await?.remove("owner_id");
            outcome.minted = Some(match owner {
                None => Minted::Gone,
                Some(owner) if owner != token.user_id && !token.admin => Minted::NotOwner,
                Some(_) => {
                    if self.set_nx(key, token.grant, token.ttl).await? {
                        self.set_nx(state, ISSUED, token.ttl.saturating_mul(2))
                            .await?;
                        Minted::Stored
                    } else {
                        Minted::Collision
                    }
                }
            });
        }
        Ok(outcome)
    }

    /// Takes a grant of `kind` with `GETDEL`, marking it used; or says why not.
    async fn take_grant(
        &self,
        key: &str,
        state: &str,
        kind: &str,
    ) -> StoreResult<Result<(String, serde_json::Value), Refusal>> {
        Ok(match self.get_del_marking(key, state, USED).await? {
            Taken::Value(value) => match serde_json::from_str::<serde_json::Value>(&value) {
                Ok(grant) if grant.is_object() && grant["kind"].as_str() == Some(kind) => {
                    Ok((value, grant))
                }
                Ok(grant) if grant.is_object() => Err(Refusal::WrongKind),
                _ => Err(Refusal::Unknown),
            },
            Taken::Missing { marker } => Err(Refusal::of_marker(marker.as_deref())),
        })
    }

    /// The twin of Redis's `ADMIT_STREAM` script, in the same order.
    pub(super) async fn admit_stream(
        &self,
        keys: &[String; 6],
        admission: &StreamAdmission<'_>,
    ) -> StoreResult<(Decision, Admission)> {
        let [
            budget,
            not_before,
            revoked_session,
            session,
            user,
            open_streams,
        ] = keys;
        self.expiring_remove_all(open_streams, admission.released)
            .await?;
        let decision = self.rate_limit(budget, admission.gcra, Cost::Take).await?;
        let verdict = 'verdict: {
            if !decision.allowed {
                break 'verdict Admission::RateLimited;
            }
            let markers = self
                .mget(&[not_before.clone(), revoked_session.clone()])
                .await?;
            let not_before = markers
                .first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok());
            if not_before.is_some_and(|nbf| admission.issued_at_secs < nbf)
                || markers.get(1).is_some_and(Option::is_some)
            {
                break 'verdict Admission::Revoked;
            }
            if let Some(owner_id) = admission.recheck_owner {
                let records = self.mget(&[session.clone(), user.clone()]).await?;
                let (Some(Some(_)), Some(Some(user))) = (records.first(), records.get(1)) else {
                    break 'verdict Admission::SessionEnded;
                };
                let Some(user) = serde_json::from_str::<serde_json::Value>(user)
                    .ok()
                    .filter(serde_json::Value::is_object)
                else {
                    break 'verdict Admission::SessionEnded;
                };
                let admin = user["roles"].as_array().is_some_and(|roles| {
                    roles
                        .iter()
                        .any(|r| r.as_str() == Some(crate::claims::ROLE_ADMIN))
                });
                if admission.user_id != owner_id && !admin {
                    break 'verdict Admission::NotOwner;
                }
            }
            if !self
                .expiring_add_capped(
                    open_streams,
                    admission.place,
                    admission.place_expires_at_ms,
                    admission.now_ms,
                    admission.max_streams,
                )
                .await?
            {
                break 'verdict Admission::TooManyStreams;
            }
            Admission::Admitted
        };
        Ok((decision, verdict))
    }

    pub(super) async fn revoke(
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

    pub(super) async fn read_log(
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

    pub(super) async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        // No receivers is fine: nobody is listening right now.
        let _ = self.sender.send(PubSubMessage::Message {
            channel: channel.into(),
            payload: payload.into(),
        });
        Ok(())
    }

    pub(super) async fn subscribe(&self) -> StoreResult<broadcast::Receiver<PubSubMessage>> {
        Ok(self.sender.subscribe())
    }

    pub(super) async fn debug_dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        self.with(|d, now| {
            d.entries
                .retain(|_, e| e.expires_at.is_none_or(|t| t > now));
            d.entries
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, e)| {
                    let v = match &e.value {
                        Value::Str(s) => s.clone(),
                        Value::Set(s) => format!("{s:?}"),
                        Value::Expiring(z) => format!("{:?}", z.keys().collect::<Vec<_>>()),
                        Value::Hash(h) => format!("{h:?}"),
                        Value::Stream(s) => format!("{:?}", s.entries),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
    }
}
