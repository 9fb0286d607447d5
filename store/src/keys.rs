//! Key names. Keys that one operation touches together share a hash tag (`{u:..}`,
//! `{g:..}`) so they live in one Redis Cluster slot.

use std::sync::{Arc, OnceLock};

/// How many revocation logs the revocations are sharded into, by user. Fixed: every
/// process must agree on where a user's revocations are.
pub const REVOCATION_LOG_SHARDS: usize = 8;

/// The hash tag of shard `shard`'s log: `revocations:<shard>:<k>`, the first `k` whose
/// slot lies in the shard's share of the slot range.
fn log_tag(shard: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        (0..REVOCATION_LOG_SHARDS)
            .map(|shard| {
                let share = 16_384 / REVOCATION_LOG_SHARDS;
                let range = shard * share..(shard + 1) * share;
                (0..)
                    .map(|k| format!("revocations:{shard}:{k}"))
                    .find(|tag| range.contains(&usize::from(crate::slot::key_slot(tag))))
                    .unwrap_or_default()
            })
            .collect()
    });
    &tags[shard % REVOCATION_LOG_SHARDS]
}

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn user(&self, user_id: &str) -> String {
        format!("{}:{{u:{user_id}}}:user", self.prefix)
    }

    pub fn email(&self, email: &str) -> String {
        format!("{}:email:{email}", self.prefix)
    }

    pub fn sessions(&self, user_id: &str) -> String {
        format!("{}:{{u:{user_id}}}:sessions", self.prefix)
    }

    pub fn session(&self, user_id: &str, session_id: &str) -> String {
        format!("{}:{{u:{user_id}}}:session:{session_id}", self.prefix)
    }

    /// Revocation of one token, by `jti`; `sub` is the token's subject.
    pub fn revoked_token(&self, sub: &str, jti: &str) -> String {
        format!("{}:{{u:{sub}}}:rj:{jti}", self.prefix)
    }

    pub fn revoked_session(&self, sub: &str, session_id: &str) -> String {
        format!("{}:{{u:{sub}}}:rs:{session_id}", self.prefix)
    }

    /// Tokens of `sub` issued before the second stored here are revoked.
    pub fn not_before(&self, sub: &str) -> String {
        format!("{}:{{u:{sub}}}:nbf", self.prefix)
    }

    /// The user's open streams (SSE and WebSocket, every replica), as an expiring set.
    pub fn open_streams(&self, user_id: &str) -> String {
        format!("{}:{{u:{user_id}}}:streams", self.prefix)
    }

    pub fn generation(&self, generation_id: &str) -> String {
        format!("{}:{{g:{generation_id}}}:gen", self.prefix)
    }

    pub fn events(&self, generation_id: &str) -> String {
        format!("{}:{{g:{generation_id}}}:events", self.prefix)
    }

    /// Held while the demo simulates a generation, so that it runs once.
    pub fn demo_simulation(&self, generation_id: &str) -> String {
        format!("{}:{{g:{generation_id}}}:demo-simulation", self.prefix)
    }

    /// A stream token or resume grant, by the hex SHA-256 digest of the secret, under
    /// its generation's hash tag: the open request names the generation, so one script
    /// on one slot consumes the grant and reads the record and history beside it.
    pub fn stream_token(&self, generation_id: &str, digest_hex: &str) -> String {
        format!("{}:{{g:{generation_id}}}:st:{digest_hex}", self.prefix)
    }

    /// A stream token's state (`issued`, then `used`), kept past the token's expiry so
    /// that a refusal can say expired or replay rather than unknown.
    pub fn stream_token_state(&self, generation_id: &str, digest_hex: &str) -> String {
        format!(
            "{}:{{g:{generation_id}}}:st:{digest_hex}:state",
            self.prefix
        )
    }

    pub fn stream_stats(&self, counter: &str) -> String {
        format!("{}:{{stats}}:{counter}", self.prefix)
    }

    /// A rate-limit budget of one subject under one policy; `hash_tag` is the
    /// subject's tag (`u:<id>`, `ip:<addr>`, `e:<email digest>`).
    pub fn rate_limit(&self, hash_tag: &str, policy: &str) -> String {
        format!("{}:{{{hash_tag}}}:rl:{policy}", self.prefix)
    }

    /// Where a generation's events are published (`SPUBLISH`): under the hash tag of
    /// its keys, so in their slot, and on a Cluster on the node that holds them.
    pub fn generation_channel(&self, generation_id: &str) -> String {
        format!("{}:{{g:{generation_id}}}:events-ch", self.prefix)
    }

    /// A stream replica's canary channel with hash tag `{canary:<k>}` (`k` picked so
    /// that the tag's slot lives on the node it checks); `replica` tells the replicas'
    /// canaries apart, so each hears only its own.
    pub fn canary_channel(&self, k: u32, replica: &str) -> String {
        format!("{}:{{canary:{k}}}:canary:{replica}", self.prefix)
    }

    /// The generation whose channel this is.
    pub fn generation_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(&*self.prefix)?
            .strip_prefix(":{g:")?
            .strip_suffix("}:events-ch")
    }

    /// The one channel of every event, of the release before: published to and
    /// listened on while `STREAM_LEGACY_FANOUT` is on.
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The revocations of the users of one shard (`revocation_shard`), in order (a
    /// Redis stream), which every process tails into its local view. Each shard's hash
    /// tag falls in its own eighth of the slot range, so that on a Cluster whose
    /// masters split the slots evenly the logs spread over them: one master's failover
    /// leaves the other shards' users validating.
    pub fn revocation_log(&self, shard: usize) -> String {
        format!("{}:{{{}}}:log", self.prefix, log_tag(shard))
    }

    /// The one revocation log of the release before, written and tailed besides the
    /// shards while `REVOCATION_LEGACY_LOG` is on (a rolling upgrade).
    pub fn legacy_revocation_log(&self) -> String {
        format!("{}:{{revocations}}:log", self.prefix)
    }

    /// The shard of the log that holds every revocation of `sub` (a token names its
    /// user, so a validation knows which shard's freshness it depends on).
    pub fn revocation_shard(sub: &str) -> usize {
        usize::from(crate::slot::crc16_xmodem(sub.as_bytes())) % REVOCATION_LOG_SHARDS
    }

    /// Where `revocation::StreamNotice`s are published.
    pub fn notices_channel(&self) -> String {
        format!("{}:stream-notices", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_slot;

    const PINNED: [&str; REVOCATION_LOG_SHARDS] = [
        "as:{revocations:0:1}:log",
        "as:{revocations:1:41}:log",
        "as:{revocations:2:41}:log",
        "as:{revocations:3:1}:log",
        "as:{revocations:4:40}:log",
        "as:{revocations:5:1}:log",
        "as:{revocations:6:1}:log",
        "as:{revocations:7:40}:log",
    ];

    #[test]
    fn each_revocation_log_lies_in_its_own_share_of_the_slots_and_users_spread_over_them() {
        let keys = Keys::new("as");
        let share = 16_384 / REVOCATION_LOG_SHARDS;
        for shard in 0..REVOCATION_LOG_SHARDS {
            let slot = usize::from(key_slot(&keys.revocation_log(shard)));
            assert_eq!(slot / share, shard, "{}", keys.revocation_log(shard));
        }
        // Every process of every release must find the same logs.
        let names: Vec<String> = (0..REVOCATION_LOG_SHARDS)
            .map(|shard| keys.revocation_log(shard))
            .collect();
        assert_eq!(names, PINNED, "the log names changed");
        let mut users = [0usize; REVOCATION_LOG_SHARDS];
        for i in 0..8000 {
            users[Keys::revocation_shard(&format!("user-{i}"))] += 1;
        }
        assert!(users.iter().all(|&n| (800..1200).contains(&n)), "{users:?}");
    }
}
