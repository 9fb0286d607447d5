//! Signing and validating JWTs. The validator pins the algorithm, checks the claims
//! against a `now` passed in, then checks revocation (in the local view while it is
//! fresh, else in ONE store round trip). A token's signature is verified once: its
//! claims are kept by the SHA-256 of its bytes until it expires.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Header, Validation};
use parking_lot::RwLock;

use crate::claims::{Claims, Registered, TokenType};
use crate::clock::UnixTime;
use crate::error::{ApiError, ErrorCode};
use crate::keys::{Algorithm, KeySet};
use crate::store::{Store, StoreError};

/// Why a token was refused. `reason()` is the metric label and log field.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("algorithm not allowed")]
    WrongAlgorithm,
    #[error("unknown key id")]
    UnknownKey,
    /// The key id is unknown and the auth service's keys cannot be fetched: the token
    /// could not be checked at all, which is no verdict on it.
    #[error("the verification keys cannot be fetched")]
    KeysUnavailable,
    #[error("missing or invalid claims")]
    BadClaims,
    #[error("wrong issuer or audience")]
    WrongIssuer,
    #[error("not valid yet")]
    NotYetValid,
    #[error("expired")]
    Expired,
    #[error("wrong token type: {0}")]
    WrongType(TokenType),
    #[error("revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::BadClaims => "bad_claims",
            Self::WrongIssuer => "wrong_issuer",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::WrongType(_) => "wrong_type",
            Self::Revoked => "revoked",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let code = match &e {
            TokenError::Missing => ErrorCode::MissingToken,
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::Revoked => ErrorCode::TokenRevoked,
            TokenError::WrongType(_) => ErrorCode::WrongTokenType,
            TokenError::Store(s) => return s.clone().into(),
            TokenError::KeysUnavailable => {
                return StoreError::Unavailable(e.to_string()).into();
            }
            _ => ErrorCode::InvalidToken,
        };
        ApiError::new(code, format!("the token was refused: {e}"))
    }
}

/// What both services agree on about tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
}

/// Signs tokens with the newest key of a key set.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<KeySet>,
    settings: JwtSettings,
}

impl Signer {
    pub fn new(keys: Arc<KeySet>, settings: JwtSettings) -> Self {
        Self { keys, settings }
    }

    /// The registered claims of a new token of `token_type` for `sub`, living `ttl` from `now`.
    pub fn registered(
        &self,
        sub: &str,
        token_type: TokenType,
        jti: String,
        now: UnixTime,
        ttl: Duration,
    ) -> Registered {
        let iat = now.secs();
        Registered {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: sub.to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti,
            token_type,
        }
    }

    pub fn sign<C: Claims>(&self, claims: &C) -> Result<String, ApiError> {
        let (kid, key) = self
            .keys
            .signing_key()
            .ok_or_else(|| ApiError::internal("no signing key"))?;
        let mut header = Header::new(self.keys.algorithm().jwt());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, claims, key).map_err(ApiError::internal)?;
        metrics::counter!("authstream_tokens_issued_total", "type" => C::TYPE.as_str())
            .increment(1);
        Ok(token)
    }
}

/// A random, unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

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
    pub fn new(auth_url: &str, min_refresh: Duration) -> Result<Self, ApiError> {
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
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // A redirect could point the fetch anywhere; the JWKS URL is configured, not found.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ApiError::internal)?;
        let empty =
            KeySet::from_jwks(&serde_json::json!({ "keys": [] })).map_err(ApiError::internal)?;
        let max_refresh = max_refresh.max(min_refresh);
        let url = jwks_url(auth_url).map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e))?;
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
    fn knows(&self, kid: &str) -> bool {
        self.cache.cached.read().verifying_key(kid).is_some()
    }

    /// The key set, refetched when `kid` is not in it (at most every `min_refresh`).
    /// An unknown `kid` while the JWKS cannot be fetched is `KeysUnavailable`: the
    /// caller should retry, not conclude that its token is bad.
    async fn key_set_with(&self, kid: &str) -> Result<Arc<KeySet>, TokenError> {
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

/// How many verified tokens are kept (each a few hundred bytes).
const VERIFIED_CAPACITY: u64 = 100_000;

/// A token whose signature, algorithm, type, issuer and audience were checked.
struct Verified {
    kid: String,
    /// The typed claims (`C` of the `validate::<C>` that verified it).
    claims: Arc<dyn Any + Send + Sync>,
    /// Until the token expires (with leeway): no use keeping it longer.
    lives: Duration,
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &[u8; 32],
        verified: &Arc<Verified>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(verified.lives)
    }
}

/// Validates tokens for both services.
#[derive(Clone)]
pub struct Validator {
    algorithm: Algorithm,
    keys: KeySource,
    settings: JwtSettings,
    store: Store,
    /// SHA-256 of a token's bytes → its verified claims. Other bytes are another key,
    /// so no altered token can hit; a hit is still checked for time and revocation.
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl Validator {
    pub fn new(algorithm: Algorithm, keys: KeySource, settings: JwtSettings, store: Store) -> Self {
        crate::keys::install_crypto_provider();
        Self {
            algorithm,
            keys,
            settings,
            store,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// How many verified tokens are kept now.
    pub fn verified_tokens(&self) -> u64 {
        self.verified.run_pending_tasks();
        self.verified.entry_count()
    }

    /// Signature, algorithm, claims and type, checked against `now`; no store access.
    /// A token verified before (same bytes, key still known) is not verified again.
    pub async fn decode<C: Claims>(&self, token: &str, now: UnixTime) -> Result<C, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let digest = sha256(token);
        if let Some(hit) = self.verified.get(&digest)
            && let Some(claims) = hit.claims.downcast_ref::<C>()
            && self.still_knows(&hit.kid)
        {
            metrics::counter!("authstream_token_verify_cache_total", "result" => "hit")
                .increment(1);
            self.check_time(claims.registered(), now)?;
            return Ok(claims.clone());
        }
        metrics::counter!("authstream_token_verify_cache_total", "result" => "miss").increment(1);
        let (claims, kid) = self.verify::<C>(token, now).await?;
        let exp = claims.registered().exp;
        let lives = now.until(UnixTime::from_secs(exp).plus(self.settings.leeway));
        if !lives.is_zero() {
            let verified = Verified {
                kid,
                claims: Arc::new(claims.clone()),
                lives,
            };
            self.verified.insert(digest, Arc::new(verified));
        }
        Ok(claims)
    }

    /// True when the key that signed a cached token is still a verifying key.
    fn still_knows(&self, kid: &str) -> bool {
        match &self.keys {
            KeySource::Local(keys) => keys.verifying_key(kid).is_some(),
            KeySource::Remote(remote) => remote.knows(kid),
        }
    }

    /// The full check of `decode`, and the key id that verified it.
    async fn verify<C: Claims>(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<(C, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm.jwt() {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = match &self.keys {
            KeySource::Local(keys) => keys.clone(),
            KeySource::Remote(remote) => remote.key_set_with(&kid).await?,
        };
        let key = keys.verifying_key(&kid).ok_or(TokenError::UnknownKey)?;

        // jsonwebtoken checks the signature and the pinned algorithm only; the claims
        // are checked below against the `now` we were given.
        let mut validation = Validation::new(self.algorithm.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        TokenError::WrongAlgorithm
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let raw = data.claims;
        let token_type = raw
            .get("token_type")
            .and_then(|t| t.as_str())
            .ok_or(TokenError::BadClaims)?;
        let token_type = TokenType::parse(token_type).ok_or(TokenError::BadClaims)?;
        if token_type != C::TYPE {
            return Err(TokenError::WrongType(token_type));
        }
        let claims: C = serde_json::from_value(raw).map_err(|_| TokenError::BadClaims)?;
        let reg = claims.registered();
        if reg.iss != self.settings.issuer || reg.aud != self.settings.audience {
            return Err(TokenError::WrongIssuer);
        }
        self.check_time(reg, now)?;
        Ok((claims, kid))
    }

    /// `exp` and `nbf` against `now`, with the leeway.
    fn check_time(&self, reg: &Registered, now: UnixTime) -> Result<(), TokenError> {
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(0);
        let now_secs = now.secs();
        if reg.exp + leeway <= now_secs {
            return Err(TokenError::Expired);
        }
        if reg.nbf - leeway > now_secs {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// Everything `decode` checks, then revocation per token, session and user
    /// (`Store::revoked`: the local view while it is fresh, else one `MGET`).
    pub async fn validate<C: Claims>(&self, token: &str, now: UnixTime) -> Result<C, TokenError> {
        let result = async {
            let claims = self.decode::<C>(token, now).await?;
            let reg = claims.registered();
            if revoked(
                &self.store,
                &reg.sub,
                &reg.jti,
                claims.session_id(),
                reg.iat,
            )
            .await?
            {
                return Err(TokenError::Revoked);
            }
            Ok(claims)
        }
        .await;
        match &result {
            Ok(_) => metrics::counter!("authstream_tokens_validated_total", "type" => C::TYPE.as_str()).increment(1),
            Err(e) => metrics::counter!(
                "authstream_tokens_rejected_total", "type" => C::TYPE.as_str(), "reason" => e.reason()
            )
            .increment(1),
        }
        result
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// True when the token `jti` of `sub`, its session, or everything of `sub` issued
/// at `iat` has been revoked: see `Store::revoked`.
pub async fn revoked(
    store: &Store,
    sub: &str,
    jti: &str,
    sid: Option<&str>,
    iat: i64,
) -> Result<bool, StoreError> {
    store.revoked(sub, jti, sid, iat).await
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
