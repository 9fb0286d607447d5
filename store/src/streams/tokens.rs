//! Stream tokens and resume grants: 32 random bytes, URL-safe base64 without
//! padding (43 characters). The store only ever sees their SHA-256 digest.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::Refusal;
use crate::streams::{ISSUED, USED};
use crate::{StoreError, Taken, Write};

pub const STREAM_TOKEN_LEN: usize = 43;

/// A stream token's secret. Never logged: `Debug` is redacted.
pub struct StreamSecret(String);

impl std::fmt::Debug for StreamSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSecret(..)")
    }
}

impl StreamSecret {
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Internal("the random source failed".into()))?;
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
    pub tier: authstream_proto::claims::Tier,
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
    pub fn expiry(&self, ttl: Duration) -> authstream_runtime::UnixTime {
        authstream_runtime::UnixTime(self.expires_at.unwrap_or_else(|| {
            authstream_runtime::UnixTime(self.issued_at)
                .plus(ttl)
                .millis()
        }))
    }

    /// How long a grant minted at `now` may live: `ttl`, but never past the session's
    /// end. `None` once the session has ended.
    pub fn lifetime_within_session(
        &self,
        ttl: Duration,
        now: authstream_runtime::UnixTime,
    ) -> Option<Duration> {
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

/// Stores a grant under the digest of a fresh secret with `SET NX`, beside its state
/// marker, under its generation's hash tag: ONE round trip. Retries on the
/// (practically impossible) collision, and returns the secret. The statistics are
/// counted in this process (`PendingStats`).
pub async fn mint(
    store: &crate::Store,
    grant: &StreamGrant,
    ttl: Duration,
    now: authstream_runtime::UnixTime,
) -> Result<StreamSecret, StoreError> {
    let expires_at = now.plus(ttl);
    let grant = &StreamGrant {
        expires_at: Some(expires_at.millis()),
        ..grant.clone()
    };
    let value = serde_json::to_string(grant).map_err(|e| StoreError::Internal(e.to_string()))?;
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
    Err(StoreError::Internal(
        "three stream token collisions in a row".into(),
    ))
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

    /// The grant's fields the open script reads and writes (`grant.<field>`) are the
    /// serde names of `StreamGrant`, and the kinds it compares are `GrantKind`'s.
    #[test]
    fn the_open_script_reads_the_grant_by_its_serde_names() {
        let lua = include_str!("lua/open_stream.lua");
        let read: std::collections::BTreeSet<&str> = lua
            .match_indices("grant.")
            .map(|(at, _)| {
                let rest = &lua[at + "grant.".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        assert_eq!(
            read,
            [
                "admin",
                "issued_at",
                "kind",
                "session_expires_at",
                "user_id"
            ]
            .into(),
            "the script's fields changed: update this list"
        );
        let grant = StreamGrant {
            user_id: "u".into(),
            session_id: "s".into(),
            generation_id: "g".into(),
            issued_at: 1,
            client_ip: None,
            admin: false,
            tier: authstream_proto::claims::Tier::default(),
            kind: GrantKind::Token,
            session_expires_at: 2,
            expires_at: None,
        };
        let value = serde_json::to_value(&grant).unwrap();
        for field in &read {
            assert!(
                value.get(field).is_some(),
                "StreamGrant has no field {field:?}"
            );
        }
        for kind in [GrantKind::Token, GrantKind::Resume] {
            let name = serde_json::to_value(kind).unwrap();
            let name = name.as_str().unwrap();
            assert!(
                lua.contains(&format!("'{name}'")),
                "the script never names {name:?}"
            );
        }
    }

    /// A grant goes through the view the in-memory open works on unchanged.
    #[test]
    fn a_grant_goes_through_the_twins_view_unchanged() {
        for client_ip in [None, Some("203.0.113.7".to_owned())] {
            let grant = StreamGrant {
                user_id: "u".into(),
                session_id: "s".into(),
                generation_id: "g".into(),
                issued_at: 1,
                client_ip,
                admin: true,
                tier: authstream_proto::claims::Tier::default(),
                kind: GrantKind::Resume,
                session_expires_at: 2,
                expires_at: Some(3),
            };
            let value = serde_json::to_value(&grant).unwrap();
            let view: crate::streams::Granting = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(serde_json::to_value(&view).unwrap(), value);
        }
    }
}
