//! Stream tokens and resume grants: 32 random bytes, URL-safe base64 without
//! padding (43 characters). The store only ever sees their SHA-256 digest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// When a stream token expires, Unix milliseconds (set at mint; absent from grants
    /// minted before it was added): the second its statistics count it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl StreamGrant {
    /// When the token expires: `expires_at`, else (a grant minted before that field)
    /// `issued_at` plus the configured lifetime `ttl`.
    pub fn expiry(&self, ttl: Duration) -> crate::UnixTime {
        crate::UnixTime(
            self.expires_at
                .unwrap_or_else(|| crate::UnixTime(self.issued_at).plus(ttl).millis()),
        )
    }

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
    let expires_at = now.plus(ttl);
    let grant = &StreamGrant {
        expires_at: Some(expires_at.millis()),
        ..grant.clone()
    };
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
                store.stream_stats().issued(expires_at);
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
        store.stream_stats().consumed(grant.expiry(Duration::ZERO));
    }
    Ok(Ok(grant))
}

/// How often each process adds its counted statistics to the store's counters.
pub const STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Stream token statistics counted in this process, added to the store in the
/// background every `STATS_FLUSH_INTERVAL` (ONE script on the `{stats}` slot, whatever
/// the number of tokens), so that no mint or open waits for them and no token costs a
/// write of its own. Shared by every clone of a `Store`.
///
/// `active` is kept without any state per token: tokens are counted by the second their
/// lifetime ends in (`expiry_second`). A mint adds one to its second, a consumption
/// takes one from it (the grant carries its expiry, so any replica knows the second);
/// the store sums, per second, what every replica flushed, and `active` is the sum over
/// the seconds still to come. An expired token leaves the count when its second
/// begins, by itself: nothing is written when a token expires.
#[derive(Default)]
pub struct PendingStats {
    counts: Mutex<Counts>,
    flushing: AtomicBool,
    /// One flush at a time: a reader's flush waits for a background flush that already
    /// took the counts, so what it reads afterwards includes them.
    flush_turn: tokio::sync::Mutex<()>,
}

/// What this process counted since its last flush.
#[derive(Default)]
struct Counts {
    issued: u64,
    consumed: u64,
    rejected: u64,
    /// Expiry second -> tokens minted minus tokens consumed with that expiry.
    live: HashMap<i64, i64>,
}

impl Counts {
    fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// Puts counts that could not be flushed back, for the next flush.
    fn restore(&mut self, failed: Self) {
        self.issued += failed.issued;
        self.consumed += failed.consumed;
        self.rejected += failed.rejected;
        for (second, delta) in failed.live {
            *self.live.entry(second).or_default() += delta;
        }
        self.live.retain(|_, delta| *delta != 0);
    }
}

/// The second a token expiring at `expires_at` is counted in: it stops counting as
/// active when that second begins (at most one second before its actual expiry, never
/// after it).
pub fn expiry_second(expires_at: crate::UnixTime) -> i64 {
    expires_at.millis().div_euclid(1000)
}

impl PendingStats {
    fn issued(&self, expires_at: crate::UnixTime) {
        let mut counts = self.counts.lock();
        counts.issued += 1;
        *counts.live.entry(expiry_second(expires_at)).or_default() += 1;
    }

    fn consumed(&self, expires_at: crate::UnixTime) {
        let mut counts = self.counts.lock();
        counts.consumed += 1;
        let second = expiry_second(expires_at);
        let left = counts.live.entry(second).or_default();
        *left -= 1;
        if *left == 0 {
            counts.live.remove(&second);
        }
    }

    fn rejected(&self) {
        self.counts.lock().rejected += 1;
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
                if let Err(e) = flush(&store, crate::UnixTime::now(), false).await {
                    tracing::debug!(error = %e, "cannot flush the stream token statistics yet");
                }
            }
        });
    }
}

/// What one flush adds to the store's statistics (`Store::flush_stream_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsFlush {
    pub issued: u64,
    pub consumed: u64,
    pub rejected: u64,
    /// (expiry second, change in live tokens). Seconds already begun at `now_ms` are
    /// left out by the store: their tokens count no more.
    pub live: Vec<(i64, i64)>,
    pub now_ms: i64,
}

impl StatsFlush {
    pub fn is_empty(&self) -> bool {
        self.issued == 0 && self.consumed == 0 && self.rejected == 0 && self.live.is_empty()
    }
}

/// Adds what this process counted since the last flush to the store's statistics, in
/// one round trip (none when there is nothing). On failure the counts wait for the next.
pub async fn flush_stats(
    store: &crate::Store,
    now: crate::UnixTime,
) -> Result<(), crate::StoreError> {
    flush(store, now, false).await.map(drop)
}

/// The flush, and with `read` the statistics after it, in the same round trip.
async fn flush(
    store: &crate::Store,
    now: crate::UnixTime,
    read: bool,
) -> Result<Option<Stats>, crate::StoreError> {
    let pending = store.stream_stats();
    let _turn = pending.flush_turn.lock().await;
    let counts = pending.counts.lock().take();
    let mut live: Vec<(i64, i64)> = counts.live.iter().map(|(s, d)| (*s, *d)).collect();
    live.sort_unstable();
    let batch = StatsFlush {
        issued: counts.issued,
        consumed: counts.consumed,
        rejected: counts.rejected,
        live,
        now_ms: now.millis(),
    };
    let result = if read {
        store.flush_and_read_stream_stats(&batch).await.map(Some)
    } else if batch.is_empty() {
        Ok(None)
    } else {
        store.flush_stream_stats(&batch).await.map(|()| None)
    };
    if result.is_err() {
        pending.counts.lock().restore(counts);
    }
    result
}

/// Counts a stream token minted by `Store::mint_stream_token`, expiring at
/// `expires_at` (in this process; flushed in the background).
pub fn record_issued(store: &crate::Store, expires_at: crate::UnixTime) {
    store.stream_stats().issued(expires_at);
}

/// Counts a stream token, expiring at `expires_at`, taken by a stream open (in this
/// process; flushed in the background).
pub fn record_consumed(store: &crate::Store, expires_at: crate::UnixTime) {
    store.stream_stats().consumed(expires_at);
}

/// Counts a refused stream open (in this process; flushed in the background).
pub fn record_rejected(store: &crate::Store) {
    store.stream_stats().rejected();
}

/// Stream token statistics: counts only, no user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}

/// The store's statistics at `now`, this process's pending counts added first in the
/// same round trip (so a process sees its own mints and opens at once, and other
/// processes' within `STATS_FLUSH_INTERVAL`).
pub async fn stats(store: &crate::Store, now: crate::UnixTime) -> Result<Stats, crate::StoreError> {
    Ok(flush(store, now, true).await?.unwrap_or_default())
}
