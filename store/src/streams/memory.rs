//! The in-memory twin of the stream token scripts, step for step.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    Admission, GrantFound, Granting, ISSUED, MintAdmission, MintOutcome, Minted, NewStreamToken,
    Refusal, Stats, StatsFlush, StreamAdmission, StreamOpened, StreamOpening, USED,
};
use crate::events::stored_status;
use crate::memory::{Entry, MemoryStore, Value, counter};
use crate::{Cost, Decision, Taken};
use crate::{ExpiringMember, StoreResult};

impl MemoryStore {
    /// The twin of `lua/open_stream.lua`, step for step. Only the take is
    /// atomic here, and only it needs to be: the rest reads, or writes a fresh key.
    pub(crate) async fn open_stream(
        &self,
        keys: &[String; 8],
        opening: &StreamOpening<'_>,
    ) -> StoreResult<StreamOpened> {
        let [
            token,
            token_state,
            cookie,
            cookie_state,
            record,
            history,
            resume,
            resume_state,
        ] = keys;
        let presented = [
            (opening.token.is_some(), token, token_state, "token", false),
            (
                opening.cookie.is_some(),
                cookie,
                cookie_state,
                "resume",
                true,
            ),
        ];
        let mut refusal = None;
        let mut taken = None;
        for (present, key, state, kind, via_cookie) in presented {
            if !present || taken.is_some() {
                continue;
            }
            match self.take_grant(key, state, kind).await? {
                Ok((value, grant)) => taken = Some((value, grant, via_cookie)),
                Err(why) => {
                    refusal.get_or_insert(why);
                }
            }
        }
        let Some((value, mut grant, via_cookie)) = taken else {
            return Ok(StreamOpened::Refused(refusal.unwrap_or(Refusal::Unknown)));
        };
        let found = 'found: {
            let mut fields = self.hash_get_all(record).await?;
            let Some(owner_id) = fields.remove("owner_id") else {
                break 'found GrantFound::Gone;
            };
            if grant.user_id.as_deref() != Some(owner_id.as_str()) && grant.admin != Some(true) {
                break 'found GrantFound::NotOwner;
            }
            let left = grant.session_expires_at.unwrap_or(0) - opening.now_ms;
            let Some(left) = u64::try_from(left).ok().filter(|&ms| ms > 0) else {
                break 'found GrantFound::SessionEnded;
            };
            let page = self
                .read_events(history, opening.after, Some(opening.page_size.max(1)))
                .await?;
            let resume_ttl = opening.resume_ttl.min(Duration::from_millis(left));
            grant.kind = Some("resume".into());
            grant.issued_at = Some(opening.now_ms);
            let next = serde_json::to_string(&grant).unwrap_or_default();
            if !self.set_nx(resume, &next, resume_ttl).await? {
                break 'found GrantFound::Collision;
            }
            self.set_nx(resume_state, ISSUED, resume_ttl.saturating_mul(2))
                .await?;
            GrantFound::Open {
                owner_id,
                status: stored_status(
                    opening.generation_id,
                    fields.get("status").map(String::as_str),
                ),
                page,
                resume_ttl,
            }
        };
        Ok(StreamOpened::Taken {
            grant: value,
            via_cookie,
            found,
        })
    }

    /// The twin of the pipelined `lua/admit_mint.lua` and `lua/mint_stream_token.lua`.
    pub(crate) async fn mint_stream_token(
        &self,
        user: Option<(&MintAdmission<'_>, &[String; 2])>,
        token: Option<(&NewStreamToken<'_>, &[String; 3])>,
    ) -> StoreResult<MintOutcome> {
        let mut outcome = MintOutcome::default();
        if let Some((admission, [budget, session])) = user {
            let decision = self.rate_limit(budget, admission.gcra, Cost::Take).await?;
            outcome.admission = Some((decision, self.get(session).await?));
        }
        if let Some((token, [record, key, state])) = token {
            let owner = self.hash_get_all(record).await?.remove("owner_id");
            outcome.minted = Some(match owner {
                None => Minted::Gone,
                Some(owner) if owner != token.user_id && !token.admin => Minted::NotOwner,
                Some(_) => {
                    if self.set_nx(key, token.grant, token.ttl).await? {
                        self.set_nx(state, ISSUED, token.ttl.saturating_mul(2))
                            .await?;
                        Minted::Stored
                    } else {
                        Minted::Collision
                    }
                }
            });
        }
        Ok(outcome)
    }

    /// Takes a grant of `kind` with `GETDEL`, marking it used; or says why not.
    pub(crate) async fn take_grant(
        &self,
        key: &str,
        state: &str,
        kind: &str,
    ) -> StoreResult<Result<(String, Granting), Refusal>> {
        Ok(match self.get_del_marking(key, state, USED).await? {
            Taken::Value(value) => match serde_json::from_str::<Granting>(&value) {
                Ok(grant) if grant.kind.as_deref() == Some(kind) => Ok((value, grant)),
                Ok(_) => Err(Refusal::WrongKind),
                Err(_) => Err(Refusal::Unknown),
            },
            Taken::Missing { marker } => Err(Refusal::of_marker(marker.as_deref())),
        })
    }

    /// The twin of `lua/admit_stream.lua`, in the same order.
    pub(crate) async fn admit_stream(
        &self,
        keys: &[String; 6],
        admission: &StreamAdmission<'_>,
    ) -> StoreResult<(Decision, Admission)> {
        let [
            budget,
            not_before,
            revoked_session,
            session,
            user,
            open_streams,
        ] = keys;
        self.expiring_remove_all(open_streams, admission.released)
            .await?;
        let decision = self.rate_limit(budget, admission.gcra, Cost::Take).await?;
        let verdict = 'verdict: {
            if !decision.allowed {
                break 'verdict Admission::RateLimited;
            }
            let markers = self
                .mget(&[not_before.clone(), revoked_session.clone()])
                .await?;
            let not_before = markers
                .first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok());
            if not_before.is_some_and(|nbf| admission.issued_at_secs < nbf)
                || markers.get(1).is_some_and(Option::is_some)
            {
                break 'verdict Admission::Revoked;
            }
            if let Some(owner_id) = admission.recheck_owner {
                let records = self.mget(&[session.clone(), user.clone()]).await?;
                let (Some(Some(_)), Some(Some(user))) = (records.first(), records.get(1)) else {
                    break 'verdict Admission::SessionEnded;
                };
                let Some(user) = serde_json::from_str::<serde_json::Value>(user)
                    .ok()
                    .filter(serde_json::Value::is_object)
                else {
                    break 'verdict Admission::SessionEnded;
                };
                let admin = user["roles"].as_array().is_some_and(|roles| {
                    roles
                        .iter()
                        .any(|r| r.as_str() == Some(authstream_proto::claims::ROLE_ADMIN))
                });
                if admission.user_id != owner_id && !admin {
                    break 'verdict Admission::NotOwner;
                }
            }
            if !self
                .expiring_add_capped(
                    ExpiringMember {
                        key: open_streams,
                        member: admission.place,
                        expires_at_ms: admission.place_expires_at_ms,
                        now_ms: admission.now_ms,
                    },
                    admission.max_streams,
                )
                .await?
            {
                break 'verdict Admission::TooManyStreams;
            }
            Admission::Admitted
        };
        Ok((decision, verdict))
    }

    /// The twin of `lua/stream_stats.lua`, step for step.
    pub(crate) async fn stream_stats(
        &self,
        keys: &[String; 4],
        flush: &StatsFlush,
        read: bool,
    ) -> StoreResult<Stats> {
        let counted = |second: i64| second.saturating_mul(1000) > flush.now_ms;
        self.with(|d, now| {
            let [issued, consumed, rejected, live] = keys;
            for (key, by) in [
                (issued, flush.issued),
                (consumed, flush.consumed),
                (rejected, flush.rejected),
            ] {
                if by == 0 {
                    continue;
                }
                let total = counter(d, key, now).saturating_add(by);
                d.insert(key, Value::Str(total.to_string()), None, now);
            }
            let last = flush
                .live
                .iter()
                .map(|(s, _)| *s)
                .filter(|s| counted(*s))
                .max();
            if let Some(last) = last {
                if !matches!(
                    d.live(live, now),
                    Some(Entry {
                        value: Value::Hash(_),
                        ..
                    })
                ) {
                    d.insert(live, Value::Hash(HashMap::new()), None, now);
                }
                let until = now
                    + Duration::from_millis(
                        u64::try_from(last.saturating_mul(1000) - flush.now_ms).unwrap_or(0),
                    );
                if let Some(entry) = d.entries.get_mut(live.as_str()) {
                    if let Value::Hash(fields) = &mut entry.value {
                        for (second, change) in &flush.live {
                            if !counted(*second) {
                                continue;
                            }
                            let field = second.to_string();
                            let left = fields
                                .get(&field)
                                .and_then(|v| v.parse::<i64>().ok())
                                .unwrap_or(0)
                                + change;
                            if left == 0 {
                                fields.remove(&field);
                            } else {
                                fields.insert(field, left.to_string());
                            }
                        }
                        fields.retain(|field, _| field.parse().is_ok_and(counted));
                    }
                    entry.expires_at = Some(entry.expires_at.map_or(until, |t| t.max(until)));
                }
                if matches!(
                    d.live(live, now),
                    Some(Entry { value: Value::Hash(h), .. }) if h.is_empty()
                ) {
                    d.entries.remove(live.as_str());
                }
            }
            if !read {
                return Stats::default();
            }
            let active = match d.live(live, now) {
                Some(Entry {
                    value: Value::Hash(fields),
                    ..
                }) => fields
                    .iter()
                    .filter(|(field, _)| field.parse().is_ok_and(counted))
                    .filter_map(|(_, v)| v.parse::<i64>().ok())
                    .sum::<i64>(),
                _ => 0,
            };
            Stats {
                active: u64::try_from(active).unwrap_or(0),
                issued_total: counter(d, issued, now),
                consumed_total: counter(d, consumed, now),
                rejected_total: counter(d, rejected, now),
            }
        })
    }
}
