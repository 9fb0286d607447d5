//! The generic commands in memory (`store::primitives`), as Redis runs them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::{Entry, MemoryStore, Value};
use crate::{ExpiringMember, Read, ReadAnswer, StoreResult, Taken, Write};

impl MemoryStore {
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    pub(crate) async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Some(s.clone()),
            _ => None,
        })
    }

    pub(crate) async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
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

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> StoreResult<()> {
        self.with(|d, now| d.insert(key, Value::Str(value.to_owned()), ttl, now))
    }

    pub(crate) async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        self.set_if_absent(key, value, Some(ttl))
    }

    pub(crate) async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        self.set_if_absent(key, value, None)
    }

    pub(crate) fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.with(|d, now| {
            if d.live(key, now).is_some() {
                return false;
            }
            d.insert(key, Value::Str(value.to_owned()), ttl, now);
            true
        })
    }

    pub(crate) async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
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

    pub(crate) async fn get_del_marking(
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

    pub(crate) async fn del(&self, key: &str) -> StoreResult<bool> {
        self.with(|d, now| d.live(key, now).is_some() && d.entries.remove(key).is_some())
    }

    pub(crate) async fn exists(&self, key: &str) -> StoreResult<bool> {
        self.with(|d, now| d.live(key, now).is_some())
    }

    pub(crate) async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        self.with(|d, now| {
            d.live(key, now)
                .and_then(|e| e.expires_at)
                .map(|t| t.saturating_duration_since(now))
        })
    }

    pub(crate) async fn compare_and_swap(
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

    pub(crate) async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        let mut created = true;
        for write in writes {
            match *write {
                Write::Set { key, value, ttl } => self.set(key, value, ttl).await?,
                Write::SetNx { key, value, ttl } => {
                    created &= self.set_if_absent(key, value, Some(ttl))?;
                }
                Write::IncrBy { key, by } => self.incr_by(key, by).map(drop)?,
                Write::ExpiringAdd(add) => self.expiring_add(add).await?,
                Write::ExpiringRemove { key, member } => self.expiring_remove(key, member).await?,
            }
        }
        Ok(created)
    }

    pub(crate) async fn incr(&self, key: &str) -> StoreResult<i64> {
        self.incr_by(key, 1)
    }

    pub(crate) fn incr_by(&self, key: &str, by: i64) -> StoreResult<i64> {
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

    pub(crate) async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
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

    pub(crate) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
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

    pub(crate) async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Set(s),
                ..
            }) => s.iter().cloned().collect(),
            _ => Vec::new(),
        })
    }

    pub(crate) async fn expiring_add(&self, add: ExpiringMember<'_>) -> StoreResult<()> {
        // The capped add without a cap: one rule for both.
        self.expiring_add_capped(add, usize::MAX).await.map(drop)
    }

    pub(crate) async fn expiring_add_capped(
        &self,
        add: ExpiringMember<'_>,
        max: usize,
    ) -> StoreResult<bool> {
        let lives_for = add.lives_for();
        let ExpiringMember {
            key,
            member,
            expires_at_ms,
            now_ms,
        } = add;
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

    pub(crate) async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
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

    pub(crate) async fn expiring_remove_all(
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

    pub(crate) async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
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

    pub(crate) async fn hash_create(
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

    pub(crate) async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.with(|d, now| match d.live(key, now) {
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => h.clone(),
            _ => HashMap::new(),
        })
    }

    pub(crate) async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        Ok(match read {
            Read::Get(key) => ReadAnswer::Value(self.get(key).await?),
            Read::HashGetAll(key) => ReadAnswer::Hash(self.hash_get_all(key).await?),
            Read::SetMembers(key) => ReadAnswer::Members(self.set_members(key).await?),
        })
    }
}
