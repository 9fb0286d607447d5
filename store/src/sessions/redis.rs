//! Sessions on Redis: one script each, on the user's hash tag.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, Script};

use super::{NewSession, Rotation, SessionRotation};
use crate::rate_limits::{to_decision, to_decisions};
use crate::redis::unavailable;
use crate::redis::{RedisStore, ms};
use crate::{Decision, Spend, StoreResult};

/// `Store::save_session`.
pub(crate) static SAVE_SESSION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/save_session.lua")));

/// `Store::rotate_session`.
pub(crate) static ROTATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../rate_limits/lua/gcra_function.lua"),
        include_str!("lua/rotate_session.lua")
    ))
});

impl RedisStore {
    /// The session's script and the decision, pipelined (`invoke_all`).
    pub(crate) async fn save_session(
        &self,
        record: &str,
        index: &str,
        session: &NewSession<'_>,
        along: Option<Spend<'_>>,
    ) -> StoreResult<(usize, Vec<Decision>)> {
        let mut save = SAVE_SESSION.prepare_invoke();
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

    pub(crate) async fn rotate_session(
        &self,
        session: &str,
        index: &str,
        user: &str,
        r: &SessionRotation<'_>,
    ) -> StoreResult<(Rotation, Option<Decision>)> {
        let mut inv = ROTATE_SESSION.prepare_invoke();
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
}
