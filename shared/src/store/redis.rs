//! The Redis store: one shared multiplexed connection for every command (it pipelines
//! concurrent requests and reconnects by itself, so no request waits for a checkout),
//! one dedicated pub/sub connection per process that feeds an in-process broadcast, and
//! one dedicated connection that tails the revocation log.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use deadpool_redis::redis::{self, AsyncCommands as _, FromRedisValue, Script};
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::clock::UnixTime;
use crate::gcra_lua_function;
use crate::generation::stored_status;
use crate::rate_limit::{Cost, Decision, FIELDS_SCRIPT, GCRA_SCRIPT, Gcra};
use crate::revocation::{RevocationView, TAIL_POLL_INTERVAL};

use super::{
    Admission, AppendOutcome, EventPage, GrantFound, MintAdmission, MintOutcome, Minted, NewEvent,
    NewSession, NewStreamToken, PubSubMessage, REVOCATION_LOG_SHARDS, Read, ReadAnswer,
    RevocationWrite, Rotation, SessionRotation, Spend, StoreError, StoreResult, StreamAdmission,
    StreamOpened, StreamOpening, Taken, Write, parse_event_id,
};
use crate::stream_token::{Refusal, Stats, StatsFlush};

const COMPARE_AND_SWAP: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then redis.call('DEL', KEYS[1]) return 1 end
if ARGV[4] == '0' then redis.call('SET', KEYS[1], ARGV[3])
else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
return 1";

const HASH_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1";

// KEYS: record, history. ARGV: data, max_len, status, now_ms, ttl_ms, the
// generation's channel (in its slot: `SPUBLISH`), generation id, progress ('' =
// unchanged), stage ('' = unchanged), the channel of the release before ('' = none:
// `PUBLISH` there too while upgrading).
const APPEND_EVENT: &str = r#"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0} end
if status == 'completed' or status == 'failed' then return {1} end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'd', ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[4])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'stage', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local message = '{\"g\":\"' .. ARGV[7] .. '\",\"id\":\"' .. id .. '\",\"s\":\"' .. ARGV[3] .. '\",\"d\":' .. ARGV[1] .. '}'
redis.call('SPUBLISH', ARGV[6], message)
if ARGV[10] ~= '' then redis.call('PUBLISH', ARGV[10], message) end
return {2, id}"#;

// KEYS: the markers of one revocation, then the session records it ends, then (for a
// session or a user) the user's session index; all under one hash tag. ARGV: the
// number of markers, the value and lifetime in ms of each, the id of each ended
// session, then for a user the key prefixes of session records and of session
// markers and the markers' lifetime: every session in the index ends too, in the
// same slot. Every argument is checked before anything is written, so the markers
// are written all together or not at all, and the sessions end with them.
const REVOKE: &str = r"
local n = tonumber(ARGV[1])
if not n or n < 0 or n > #KEYS then return redis.error_reply('revoke: bad arguments') end
for i = 1, n do
  local ttl = tonumber(ARGV[2 * i + 1])
  if not ttl or ttl < 1 or not ARGV[2 * i] then
    return redis.error_reply('revoke: bad arguments')
  end
end
local ended = #KEYS - n - 1
local user = 2 * n + 1 + math.max(ended, 0)
if ARGV[user + 1] and not (ended >= 0 and (tonumber(ARGV[user + 3]) or 0) >= 1) then
  return redis.error_reply('revoke: bad arguments')
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[2 * i], 'PX', ARGV[2 * i + 1])
end
for j = 1, ended do
  redis.call('DEL', KEYS[n + j])
  redis.call('SREM', KEYS[#KEYS], ARGV[2 * n + 1 + j])
end
if ARGV[user + 1] then
  for _, sid in ipairs(redis.call('SMEMBERS', KEYS[#KEYS])) do
    redis.call('SET', ARGV[user + 2] .. sid, '1', 'PX', ARGV[user + 3])
    redis.call('DEL', ARGV[user + 1] .. sid)
  end
  redis.call('DEL', KEYS[#KEYS])
end
return n";

// KEYS: key, marker. ARGV: mark.
const GET_DEL_MARKING: &str = r"
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], ARGV[1], 'XX', 'KEEPTTL')
  return {1, value}
end
return {0, redis.call('GET', KEYS[2]) or ''}";

/// The Lua source of `capped_add(key, expires_at_ms, now_ms, member, max)`: drops the
/// expired members, admits a new one only below `max` (a member already in is renewed),
/// and keeps the set alive as long as its longest-lived member. Answers 1 or 0.
macro_rules! capped_add_lua_function {
    () => {
        r"
local function capped_add(key, expires_at, now, member, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(max) then
    return 0
  end
  redis.call('ZADD', key, expires_at, member)
  local lives_for = math.max(tonumber(expires_at) - tonumber(now), 1)
  if redis.call('PTTL', key) < lives_for then
    redis.call('PEXPIRE', key, lives_for)
  end
  return 1
end
"
    };
}

// KEYS: the set. ARGV: expires_at_ms, now_ms, member, max.
const EXPIRING_ADD_CAPPED: &str = concat!(
    capped_add_lua_function!(),
    "return capped_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
);

// The generation's side of a stream open, on its hash tag. KEYS: token, its marker,
// resume cookie grant, its marker, generation record, history, next resume grant, its
// marker. ARGV: token presented ('1'/'0'), cookie presented, resume point ('' = none;
// otherwise a well-formed id), now ms, resume grant lifetime ms, page size.
// Takes the token (else the cookie) with GETDEL, marking it used; then the record, the
// history after the resume point and the next resume grant, which copies the taken
// grant and never outlives its session.
const OPEN_STREAM: &str = r"
local function take(key, marker, kind)
  local value = redis.call('GETDEL', key)
  if not value then
    local state = redis.call('GET', marker)
    if state == 'used' then return nil, 'replay' end
    if state == 'issued' then return nil, 'expired' end
    return nil, 'unknown'
  end
  redis.call('SET', marker, 'used', 'XX', 'KEEPTTL')
  local ok, grant = pcall(cjson.decode, value)
  if not ok or type(grant) ~= 'table' then return nil, 'unknown' end
  if grant.kind ~= kind then return nil, 'wrong_kind' end
  return value, grant
end
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local function lt(x, y) if #x ~= #y then return #x < #y end return x < y end
  if am ~= bm then return lt(am, bm) end
  return lt(as, bs)
end
local value, grant, via
if ARGV[1] == '1' then
  value, grant = take(KEYS[1], KEYS[2], 'token')
  via = 'token'
end
if not value and ARGV[2] == '1' then
  local first = grant
  value, grant = take(KEYS[3], KEYS[4], 'resume')
  via = 'cookie'
  if not value and first then grant = first end
end
if not value then return {'refused', grant or 'unknown'} end
local record = redis.call('HMGET', KEYS[5], 'owner_id', 'status')
if not record[1] then return {'gone', value, via} end
if grant.user_id ~= record[1] and grant.admin ~= true then return {'not_owner', value, via} end
local now = tonumber(ARGV[4])
local left = (tonumber(grant.session_expires_at) or 0) - now
if left <= 0 then return {'session_ended', value, via} end
local after = ARGV[3]
local entries, reset
local page = ARGV[6]
if after == '' then
  entries, reset = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', page), 0
else
  local oldest = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', 1)[1]
  local newest = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', 1)[1]
  if not oldest then
    entries, reset = {}, 1
  elseif before(after, oldest[1]) or before(newest[1], after) then
    entries, reset = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', page), 1
  else
    entries, reset = redis.call('XRANGE', KEYS[6], '(' .. after, '+', 'COUNT', page), 0
  end
end
local events = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then
      events[#events + 1] = entry[1]
      events[#events + 1] = fields[i + 1]
    end
  end
end
local ttl = math.min(tonumber(ARGV[5]), left)
grant.kind = 'resume'
grant.issued_at = now
if not redis.call('SET', KEYS[7], cjson.encode(grant), 'NX', 'PX', ttl) then
  return {'collision', value, via}
end
redis.call('SET', KEYS[8], 'issued', 'NX', 'PX', ttl * 2)
return {'open', value, via, record[1], record[2] or 'pending', reset, ttl, events}";

// The user's side of a stream open, on their hash tag. KEYS: rate-limit budget, the
// not-before marker, the session's revocation marker, the session record, the user
// record, the open streams. ARGV: GCRA interval µs, capacity µs, the grant's issue time
// (Unix s), the generation's owner for a resume ('' for a stream token), the user id,
// the stream's place id, its expiry ms, now ms, the most streams a user may hold, then
// the places of the user's closed streams to give back first, whatever follows.
// Decides in the order a refusal is told: rate limit, revocation, (for a resume) the
// session and the role read again, then the place among the user's streams.
//
// The place is new (a fresh id), so it is added without looking for it first; expired
// places are swept only when the set is at the cap (below it they refuse nobody, and
// the set never holds more than the cap), and the set's expiry is set once (a new set)
// or moved later: the fewest commands inside the script for one decision.
const ADMIT_STREAM: &str = concat!(
    gcra_lua_function!(),
    r"
local function take_place(key, expires_at, now, member, max)
  local places = redis.call('ZCARD', key)
  if places >= max then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    places = redis.call('ZCARD', key)
    if places >= max then return 0 end
  end
  redis.call('ZADD', key, expires_at, member)
  local lives_for = math.max(tonumber(expires_at) - tonumber(now), 1)
  if places == 0 then
    redis.call('PEXPIRE', key, lives_for)
  else
    redis.call('PEXPIRE', key, lives_for, 'GT')
  end
  return 1
end
if #ARGV > 9 then redis.call('ZREM', KEYS[6], unpack(ARGV, 10)) end
local d = gcra_decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
local function verdict(v) return {v, d[1], d[2], d[3], d[4]} end
if d[1] == 0 then return verdict('limited') end
local markers = redis.call('MGET', KEYS[2], KEYS[3])
local nbf = tonumber(markers[1] or '')
if (nbf and tonumber(ARGV[3]) < nbf) or markers[2] then
  return verdict('revoked')
end
if ARGV[4] ~= '' then
  local user = redis.call('GET', KEYS[5])
  if redis.call('EXISTS', KEYS[4]) == 0 or not user then return verdict('session_ended') end
  local ok, record = pcall(cjson.decode, user)
  if not ok or type(record) ~= 'table' then return verdict('session_ended') end
  local admin = false
  if type(record.roles) == 'table' then
    for _, role in ipairs(record.roles) do
      if role == 'admin' then admin = true end
    end
  end
  if ARGV[5] ~= ARGV[4] and not admin then return verdict('not_owner') end
end
if take_place(KEYS[6], ARGV[7], ARGV[8], ARGV[6], tonumber(ARGV[9])) == 0 then
  return verdict('too_many_streams')
end
return verdict('admitted')"
);

// The user's side of a stream token mint. KEYS: rate-limit budget, session record.
// ARGV: GCRA interval µs, capacity µs. Answers the decision and the session record
// ('' when there is none).
const ADMIT_MINT: &str = concat!(
    gcra_lua_function!(),
    r"
local d = gcra_decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
return {d[1], d[2], d[3], d[4], redis.call('GET', KEYS[2]) or ''}"
);

// The generation's side of a stream token mint. KEYS: record, token, its marker.
// ARGV: user id, admin ('1'/'0'), grant, lifetime ms.
const MINT_STREAM_TOKEN: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner_id')
if not owner then return 'gone' end
if owner ~= ARGV[1] and ARGV[2] ~= '1' then return 'not_owner' end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 'collision' end
redis.call('SET', KEYS[3], 'issued', 'NX', 'PX', tonumber(ARGV[4]) * 2)
return 'stored'";

// KEYS: the session record, the user's session index, the user record, and the
// session's refresh budget if it has one (one hash tag). ARGV: presented jti, now ms,
// grace ms, max age ms, refresh ttl ms, new access jti, new refresh jti, now s,
// session id, the budget's GCRA interval µs, capacity µs and cost. A current or
// just-retired token spends the budget first; nothing changes when it is spent. The
// record's numbers are milliseconds or seconds, exact in cjson's 14 significant digits.
// Answers the verdict, the session and user records, and the decision (-1s: none).
const ROTATE_SESSION: &str = concat!(
    gcra_lua_function!(),
    r"
local none = {1, -1, -1, -1}
local function answer(verdict, session, user, d)
  return {verdict, session, user, d[1], d[2], d[3], d[4]}
end
local raw = redis.call('GET', KEYS[1])
if not raw then return answer('gone', false, false, none) end
local s = cjson.decode(raw)
local now = tonumber(ARGV[2])
local left = tonumber(s.created_at) + tonumber(ARGV[4]) - now
if left <= 0 then return answer('expired', false, false, none) end
local current = s.refresh_jti == ARGV[1]
if not current and not (s.previous_refresh_jti == ARGV[1] and type(s.rotated_at) == 'number'
     and now - s.rotated_at <= tonumber(ARGV[3])) then
  return answer('reused', false, false, none)
end
local d = none
if KEYS[4] then
  d = gcra_decide(KEYS[4], tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]))
  if d[1] == 0 then return answer('limited', false, false, d) end
end
if not current then return answer('grace', raw, redis.call('GET', KEYS[3]) or false, d) end
s.previous_refresh_jti = s.refresh_jti
s.rotated_at = now
s.last_seen_at = now
s.access_jti = ARGV[6]
s.refresh_jti = ARGV[7]
s.issued_at = tonumber(ARGV[8])
local rotated = cjson.encode(s)
redis.call('SET', KEYS[1], rotated, 'PX', string.format('%.0f', math.min(left, tonumber(ARGV[5]))))
redis.call('SADD', KEYS[2], ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return answer('rotated', rotated, redis.call('GET', KEYS[3]) or false, d)"
);

// KEYS: the session record, the user's session index (one hash tag). ARGV: the
// record, its lifetime in ms, the session id, the index's lifetime in ms.
const SAVE_SESSION: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return redis.call('SCARD', KEYS[2])";

// Stream token statistics, on the `{stats}` hash tag. KEYS: the issued, consumed and
// rejected counters, the hash of live tokens by expiry second. ARGV: now ms, read
// ('1'/'0'), the three counts to add, then (expiry second, change) pairs. A second
// already begun is left out (its tokens count no more); a second that comes to zero
// is deleted, and so are the seconds past. The hash expires with its last second.
// With read, answers active, issued, consumed, rejected.
const STREAM_STATS: &str = r"
local now = tonumber(ARGV[1])
for i = 1, 3 do
  if ARGV[i + 2] ~= '0' then redis.call('INCRBY', KEYS[i], ARGV[i + 2]) end
end
local last = 0
for i = 6, #ARGV - 1, 2 do
  local second = tonumber(ARGV[i])
  if second * 1000 > now then
    if redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1]) == 0 then
      redis.call('HDEL', KEYS[4], ARGV[i])
    end
    if second > last then last = second end
  end
end
if last > 0 then
  local past = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    local second = tonumber(field)
    if not second or second * 1000 <= now then past[#past + 1] = field end
  end
  if #past > 0 then redis.call('HDEL', KEYS[4], unpack(past)) end
  redis.call('PEXPIREAT', KEYS[4], last * 1000, 'GT')
  redis.call('PEXPIREAT', KEYS[4], last * 1000, 'NX')
end
if ARGV[2] ~= '1' then return 0 end
local active = 0
local live = redis.call('HGETALL', KEYS[4])
for i = 1, #live, 2 do
  local second = tonumber(live[i])
  if second and second * 1000 > now then active = active + tonumber(live[i + 1]) end
end
local totals = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
return {math.max(active, 0), tonumber(totals[1]) or 0, tonumber(totals[2]) or 0,
  tonumber(totals[3]) or 0}";

struct Scripts {
    compare_and_swap: Script,
    expiring_add_capped: Script,
    get_del_marking: Script,
    hash_create: Script,
    append_event: Script,
    gcra: Script,
    fields: Script,
    rotate_session: Script,
    save_session: Script,
    open_stream: Script,
    admit_stream: Script,
    admit_mint: Script,
    mint_stream_token: Script,
    stream_stats: Script,
}

/// Where the store's commands go: one Redis, or a Redis Cluster.
#[derive(Clone)]
enum Target {
    Single,
    /// The cluster, and a plain client of each seed for what needs one node's
    /// connection of its own (the subscription: a message published on any node of a
    /// cluster reaches the subscribers of every node).
    Cluster(Arc<(redis::cluster::ClusterClient, Vec<redis::Client>)>),
}

/// A connection that commands go over. On a Cluster every command is routed by the
/// slot of its key, and a pipeline is sent as one wave of concurrent commands, each
/// to its own slot's node (cluster-async would send a whole pipeline to one node).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    /// A connection of its own to one Redis (the revocation tail's).
    Dedicated(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => {
                let c = c.clone();
                Box::pin(async move {
                    let sent = pipeline.cmd_iter().map(|cmd| {
                        let mut c = c.clone();
                        async move { c.req_packed_command(cmd).await }
                    });
                    let replies = futures_util::future::try_join_all(sent).await?;
                    Ok(replies.into_iter().skip(offset).take(count).collect())
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<SharedConnection>,
    /// On a Cluster, the connection of writes that must be confirmed by a replica:
    /// `WAIT` blocks the connection it is sent on, and counts the writes of that
    /// connection only, so such a write and its `WAIT` go over one of their own.
    confirming: Arc<SharedConnection>,
    /// Whether the master of a slot has replicas, as last asked (`ROLE`).
    replicated: Arc<Mutex<HashMap<u16, (bool, Instant)>>>,
    client: redis::Client,
    target: Target,
    timeout: Duration,
    scripts: Arc<Scripts>,
    pubsub: Arc<PubSubState>,
    /// The generations' channels (`SSUBSCRIBE`), on connections of their own.
    sharded: Arc<super::sharded::Sharded>,
}

/// The one connection every command shares. Connected on first use, so a Redis that
/// is down at start-up is not an error. It reconnects by itself after an error; a
/// connection that a NAT or proxy forgot never errors, it only stays silent, so one
/// that answers nothing for a whole timeout is replaced.
struct SharedConnection {
    current: Mutex<Option<(Conn, Instant)>>,
    connecting: tokio::sync::Mutex<()>,
    since: Instant,
    /// When it last answered: milliseconds after `since`.
    answered: AtomicU64,
}

impl SharedConnection {
    fn new() -> Self {
        Self {
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            since: Instant::now(),
            answered: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn answered(&self) {
        self.answered.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// A request timed out: the connection goes if nothing came back for `timeout`
    /// and it is older than that (a new one gets its chance).
    fn timed_out(&self, timeout: Duration) {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let silent_ms = self
            .elapsed_ms()
            .saturating_sub(self.answered.load(Ordering::Relaxed));
        let mut current = self.current.lock();
        if silent_ms >= timeout_ms
            && current
                .as_ref()
                .is_some_and(|(_, created)| created.elapsed() >= timeout)
        {
            *current = None;
            tracing::warn!("the store connection answered nothing for {timeout:?}: replacing it");
        }
    }
}

struct PubSubState {
    channels: Mutex<Vec<String>>,
    sender: broadcast::Sender<PubSubMessage>,
    /// True while the subscription is live; the task starts on the first subscriber.
    live: watch::Sender<bool>,
    started: std::sync::Once,
}

/// `host:port`, bracketing an IPv6 host.
fn address(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `EX` seconds when the lifetime is whole seconds (stream tokens are configured in
/// seconds), else `PX` milliseconds.
fn expiry(d: Duration) -> (&'static str, u64) {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        ("EX", d.as_secs())
    } else {
        ("PX", ms(d))
    }
}

impl RedisStore {
    /// Connects lazily: a Redis that is down at start-up is not an error here.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Ok(Self::with_target(client, Target::Single, timeout))
    }

    /// A Redis Cluster, from its seeds (`host:port`, or `redis://` / `rediss://` URLs
    /// with an ACL user and password); connects lazily, as `connect`.
    pub fn connect_cluster(seeds: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let urls: Vec<String> = seeds
            .iter()
            .map(|seed| match seed.contains("://") {
                true => seed.clone(),
                false => format!("redis://{seed}"),
            })
            .collect();
        let seeds = urls
            .iter()
            .map(|url| redis::Client::open(url.as_str()).map_err(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        let client = seeds
            .first()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("no cluster seeds".into()))?;
        let cluster = redis::cluster::ClusterClientBuilder::new(urls.clone())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .build()
            .map_err(unavailable)?;
        Ok(Self::with_target(
            client,
            Target::Cluster(Arc::new((cluster, seeds))),
            timeout,
        ))
    }

    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(..))
    }

    fn with_target(client: redis::Client, target: Target, timeout: Duration) -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            shared: Arc::new(SharedConnection::new()),
            confirming: Arc::new(SharedConnection::new()),
            replicated: Arc::new(Mutex::new(HashMap::new())),
            client,
            target,
            timeout,
            scripts: Arc::new(Scripts {
                compare_and_swap: Script::new(COMPARE_AND_SWAP),
                expiring_add_capped: Script::new(EXPIRING_ADD_CAPPED),
                get_del_marking: Script::new(GET_DEL_MARKING),
                hash_create: Script::new(HASH_CREATE),
                append_event: Script::new(APPEND_EVENT),
                gcra: Script::new(GCRA_SCRIPT),
                fields: Script::new(FIELDS_SCRIPT),
                rotate_session: Script::new(ROTATE_SESSION),
                save_session: Script::new(SAVE_SESSION),
                open_stream: Script::new(OPEN_STREAM),
                admit_stream: Script::new(ADMIT_STREAM),
                admit_mint: Script::new(ADMIT_MINT),
                mint_stream_token: Script::new(MINT_STREAM_TOKEN),
                stream_stats: Script::new(STREAM_STATS),
            }),
            pubsub: Arc::new(PubSubState {
                channels: Mutex::new(Vec::new()),
                sender,
                live: watch::channel(false).0,
                started: std::sync::Once::new(),
            }),
            sharded: Arc::new(super::sharded::Sharded::new()),
        }
    }

    pub(super) fn set_channels(&self, channels: Vec<String>) {
        *self.pubsub.channels.lock() = channels;
    }

    async fn bounded<T>(&self, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => {
                if result.is_ok() {
                    self.shared.answered();
                }
                result
            }
            Err(_) => {
                self.shared.timed_out(self.timeout);
                Err(StoreError::Unavailable("timed out".into()))
            }
        }
    }

    /// The shared connection (a cheap handle). It reconnects in the background after
    /// a failure; meanwhile requests fail within the timeout.
    /// This store on the connection of confirmed writes (itself on one Redis).
    fn confirming(&self) -> Self {
        match self.target {
            Target::Single => self.clone(),
            Target::Cluster(_) => Self {
                shared: self.confirming.clone(),
                ..self.clone()
            },
        }
    }

    /// On a Cluster, waits until a replica of the master of each of `keys`' slots
    /// holds every write made so far on this connection (`WAIT 1`, on the connection
    /// that wrote: call it on `confirming()`), where that master has replicas. A
    /// write a failover could lose is reported as unavailable (503): a retry is safe.
    /// Nothing on one Redis.
    async fn confirm(&self, keys: &[&str]) -> StoreResult<()> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        if !self.is_cluster() {
            return Ok(());
        }
        let slots: std::collections::BTreeSet<u16> =
            keys.iter().map(|k| super::slot::key_slot(k)).collect();
        let wait_ms = u64::try_from(self.timeout.as_millis() / 2)
            .unwrap_or(500)
            .max(1);
        self.bounded(async {
            let Conn::Cluster(conn) = self.conn().await? else {
                return Ok(());
            };
            let waits = slots.into_iter().map(|slot| {
                let mut conn = conn.clone();
                async move {
                    let to_master = || {
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                            slot,
                            SlotAddr::Master,
                        )))
                    };
                    if !self.has_replicas(slot, &mut conn, to_master()).await? {
                        return Ok(());
                    }
                    let mut wait = redis::cmd("WAIT");
                    wait.arg(1).arg(wait_ms);
                    let reply = conn
                        .route_command(wait, to_master())
                        .await
                        .map_err(unavailable)?;
                    let acked = i64::from_redis_value(reply).map_err(unavailable)?;
                    if acked < 1 {
                        return Err(StoreError::Unavailable(
                            "no replica confirmed the write in time".into(),
                        ));
                    }
                    Ok(())
                }
            });
            futures_util::future::try_join_all(waits).await.map(drop)
        })
        .await
    }

    /// Whether the master of `slot` has replicas: `ROLE`, asked at most once a second.
    async fn has_replicas(
        &self,
        slot: u16,
        conn: &mut redis::cluster_async::ClusterConnection,
        route: redis::cluster_routing::RoutingInfo,
    ) -> StoreResult<bool> {
        if let Some((known, at)) = self.replicated.lock().get(&slot)
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(*known);
        }
        let role = conn
            .route_command(redis::cmd("ROLE"), route)
            .await
            .map_err(unavailable)?;
        // `master`, its offset, and one entry per replica.
        let replicas = match role {
            redis::Value::Array(parts) => match parts.get(2) {
                Some(redis::Value::Array(replicas)) => !replicas.is_empty(),
                _ => false,
            },
            _ => false,
        };
        self.replicated
            .lock()
            .insert(slot, (replicas, Instant::now()));
        Ok(replicas)
    }

    async fn conn(&self) -> StoreResult<Conn> {
        if let Some((manager, _)) = self.shared.current.lock().as_ref() {
            return Ok(manager.clone());
        }
        let _one_at_a_time = self.shared.connecting.lock().await;
        if let Some((manager, _)) = self.shared.current.lock().as_ref() {
            return Ok(manager.clone());
        }
        if let Target::Cluster(cluster) = &self.target {
            let (cluster, _) = &**cluster;
            // One multiplexed connection per node, routing by slot, the topology
            // refreshed on MOVED / ASK and on connection errors.
            let conn = Conn::Cluster(cluster.get_async_connection().await.map_err(unavailable)?);
            *self.shared.current.lock() = Some((conn.clone(), Instant::now()));
            self.shared.answered();
            return Ok(conn);
        }
        // No response timeout of its own: `bounded` is the one timeout, and tells a
        // silent connection from a slow answer.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None)
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(unavailable)?;
        let conn = Conn::Single(manager);
        *self.shared.current.lock() = Some((conn.clone(), Instant::now()));
        self.shared.answered();
        Ok(conn)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            cmd.query_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            pipe.query_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    /// Script invocations (`EVALSHA`) sent together in one pipeline, one reply each.
    /// A script Redis has lost (restarted, flushed) answers `NOSCRIPT`: only that one is
    /// invoked again (loading it), so nothing that ran is run twice.
    async fn invoke_all(
        &self,
        invocations: &[&redis::ScriptInvocation<'_>],
    ) -> StoreResult<Vec<redis::Value>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for inv in invocations {
            pipe.invoke_script(inv);
        }
        self.bounded(async {
            let mut conn = self.conn().await?;
            let mut replies: Vec<redis::Value> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            for (reply, inv) in replies.iter_mut().zip(invocations) {
                if let redis::Value::ServerError(e) = reply
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    *reply = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
            }
            Ok(replies)
        })
        .await
    }

    async fn invoke<T: FromRedisValue>(&self, inv: redis::ScriptInvocation<'_>) -> StoreResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            inv.invoke_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    /// The masters that serve slots (`CLUSTER NODES`, asked of any node that
    /// answers), each pinged on its own within the timeout.
    pub(super) async fn masters(&self) -> StoreResult<Vec<super::NodeHealth>> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let Conn::Cluster(conn) = self.conn().await? else {
            return Ok(Vec::new());
        };
        let mut text = None;
        for _ in 0..3 {
            let asked = tokio::time::timeout(
                self.timeout,
                conn.clone().route_command(
                    redis::cmd("CLUSTER").arg("NODES").to_owned(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                ),
            )
            .await;
            if let Ok(Ok(reply)) = asked {
                text = String::from_redis_value(reply).ok();
                break;
            }
        }
        let text = text.ok_or_else(|| StoreError::Unavailable("no cluster node answers".into()))?;
        let masters: Vec<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let serves = fields.len() > 8;
                let master = fields.get(2).is_some_and(|f| f.contains("master"));
                let address = fields.get(1)?.split('@').next()?;
                let (host, port) = address.rsplit_once(':')?;
                let port: u16 = port.parse().ok()?;
                (serves && master).then(|| (host.to_owned(), port))
            })
            .collect();
        let pings = masters.into_iter().map(|(host, port)| {
            let mut conn = conn.clone();
            async move {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                let answered = tokio::time::timeout(
                    self.timeout,
                    conn.route_command(redis::cmd("PING"), route),
                )
                .await;
                super::NodeHealth {
                    node: format!("{host}:{port}"),
                    up: matches!(answered, Ok(Ok(_))),
                    delivering: None,
                }
            }
        });
        Ok(futures_util::future::join_all(pings).await)
    }

    pub(super) async fn ping(&self) -> StoreResult<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    pub(super) async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    pub(super) async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        self.query(redis::cmd("MGET").arg(keys)).await
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> StoreResult<()> {
        self.write_all(&[Write::Set { key, value, ttl }])
            .await
            .map(drop)
    }

    pub(super) async fn write_all(&self, writes: &[Write<'_>]) -> StoreResult<bool> {
        let mut pipe = redis::pipe();
        for write in writes {
            push_write(&mut pipe, *write);
        }
        // Only the `SET NX` replies are kept: `OK` when created, nil when not.
        let created: Vec<Option<String>> = self.pipe(&pipe).await?;
        Ok(created.iter().all(Option::is_some))
    }

    pub(super) async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
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

    pub(super) async fn set_nx_no_expiry(&self, key: &str, value: &str) -> StoreResult<bool> {
        let created: Option<String> = self
            .query(redis::cmd("SET").arg(key).arg(value).arg("NX"))
            .await?;
        Ok(created.is_some())
    }

    pub(super) async fn get_del(&self, key: &str) -> StoreResult<Option<String>> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            conn.get_del(key).await.map_err(unavailable)
        })
        .await
    }

    pub(super) async fn get_del_marking(
        &self,
        key: &str,
        marker: &str,
        mark: &str,
    ) -> StoreResult<Taken> {
        let mut inv = self.scripts.get_del_marking.prepare_invoke();
        inv.key(key).key(marker).arg(mark);
        let (found, text): (i64, String) = self.invoke(inv).await?;
        Ok(match found {
            1 => Taken::Value(text),
            _ => Taken::Missing {
                marker: Some(text).filter(|m| !m.is_empty()),
            },
        })
    }

    pub(super) async fn del(&self, key: &str) -> StoreResult<bool> {
        let n: u64 = self.query(redis::cmd("DEL").arg(key)).await?;
        Ok(n > 0)
    }

    pub(super) async fn exists(&self, key: &str) -> StoreResult<bool> {
        let n: u64 = self.query(redis::cmd("EXISTS").arg(key)).await?;
        Ok(n > 0)
    }

    pub(super) async fn pttl(&self, key: &str) -> StoreResult<Option<Duration>> {
        // -2: no such key; -1: no expiry.
        let left: i64 = self.query(redis::cmd("PTTL").arg(key)).await?;
        Ok(u64::try_from(left).ok().map(Duration::from_millis))
    }

    pub(super) async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: Option<&str>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.compare_and_swap.prepare_invoke();
        inv.key(key).arg(expected);
        match new {
            None => inv.arg("del").arg("").arg("0"),
            Some(v) => inv.arg("set").arg(v).arg(ttl.map_or(0, ms)),
        };
        let swapped: i64 = self.invoke(inv).await?;
        Ok(swapped == 1)
    }

    pub(super) async fn incr(&self, key: &str) -> StoreResult<i64> {
        self.query(redis::cmd("INCR").arg(key)).await
    }

    pub(super) async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
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

    pub(super) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.query::<()>(redis::cmd("SREM").arg(key).arg(member))
            .await
    }

    pub(super) async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.query(redis::cmd("SMEMBERS").arg(key)).await
    }

    pub(super) async fn expiring_add(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write_all(&[Write::ExpiringAdd {
            key,
            member,
            expires_at_ms,
            now_ms,
        }])
        .await
        .map(drop)
    }

    pub(super) async fn expiring_add_capped(
        &self,
        key: &str,
        member: &str,
        expires_at_ms: i64,
        now_ms: i64,
        max: usize,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.expiring_add_capped.prepare_invoke();
        inv.key(key)
            .arg(expires_at_ms)
            .arg(now_ms)
            .arg(member)
            .arg(max);
        let admitted: i64 = self.invoke(inv).await?;
        Ok(admitted == 1)
    }

    pub(super) async fn expiring_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.write_all(&[Write::ExpiringRemove { key, member }])
            .await
            .map(drop)
    }

    pub(super) async fn expiring_remove_all(
        &self,
        key: &str,
        members: &[String],
    ) -> StoreResult<()> {
        self.query::<()>(redis::cmd("ZREM").arg(key).arg(members))
            .await
    }

    pub(super) async fn expiring_count(&self, key: &str, now_ms: i64) -> StoreResult<u64> {
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

    pub(super) async fn hash_create(
        &self,
        key: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.hash_create.prepare_invoke();
        inv.key(key).arg(ms(ttl));
        for (field, value) in fields {
            inv.arg(*field).arg(value.as_str());
        }
        let created: i64 = self.invoke(inv).await?;
        Ok(created == 1)
    }

    pub(super) async fn hash_get_all(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.query(redis::cmd("HGETALL").arg(key)).await
    }

    pub(super) async fn rate_limit(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
    ) -> StoreResult<Decision> {
        Ok(to_decision(
            self.invoke(self.gcra_invocation(key, gcra, cost)).await?,
        ))
    }

    /// The GCRA script and the read in one pipeline. A script Redis has lost answers
    /// `NOSCRIPT` and ran nothing: it alone is invoked again (loading it).
    pub(super) async fn rate_limit_and_read(
        &self,
        key: &str,
        gcra: Gcra,
        cost: Cost,
        read: Read<'_>,
    ) -> StoreResult<(Decision, ReadAnswer)> {
        let inv = self.gcra_invocation(key, gcra, cost);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.invoke_script(&inv);
        pipe.add_command(read_command(read));
        let (decision, found): (redis::Value, redis::Value) = self
            .bounded(async {
                let mut conn = self.conn().await?;
                let (mut decision, found): (redis::Value, redis::Value) =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                if let redis::Value::ServerError(e) = &decision
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    decision = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
                Ok((decision, found))
            })
            .await?;
        let decision = redis::from_redis_value(decision).map_err(unavailable)?;
        Ok((to_decision(decision), read_answer(read, found)?))
    }

    /// The session's script and the decision, pipelined (`invoke_all`).
    pub(super) async fn save_session(
        &self,
        record: &str,
        index: &str,
        session: &NewSession<'_>,
        along: Option<Spend<'_>>,
    ) -> StoreResult<(usize, Vec<Decision>)> {
        let mut save = self.scripts.save_session.prepare_invoke();
        save.key(record)
            .key(index)
            .arg(session.record)
            .arg(ms(session.ttl).max(1))
            .arg(session.session_id)
            .arg(ms(session.index_ttl).max(1));
        let decide = along.map(|spend| self.fields_invocation(&spend));
        let mut invocations = vec![&save];
        invocations.extend(decide.as_ref());
        let mut replies = self.invoke_all(&invocations).await?.into_iter();
        let count = redis::from_redis_value(replies.next().unwrap_or(redis::Value::Nil))
            .map_err(unavailable)?;
        let decisions = match replies.next() {
            Some(reply) => to_decisions(reply)?,
            None => Vec::new(),
        };
        Ok((count, decisions))
    }

    /// `FIELDS_SCRIPT`, and the read in the same pipeline.
    pub(super) async fn rate_limit_fields(
        &self,
        spend: &Spend<'_>,
        read: Option<Read<'_>>,
    ) -> StoreResult<(Vec<Decision>, Option<ReadAnswer>)> {
        let inv = self.fields_invocation(spend);
        let Some(read) = read else {
            return Ok((to_decisions(self.invoke(inv).await?)?, None));
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.invoke_script(&inv);
        pipe.add_command(read_command(read));
        let (decisions, found): (redis::Value, redis::Value) = self
            .bounded(async {
                let mut conn = self.conn().await?;
                let (mut decisions, found): (redis::Value, redis::Value) =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                if let redis::Value::ServerError(e) = &decisions
                    && e.kind() == Some(redis::ServerErrorKind::NoScript)
                {
                    decisions = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
                }
                Ok((decisions, found))
            })
            .await?;
        Ok((to_decisions(decisions)?, Some(read_answer(read, found)?)))
    }

    fn fields_invocation(&self, spend: &Spend<'_>) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts.fields.prepare_invoke();
        inv.key(spend.key).arg(spend.cost.units());
        for budget in spend.budgets {
            inv.arg(budget.field)
                .arg(budget.gcra.interval_us)
                .arg(budget.gcra.capacity_us);
        }
        inv
    }

    fn gcra_invocation(&self, key: &str, gcra: Gcra, cost: Cost) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts.gcra.prepare_invoke();
        inv.key(key)
            .arg(gcra.interval_us)
            .arg(gcra.capacity_us)
            .arg(cost.units());
        inv
    }

    pub(super) async fn read(&self, read: Read<'_>) -> StoreResult<ReadAnswer> {
        let found: redis::Value = self.query(&read_command(read)).await?;
        read_answer(read, found)
    }

    pub(super) async fn rotate_session(
        &self,
        session: &str,
        index: &str,
        user: &str,
        r: &SessionRotation<'_>,
    ) -> StoreResult<(Rotation, Option<Decision>)> {
        let mut inv = self.scripts.rotate_session.prepare_invoke();
        inv.key(session).key(index).key(user);
        if let Some(budget) = &r.budget {
            inv.key(budget.key);
        }
        inv.arg(r.presented_jti)
            .arg(r.now.millis())
            .arg(ms(r.grace))
            .arg(ms(r.max_age))
            .arg(ms(r.refresh_ttl))
            .arg(r.access_jti)
            .arg(r.refresh_jti)
            .arg(r.now.secs())
            .arg(r.session_id);
        if let Some(budget) = &r.budget {
            inv.arg(budget.gcra.interval_us)
                .arg(budget.gcra.capacity_us)
                .arg(budget.cost.units());
        }
        type Reply = (String, Option<String>, Option<String>, i64, i64, i64, i64);
        let (verdict, session, user, allowed, remaining, reset_after_us, retry_after_us): Reply =
            self.invoke(inv).await?;
        let decision = (remaining >= 0)
            .then(|| to_decision((allowed, remaining, reset_after_us, retry_after_us)));
        let session = || session.clone().unwrap_or_default();
        let rotation = match verdict.as_str() {
            "rotated" => Rotation::Rotated {
                session: session(),
                user,
            },
            "grace" => Rotation::Grace {
                session: session(),
                user,
            },
            "reused" => Rotation::Reused,
            "expired" => Rotation::Expired,
            "limited" => Rotation::Limited,
            _ => Rotation::Gone,
        };
        Ok((rotation, decision))
    }

    pub(super) async fn append_event(
        &self,
        record: &str,
        history: &str,
        channels: (&str, &str),
        event: &NewEvent<'_>,
    ) -> StoreResult<AppendOutcome> {
        let mut inv = self.scripts.append_event.prepare_invoke();
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

    pub(super) async fn read_events(
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

    pub(super) async fn open_stream(
        &self,
        keys: &[String; 8],
        opening: &StreamOpening<'_>,
    ) -> StoreResult<StreamOpened> {
        let mut inv = self.scripts.open_stream.prepare_invoke();
        for key in keys {
            inv.key(key.as_str());
        }
        let flag = |present: bool| if present { "1" } else { "0" };
        inv.arg(flag(opening.token.is_some()))
            .arg(flag(opening.cookie.is_some()))
            .arg(opening.after.unwrap_or_default())
            .arg(opening.now_ms)
            .arg(ms(opening.resume_ttl).max(1))
            .arg(opening.page_size.max(1));
        // A consumed token is consumed on a replica too before the stream opens (on a
        // Cluster): a failover cannot make it usable again.
        let confirming = self.confirming();
        let reply: Vec<redis::Value> = confirming.invoke(inv).await?;
        confirming.confirm(&[keys[0].as_str()]).await?;
        let text = |i: usize| {
            reply
                .get(i)
                .and_then(|v| String::from_redis_value_ref(v).ok())
                .unwrap_or_default()
        };
        let number = |i: usize| {
            reply
                .get(i)
                .and_then(|v| i64::from_redis_value_ref(v).ok())
                .unwrap_or_default()
        };
        let found = match text(0).as_str() {
            "refused" => return Ok(StreamOpened::Refused(Refusal::named(&text(1)))),
            "gone" => GrantFound::Gone,
            "not_owner" => GrantFound::NotOwner,
            "session_ended" => GrantFound::SessionEnded,
            "collision" => GrantFound::Collision,
            "open" => {
                let flat: Vec<String> = reply
                    .get(7)
                    .map(Vec::<String>::from_redis_value_ref)
                    .transpose()
                    .map_err(unavailable)?
                    .unwrap_or_default();
                let events = flat
                    .chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                GrantFound::Open {
                    owner_id: text(3),
                    status: stored_status(opening.generation_id, Some(&text(4))),
                    page: EventPage {
                        events,
                        reset: number(5) == 1,
                    },
                    resume_ttl: Duration::from_millis(u64::try_from(number(6)).unwrap_or(0)),
                }
            }
            _ => return Err(unavailable("unexpected reply to a stream open")),
        };
        Ok(StreamOpened::Taken {
            grant: text(1),
            via_cookie: text(2) == "cookie",
            found,
        })
    }

    pub(super) async fn admit_stream(
        &self,
        keys: &[String; 6],
        admission: &StreamAdmission<'_>,
    ) -> StoreResult<(Decision, Admission)> {
        let mut inv = self.scripts.admit_stream.prepare_invoke();
        for key in keys {
            inv.key(key.as_str());
        }
        inv.arg(admission.gcra.interval_us)
            .arg(admission.gcra.capacity_us)
            .arg(admission.issued_at_secs)
            .arg(admission.recheck_owner.unwrap_or_default())
            .arg(admission.user_id)
            .arg(admission.place)
            .arg(admission.place_expires_at_ms)
            .arg(admission.now_ms)
            .arg(admission.max_streams)
            .arg(admission.released);
        let (verdict, allowed, remaining, reset_after_us, retry_after_us): (
            String,
            i64,
            i64,
            i64,
            i64,
        ) = self.invoke(inv).await?;
        let decision = Decision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after_us,
            retry_after_us,
        };
        let admission = match verdict.as_str() {
            "limited" => Admission::RateLimited,
            "revoked" => Admission::Revoked,
            "session_ended" => Admission::SessionEnded,
            "not_owner" => Admission::NotOwner,
            "too_many_streams" => Admission::TooManyStreams,
            "admitted" => Admission::Admitted,
            _ => return Err(unavailable("unexpected reply to a stream admission")),
        };
        Ok((decision, admission))
    }

    pub(super) async fn mint_stream_token(
        &self,
        user: Option<(&MintAdmission<'_>, &[String; 2])>,
        token: Option<(&NewStreamToken<'_>, &[String; 3])>,
    ) -> StoreResult<MintOutcome> {
        let mut invocations = Vec::new();
        let mut admit = self.scripts.admit_mint.prepare_invoke();
        if let Some((admission, keys)) = user {
            admit
                .key(keys[0].as_str())
                .key(keys[1].as_str())
                .arg(admission.gcra.interval_us)
                .arg(admission.gcra.capacity_us);
            invocations.push(&admit);
        }
        let mut mint = self.scripts.mint_stream_token.prepare_invoke();
        if let Some((token, keys)) = token {
            mint.key(keys[0].as_str())
                .key(keys[1].as_str())
                .key(keys[2].as_str())
                .arg(token.user_id)
                .arg(if token.admin { "1" } else { "0" })
                .arg(token.grant)
                .arg(ms(token.ttl).max(1));
            invocations.push(&mint);
        }
        let mut replies: Vec<redis::Value> = self
            .invoke_all(&invocations)
            .await?
            .into_iter()
            .rev()
            .collect();
        let mut outcome = MintOutcome::default();
        if user.is_some() {
            let reply = replies
                .pop()
                .ok_or_else(|| unavailable("no reply to a mint"))?;
            let (allowed, remaining, reset_after_us, retry_after_us, session): (
                i64,
                i64,
                i64,
                i64,
                String,
            ) = redis::from_redis_value(reply).map_err(unavailable)?;
            let decision = Decision {
                allowed: allowed == 1,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset_after_us,
                retry_after_us,
            };
            outcome.admission = Some((decision, Some(session).filter(|s| !s.is_empty())));
        }
        if token.is_some() {
            let reply = replies
                .pop()
                .ok_or_else(|| unavailable("no reply to a mint"))?;
            let status: String = redis::from_redis_value(reply).map_err(unavailable)?;
            outcome.minted = Some(match status.as_str() {
                "stored" => Minted::Stored,
                "gone" => Minted::Gone,
                "not_owner" => Minted::NotOwner,
                "collision" => Minted::Collision,
                _ => return Err(unavailable("unexpected reply to a mint")),
            });
        }
        Ok(outcome)
    }

    pub(super) async fn stream_stats(
        &self,
        keys: &[String; 4],
        flush: &StatsFlush,
        read: bool,
    ) -> StoreResult<Stats> {
        let mut inv = self.scripts.stream_stats.prepare_invoke();
        for key in keys {
            inv.key(key.as_str());
        }
        inv.arg(flush.now_ms)
            .arg(if read { "1" } else { "0" })
            .arg(flush.issued)
            .arg(flush.consumed)
            .arg(flush.rejected);
        for (second, change) in &flush.live {
            inv.arg(*second).arg(*change);
        }
        if !read {
            let _: i64 = self.invoke(inv).await?;
            return Ok(Stats::default());
        }
        let (active, issued_total, consumed_total, rejected_total): (u64, u64, u64, u64) =
            self.invoke(inv).await?;
        Ok(Stats {
            active,
            issued_total,
            consumed_total,
            rejected_total,
        })
    }

    pub(super) async fn revoke(
        &self,
        write: &RevocationWrite,
        logs: &[String],
        entry: &str,
        _now_ms: i64,
        oldest_kept_ms: i64,
    ) -> StoreResult<String> {
        let (markers, keep_for) = (&write.markers, write.keep_for);
        // Redis numbers log entries by its own clock (`XADD *`).
        let mut pipe = redis::pipe();
        let indexed = write.index.is_some();
        let revoke = pipe
            .cmd("EVAL")
            .arg(REVOKE)
            .arg(markers.len() + write.records.len() + usize::from(indexed));
        for (key, _) in markers {
            revoke.arg(key);
        }
        revoke.arg(&write.records);
        if let Some(index) = &write.index {
            revoke.arg(index);
        }
        revoke.arg(markers.len());
        for (_, value) in markers {
            revoke.arg(value).arg(ms(keep_for));
        }
        revoke.arg(&write.session_ids);
        if let Some(all) = &write.all {
            revoke
                .arg(&all.record_prefix)
                .arg(&all.marker_prefix)
                .arg(ms(keep_for));
        }
        revoke.ignore();
        for log in logs {
            pipe.cmd("XADD")
                .arg(log)
                .arg("MINID")
                .arg(oldest_kept_ms.max(0))
                .arg("*")
                .arg("r")
                .arg(entry);
        }
        // Confirmed by a replica of each master written (on a Cluster): a failover
        // cannot undo a revocation that answered success.
        let confirming = self.confirming();
        let ids: Vec<String> = confirming.pipe(&pipe).await?;
        let id = ids.into_iter().next().unwrap_or_default();
        let mut written: Vec<&str> = logs.iter().map(String::as_str).collect();
        written.extend(markers.first().map(|(key, _)| key.as_str()));
        written.extend(write.records.first().map(String::as_str));
        confirming.confirm(&written).await?;
        Ok(id)
    }

    pub(super) async fn read_log(
        &self,
        log: &str,
        after: &str,
        count: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            read_log_on(&mut conn, log, after, count).await
        })
        .await
    }

    /// Tails the revocation logs (`logs`, by index: the shards, then the legacy log)
    /// into `view` on a connection of its own, for as long as the view lives.
    pub(super) fn tail_revocations(
        &self,
        logs: [String; REVOCATION_LOG_SHARDS + 1],
        view: Weak<RevocationView>,
        page: usize,
    ) {
        tokio::spawn(run_revocation_tail(
            self.client.clone(),
            self.target.clone(),
            self.timeout,
            logs,
            view,
            page,
        ));
    }

    pub(super) async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        self.query::<()>(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    pub(super) async fn subscribe(&self) -> StoreResult<broadcast::Receiver<PubSubMessage>> {
        let receiver = self.pubsub.sender.subscribe();
        self.pubsub.started.call_once(|| {
            let clients = match &self.target {
                Target::Single => vec![self.client.clone()],
                Target::Cluster(cluster) => cluster.1.clone(),
            };
            tokio::spawn(run_subscription(clients, self.pubsub.clone(), self.timeout));
        });
        let mut live = self.pubsub.live.subscribe();
        tokio::time::timeout(self.timeout, live.wait_for(|up| *up))
            .await
            .map_err(|_| StoreError::Unavailable("subscription not live".into()))?
            .map_err(unavailable)?;
        Ok(receiver)
    }

    /// Subscribes this process to a generation's channel (`SSUBSCRIBE` on the node of
    /// its slot) and returns once the node confirmed it.
    pub(super) async fn subscribe_channel(&self, channel: &str) -> StoreResult<()> {
        let slot = super::slot::key_slot(channel);
        self.sharded
            .subscribe(channel, slot, self.timeout, self.sharded_setup())
            .await
    }

    /// What the sharded subscriptions' task needs, made when it starts.
    fn sharded_setup(
        &self,
    ) -> impl FnOnce() -> (
        super::sharded::Locate,
        super::sharded::Login,
        broadcast::Sender<PubSubMessage>,
        Duration,
    ) + use<> {
        let store = self.clone();
        move || {
            let info = store.client.get_connection_info();
            let login = super::sharded::Login {
                username: info
                    .redis_settings()
                    .username()
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                password: info.redis_settings().password().map(str::to_owned),
            };
            let single = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => Ok(address(host, *port)),
                _ => Err("only redis:// (plain TCP) is supported for the sharded subscriptions"),
            };
            let host = match info.addr() {
                redis::ConnectionAddr::Tcp(host, _) => host.clone(),
                _ => String::new(),
            };
            let sender = store.pubsub.sender.clone();
            let timeout = store.timeout;
            let locate: super::sharded::Locate = Arc::new(move || {
                let store = store.clone();
                let single = single.clone();
                let host = host.clone();
                Box::pin(async move {
                    if !store.is_cluster() {
                        return single
                            .map(super::sharded::SlotMap::single)
                            .map_err(|e| StoreError::Unavailable(e.into()));
                    }
                    let reply: redis::Value =
                        store.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
                    super::sharded::SlotMap::from_cluster_slots(&reply, &host)
                        .ok_or_else(|| unavailable("unreadable CLUSTER SLOTS reply"))
                })
            });
            (locate, login, sender, timeout)
        }
    }

    /// Starts this process's canary (once): a channel of its own on every master,
    /// subscribed through the generations' connections, and `SPUBLISH`ed to each
    /// master every `CANARY_EVERY` through the shared connection.
    pub(super) fn watch_delivery(&self, name: super::sharded::CanaryName) {
        if !self.sharded.watch_delivery(name, self.sharded_setup()) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(super::sharded::CANARY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent: u64 = 0;
            loop {
                tick.tick().await;
                sent += 1;
                let payload = sent.to_string();
                let publishes = store.sharded.canary_targets().into_iter().map(
                    |(node, channel)| {
                        let (store, payload) = (&store, &payload);
                        async move {
                            let answered = store.publish_at(&node, &channel, payload).await;
                            if let Err(e) = &answered {
                                tracing::debug!(%node, error = %e, "the canary was not published");
                            }
                            (node, answered.is_ok())
                        }
                    },
                );
                let answers = futures_util::future::join_all(publishes).await;
                store.sharded.canary_answers(&answers);
            }
        });
    }

    /// `SPUBLISH` on the shared connection, to the node at `node` itself on a
    /// Cluster (the question is whether that node answers). Not a request's round trip.
    async fn publish_at(&self, node: &str, channel: &str, payload: &str) -> StoreResult<()> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let mut spublish = redis::cmd("SPUBLISH");
        spublish.arg(channel).arg(payload);
        if !self.is_cluster() {
            return self.query::<i64>(&spublish).await.map(drop);
        }
        let (host, port) = node
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| unavailable("not a host:port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        self.bounded(async {
            let Conn::Cluster(mut conn) = self.conn().await? else {
                return Ok(());
            };
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            let reply = conn
                .route_command(spublish, route)
                .await
                .map_err(unavailable)?;
            i64::from_redis_value(reply).map(drop).map_err(unavailable)
        })
        .await
    }

    /// Each master's canary delivery, from memory; `None` without a canary.
    pub(super) fn delivery(&self) -> Option<Vec<super::sharded::Delivery>> {
        self.sharded.delivery()
    }

    /// Ends this process's subscription to a generation's channel.
    pub(super) fn unsubscribe_channel(&self, channel: &str) {
        self.sharded.unsubscribe(channel);
    }

    /// Confirmed sharded subscriptions per node address.
    pub(super) fn sharded_subscriptions(&self) -> HashMap<String, usize> {
        self.sharded.per_node()
    }

    pub(super) async fn debug_dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
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

/// Appends one write to a pipeline; its reply is ignored.
/// The GCRA script's answer: allowed, remaining, reset after µs, retry after µs.
/// Four numbers per budget, as `FIELDS_SCRIPT` answers.
fn to_decisions(reply: redis::Value) -> StoreResult<Vec<Decision>> {
    let numbers: Vec<i64> = redis::from_redis_value(reply).map_err(unavailable)?;
    Ok(numbers
        .chunks_exact(4)
        .map(|d| to_decision((d[0], d[1], d[2], d[3])))
        .collect())
}

fn to_decision(
    (allowed, remaining, reset_after_us, retry_after_us): (i64, i64, i64, i64),
) -> Decision {
    Decision {
        allowed: allowed == 1,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_after_us,
        retry_after_us,
    }
}

fn read_command(read: Read<'_>) -> redis::Cmd {
    let (name, key) = match read {
        Read::Get(key) => ("GET", key),
        Read::HashGetAll(key) => ("HGETALL", key),
        Read::SetMembers(key) => ("SMEMBERS", key),
    };
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    cmd
}

fn read_answer(read: Read<'_>, found: redis::Value) -> StoreResult<ReadAnswer> {
    let parsed = match read {
        Read::Get(_) => redis::from_redis_value(found).map(ReadAnswer::Value),
        Read::HashGetAll(_) => redis::from_redis_value(found).map(ReadAnswer::Hash),
        Read::SetMembers(_) => redis::from_redis_value(found).map(ReadAnswer::Members),
    };
    parsed.map_err(unavailable)
}

fn push_write(pipe: &mut redis::Pipeline, write: Write<'_>) {
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
        Write::ExpiringAdd {
            key,
            member,
            expires_at_ms,
            now_ms,
        } => {
            let lives_for = u64::try_from(expires_at_ms - now_ms).unwrap_or(0).max(1);
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now_ms)
                .ignore();
            pipe.cmd("ZADD")
                .arg(key)
                .arg(expires_at_ms)
                .arg(member)
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

/// Log entries after `after`, oldest first: `(id, entry)`.
async fn read_log_on(
    conn: &mut impl ConnectionLike,
    log: &str,
    after: &str,
    count: usize,
) -> StoreResult<Vec<(String, String)>> {
    type Entries = Vec<(String, Vec<(String, String)>)>;
    let entries: Entries = redis::cmd("XRANGE")
        .arg(log)
        .arg(format!("({after}"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    Ok(entries
        .into_iter()
        .filter_map(|(id, fields)| {
            let (_, entry) = fields.into_iter().find(|(f, _)| f == "r")?;
            Some((id, entry))
        })
        .collect())
}

/// Tails every revocation log the view wants (`RevocationView::tailed_logs`) into it:
/// one loop per log, each on its own schedule, so that a log whose master is being
/// replaced holds up only its own users' freshness. On one Redis the loops share one
/// connection of their own; on a Cluster each loop has a plain connection to its log's
/// node (not the cluster connection, which stops every request while it relearns the
/// topology), found from `CLUSTER SLOTS` and found again when a read fails.
async fn run_revocation_tail(
    client: redis::Client,
    target: Target,
    timeout: Duration,
    logs: [String; REVOCATION_LOG_SHARDS + 1],
    view: Weak<RevocationView>,
    page: usize,
) {
    let conn = Arc::new(TailConnection {
        client,
        target,
        timeout,
        current: tokio::sync::Mutex::new((0, None)),
        slots: parking_lot::Mutex::new(Located::default()),
    });
    let loops = logs
        .into_iter()
        .enumerate()
        .map(|(log, key)| tail_log(log, key, conn.clone(), view.clone(), page));
    futures_util::future::join_all(loops).await;
}

/// The tail's connections.
struct TailConnection {
    client: redis::Client,
    target: Target,
    timeout: Duration,
    /// One Redis: the shared connection and its number (which connection a failed
    /// read was on).
    current: tokio::sync::Mutex<(u64, Option<Conn>)>,
    /// A Cluster: where each slot lives.
    slots: parking_lot::Mutex<Located>,
}

#[derive(Default)]
struct Located {
    map: super::sharded::SlotMap,
    /// A read failed since it was asked: ask again.
    stale: bool,
    asked_at: Option<Instant>,
}

/// How often at most the tail asks a Cluster where the slots live.
const RELOCATE_EVERY: Duration = Duration::from_millis(200);

impl TailConnection {
    /// A connection that reads `key`, and its number for `failed`.
    async fn get(&self, key: &str) -> Option<(u64, Conn)> {
        let connect = |client: redis::Client| async move {
            let connected = tokio::time::timeout(self.timeout, async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg("authstream-revocations")
                    .exec_async(&mut conn)
                    .await?;
                Ok::<_, redis::RedisError>(conn)
            })
            .await;
            connected.ok()?.ok().map(Conn::Dedicated)
        };
        if let Target::Cluster(cluster) = &self.target {
            let connected = match self.node_of(key, &cluster.1).await {
                Some(node) => connect(node).await,
                None => None,
            };
            if connected.is_none() {
                // The node that was said to serve it does not answer: ask again.
                self.slots.lock().stale = true;
            }
            return Some((0, connected?));
        }
        let mut current = self.current.lock().await;
        if let (number, Some(conn)) = &*current {
            return Some((*number, conn.clone()));
        }
        let conn = connect(self.client.clone()).await?;
        current.0 += 1;
        current.1 = Some(conn.clone());
        Some((current.0, conn))
    }

    /// A read on connection `number` failed: the next `get` connects again (once, for
    /// every loop that was on it). On a Cluster, the slots are asked again.
    async fn failed(&self, number: u64) {
        if matches!(self.target, Target::Cluster(_)) {
            self.slots.lock().stale = true;
            return;
        }
        let mut current = self.current.lock().await;
        if current.0 == number {
            current.1 = None;
        }
    }

    /// A client of the master serving `key`'s slot, asking where that is when it is
    /// not known (or a read failed since), at most every `RELOCATE_EVERY`.
    async fn node_of(&self, key: &str, seeds: &[redis::Client]) -> Option<redis::Client> {
        let slot = super::slot::key_slot(key);
        let ask = {
            let slots = self.slots.lock();
            (slots.stale || slots.asked_at.is_none())
                && slots
                    .asked_at
                    .is_none_or(|at| at.elapsed() >= RELOCATE_EVERY)
        };
        if ask {
            self.locate(seeds).await;
        }
        let addr = self.slots.lock().map.node_of(slot)?.to_owned();
        client_at(seeds.first()?, &addr)
    }

    /// Asks where the slots live (`CLUSTER SLOTS`) of the nodes last known, then of
    /// the seeds, keeping the first answer.
    async fn locate(&self, seeds: &[redis::Client]) {
        let known: Vec<redis::Client> = {
            let mut slots = self.slots.lock();
            slots.asked_at = Some(Instant::now());
            let mut addrs: Vec<&str> = slots.map.0.values().map(|(_, a)| a.as_str()).collect();
            addrs.sort_unstable();
            addrs.dedup();
            addrs
                .into_iter()
                .filter_map(|addr| client_at(seeds.first()?, addr))
                .collect()
        };
        for node in known.iter().chain(seeds) {
            let asked = tokio::time::timeout(self.timeout, async {
                let mut conn = node.get_multiplexed_async_connection().await?;
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async::<redis::Value>(&mut conn)
                    .await
            })
            .await;
            let host = match node.get_connection_info().addr() {
                redis::ConnectionAddr::Tcp(host, _) => host.clone(),
                _ => String::new(),
            };
            if let Ok(Ok(reply)) = asked
                && let Some(map) = super::sharded::SlotMap::from_cluster_slots(&reply, &host)
            {
                let mut slots = self.slots.lock();
                slots.map = map;
                slots.stale = false;
                return;
            }
        }
    }
}

/// A client of the node at `addr` (`host:port`), logging in as `template` does.
fn client_at(template: &redis::Client, addr: &str) -> Option<redis::Client> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let info = template
        .get_connection_info()
        .clone()
        .set_addr(redis::ConnectionAddr::Tcp(host, port.parse().ok()?));
    redis::Client::open(info).ok()
}

/// Reads log `log` into the view, from the start, then every `TAIL_POLL_INTERVAL`
/// from the last id read (at once while pages come full). Each read that reaches the
/// end of the log marks its users fresh; a failed one marks them stale, and the log is
/// read from the start again (a promoted replica, or a Redis that lost its data,
/// numbers its log by its own clock, maybe below what was read before; applying an
/// entry twice changes nothing). The legacy log's loop waits while it is off.
async fn tail_log(
    log: usize,
    key: String,
    conn: Arc<TailConnection>,
    view: Weak<RevocationView>,
    page: usize,
) {
    let mut last_id = "0-0".to_owned();
    let mut backoff = Duration::from_millis(50);
    let mut failing = false;
    let mut pruned_at = UnixTime::now();
    let mut connection: Option<(u64, Conn)> = None;
    loop {
        match view.upgrade() {
            None => return,
            Some(view) if !view.tailed_logs().contains(&log) => {
                drop(view);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Some(_) => {}
        }
        let asked = Instant::now();
        if connection.is_none() {
            connection = conn.get(&key).await;
        }
        let read = match &mut connection {
            Some((number, c)) => {
                let read =
                    tokio::time::timeout(conn.timeout, read_log_on(c, &key, &last_id, page)).await;
                match read {
                    Ok(Ok(entries)) => Some(entries),
                    _ => {
                        conn.failed(*number).await;
                        connection = None;
                        None
                    }
                }
            }
            None => None,
        };
        let Some(view) = view.upgrade() else { return };
        let Some(entries) = read else {
            view.lost(log);
            if !failing {
                tracing::warn!(
                    log,
                    "revocation log tail lost; its users' checks ask the store until it is back"
                );
                failing = true;
            }
            "0-0".clone_into(&mut last_id);
            drop(view);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        failing = false;
        backoff = Duration::from_millis(50);
        for (_, entry) in &entries {
            view.apply_logged(entry);
        }
        if let Some((id, _)) = entries.last() {
            last_id.clone_from(id);
        }
        if entries.len() == page {
            continue;
        }
        view.heard(log, asked);
        let now = UnixTime::now();
        if log == 0 && now.millis() - pruned_at.millis() > 10_000 {
            view.prune(now.millis());
            pruned_at = now;
        }
        drop(view);
        tokio::time::sleep(TAIL_POLL_INTERVAL).await;
    }
}

/// Keeps one subscription alive for the life of the process, reconnecting with backoff.
async fn run_subscription(clients: Vec<redis::Client>, state: Arc<PubSubState>, timeout: Duration) {
    let mut connected_before = false;
    let mut backoff = Duration::from_millis(50);
    // On a cluster, each attempt tries the next seed: a dead node is passed over.
    for client in clients.iter().cycle() {
        let channels = state.channels.lock().clone();
        let attempt = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            for channel in &channels {
                pubsub.subscribe(channel).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match attempt {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(50);
                if connected_before {
                    tracing::info!("store subscription re-established");
                    let _ = state.sender.send(PubSubMessage::Reconnected);
                }
                connected_before = true;
                state.live.send_replace(true);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    // No receivers is fine: nobody is streaming right now.
                    let _ = state.sender.send(PubSubMessage::Message {
                        channel: msg.get_channel_name().into(),
                        payload: payload.into(),
                    });
                }
                state.live.send_replace(false);
                tracing::warn!("store subscription lost, reconnecting");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "store subscription failed"),
            Err(_) => tracing::debug!("store subscription timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_expire_with_ex_and_the_rest_with_px() {
        assert_eq!(expiry(Duration::from_secs(60)), ("EX", 60));
        assert_eq!(expiry(Duration::from_millis(1500)), ("PX", 1500));
        assert_eq!(expiry(Duration::from_millis(200)), ("PX", 200));
        assert_eq!(expiry(Duration::ZERO), ("PX", 1));
    }
}
