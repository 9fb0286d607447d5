//! Stream tokens on Redis: one script per side, on its own hash tag.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, FromRedisValue, Script};

use super::{
    Admission, GrantFound, MintAdmission, MintOutcome, Minted, NewStreamToken, Refusal, Stats,
    StatsFlush, StreamAdmission, StreamOpened, StreamOpening,
};
use crate::Decision;
use crate::events::stored_status;
use crate::redis::unavailable;
use crate::redis::{RedisStore, ms};
use crate::{EventPage, StoreResult};

/// The generation's side of a stream open (`Store::open_stream`).
pub(crate) static OPEN_STREAM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/open_stream.lua")));

/// The user's side of a stream open (`Store::admit_stream`).
pub(crate) static ADMIT_STREAM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../rate_limits/lua/gcra_function.lua"),
        include_str!("lua/admit_stream.lua")
    ))
});

/// The user's side of a mint (`Store::mint_stream_token`).
pub(crate) static ADMIT_MINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../rate_limits/lua/gcra_function.lua"),
        include_str!("lua/admit_mint.lua")
    ))
});

/// The generation's side of a mint (`Store::mint_stream_token`).
pub(crate) static MINT_STREAM_TOKEN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/mint_stream_token.lua")));

/// The statistics flush (`Store::flush_stream_stats`).
pub(crate) static STREAM_STATS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/stream_stats.lua")));

impl RedisStore {
    pub(crate) async fn open_stream(
        &self,
        keys: &[String; 8],
        opening: &StreamOpening<'_>,
    ) -> StoreResult<StreamOpened> {
        let mut inv = OPEN_STREAM.prepare_invoke();
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

    pub(crate) async fn admit_stream(
        &self,
        keys: &[String; 6],
        admission: &StreamAdmission<'_>,
    ) -> StoreResult<(Decision, Admission)> {
        let mut inv = ADMIT_STREAM.prepare_invoke();
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

    pub(crate) async fn mint_stream_token(
        &self,
        user: Option<(&MintAdmission<'_>, &[String; 2])>,
        token: Option<(&NewStreamToken<'_>, &[String; 3])>,
    ) -> StoreResult<MintOutcome> {
        let mut invocations = Vec::new();
        let mut admit = ADMIT_MINT.prepare_invoke();
        if let Some((admission, keys)) = user {
            admit
                .key(keys[0].as_str())
                .key(keys[1].as_str())
                .arg(admission.gcra.interval_us)
                .arg(admission.gcra.capacity_us);
            invocations.push(&admit);
        }
        let mut mint = MINT_STREAM_TOKEN.prepare_invoke();
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

    pub(crate) async fn stream_stats(
        &self,
        keys: &[String; 4],
        flush: &StatsFlush,
        read: bool,
    ) -> StoreResult<Stats> {
        let mut inv = STREAM_STATS.prepare_invoke();
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
}
