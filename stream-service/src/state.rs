//! What every handler of the stream service shares: the settings, the store, the
//! validator, the hub of followed generations, the rate limiter, the user's stream
//! places and the shutdown signal. Built once by `startup`.

use authstream_runtime::config::ConfigError;
use authstream_security::jwt::{KeySource, Validator};
use authstream_store::Store;
use authstream_web::rate_limit::{RateLimiter, SpentBudgets};
use tokio::sync::watch;

use crate::config::Settings;
use crate::hub::Hub;
use crate::leases::Leases;

/// What every handler of the stream service shares.
pub struct StreamState {
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) validator: Validator,
    pub(crate) hub: Hub,
    pub(crate) limiter: RateLimiter,
    pub(crate) leases: Leases,
    /// Client addresses whose `anon` budget refused opens spent, until it comes back.
    pub(crate) spent_addresses: SpentBudgets,
    shutdown: watch::Sender<bool>,
}

impl StreamState {
    /// `store` and `keys` are passed in so that one process can share them between
    /// the auth and the stream routes.
    pub fn new(settings: Settings, store: Store, keys: KeySource) -> Result<Self, ConfigError> {
        if let KeySource::Local(local) = &keys
            && local.algorithm() != settings.common.algorithm
        {
            return Err(ConfigError::new(
                "JWT_ALGORITHM",
                "the verification keys are of another algorithm",
            ));
        }
        let store = store.with_legacy_fanout(settings.common.legacy_fanout);
        // `/readyz` tells a node that is down from this replica's subscription to it
        // not delivering: a canary per node, through the same subscriptions.
        store.watch_delivery();
        let validator = Validator::new(
            settings.common.algorithm,
            keys,
            settings.common.jwt.clone(),
            store.clone(),
        );
        Ok(Self {
            hub: Hub::new(store.clone(), settings.max_queued)
                .with_linger(settings.subscription_linger),
            limiter: settings.common.rate_limiter(store.clone()),
            leases: Leases::new(store.clone()),
            spent_addresses: SpentBudgets::default(),
            validator,
            store,
            settings,
            shutdown: watch::channel(false).0,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Tells every open stream to end now (SIGTERM); clients reconnect elsewhere
    /// with `Last-Event-ID`. Streams opened after this end at once too.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Generations with at least one open stream in this process.
    pub fn followed_generations(&self) -> usize {
        self.hub.followed_generations()
    }
}
