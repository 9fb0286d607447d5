//! Key names. Keys that one operation touches together share a hash tag (`{u:..}`,
//! `{g:..}`) so they live in one Redis Cluster slot.

use std::sync::Arc;

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

    /// Every revocation, in order (a Redis stream), which each process tails into its
    /// local view. One key: the one thing every process reads.
    pub fn revocation_log(&self) -> String {
        format!("{}:{{revocations}}:log", self.prefix)
    }

    /// Where `revocation::StreamNotice`s are published.
    pub fn notices_channel(&self) -> String {
        format!("{}:stream-notices", self.prefix)
    }
}
