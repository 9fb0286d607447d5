//! Configuration both services read. Each service adds its own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::http::TrustedProxies;
use crate::rate_limit::{RateLimiter, RateLimits};
use authstream_runtime::config::{self, ConfigError, Env, Logging};
use authstream_security::jwt::JwtSettings;
use authstream_security::keys::{Algorithm, KeySet};
use authstream_store::{RedisStore, Store};

/// The key prefix of everything this system keeps in Redis.
pub const KEY_PREFIX: &str = "as";

#[derive(Debug, Clone)]
pub struct CommonSettings {
    pub redis_url: Option<String>,
    /// Seeds of a Redis Cluster; when present, used instead of `redis_url`.
    pub redis_cluster_nodes: Vec<String>,
    pub redis_timeout: Duration,
    /// `STREAM_LEGACY_FANOUT`, default true: appends also publish on the one channel
    /// of the release before, and streams also listen there (a rolling upgrade).
    pub legacy_fanout: bool,
    /// `REVOCATION_LEGACY_LOG`, default true: revocations also go to the one log of
    /// the release before, and every process also tails it (a rolling upgrade).
    pub legacy_revocation_log: bool,
    pub jwt: JwtSettings,
    pub algorithm: Algorithm,
    pub jwt_secret: Option<SecretString>,
    pub signing_keys_dir: Option<PathBuf>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub service_ttl: Duration,
    pub stream_token_ttl: Duration,
    pub stream_token_bind_ip: bool,
    pub resume_ttl: Duration,
    pub generation_ttl: Duration,
    pub event_history_max: usize,
    pub demo: bool,
    pub cookie_secure: bool,
    pub logging: Logging,
    pub cors_origins: Vec<String>,
    pub trusted_proxies: TrustedProxies,
    pub rate_limits: RateLimits,
}

impl CommonSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let redis_cluster_nodes = config::list(env, "REDIS_CLUSTER_NODES");
        for seed in &redis_cluster_nodes {
            let url = match seed.contains("://") {
                true => seed.clone(),
                false => format!("redis://{seed}"),
            };
            let parsed = redis::parse_redis_url(&url)
                .filter(|u| matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some());
            if parsed.is_none() {
                // Never echo it: a seed URL may carry a password.
                return Err(ConfigError::new(
                    "REDIS_CLUSTER_NODES",
                    "each seed must be host:port or a redis:// or rediss:// URL",
                ));
            }
        }
        let algorithm = Algorithm::parse(&config::string_or(env, "JWT_ALGORITHM", "EdDSA"))
            .map_err(|e| ConfigError::new("JWT_ALGORITHM", e))?;
        let jwt_secret = config::string(env, "JWT_SECRET").map(SecretString::from);
        if algorithm == Algorithm::HS256 {
            match &jwt_secret {
                None => {
                    return Err(ConfigError::new(
                        "JWT_SECRET",
                        "required when JWT_ALGORITHM=HS256",
                    ));
                }
                Some(s) if s.expose_secret().len() < 32 => {
                    return Err(ConfigError::new("JWT_SECRET", "must be at least 32 bytes"));
                }
                Some(_) => {}
            }
            // Keys that would be silently ignored are a mistake worth stopping for.
            if config::string(env, "JWT_SIGNING_KEYS_DIR").is_some() {
                return Err(ConfigError::new(
                    "JWT_SIGNING_KEYS_DIR",
                    "not used with JWT_ALGORITHM=HS256 (which signs with JWT_SECRET); unset one",
                ));
            }
        }
        let history: usize = config::parsed(env, "EVENT_HISTORY_MAX", 1000)?;
        if history == 0 {
            return Err(ConfigError::new("EVENT_HISTORY_MAX", "must be at least 1"));
        }
        let timeout_ms: u64 = config::parsed(env, "REDIS_TIMEOUT_MS", 1000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::new("REDIS_TIMEOUT_MS", "must be positive"));
        }
        Ok(Self {
            redis_url: config::string(env, "REDIS_URL"),
            redis_cluster_nodes,
            redis_timeout: Duration::from_millis(timeout_ms),
            legacy_fanout: config::boolean(env, "STREAM_LEGACY_FANOUT", true)?,
            legacy_revocation_log: config::boolean(env, "REVOCATION_LEGACY_LOG", true)?,
            jwt: JwtSettings {
                issuer: config::string_or(env, "JWT_ISSUER", "authstream"),
                audience: config::string_or(env, "JWT_AUDIENCE", "authstream"),
                leeway: Duration::from_secs(config::parsed(env, "JWT_LEEWAY_SECS", 5)?),
            },
            algorithm,
            jwt_secret,
            signing_keys_dir: config::string(env, "JWT_SIGNING_KEYS_DIR").map(PathBuf::from),
            access_ttl: config::positive_secs(env, "ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_ttl: config::positive_secs(env, "REFRESH_TOKEN_TTL_SECS", 604_800)?,
            service_ttl: config::positive_secs(env, "SERVICE_TOKEN_TTL_SECS", 900)?,
            stream_token_ttl: config::positive_secs(env, "STREAM_TOKEN_TTL_SECS", 60)?,
            stream_token_bind_ip: config::boolean(env, "STREAM_TOKEN_BIND_IP", false)?,
            resume_ttl: config::positive_secs(env, "STREAM_RESUME_TTL_SECS", 300)?,
            generation_ttl: config::positive_secs(env, "GENERATION_TTL_SECS", 86_400)?,
            event_history_max: history,
            demo: config::boolean(env, "DEMO", false)?,
            cookie_secure: config::boolean(env, "COOKIE_SECURE", true)?,
            logging: config::logging(env)?,
            cors_origins: config::list(env, "CORS_ALLOWED_ORIGINS"),
            trusted_proxies: TrustedProxies::parse(&config::list(env, "TRUSTED_PROXIES"))
                .map_err(|e| ConfigError::new("TRUSTED_PROXIES", e))?,
            rate_limits: RateLimits::from_env(env)?,
        })
    }

    /// The store: a Redis Cluster when `REDIS_CLUSTER_NODES` is set, Redis when
    /// `REDIS_URL` is, else in memory (one process only).
    pub fn store(&self) -> Result<Store, ConfigError> {
        if !self.redis_cluster_nodes.is_empty() {
            let store = RedisStore::connect_cluster(&self.redis_cluster_nodes, self.redis_timeout)
                .map(|s| Store::redis(s, KEY_PREFIX))
                .map_err(|e| ConfigError::new("REDIS_CLUSTER_NODES", e.to_string()))?;
            return Ok(store
                .with_revocation_window(self.revocation_ttl())
                .with_legacy_fanout(self.legacy_fanout)
                .with_legacy_revocation_log(self.legacy_revocation_log));
        }
        let store = match &self.redis_url {
            Some(url) => RedisStore::connect(url, self.redis_timeout)
                .map(|s| Store::redis(s, KEY_PREFIX))
                .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?,
            None => Store::memory(KEY_PREFIX),
        };
        Ok(store
            .with_revocation_window(self.revocation_ttl())
            .with_legacy_fanout(self.legacy_fanout)
            .with_legacy_revocation_log(self.legacy_revocation_log))
    }

    /// The rate limiter on `store`: every service and replica on one store shares
    /// each budget.
    pub fn rate_limiter(&self, store: Store) -> RateLimiter {
        RateLimiter::new(store, self.rate_limits, self.trusted_proxies.clone())
    }

    /// The signing keys: the HS256 secret, the PEM directory, or an ephemeral key.
    pub fn signing_keys(&self) -> Result<Arc<KeySet>, ConfigError> {
        let keys = match (self.algorithm, &self.signing_keys_dir) {
            (Algorithm::HS256, _) => {
                let secret = self
                    .jwt_secret
                    .as_ref()
                    .map(|s| s.expose_secret().as_bytes())
                    .unwrap_or_default();
                KeySet::hs256(secret).map_err(|e| ConfigError::new("JWT_SECRET", e.to_string()))?
            }
            (Algorithm::EdDSA, Some(dir)) => KeySet::from_dir(dir)
                .map_err(|e| ConfigError::new("JWT_SIGNING_KEYS_DIR", e.to_string()))?,
            (Algorithm::EdDSA, None) => {
                let keys = KeySet::ephemeral()
                    .map_err(|e| ConfigError::new("JWT_SIGNING_KEYS_DIR", e.to_string()))?;
                tracing::warn!(
                    "no JWT_SIGNING_KEYS_DIR: signing with an ephemeral key; tokens will not survive a restart"
                );
                keys
            }
        };
        Ok(Arc::new(keys))
    }

    /// Seconds a revocation must be kept: as long as any token can live, plus leeway.
    pub fn revocation_ttl(&self) -> Duration {
        self.access_ttl.max(self.refresh_ttl).max(self.service_ttl) + self.jwt.leeway
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use authstream_runtime::config::vars;

    #[test]
    fn defaults_match_the_contract() {
        let s = CommonSettings::from_env(&vars(&[])).unwrap();
        assert_eq!(s.access_ttl, Duration::from_secs(900));
        assert_eq!(s.refresh_ttl, Duration::from_secs(604_800));
        assert_eq!(s.stream_token_ttl, Duration::from_secs(60));
        assert_eq!(s.jwt.leeway, Duration::from_secs(5));
        assert!(s.cookie_secure && !s.stream_token_bind_ip && s.redis_url.is_none());
        assert!(s.legacy_fanout, "on for the release that upgrades");
        assert!(s.legacy_revocation_log, "on for the release that upgrades");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("STREAM_TOKEN_TTL_SECS", "0"),
            ("STREAM_TOKEN_TTL_SECS", "-5"),
            ("ACCESS_TOKEN_TTL_SECS", "soon"),
            ("JWT_ALGORITHM", "RS256"),
            ("COOKIE_SECURE", "maybe"),
            ("STREAM_LEGACY_FANOUT", "later"),
            ("TRUSTED_PROXIES", "nonsense"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,auth_service=loud"),
            ("RATE_LIMIT_FREE", "60"),
            ("RATE_LIMIT_PAID", "0/60s"),
            ("RATE_LIMIT_ANON", "30/60d"),
            ("RATE_LIMIT_LOGIN", "ten/300s"),
            ("RATE_LIMIT_REFRESH", "10/0s"),
        ] {
            let err = CommonSettings::from_env(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}: {err}");
        }
        let err = CommonSettings::from_env(&vars(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "short"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        let err = CommonSettings::from_env(&vars(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", &"s".repeat(32)),
            ("JWT_SIGNING_KEYS_DIR", "/etc/keys"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "JWT_SIGNING_KEYS_DIR");
    }
}
