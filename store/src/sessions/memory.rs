//! The in-memory twin of the session scripts, step for step, under the one lock.

use std::collections::BTreeSet;
use std::time::Duration;

use super::record::Rotating;
use super::{NewSession, Rotation, SessionRotation};
use crate::memory::{Data, Entry, MemoryStore, Value};
use crate::rate_limits::decide;
use crate::{Decision, Spend, StoreResult};

impl MemoryStore {
    pub(crate) async fn save_session(
        &self,
        record: &str,
        index: &str,
        session: &NewSession<'_>,
        along: Option<Spend<'_>>,
    ) -> StoreResult<(usize, Vec<Decision>)> {
        self.set(record, session.record, Some(session.ttl)).await?;
        self.set_add(index, session.session_id, session.index_ttl)
            .await?;
        let count = self.set_members(index).await?.len();
        let decisions = match along {
            Some(spend) => self.rate_limit_fields(&spend, None).await?.0,
            None => Vec::new(),
        };
        Ok((count, decisions))
    }

    /// The twin of the Redis script, step for step, under the one lock.
    pub(crate) async fn rotate_session(
        &self,
        session: &str,
        index: &str,
        user: &str,
        r: &SessionRotation<'_>,
    ) -> StoreResult<(Rotation, Option<Decision>)> {
        self.with(|d, now| {
            let mut decision = None;
            let text = |d: &mut Data, key: &str| match d.live(key, now) {
                Some(Entry {
                    value: Value::Str(s),
                    ..
                }) => Some(s.clone()),
                _ => None,
            };
            let Some(raw) = text(d, session) else {
                return (Rotation::Gone, None);
            };
            let Ok(mut record) = serde_json::from_str::<Rotating>(&raw) else {
                return (Rotation::Gone, None);
            };
            let now_ms = r.now.millis();
            let max_age = i64::try_from(r.max_age.as_millis()).unwrap_or(i64::MAX);
            let left = record
                .created_at
                .saturating_add(max_age)
                .saturating_sub(now_ms);
            if left <= 0 {
                return (Rotation::Expired, None);
            }
            let current = record.refresh_jti.as_deref() == Some(r.presented_jti);
            let grace = i64::try_from(r.grace.as_millis()).unwrap_or(i64::MAX);
            let retired = record.previous_refresh_jti.as_deref();
            let in_grace = retired == Some(r.presented_jti)
                && record.rotated_at.is_some_and(|at| now_ms - at <= grace);
            if !current && !in_grace {
                return (Rotation::Reused, None);
            }
            if let Some(budget) = &r.budget {
                let spent = decide(d, budget.key, budget.gcra, budget.cost, now);
                decision = Some(spent);
                if !spent.allowed {
                    return (Rotation::Limited, decision);
                }
            }
            if !current {
                let rotation = Rotation::Grace {
                    session: raw,
                    user: text(d, user),
                };
                return (rotation, decision);
            }
            record.previous_refresh_jti = record.refresh_jti.take();
            record.rotated_at = Some(now_ms);
            record.last_seen_at = now_ms;
            record.access_jti = r.access_jti.to_owned();
            record.refresh_jti = Some(r.refresh_jti.to_owned());
            record.issued_at = r.now.secs();
            let Ok(rotated) = serde_json::to_string(&record) else {
                return (Rotation::Gone, None);
            };
            let lives_for =
                Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(r.refresh_ttl);
            d.insert(session, Value::Str(rotated.clone()), Some(lives_for), now);
            if !matches!(
                d.live(index, now),
                Some(Entry {
                    value: Value::Set(_),
                    ..
                })
            ) {
                d.insert(index, Value::Set(BTreeSet::new()), None, now);
            }
            if let Some(entry) = d.entries.get_mut(index) {
                if let Value::Set(members) = &mut entry.value {
                    members.insert(r.session_id.to_owned());
                }
                entry.expires_at = Some(now + r.refresh_ttl);
            }
            let rotation = Rotation::Rotated {
                session: rotated,
                user: text(d, user),
            };
            (rotation, decision)
        })
    }
}
