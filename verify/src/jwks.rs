//! The auth service's JWKS, written once: which keys of a document verify tokens
//! ([`parse_jwks`]), where it is ([`jwks_url`]), and [`RemoteJwks`], the keys fetched
//! and kept current. The auth services' `RemoteKeys` and `Verifier`
//! are layers over it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use parking_lot::RwLock;
use serde_json::Value;

use crate::token::TokenError;

/// The largest JWKS document accepted.
pub const JWKS_MAX_BYTES: usize = 64 * 1024;

/// How often the JWKS is refetched when the answer names no `max-age`, and the longest
/// a `max-age` may stretch that (a day-long `max-age` would keep a retired key alive).
pub const JWKS_DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// A key of a JWKS document that verifies tokens.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key id, the `kid` of the tokens it verifies.
    pub kid: String,
    /// The public key as published (URL-safe base64 without padding).
    pub x: String,
    /// The key, ready to verify.
    pub key: DecodingKey,
}

/// The keys of a JWKS document that verify tokens: Ed25519 signing keys (`kty` `OKP`,
/// `crv` `Ed25519`, `alg` `EdDSA` and `use` `sig` when present) with a `kid` and an
/// `x`. Other keys are skipped; a document without a `keys` array, or an `x` that is
/// no key, is an error.
pub fn parse_jwks(doc: &Value) -> Result<Vec<VerifyingKey>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let field = |name: &str| key.get(name).and_then(Value::as_str);
        if field("kty") != Some("OKP")
            || field("crv") != Some("Ed25519")
            || field("alg").is_some_and(|alg| alg != "EdDSA")
            || field("use").is_some_and(|u| u != "sig")
        {
            continue;
        }
        let (Some(kid), Some(x)) = (field("kid"), field("x")) else {
            continue;
        };
        let decoding = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
        out.push(VerifyingKey {
            kid: kid.to_owned(),
            x: x.to_owned(),
            key: decoding,
        });
    }
    Ok(out)
}

/// The verifying keys of a JWKS document by `kid`.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: HashMap<String, DecodingKey>,
}

impl JwkSet {
    /// The keys of `doc` that [`parse_jwks`] takes.
    pub fn from_document(doc: &Value) -> Result<Self, String> {
        let keys = parse_jwks(doc)?
            .into_iter()
            .map(|k| (k.kid, k.key))
            .collect();
        Ok(Self { keys })
    }

    /// The key `kid`.
    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }

    /// Whether `kid` is a key of the set.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Every `kid`, in no order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
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

/// A JWKS fetched from its URL and kept current: on a timer
/// ([`refresh_forever`](Self::refresh_forever): every `Cache-Control: max-age` of the
/// last answer, between `min_refresh` and `max_refresh`), so that a key the auth
/// service stops publishing stops verifying here within that time; and on an unknown
/// `kid` (at most every `min_refresh`, whoever asks). A failed fetch keeps the keys it
/// had. The fetch reads at most [`JWKS_MAX_BYTES`]; redirects and timeouts are the
/// HTTP client's (give it no redirects).
pub struct RemoteJwks {
    url: reqwest::Url,
    /// `url` without its credentials and query: the only form that is logged.
    shown: String,
    http: reqwest::Client,
    cached: RwLock<Arc<JwkSet>>,
    /// When the last fetch was tried, and whether it failed.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
    min_refresh: Duration,
    max_refresh: Duration,
    /// When the timer fetches next: zero before the first fetch, then the last
    /// answer's `max-age` within bounds, or `min_refresh` after a failure.
    next_refresh: RwLock<Duration>,
}

impl RemoteJwks {
    /// Nothing fetched yet: [`refresh`](Self::refresh) or the timer fetches.
    /// `max_refresh` is never below `min_refresh`.
    pub fn new(
        url: reqwest::Url,
        http: reqwest::Client,
        min_refresh: Duration,
        max_refresh: Duration,
    ) -> Self {
        Self {
            shown: redacted_url(&url),
            url,
            http,
            cached: RwLock::new(Arc::new(JwkSet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh,
            max_refresh: max_refresh.max(min_refresh),
            next_refresh: RwLock::new(Duration::ZERO),
        }
    }

    /// The URL as it may be logged.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// True when `kid` is among the keys fetched last (no fetch).
    pub fn knows(&self, kid: &str) -> bool {
        self.cached.read().contains(kid)
    }

    /// Fetches now and replaces the keys; a failure keeps them (and is logged).
    pub async fn refresh(&self) -> Result<Arc<JwkSet>, String> {
        let mut last = self.last_fetch.lock().await;
        self.refresh_locked(&mut last).await
    }

    /// The keys, refetched first when `kid` is not among them (at most every
    /// `min_refresh`); the caller looks `kid` up. An unknown `kid` while the JWKS cannot
    /// be fetched is `KeysUnavailable`: no verdict on the token.
    pub async fn keys_with<S>(&self, kid: &str) -> Result<Arc<JwkSet>, TokenError<S>> {
        let cached = self.cached.read().clone();
        if cached.contains(kid) {
            return Ok(cached);
        }
        let mut last = self.last_fetch.lock().await;
        // Another task may have fetched while we waited.
        let cached = self.cached.read().clone();
        if cached.contains(kid) {
            return Ok(cached);
        }
        if let Some((at, failed)) = *last
            && at.elapsed() < self.min_refresh
        {
            return if failed {
                Err(TokenError::KeysUnavailable)
            } else {
                Ok(cached)
            };
        }
        self.refresh_locked(&mut last)
            .await
            .map_err(|_| TokenError::KeysUnavailable)
    }

    /// The timer, until the keys are dropped: wait what the last answer allowed (not
    /// at all before the first fetch), fetch again.
    pub async fn refresh_forever(keys: Weak<Self>) {
        loop {
            let wait = match keys.upgrade() {
                Some(keys) => *keys.next_refresh.read(),
                None => return,
            };
            tokio::time::sleep(wait).await;
            let Some(keys) = keys.upgrade() else { return };
            // A failure is logged and retried after `min_refresh`.
            let _ = keys.refresh().await;
        }
    }

    /// Fetches now, under the `last_fetch` lock, and replaces the cached keys.
    async fn refresh_locked(
        &self,
        last: &mut Option<(Instant, bool)>,
    ) -> Result<Arc<JwkSet>, String> {
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
                *self.next_refresh.write() = self.min_refresh;
                tracing::warn!(url = %self.shown, error = %e, "cannot fetch the JWKS");
                Err(e)
            }
        }
    }

    /// The keys and the answer's `max-age`.
    async fn fetch(&self) -> Result<(JwkSet, Option<Duration>), String> {
        // reqwest's errors name the URL they were for: credentials and query included.
        let mut res = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !res.status().is_success() {
            return Err(format!("the JWKS answered {}", res.status()));
        }
        let too_large = || format!("the JWKS is larger than {} KiB", JWKS_MAX_BYTES / 1024);
        if res
            .content_length()
            .is_some_and(|n| n > JWKS_MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.without_url().to_string())? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok((JwkSet::from_document(&doc)?, max_age))
    }
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

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
