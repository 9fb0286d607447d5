//! Where verification keys come from: here (`KeySource::Local`) or the auth
//! service's JWKS, fetched on a timer and cached (`RemoteKeys`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

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
    cache: Arc<JwksCache>,
    refresher: Option<tokio::task::AbortHandle>,
}

/// The largest JWKS document accepted.
pub const JWKS_MAX_BYTES: usize = 64 * 1024;

/// How often the JWKS is refetched when the answer names no `max-age`, and the longest
/// a `max-age` may stretch that (a day-long `max-age` would keep a retired key alive).
pub const JWKS_DEFAULT_REFRESH: Duration = Duration::from_secs(300);

struct JwksCache {
    url: reqwest::Url,
    /// `url` without its credentials and query: the only form that is logged.
    shown: String,
    http: reqwest::Client,
    cached: RwLock<Arc<KeySet>>,
    /// When the last fetch was tried, and whether it failed.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
    min_refresh: Duration,
    max_refresh: Duration,
    /// When the timer fetches next: the last answer's `max-age`, within bounds.
    next_refresh: RwLock<Duration>,
}

impl RemoteKeys {
    /// With the default refresh interval (`JWKS_DEFAULT_REFRESH`).
    pub fn new(auth_url: &str, min_refresh: Duration) -> Result<Self, String> {
        Self::with_refresh(auth_url, min_refresh, JWKS_DEFAULT_REFRESH)
    }

    /// `max_refresh` is the longest time between two timed fetches, and the interval
    /// when the answer names no `max-age` (never below `min_refresh`). Starts the timer
    /// when called inside a Tokio runtime (a service always is); without one only
    /// unknown `kid`s fetch.
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
        let empty =
            KeySet::from_jwks(&serde_json::json!({ "keys": [] })).map_err(|e| e.to_string())?;
        let max_refresh = max_refresh.max(min_refresh);
        let url = jwks_url(auth_url)?;
        let cache = Arc::new(JwksCache {
            shown: redacted_url(&url),
            url,
            http,
            cached: RwLock::new(Arc::new(empty)),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh,
            max_refresh,
            next_refresh: RwLock::new(max_refresh),
        });
        let refresher = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime
                .spawn(refresh_forever(Arc::downgrade(&cache)))
                .abort_handle()
        });
        Ok(Self { cache, refresher })
    }

    /// True when `kid` is among the keys fetched last (no fetch).
    pub(super) fn knows(&self, kid: &str) -> bool {
        self.cache.cached.read().verifying_key(kid).is_some()
    }

    /// The key set, refetched when `kid` is not in it (at most every `min_refresh`).
    /// An unknown `kid` while the JWKS cannot be fetched is `KeysUnavailable`: the
    /// caller should retry, not conclude that its token is bad.
    pub(super) async fn key_set_with(&self, kid: &str) -> Result<Arc<KeySet>, TokenError> {
        let cache = &self.cache;
        let cached = cache.cached.read().clone();
        if cached.verifying_key(kid).is_some() {
            return Ok(cached);
        }
        let mut last = cache.last_fetch.lock().await;
        // Another task may have fetched while we waited.
        let cached = cache.cached.read().clone();
        if cached.verifying_key(kid).is_some() {
            return Ok(cached);
        }
        if let Some((at, failed)) = *last
            && at.elapsed() < cache.min_refresh
        {
            return if failed {
                Err(TokenError::KeysUnavailable)
            } else {
                Ok(cached)
            };
        }
        cache
            .refresh(&mut last)
            .await
            .map_err(|_| TokenError::KeysUnavailable)
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}

/// The timer: fetch, wait what the answer allows, fetch again. A failed fetch keeps
/// the keys it had (known keys keep working) and is retried after `min_refresh`.
async fn refresh_forever(cache: std::sync::Weak<JwksCache>) {
    loop {
        let wait = match cache.upgrade() {
            Some(cache) => {
                let mut last = cache.last_fetch.lock().await;
                match cache.refresh(&mut last).await {
                    Ok(_) => *cache.next_refresh.read(),
                    Err(()) => cache.min_refresh,
                }
            }
            None => return,
        };
        tokio::time::sleep(wait).await;
    }
}

impl JwksCache {
    /// Fetches now, under the `last_fetch` lock, and replaces the cached set.
    async fn refresh(&self, last: &mut Option<(Instant, bool)>) -> Result<Arc<KeySet>, ()> {
        let fetched = self.fetch().await;
        *last = Some((Instant::now(), fetched.is_err()));
        match fetched {
            Ok((fresh, max_age)) => {
                *self.next_refresh.write() = max_age
                    .unwrap_or(self.max_refresh)
                    .clamp(self.min_refresh, self.max_refresh);
                let fresh = Arc::new(fresh);
                *self.cached.write() = fresh.clone();
                Ok(fresh)
            }
            Err(e) => {
                tracing::warn!(url = %self.shown, error = %e, "cannot fetch the JWKS");
                Err(())
            }
        }
    }

    /// The key set and the answer's `max-age`.
    async fn fetch(&self) -> anyhow_like::Result<(KeySet, Option<Duration>)> {
        // reqwest's errors name the URL they were for: credentials and query included.
        let mut res = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(reqwest::Error::without_url)?;
        if !res.status().is_success() {
            return Err(format!("the JWKS answered {}", res.status()).into());
        }
        if res
            .content_length()
            .is_some_and(|n| n > JWKS_MAX_BYTES as u64)
        {
            return Err("the JWKS is larger than 64 KiB".into());
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(reqwest::Error::without_url)? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                return Err("the JWKS is larger than 64 KiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        let doc: serde_json::Value = serde_json::from_slice(&body)?;
        Ok((KeySet::from_jwks(&doc)?, max_age))
    }
}

/// The JWKS URL under `auth_url` (`<auth_url>/.well-known/jwks.json`), parsed by the
/// parser the HTTP client uses; its query, if any, is kept.
/// The message of an error never quotes the URL (it may hold credentials).
pub fn jwks_url(auth_url: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(auth_url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an http:// or https:// URL with a host".to_owned());
    }
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| "this URL cannot have a path".to_owned())?
        .pop_if_empty()
        .extend([".well-known", "jwks.json"]);
    Ok(url)
}

/// `url` as it may be logged: without credentials (`user:password@`), query string or
/// fragment, which may all carry secrets.
pub fn redacted_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // Only a URL that cannot have credentials refuses these: it has none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `max-age` of a `Cache-Control` value; `no-cache` and `no-store` are zero.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .map(str::trim)
        .find_map(|directive| {
            let directive = directive.to_ascii_lowercase();
            if directive == "no-cache" || directive == "no-store" {
                return Some(Duration::ZERO);
            }
            directive
                .strip_prefix("max-age=")
                .and_then(|secs| secs.trim_matches('"').parse().ok())
                .map(Duration::from_secs)
        })
}

mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_url_is_under_the_auth_url_and_logged_without_secrets() {
        for (auth_url, jwks) in [
            (
                "http://127.0.0.1:8081",
                "http://127.0.0.1:8081/.well-known/jwks.json",
            ),
            (
                "https://a.example/",
                "https://a.example/.well-known/jwks.json",
            ),
            (
                "https://u:p@a.example/base/?key=secret#f",
                "https://u:p@a.example/base/.well-known/jwks.json?key=secret",
            ),
        ] {
            assert_eq!(jwks_url(auth_url).unwrap().as_str(), jwks, "{auth_url}");
        }
        let url = jwks_url("https://user:pass@a.example/base?key=secret").unwrap();
        assert_eq!(
            redacted_url(&url),
            "https://a.example/base/.well-known/jwks.json"
        );
        // What the HTTP client connects to, not what a hand-written split would see.
        let lookalike = jwks_url(r"http://auth.example.com\@localhost:8081").unwrap();
        assert_eq!(lookalike.host_str(), Some("auth.example.com"));
        for bad in ["auth:8081", "ftp://a.example", "http://", "mailto:a@b.c"] {
            let err = jwks_url(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
    }
}
