//! The generic commands the services build their own records on (strings, sets,
//! expiring sets, hashes, batches): the facade's part, and what it reads and writes.
//! The Redis side is `redis/primitives.rs`, the twin `memory/primitives.rs`.

use std::collections::HashMap;
use std::time::Duration;

use super::{Store, StoreResult};

/// A member of an expiring set (`expiring_add`): it stops counting at
/// `expires_at_ms`, and the members expired at `now_ms` are dropped as it is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiringMember<'a> {
    pub key: &'a str,
    pub member: &'a str,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

impl ExpiringMember<'_> {
    /// How long the member lives from `now_ms` (at least 1 ms): the set itself lives
    /// as long as its longest-lived member.
    pub fn lives_for(&self) -> Duration {
        Duration::from_millis(
            u64::try_from(self.expires_at_ms - self.now_ms)
                .unwrap_or(0)
                .max(1),
        )
    }
}

/// One write of a batch (`Store::write_all`).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Set {
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    },
    /// `SET key value NX EX ttl` (`PX` below whole seconds); `write_all` tells
    /// whether every one of these created its key.
    SetNx {
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    },
    IncrBy {
        key: &'a str,
        by: i64,
    },
    ExpiringAdd(ExpiringMember<'a>),
    ExpiringRemove {
        key: &'a str,
        member: &'a str,
    },
}

/// What `Store::get_del_marking` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Value(String),
    /// No value; the marker as it was, if any.
    Missing {
        marker: Option<String>,
    },
}

/// A read sent in the same round trip as a rate-limit decision
/// (`Store::rate_limit_and_read`), or alone (`Store::read`).
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    Get(&'a str),
    HashGetAll(&'a str),
    SetMembers(&'a str),
}

/// What a `Read` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAnswer {
    Value(Option<String>),
    Hash(HashMap<String, String>),
    Members(Vec<String>),
}

impl ReadAnswer {
    /// The value of a `Read::Get`.
    pub fn into_value(self) -> Option<String> {
        match self {
            Self::Value(v) => v,
            _ => None,
        }
    }

    /// The fields of a `Read::HashGetAll` (empty: no such hash).
    pub fn into_hash(self) -> HashMap<String, String> {
        match self {
            Self::Hash(h) => h,
            _ => HashMap::new(),
        }
    }

    /// The members of a `Read::SetMembers`.
    pub fn into_members(self) -> Vec<String> {
        match self {
            Self::Members(m) => m,
            _ => Vec::new(),
        }
    }
}

impl Store {
    pub async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self.get(key))
    }

    pub async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.mget(keys))
    }

    /// `SET key value [PX ttl]`.
    pub async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<()> {
        dispatch!(self.set(key, value, ttl))
    }

    /// `SET key value NX EX ttl` (`PX` when `ttl` is not whole seconds): true when
    /// this call created the key.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self.set_nx(key, value, ttl))
    }

    /// `SET key value NX` with no expiry: true when this call created the key.
    pub async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        dispatch!(self.set_nx_no_expiry(key, value))
    }

    /// `GETDEL`: the value, and the key is gone, atomically.
    pub async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self.get_del(key))
    }

    /// One atomic step: `GETDEL key`; when it held a value, `marker` (if it exists)
    /// becomes `mark`, keeping its expiry. Answers the value, and on a miss the marker
    /// as it was. `key` and `marker` must share a hash tag.
    pub async fn get_del_marking(&self, key: &str, marker: &str, mark: &str) -> StoreResult<Taken> {
        dispatch!(self.get_del_marking(key, marker, mark))
    }

    pub async fn del(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self.del(key))
    }

    pub async fn exists(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self.exists(key))
    }

    /// `PTTL`: how long the key has left; `None` when it is missing or never expires.
    pub async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        dispatch!(self.pttl(key))
    }

    /// Replaces the value only if it is still `expected`; `new = None` deletes it.
    /// `ttl = None` keeps no expiry. True when the swap happened.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: Option<&str>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        dispatch!(self.compare_and_swap(key, expected, new, ttl))
    }

    /// Several writes in one round trip (a pipeline on Redis), for bookkeeping that
    /// must not cost a round trip each. Not atomic: each write stands on its own, and
    /// all are applied. True when every `Write::SetNx` among them created its key.
    pub async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        if writes.is_empty() {
            return Ok(true);
        }
        dispatch!(self.write_all(writes))
    }

    /// `write_all` for work no request waits for (a periodic flush): not counted as a
    /// request's round trip.
    pub async fn write_all_in_background(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        if writes.is_empty() {
            return Ok(true);
        }
        dispatch_uncounted!(self.write_all(writes))
    }

    pub async fn incr(&self, key: &str) -> StoreResult<i64> {
        dispatch!(self.incr(key))
    }

    /// Adds a member and (re)sets the whole set's expiry.
    pub async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        dispatch!(self.set_add(key, member, ttl))
    }

    pub async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        dispatch!(self.set_remove(key, member))
    }

    pub async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        dispatch!(self.set_members(key))
    }

    /// Adds a member that stops counting at `expires_at_ms`, dropping the members
    /// expired at `now_ms`, so the set never outgrows what is live; the set itself
    /// expires with its longest-lived member.
    pub async fn expiring_add(&self, add: ExpiringMember<'_>) -> StoreResult<()> {
        dispatch!(self.expiring_add(add))
    }

    /// `expiring_add` that admits a NEW member only while fewer than `max` live ones
    /// are in the set, in one atomic step (so replicas racing for the last place
    /// cannot both get it). A member already in the set is always renewed. True when
    /// the member is in the set now.
    pub async fn expiring_add_capped(
        &self,
        add: ExpiringMember<'_>,
        max: usize,
    ) -> StoreResult<bool> {
        dispatch!(self.expiring_add_capped(add, max))
    }

    pub async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        dispatch!(self.expiring_remove(key, member))
    }

    /// Removes these members (one command), for work no request waits for (closed
    /// streams' places given back in the background): not counted as a request's
    /// round trip.
    pub async fn expiring_remove_all(&self, key: &str, members: &[String]) -> StoreResult<()> {
        if members.is_empty() {
            return Ok(());
        }
        dispatch_uncounted!(self.expiring_remove_all(key, members))
    }

    /// Drops members expired at `now_ms` and counts the rest.
    pub async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
        dispatch!(self.expiring_count(key, now_ms))
    }

    /// Creates a hash with these fields unless the key exists. True when created.
    pub async fn hash_create(
        &self,
        key: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> StoreResult<bool> {
        dispatch!(self.hash_create(key, fields, ttl))
    }

    /// All fields of a hash; empty when it does not exist.
    pub async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        dispatch!(self.hash_get_all(key))
    }

    /// One `Read`, alone.
    pub async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        dispatch!(self.read(read))
    }
}
