//! Stream tokens and resume grants: 32 random bytes, URL-safe base64 without
//! padding (43 characters). The store only ever sees their SHA-256 digest.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// The holder of a grant as the store has it now: whether the session still exists,
/// and whether the user is an admin today (a role can be taken away between two
/// resumes). `None` when the session or the user is gone. One `MGET`: both records
/// are under the user's hash tag.
pub async fn holder_is_admin(
    store: &crate::Store,
    user_id: &str,
    session_id: &str,
) -> Result<Option<bool>, crate::StoreError> {
    #[derive(Deserialize)]
    struct Roles {
        #[serde(default)]
        roles: Vec<String>,
    }
    let keys = store.keys();
    let found = store
        .mget(&[keys.session(user_id, session_id), keys.user(user_id)])
        .await?;
    let (Some(Some(_session)), Some(Some(user))) = (found.first(), found.get(1)) else {
        return Ok(None);
    };
    // A record that does not read as a user grants nothing.
    Ok(serde_json::from_str::<Roles>(user)
        .ok()
        .map(|u| u.roles.iter().any(|r| r == crate::claims::ROLE_ADMIN)))
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
const ISSUED: &str = "issued";
const USED: &str = "used";

/// Stores a grant under the digest of a fresh secret with `SET NX EX`, its state
/// marker and (for stream tokens) the statistics, in ONE round trip; retries on the
/// (practically impossible) collision, and returns the secret.
pub async fn mint(
    store: &crate::Store,
    grant: &StreamGrant,
    ttl: Duration,
    now: crate::UnixTime,
) -> Result<StreamSecret, ApiError> {
    let value = serde_json::to_string(grant).map_err(ApiError::internal)?;
    let keys = store.keys();
    let (issued, active) = (keys.stream_stats("issued"), keys.stream_stats("active"));
    for _ in 0..3 {
        let secret = StreamSecret::generate()?;
        let digest = secret.digest();
        let (token, state) = (keys.stream_token(&digest), keys.stream_token_state(&digest));
        let mut writes = vec![
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
        if grant.kind == GrantKind::Token {
            writes.push(Write::Incr { key: &issued });
            writes.push(Write::ExpiringAdd {
                key: &active,
                member: &digest,
                expires_at_ms: now.plus(ttl).millis(),
                now_ms: now.millis(),
            });
        }
        // On a collision the counters are one ahead: a price paid once in 2^256.
        if store.write_all(&writes).await? {
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
}

/// Consumes a token with ONE `GETDEL`, which in the same atomic step marks it used
/// (keeping the marker's expiry) or, on a miss, reads the marker. A refused token is
/// told apart (unknown, expired or replay) for the log, never for the client.
pub async fn consume(
    store: &crate::Store,
    secret: &StreamSecret,
) -> Result<Result<StreamGrant, Refusal>, crate::StoreError> {
    let digest = secret.digest();
    let keys = store.keys();
    let taken = store
        .get_del_marking(
            &keys.stream_token(&digest),
            &keys.stream_token_state(&digest),
            USED,
        )
        .await?;
    let raw = match taken {
        Taken::Value(raw) => raw,
        // Atomic with the marking, so a racing second use is a replay, not "expired".
        Taken::Missing { marker } => {
            return Ok(Err(match marker.as_deref() {
                Some(USED) => Refusal::Replay,
                Some(ISSUED) => Refusal::Expired,
                _ => Refusal::Unknown,
            }));
        }
    };
    let Ok(grant) = serde_json::from_str::<StreamGrant>(&raw) else {
        return Ok(Err(Refusal::Unknown));
    };
    if grant.kind == GrantKind::Token {
        // The statistics of a consumed token in one round trip.
        let (consumed, active) = (keys.stream_stats("consumed"), keys.stream_stats("active"));
        store
            .write_all(&[
                Write::Incr { key: &consumed },
                Write::ExpiringRemove {
                    key: &active,
                    member: &digest,
                },
            ])
            .await?;
    }
    Ok(Ok(grant))
}

/// Counts a refused stream open.
pub async fn record_rejected(store: &crate::Store) -> Result<(), crate::StoreError> {
    store
        .incr(&store.keys().stream_stats("rejected"))
        .await
        .map(drop)
}

/// Stream token statistics: counts only, no user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}

pub async fn stats(store: &crate::Store, now: crate::UnixTime) -> Result<Stats, crate::StoreError> {
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
