//! Where verification keys come from: here (`KeySource::Local`) or the auth
//! service's JWKS, fetched on a timer and cached (`RemoteKeys`, a layer over the
//! verification core's `RemoteJwks`).

use std::sync::Arc;
use std::time::Duration;

pub use authstream_verify::jwks::{JWKS_DEFAULT_REFRESH, JWKS_MAX_BYTES, jwks_url, redacted_url};
use authstream_verify::jwks::{JwkSet, RemoteJwks};

use crate::keys::KeySet;

use super::TokenError;

/// Where the validator finds verification keys.
#[derive(Clone)]
pub enum KeySource {
    /// The keys are here (the auth service, the single process, or HS256).
    Local(Arc<KeySet>),
    /// The auth service's JWKS, fetched and cached.
    Remote(Arc<RemoteKeys>),
}

/// The JWKS of the auth service: fetched on a timer (every `Cache-Control: max-age` of
/// the last answer, within bounds) so that a key the auth service stopped publishing
/// stops verifying here within that time, and refetched on an unknown `kid` (at most
/// every `min_refresh`). The fetch follows no redirect and reads at most 64 KiB.
pub struct RemoteKeys {
    jwks: Arc<RemoteJwks>,
    refresher: Option<tokio::task::AbortHandle>,
}

impl RemoteKeys {
    /// With the default refresh interval (`JWKS_DEFAULT_REFRESH`).
    pub fn new(auth_url: &str, min_refresh: Duration) -> Result<Self, String> {
        Self::with_refresh(auth_url, min_refresh, JWKS_DEFAULT_REFRESH)
    }

    /// `max_refresh` is the longest time between two timed fetches, and the interval
    /// when the answer names no `max-age` (never below `min_refresh`). Starts the timer
    /// when called inside a Tokio runtime (a service always is), which fetches at once;
    /// without one only unknown `kid`s fetch.
    pub fn with_refresh(
        auth_url: &str,
        min_refresh: Duration,
        max_refresh: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // A redirect could point the fetch anywhere; the JWKS URL is configured, not found.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let url = jwks_url(auth_url)?;
        let jwks = Arc::new(RemoteJwks::new(url, http, min_refresh, max_refresh));
        let refresher = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime
                .spawn(RemoteJwks::refresh_forever(Arc::downgrade(&jwks)))
                .abort_handle()
        });
        Ok(Self { jwks, refresher })
    }

    /// True when `kid` is among the keys fetched last (no fetch).
    pub(super) fn knows(&self, kid: &str) -> bool {
        self.jwks.knows(kid)
    }

    /// The keys, refetched when `kid` is not among them (at most every `min_refresh`).
    /// An unknown `kid` while the JWKS cannot be fetched is `KeysUnavailable`: the
    /// caller should retry, not conclude that its token is bad.
    pub(super) async fn keys_with(&self, kid: &str) -> Result<Arc<JwkSet>, TokenError> {
        self.jwks.keys_with(kid).await
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}
