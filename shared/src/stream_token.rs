//! Stream tokens and resume grants: 32 random bytes, URL-safe base64 without
//! padding (43 characters). The store only ever sees their SHA-256 digest.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::store::{Taken, Write};

pub const STREAM_TOKEN_LEN: usize = 43;

/// A stream token's secret. Never logged: `Debug` is redacted.
pub struct StreamSecret(String);

impl std::fmt::Debug for StreamSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSecret(..)")
    }
}

impl StreamSecret {
    pub fn generate() -> Result<Self, ApiError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| ApiError::internal("the random source failed"))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only what `generate` can produce; anything else (a JWT, say) is refused
    /// before it reaches the store.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == STREAM_TOKEN_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && URL_SAFE_NO_PAD.decode(raw).is_ok_and(|b| b.len() == 32);
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 digest: the only form the store holds.
    pub fn digest(&self) -> String {
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            self.0.as_bytes(),
        ))
    }
}

/// What a stream token or resume grant stands for, stored under its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamGrant {
    pub user_id: String,
    pub session_id: String,
    pub generation_id: String,
    /// Issue time, Unix milliseconds.
    pub issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub admin: bool,
    /// The user's tier when the token was minted: whose rate limit an open spends.
    #[serde(default)]
    pub tier: crate::claims::Tier,
    /// `token` (minted by the auth service) or `resume` (set as a cookie on open).
    pub kind: GrantKind,
    /// When the session ends at the latest (`SESSION_MAX_AGE_SECS` after its login),
    /// Unix milliseconds: no grant is honoured, and no resume grant minted, past it.
    pub session_expires_at: i64,
}

impl StreamGrant {
    /// How long a grant minted at `now` may live: `ttl`, but never past the session's
    /// end. `None` once the session has ended.
    pub fn lifetime_within_session(&self, ttl: Duration, now: crate::UnixTime) -> Option<Duration> {
        let left = u64::try_from(self.session_expires_at - now.millis())
            .ok()
            .filter(|&ms| ms > 0)?;
        Some(ttl.min(Duration::from_millis(left)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    Token,
    Resume,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_43_url_safe_characters_and_parse_back() {
        let s = StreamSecret::generate().unwrap();
        assert_eq!(s.expose().len(), 43);
        assert!(StreamSecret::parse(s.expose()).is_some());
        assert_eq!(s.digest().len(), 64);
        assert!(!s.digest().contains(s.expose()));
        assert!(format!("{s:?}").contains(".."));
    }

    #[test]
    fn jwts_and_junk_do_not_parse() {
        for raw in [
            "",
            "abc",
            "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
            &"a".repeat(44),
            &"+".repeat(43),
        ] {
            assert!(StreamSecret::parse(raw).is_none(), "{raw}");
        }
    }
}

/// A token's state marker (`Keys::stream_token_state`): `issued` at mint, `used` once
/// consumed. It lives twice the token's lifetime, so that a token presented after
/// its expiry, or again, is told apart from one never issued, and then goes too.
pub(crate) const ISSUED: &str = "issued";
pub(crate) const USED: &str = "used";

/// Stores a grant under the digest of a fresh secret with `SET NX`, beside its state
/// marker, under its generation's hash tag: ONE round trip. Retries on the
/// (practically impossible) collision, and returns the secret. The statistics are
/// counted in this process (`PendingStats`).
pub async fn mint(
    store: &crate::Store,
    grant: &StreamGrant,
    ttl: Duration,
    now: crate::UnixTime,
) -> Result<StreamSecret, ApiError> {
    let value = serde_json::to_string(grant).map_err(ApiError::internal)?;
    let keys = store.keys();
    for _ in 0..3 {
        let secret = StreamSecret::generate()?;
        let digest = secret.digest();
        let token = keys.stream_token(&grant.generation_id, &digest);
        let state = keys.stream_token_state(&grant.generation_id, &digest);
        let writes = [
            Write::SetNx {
                key: &token,
                value: &value,
                ttl,
            },
            // `SET NX` too: a collision leaves the other token's marker alone.
            Write::SetNx {
                key: &state,
                value: ISSUED,
                ttl: ttl.saturating_mul(2),
            },
        ];
        if store.write_all(&writes).await? {
            if grant.kind == GrantKind::Token {
                store.stream_stats().issued(digest, now.plus(ttl));
            }
            return Ok(secret);
        }
    }
    Err(ApiError::internal("three stream token collisions in a row"))
}

/// Why a presented stream token was not accepted (for logs and metrics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued (or so long ago that its state marker is gone too).
    Unknown,
    /// Issued, never consumed, and past its lifetime.
    Expired,
    /// Already consumed once: a replay.
    Replay,
    /// A grant of the other kind (a resume grant presented as a token, or the reverse).
    WrongKind,
}

impl Refusal {
    /// What a missing grant's state marker says.
    pub(crate) fn of_marker(marker: Option<&str>) -> Self {
        match marker {
            Some(USED) => Self::Replay,
            Some(ISSUED) => Self::Expired,
            _ => Self::Unknown,
        }
    }

    /// The name the store's open script gives a refusal.
    pub(crate) fn named(name: &str) -> Self {
        match name {
            "replay" => Self::Replay,
            "expired" => Self::Expired,
            "wrong_kind" => Self::WrongKind,
            _ => Self::Unknown,
        }
    }
}

/// Consumes a grant of `generation_id` with ONE `GETDEL`, which in the same atomic
/// step marks it used (keeping the marker's expiry) or, on a miss, reads the marker. A
/// refused token is told apart (unknown, expired or replay) for the log, never for the
/// client. (A stream open does this inside `Store::open_stream`.)
pub async fn consume(
    store: &crate::Store,
    generation_id: &str,
    secret: &StreamSecret,
) -> Result<Result<StreamGrant, Refusal>, crate::StoreError> {
    let digest = secret.digest();
    let keys = store.keys();
    let taken = store
        .get_del_marking(
            &keys.stream_token(generation_id, &digest),
            &keys.stream_token_state(generation_id, &digest),
            USED,
        )
        .await?;
    let raw = match taken {
        Taken::Value(raw) => raw,
        // Atomic with the marking, so a racing second use is a replay, not "expired".
        Taken::Missing { marker } => return Ok(Err(Refusal::of_marker(marker.as_deref()))),
    };
    let Ok(grant) = serde_json::from_str::<StreamGrant>(&raw) else {
        return Ok(Err(Refusal::Unknown));
    };
    if grant.kind == GrantKind::Token {
        store
            .stream_stats()
            .consumed(digest, crate::UnixTime::now());
    }
    Ok(Ok(grant))
}

/// How often each process adds its counted statistics to the store's counters.
pub const STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Stream token statistics counted in this process, added to the store's counters in
/// the background every `STATS_FLUSH_INTERVAL` (one pipeline), so that no mint or open
/// waits for them. Shared by every clone of a `Store`.
#[derive(Default)]
pub struct PendingStats {
    issued: AtomicU64,
    consumed: AtomicU64,
    rejected: AtomicU64,
    active: Mutex<ActiveChanges>,
    flushing: AtomicBool,
    /// One flush at a time: a reader's flush waits for a background flush that already
    /// took the counts, so what it reads afterwards includes them.
    flush_turn: tokio::sync::Mutex<()>,
}

/// Tokens minted (digest, expiry ms) and consumed (digest, when, ms) here since the
/// last flush.
#[derive(Default)]
struct ActiveChanges {
    minted: Vec<(String, i64)>,
    consumed: Vec<(String, i64)>,
}

/// The background flush takes a consumed token out of the active set this long after
/// its consumption: by then the process that minted it (maybe another) has flushed its
/// mint, so the removal never comes first and leaves a stale member behind.
const REMOVAL_DELAY: Duration = STATS_FLUSH_INTERVAL.saturating_mul(2);

/// At most this many active-set changes wait for a flush; past it (a store down for
/// long) the oldest are dropped: the set is a gauge that corrects itself as tokens expire.
const MAX_PENDING_ACTIVE: usize = 100_000;

impl PendingStats {
    fn issued(&self, digest: String, expires_at: crate::UnixTime) {
        self.issued.fetch_add(1, Ordering::Relaxed);
        let mut active = self.active.lock();
        if active.minted.len() < MAX_PENDING_ACTIVE {
            active.minted.push((digest, expires_at.millis()));
        }
    }

    fn consumed(&self, digest: String, now: crate::UnixTime) {
        self.consumed.fetch_add(1, Ordering::Relaxed);
        let mut active = self.active.lock();
        if active.consumed.len() < MAX_PENDING_ACTIVE {
            active.consumed.push((digest, now.millis()));
        }
    }

    fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the background flush once per store, when called inside a runtime.
    pub(crate) fn follow(&self, store: &crate::Store) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.flushing.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(STATS_FLUSH_INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = crate::UnixTime::now();
                let due = now
                    .millis()
                    .saturating_sub(i64::try_from(REMOVAL_DELAY.as_millis()).unwrap_or(i64::MAX));
                if let Err(e) = flush(&store, now, due).await {
                    tracing::debug!(error = %e, "cannot flush the stream token statistics yet");
                }
            }
        });
    }
}

/// Adds what this process counted since the last flush to the store's counters, in one
/// round trip (none when there is nothing). On failure the counts wait for the next.
pub async fn flush_stats(
    store: &crate::Store,
    now: crate::UnixTime,
) -> Result<(), crate::StoreError> {
    flush(store, now, i64::MAX).await
}

/// `flush_stats`, taking out of the active set only the tokens consumed by `due_ms`.
async fn flush(
    store: &crate::Store,
    now: crate::UnixTime,
    due_ms: i64,
) -> Result<(), crate::StoreError> {
    let pending = store.stream_stats();
    let _turn = pending.flush_turn.lock().await;
    let counts = [
        ("issued", pending.issued.swap(0, Ordering::Relaxed)),
        ("consumed", pending.consumed.swap(0, Ordering::Relaxed)),
        ("rejected", pending.rejected.swap(0, Ordering::Relaxed)),
    ];
    let (added, removed) = {
        let mut active = pending.active.lock();
        let (removed, later) = std::mem::take(&mut active.consumed)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, at)| *at <= due_ms);
        active.consumed = later;
        (std::mem::take(&mut active.minted), removed)
    };
    let keys = store.keys();
    let names = counts.map(|(name, n)| (keys.stream_stats(name), n));
    let active = keys.stream_stats("active");
    let mut writes: Vec<Write<'_>> = names
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, n)| Write::IncrBy {
            key,
            by: i64::try_from(*n).unwrap_or(i64::MAX),
        })
        .collect();
    writes.extend(
        added
            .iter()
            .map(|(digest, expires_at_ms)| Write::ExpiringAdd {
                key: &active,
                member: digest,
                expires_at_ms: *expires_at_ms,
                now_ms: now.millis(),
            }),
    );
    writes.extend(removed.iter().map(|(digest, _)| Write::ExpiringRemove {
        key: &active,
        member: digest,
    }));
    if let Err(e) = store.write_all_in_background(&writes).await {
        // Counted again next time; the active-set changes are given up (it is a gauge
        // that corrects itself as its members expire).
        pending.issued.fetch_add(counts[0].1, Ordering::Relaxed);
        pending.consumed.fetch_add(counts[1].1, Ordering::Relaxed);
        pending.rejected.fetch_add(counts[2].1, Ordering::Relaxed);
        return Err(e);
    }
    Ok(())
}

/// Counts a stream token minted by `Store::mint_stream_token` (in this process; flushed
/// in the background).
pub fn record_issued(store: &crate::Store, digest: String, expires_at: crate::UnixTime) {
    store.stream_stats().issued(digest, expires_at);
}

/// Counts a stream token taken by a stream open (in this process; flushed in the
/// background).
pub fn record_consumed(store: &crate::Store, digest: String, now: crate::UnixTime) {
    store.stream_stats().consumed(digest, now);
}

/// Counts a refused stream open (in this process; flushed in the background).
pub fn record_rejected(store: &crate::Store) {
    store.stream_stats().rejected();
}

/// Stream token statistics: counts only, no user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}

/// The store's counters, after adding this process's pending counts (so a process
/// sees its own mints and opens at once, and other processes' within
/// `STATS_FLUSH_INTERVAL`).
pub async fn stats(store: &crate::Store, now: crate::UnixTime) -> Result<Stats, crate::StoreError> {
    flush_stats(store, now).await?;
    let keys = store.keys();
    let counters = store
        .mget(&[
            keys.stream_stats("issued"),
            keys.stream_stats("consumed"),
            keys.stream_stats("rejected"),
        ])
        .await?;
    let n = |i: usize| {
        counters
            .get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Stats {
        active: store
            .expiring_count(&keys.stream_stats("active"), now.millis())
            .await?,
        issued_total: n(0),
        consumed_total: n(1),
        rejected_total: n(2),
    })
}
