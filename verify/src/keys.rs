//! The auth service's JWKS: fetched at start, refetched on the answer's
//! `Cache-Control: max-age` (so a key it stops publishing stops verifying here), and on
//! an unknown `kid` at most once per `min_refresh`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use parking_lot::RwLock;
use serde_json::Value;

use crate::VerifyError;

/// The largest JWKS document accepted.
const JWKS_MAX_BYTES: usize = 64 * 1024;
/// The longest time between two timed fetches (also without `max-age`).
const MAX_REFRESH: Duration = Duration::from_secs(300);

pub(crate) type KeyMap = HashMap<String, DecodingKey>;

pub(crate) struct Keys {
    url: reqwest::Url,
    http: reqwest::Client,
    cached: RwLock<Arc<KeyMap>>,
    /// When the last fetch was tried, and whether it failed.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
    min_refresh: Duration,
    next_refresh: RwLock<Duration>,
}

impl Keys {
    /// Fetches the JWKS once: an error when it cannot.
    pub(crate) async fn fetch_first(
        url: reqwest::Url,
        http: reqwest::Client,
        min_refresh: Duration,
    ) -> Result<Arc<Self>, String> {
        let keys = Arc::new(Self {
            url,
            http,
            cached: RwLock::new(Arc::new(KeyMap::new())),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh,
            next_refresh: RwLock::new(MAX_REFRESH),
        });
        {
            let mut last = keys.last_fetch.lock().await;
            keys.refresh(&mut last).await?;
        }
        Ok(keys)
    }

    /// The key `kid`, refetching the JWKS when it is unknown (at most every
    /// `min_refresh`, whoever asks).
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<KeyMap>, VerifyError> {
        let cached = self.cached.read().clone();
        if cached.contains_key(kid) {
            return Ok(cached);
        }
        let mut last = self.last_fetch.lock().await;
        let cached = self.cached.read().clone();
        if cached.contains_key(kid) {
            return Ok(cached);
        }
        if let Some((at, failed)) = *last
            && at.elapsed() < self.min_refresh
        {
            return if failed {
                Err(VerifyError::Unavailable("the JWKS cannot be fetched"))
            } else {
                Err(VerifyError::UnknownKey)
            };
        }
        match self.refresh(&mut last).await {
            Ok(fresh) if fresh.contains_key(kid) => Ok(fresh),
            Ok(_) => Err(VerifyError::UnknownKey),
            Err(_) => Err(VerifyError::Unavailable("the JWKS cannot be fetched")),
        }
    }

    async fn refresh(&self, last: &mut Option<(Instant, bool)>) -> Result<Arc<KeyMap>, String> {
        let fetched = self.fetch().await;
        *last = Some((Instant::now(), fetched.is_err()));
        match fetched {
            Ok((fresh, max_age)) => {
                *self.next_refresh.write() = max_age
                    .unwrap_or(MAX_REFRESH)
                    .clamp(self.min_refresh, MAX_REFRESH);
                let fresh = Arc::new(fresh);
                *self.cached.write() = fresh.clone();
                Ok(fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "authstream-verify: cannot fetch the JWKS");
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeyMap, Option<Duration>), String> {
        let mut res = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !res.status().is_success() {
            return Err(format!("the JWKS answered {}", res.status()));
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.without_url().to_string())? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                return Err("the JWKS is larger than 64 KiB".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok((parse_jwks(&doc)?, max_age))
    }
}

/// The Ed25519 keys of a JWKS document by `kid`; other keys are skipped.
pub(crate) fn parse_jwks(doc: &Value) -> Result<KeyMap, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    let mut map = KeyMap::new();
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
        let key = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
        map.insert(kid.to_owned(), key);
    }
    Ok(map)
}

/// The timer: wait what the last answer allowed, fetch again. A failed fetch keeps
/// the keys it had and is retried after `min_refresh`.
pub(crate) async fn refresh_forever(keys: Weak<Keys>) {
    loop {
        let wait = match keys.upgrade() {
            Some(keys) => *keys.next_refresh.read(),
            None => return,
        };
        tokio::time::sleep(wait).await;
        let Some(keys) = keys.upgrade() else { return };
        let mut last = keys.last_fetch.lock().await;
        if keys.refresh(&mut last).await.is_err() {
            *keys.next_refresh.write() = keys.min_refresh;
        }
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
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_no_cache_is_zero() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }

    fn jwk(kid: &str) -> Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": kid, "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    #[tokio::test]
    async fn a_key_dropped_from_the_jwks_stops_verifying_at_the_next_refresh() {
        let published = Arc::new(parking_lot::Mutex::new(
            serde_json::json!({"keys": [jwk("a")]}),
        ));
        let served = published.clone();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let doc = served.lock().to_string();
                async move { ([("cache-control", "public, max-age=0")], doc) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });

        let min_refresh = Duration::from_millis(100);
        let keys = Keys::fetch_first(url.parse().unwrap(), reqwest::Client::new(), min_refresh)
            .await
            .unwrap();
        tokio::spawn(refresh_forever(Arc::downgrade(&keys)));
        assert!(keys.key("a").await.is_ok());
        *published.lock() = serde_json::json!({"keys": [jwk("b")]});
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(keys.key("a").await.err(), Some(VerifyError::UnknownKey));
        assert!(keys.key("b").await.is_ok());
    }

    #[test]
    fn only_ed25519_signing_keys_are_taken() {
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "a",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "kid": "b", "n": "x", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "use": "enc", "kid": "c",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]});
        let map = parse_jwks(&doc).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["a"]);
    }
}
