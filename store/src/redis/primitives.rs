//! The generic commands on Redis (`store::primitives`), and their scripts.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands as _, Script};

use super::{RedisStore, expiry, ms, unavailable};
use crate::{ExpiringMember, Read, ReadAnswer, StoreResult, Taken, Write};

/// `Store::compare_and_swap`.
pub(crate) static COMPARE_AND_SWAP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/compare_and_swap.lua")));

/// `Store::hash_create`.
pub(crate) static HASH_CREATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/hash_create.lua")));

/// `Store::get_del_marking`.
pub(crate) static GET_DEL_MARKING: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/get_del_marking.lua")));

/// `Store::expiring_add_capped`.
pub(crate) static EXPIRING_ADD_CAPPED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/capped_add_function.lua"),
        include_str!("lua/expiring_add_capped.lua")
    ))
});

impl RedisStore {
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    pub(crate) async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    pub(crate) async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        self.query(redis::cmd("MGET").arg(keys)).await
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> StoreResult<()> {
        self.write_all(&[Write::Set { key, value, ttl }])
            .await
            .map(drop)
    }

    pub(crate) async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        let mut pipe = redis::pipe();
        for write in writes {
            push_write(&mut pipe, *write);
        }
        // Only the `SET NX` replies are kept: `OK` when created, nil when not.
        let created: Vec<Option<String>> = self.pipe(&pipe).await?;
        Ok(created.iter().all(Option::is_some))
    }

    pub(crate) async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        let (unit, amount) = expiry(ttl);
        let created: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg(unit)
                    .arg(amount),
            )
            .await?;
        Ok(created.is_some())
    }

    pub(crate) async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        let created: Option<String> = self
            .query(redis::cmd("SET").arg(key).arg(value).arg("NX"))
            .await?;
        Ok(created.is_some())
    }

    pub(crate) async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            conn.get_del(key).await.map_err(unavailable)
        })
        .await
    }

    pub(crate) async fn get_del_marking(
        &self,
        key: &str,
        marker: &str,
        mark: &str,
    ) -> StoreResult<Taken> {
        let mut inv = GET_DEL_MARKING.prepare_invoke();
        inv.key(key).key(marker).arg(mark);
        let (found, text): (i64, String) = self.invoke(inv).await?;
        Ok(match found {
            1 => Taken::Value(text),
            _ => Taken::Missing {
                marker: Some(text).filter(|m| !m.is_empty()),
            },
        })
    }

    pub(crate) async fn del(&self, key: &str) -> StoreResult<bool> {
        let n: u64 = self.query(redis::cmd("DEL").arg(key)).await?;
        Ok(n > 0)
    }

    pub(crate) async fn exists(&self, key: &str) -> StoreResult<bool> {
        let n: u64 = self.query(redis::cmd("EXISTS").arg(key)).await?;
        Ok(n > 0)
    }

    pub(crate) async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        // -2: no such key; -1: no expiry.
        let left: i64 = self.query(redis::cmd("PTTL").arg(key)).await?;
        Ok(u64::try_from(left).ok().map(Duration::from_millis))
    }

    pub(crate) async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: Option<&str>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        let mut inv = COMPARE_AND_SWAP.prepare_invoke();
        inv.key(key).arg(expected);
        match new {
            None => inv.arg("del").arg("").arg("0"),
            Some(v) => inv.arg("set").arg(v).arg(ttl.map_or(0, ms)),
        };
        let swapped: i64 = self.invoke(inv).await?;
        Ok(swapped == 1)
    }

    pub(crate) async fn incr(&self, key: &str) -> StoreResult<i64> {
        self.query(redis::cmd("INCR").arg(key)).await
    }

    pub(crate) async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("SADD")
            .arg(key)
            .arg(member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(ms(ttl))
            .ignore();
        self.pipe::<()>(&pipe).await
    }

    pub(crate) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.query::<()>(redis::cmd("SREM").arg(key).arg(member))
            .await
    }

    pub(crate) async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.query(redis::cmd("SMEMBERS").arg(key)).await
    }

    pub(crate) async fn expiring_add(&self, add: ExpiringMember<'_>) -> StoreResult<()> {
        self.write_all(&[Write::ExpiringAdd(add)]).await.map(drop)
    }

    pub(crate) async fn expiring_add_capped(
        &self,
        ExpiringMember {
            key,
            member,
            expires_at_ms,
            now_ms,
        }: ExpiringMember<'_>,
        max: usize,
    ) -> StoreResult<bool> {
        let mut inv = EXPIRING_ADD_CAPPED.prepare_invoke();
        inv.key(key)
            .arg(expires_at_ms)
            .arg(now_ms)
            .arg(member)
            .arg(max);
        let admitted: i64 = self.invoke(inv).await?;
        Ok(admitted == 1)
    }

    pub(crate) async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.write_all(&[Write::ExpiringRemove { key, member }])
            .await
            .map(drop)
    }

    pub(crate) async fn expiring_remove_all(
        &self,
        key: &str,
        members: &[String],
    ) -> StoreResult<()> {
        self.query::<()>(redis::cmd("ZREM").arg(key).arg(members))
            .await
    }

    pub(crate) async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("ZCARD")
            .arg(key);
        let (count,): (u64,) = self.pipe(&pipe).await?;
        Ok(count)
    }

    pub(crate) async fn hash_create(
        &self,
        key: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let mut inv = HASH_CREATE.prepare_invoke();
        inv.key(key).arg(ms(ttl));
        for (field, value) in fields {
            inv.arg(*field).arg(value.as_str());
        }
        let created: i64 = self.invoke(inv).await?;
        Ok(created == 1)
    }

    pub(crate) async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.query(redis::cmd("HGETALL").arg(key)).await
    }

    pub(crate) async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        let found: redis::Value = self.query(&read_command(read)).await?;
        read_answer(read, found)
    }

    pub(crate) async fn debug_dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let keys: Vec<String> = self
            .query(redis::cmd("KEYS").arg(format!("{prefix}:*")))
            .await?;
        let mut out = Vec::new();
        for key in keys {
            let kind: String = self.query(redis::cmd("TYPE").arg(&key)).await?;
            let value = match kind.as_str() {
                "string" => self.get(&key).await?.unwrap_or_default(),
                "hash" => format!("{:?}", self.hash_get_all(&key).await?),
                "set" => format!("{:?}", self.set_members(&key).await?),
                "zset" => {
                    let m: Vec<String> = self
                        .query(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1))
                        .await?;
                    format!("{m:?}")
                }
                "stream" => format!("{:?}", self.read_events(&key, None, None).await?.events),
                other => other.to_owned(),
            };
            out.push((key, value));
        }
        Ok(out)
    }
}

pub(crate) fn read_command(read: Read<'_>) -> redis::Cmd {
    let (name, key) = match read {
        Read::Get(key) => ("GET", key),
        Read::HashGetAll(key) => ("HGETALL", key),
        Read::SetMembers(key) => ("SMEMBERS", key),
    };
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    cmd
}

pub(crate) fn read_answer(read: Read<'_>, found: redis::Value) -> StoreResult<ReadAnswer> {
    let parsed = match read {
        Read::Get(_) => redis::from_redis_value(found).map(ReadAnswer::Value),
        Read::HashGetAll(_) => redis::from_redis_value(found).map(ReadAnswer::Hash),
        Read::SetMembers(_) => redis::from_redis_value(found).map(ReadAnswer::Members),
    };
    parsed.map_err(unavailable)
}

pub(crate) fn push_write(pipe: &mut redis::Pipeline, write: Write<'_>) {
    match write {
        Write::Set { key, value, ttl } => {
            let cmd = pipe.cmd("SET").arg(key).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ms(ttl));
            }
            cmd.ignore();
        }
        Write::SetNx { key, value, ttl } => {
            let (unit, amount) = expiry(ttl);
            pipe.cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg(unit)
                .arg(amount);
        }
        Write::IncrBy { key, by } => {
            pipe.cmd("INCRBY").arg(key).arg(by).ignore();
        }
        Write::ExpiringAdd(add) => {
            let (key, lives_for) = (add.key, add.lives_for().as_millis());
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(add.now_ms)
                .ignore();
            pipe.cmd("ZADD")
                .arg(key)
                .arg(add.expires_at_ms)
                .arg(add.member)
                .ignore();
            // The set itself goes when its longest-lived member does.
            pipe.cmd("PEXPIRE")
                .arg(key)
                .arg(lives_for)
                .arg("GT")
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(key)
                .arg(lives_for)
                .arg("NX")
                .ignore();
        }
        Write::ExpiringRemove { key, member } => {
            pipe.cmd("ZREM").arg(key).arg(member).ignore();
        }
    }
}
