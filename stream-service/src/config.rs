//! The stream service's settings, read once from the environment at start-up.

use std::time::Duration;

use shared::config::{self, ConfigError, Env};
use shared::jwt::{KeySource, RemoteKeys};
use shared::keys::Algorithm;
use shared::settings::CommonSettings;

/// How often, at most, an unknown `kid` makes us fetch the auth service's JWKS again.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    /// `STREAM_BIND`, default `0.0.0.0:8082`.
    pub bind: String,
    /// `AUTH_URL`: where the JWKS is fetched from (EdDSA without local keys).
    pub auth_url: Option<String>,
    /// `SSE_KEEPALIVE_SECS`, default 15.
    pub keepalive: Duration,
    /// `SSE_MAX_QUEUED_EVENTS`, default 256: a stream further behind is cut off.
    pub max_queued: usize,
    /// `SSE_SEND_TIMEOUT_SECS`, default 30: a connection whose sent data stays
    /// unacknowledged, or that takes nothing (a zero window), for this long is dropped.
    pub send_timeout: Duration,
    /// `JWKS_REFRESH_SECS`, default 300: the JWKS is refetched this often (sooner when
    /// its `Cache-Control: max-age` says so), so a retired key stops verifying.
    pub jwks_refresh: Duration,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env(env)?;
        let auth_url = config::string(env, "AUTH_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &auth_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "AUTH_URL",
                format!("expected an http:// or https:// URL, got {url:?}"),
            ));
        }
        if common.algorithm == Algorithm::EdDSA
            && auth_url.is_none()
            && common.signing_keys_dir.is_none()
        {
            return Err(ConfigError::new(
                "AUTH_URL",
                "required with JWT_ALGORITHM=EdDSA (where the auth service publishes its JWKS), \
                 unless JWT_SIGNING_KEYS_DIR holds the keys",
            ));
        }
        let max_queued: usize = config::parsed(env, "SSE_MAX_QUEUED_EVENTS", 256)?;
        if max_queued == 0 {
            return Err(ConfigError::new(
                "SSE_MAX_QUEUED_EVENTS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            bind: config::bind_addr(env, "STREAM_BIND", "0.0.0.0:8082")?,
            auth_url,
            keepalive: config::positive_secs(env, "SSE_KEEPALIVE_SECS", 15)?,
            max_queued,
            send_timeout: config::positive_secs(env, "SSE_SEND_TIMEOUT_SECS", 30)?,
            jwks_refresh: config::positive_secs(env, "JWKS_REFRESH_SECS", 300)?,
            common,
        })
    }

    /// The verification keys: the HS256 secret, the local key directory, or the
    /// auth service's JWKS. A local directory wins over `AUTH_URL`: no network needed.
    pub fn key_source(&self) -> Result<KeySource, ConfigError> {
        match (
            self.common.algorithm,
            &self.common.signing_keys_dir,
            &self.auth_url,
        ) {
            (Algorithm::HS256, _, _) | (Algorithm::EdDSA, Some(_), _) => {
                Ok(KeySource::Local(self.common.signing_keys()?))
            }
            (Algorithm::EdDSA, None, Some(url)) => RemoteKeys::new(url, JWKS_MIN_REFETCH)
                .map(|keys| KeySource::Remote(keys.with_max_refresh(self.jwks_refresh).into()))
                .map_err(|e| ConfigError::new("AUTH_URL", e.detail)),
            (Algorithm::EdDSA, None, None) => Err(ConfigError::new(
                "AUTH_URL",
                "required with JWT_ALGORITHM=EdDSA unless JWT_SIGNING_KEYS_DIR is set",
            )),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use shared::config::vars;

    const AUTH: (&str, &str) = ("AUTH_URL", "http://auth:8081/");

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_env(&vars(&[AUTH])).unwrap();
        assert_eq!(s.bind, "0.0.0.0:8082");
        assert_eq!(s.keepalive, Duration::from_secs(15));
        assert_eq!(s.max_queued, 256);
        assert_eq!(s.send_timeout, Duration::from_secs(30));
        assert_eq!(s.jwks_refresh, Duration::from_secs(300));
        assert_eq!(s.auth_url.as_deref(), Some("http://auth:8081"));
        assert!(matches!(s.key_source().unwrap(), KeySource::Remote(_)));
    }

    #[test]
    fn the_jwks_refresh_interval_is_a_positive_number_of_seconds() {
        let s = Settings::from_env(&vars(&[AUTH, ("JWKS_REFRESH_SECS", "60")])).unwrap();
        assert_eq!(s.jwks_refresh, Duration::from_secs(60));
        let err = Settings::from_env(&vars(&[AUTH, ("JWKS_REFRESH_SECS", "0")])).unwrap_err();
        assert!(err.to_string().contains("JWKS_REFRESH_SECS"), "{err}");
    }

    #[test]
    fn eddsa_without_a_key_source_names_auth_url() {
        let err = Settings::from_env(&vars(&[])).unwrap_err();
        assert_eq!(err.var, "AUTH_URL");
    }

    #[test]
    fn hs256_keys_are_local() {
        let s = Settings::from_env(&vars(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap();
        assert!(matches!(s.key_source().unwrap(), KeySource::Local(_)));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("STREAM_BIND", "nowhere"),
            ("SSE_KEEPALIVE_SECS", "0"),
            ("SSE_KEEPALIVE_SECS", "often"),
            ("SSE_MAX_QUEUED_EVENTS", "0"),
            ("SSE_MAX_QUEUED_EVENTS", "-1"),
            ("SSE_SEND_TIMEOUT_SECS", "0"),
            ("AUTH_URL", "auth:8081"),
            ("STREAM_RESUME_TTL_SECS", "0"),
            ("EVENT_HISTORY_MAX", "lots"),
        ] {
            let err = Settings::from_env(&vars(&[AUTH, (var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}: {err}");
        }
    }
}
