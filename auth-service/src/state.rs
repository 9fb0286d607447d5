//! What every handler of the auth service shares: the settings, the store, the keys,
//! the signer and validator, the password hasher, the rate limiter, the cache of when
//! sessions end, and the revocation feed. Built once by `startup`.

use std::sync::Arc;

use authstream_security::jwt::{KeySource, Signer, Validator};
use authstream_security::keys::KeySet;
use authstream_store::Store;
use authstream_web::ApiError;
use authstream_web::rate_limit::RateLimiter;

use crate::config::Settings;
use crate::feed::RevocationFeed;
use crate::passwords::PasswordHasher;

/// When each session ends (`SESSION_MAX_AGE_SECS` after its login): a fact that never
/// changes for a session, kept here so that a mint need not read the session before
/// storing its token. Whether the session still exists is read on every mint.
pub type SessionEnds = moka::sync::Cache<(String, String), i64>;

pub fn session_ends(max_age: std::time::Duration) -> SessionEnds {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(max_age)
        .build()
}

/// Everything a handler of the auth service needs.
pub struct AuthState {
    pub settings: Settings,
    pub store: Store,
    pub keys: Arc<KeySet>,
    pub signer: Signer,
    pub validator: Validator,
    pub hasher: PasswordHasher,
    pub limiter: RateLimiter,
    /// When sessions end, for stream token mints (`routes::stream_tokens`).
    pub session_ends: SessionEnds,
    /// The revocation feed (`GET /auth/revocations`): one tail of the log per process.
    pub feed: Arc<RevocationFeed>,
}

impl AuthState {
    pub fn new(settings: Settings, store: Store, keys: Arc<KeySet>) -> Result<Self, ApiError> {
        // The demo publishes events: on the old channel too while upgrading.
        let store = store.with_legacy_fanout(settings.common.legacy_fanout);
        let jwt = settings.common.jwt.clone();
        let validator = Validator::new(
            keys.algorithm(),
            KeySource::Local(keys.clone()),
            jwt.clone(),
            store.clone(),
        );
        Ok(Self {
            signer: Signer::new(keys.clone(), jwt),
            hasher: PasswordHasher::new(
                settings.max_concurrent_hashes,
                settings.password_queue_timeout,
            )?,
            limiter: settings.common.rate_limiter(store.clone()),
            session_ends: session_ends(settings.session_max_age),
            feed: RevocationFeed::new(store.clone(), settings.common.revocation_ttl()),
            validator,
            keys,
            store,
            settings,
        })
    }

    /// Tells every open revocation feed to end (shutdown).
    pub fn shutdown(&self) {
        self.feed.shutdown();
    }
}
