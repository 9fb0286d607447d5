//! The stream service's settings, read once from the environment at start-up.

use std::time::Duration;

use authstream_runtime::config::{self, ConfigError, Env};
use authstream_security::jwt::{KeySource, RemoteKeys};
use authstream_security::keys::Algorithm;
use authstream_web::settings::CommonSettings;

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
    /// `JWKS_ALLOW_HTTP_HOSTS`: hosts (lower-case) whose JWKS may be fetched over plain
    /// http besides loopback, e.g. a compose network's `auth`.
    pub jwks_allow_http_hosts: Vec<String>,
    /// The origin (`scheme://host[:port]`) of `STREAM_PUBLIC_URL`; `None` when that is
    /// a path (the default): the service is then its own origin, whatever its name.
    pub public_origin: Option<String>,
    /// `STREAM_MAX_PER_USER`, default 20: open streams and WebSockets per user, counted
    /// in the store across every replica.
    pub max_streams_per_user: usize,
    /// `STREAM_SUBSCRIPTION_LINGER_MS`, default 5000: a generation stays subscribed
    /// this long after its last stream here closed, so a reconnect does not churn.
    pub subscription_linger: Duration,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env(env)?;
        let auth_url = config::string(env, "AUTH_URL").map(|u| u.trim_end_matches('/').to_owned());
        // Where the keys are fetched from is checked by `key_source`, which only a
        // process that fetches them calls (not the single process, on its own keys).
        if let Some(url) = &auth_url {
            check_auth_url(url, &[], false)?;
        }
        // Whether `AUTH_URL` is needed (EdDSA without local keys: a remote JWKS) is for
        // `key_source` to say: a process with keys of its own (the single process) needs
        // none.
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
            jwks_allow_http_hosts: config::list(env, "JWKS_ALLOW_HTTP_HOSTS")
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            public_origin: authstream_web::http::origin_of(&config::string_or(
                env,
                "STREAM_PUBLIC_URL",
                "",
            ))
            .map(str::to_ascii_lowercase),
            max_streams_per_user: match config::parsed(env, "STREAM_MAX_PER_USER", 20usize)? {
                0 => {
                    return Err(ConfigError::new(
                        "STREAM_MAX_PER_USER",
                        "must be at least 1",
                    ));
                }
                n => n,
            },
            subscription_linger: Duration::from_millis(config::parsed(
                env,
                "STREAM_SUBSCRIPTION_LINGER_MS",
                crate::hub::DEFAULT_LINGER.as_millis() as u64,
            )?),
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
            (Algorithm::EdDSA, None, Some(url)) => {
                check_auth_url(url, &self.jwks_allow_http_hosts, true)?;
                RemoteKeys::with_refresh(url, JWKS_MIN_REFETCH, self.jwks_refresh)
                    .map(|keys| KeySource::Remote(keys.into()))
                    .map_err(|e| ConfigError::new("AUTH_URL", e))
            }
            (Algorithm::EdDSA, None, None) => Err(ConfigError::new(
                "AUTH_URL",
                "required with JWT_ALGORITHM=EdDSA (where the auth service publishes its JWKS), \
                 unless JWT_SIGNING_KEYS_DIR holds the keys",
            )),
        }
    }
}

/// `AUTH_URL` must be an http(s) URL. When the keys that verify every token are
/// fetched from it (`fetched`), they must not come over a network anyone on the path
/// can rewrite: `https`, unless the host is this machine or named in
/// `JWKS_ALLOW_HTTP_HOSTS` (a private network such as compose's); and credentials in
/// the URL (`user:password@`) only over `https`. The host checked is the one the HTTP
/// client connects to: the URL is read by its parser (`http://a.example\@localhost`
/// is `a.example`), never by hand.
fn check_auth_url(auth_url: &str, allowed: &[String], fetched: bool) -> Result<(), ConfigError> {
    let url = authstream_security::jwt::jwks_url(auth_url)
        .map_err(|e| ConfigError::new("AUTH_URL", e))?;
    if !fetched || url.scheme() == "https" {
        return Ok(());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "AUTH_URL",
            "credentials in the URL would be sent over plain http: use https",
        ));
    }
    // Normalised by the parser: lower-case names, IP addresses in their usual form.
    let host = url.host_str().unwrap_or_default();
    let bare = host
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(host);
    let loopback = bare == "localhost"
        || bare.ends_with(".localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if loopback || allowed.iter().any(|h| h == bare) {
        return Ok(());
    }
    Err(ConfigError::new(
        "AUTH_URL",
        format!(
            "the JWKS would be fetched over plain http from {bare:?}: use https, \
             or list the host in JWKS_ALLOW_HTTP_HOSTS (for a private network)"
        ),
    ))
}

#[cfg(test)]
mod tests {

    use super::*;
    use authstream_runtime::config::vars;

    const AUTH: (&str, &str) = ("AUTH_URL", "http://auth:8081/");

    const ALLOW_AUTH: (&str, &str) = ("JWKS_ALLOW_HTTP_HOSTS", "auth");

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_env(&vars(&[AUTH, ALLOW_AUTH])).unwrap();
        assert_eq!(s.bind, "0.0.0.0:8082");
        assert_eq!(s.keepalive, Duration::from_secs(15));
        assert_eq!(s.max_queued, 256);
        assert_eq!(s.send_timeout, Duration::from_secs(30));
        assert_eq!(s.jwks_refresh, Duration::from_secs(300));
        assert_eq!(s.max_streams_per_user, 20);
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
    fn the_jwks_comes_over_https_unless_from_loopback_or_an_allowed_host() {
        // Refused before the server is built: `main` stops before anything starts.
        let source = |url: &str, allowed: &str| {
            Settings::from_env(&vars(&[
                ("AUTH_URL", url),
                ("JWKS_ALLOW_HTTP_HOSTS", allowed),
            ]))
            .and_then(|s| s.key_source())
            .map(drop)
        };
        for (url, allowed) in [
            ("https://auth.example.com", ""),
            ("http://127.0.0.1:8081", ""),
            ("http://127.0.0.9:8081/", ""),
            ("http://localhost:8081", ""),
            ("http://[::1]:8081", ""),
            ("http://auth:8081", "auth"),
            ("http://Auth:8081", "db, AUTH"),
            ("http://0x7f.1:8081", ""),
            ("http://[::ffff:127.0.0.1]:8081", ""),
            ("https://user:pass@auth.example.com/?key=secret", ""),
        ] {
            assert!(source(url, allowed).is_ok(), "{url} with {allowed:?}");
        }
        for (url, allowed) in [
            ("http://auth:8081", ""),
            ("http://auth.example.com", "auth"),
            ("http://localhost.evil.com", ""),
            ("http://127.0.0.1.evil.com", ""),
            ("http://10.0.0.5:8081", "10.0.0.6"),
            // Lookalikes: the HTTP client would connect to the first host, not the last.
            (r"http://auth.example.com\@localhost:8081", ""),
            (r"http://auth.example.com\@auth:8081", "auth"),
            ("http://auth.example.com#@localhost:8081", ""),
            ("http://auth.example.com?@localhost:8081", ""),
        ] {
            let err = source(url, allowed).unwrap_err();
            assert_eq!(err.var, "AUTH_URL", "{url}");
            assert!(err.to_string().contains("JWKS_ALLOW_HTTP_HOSTS"), "{err}");
        }
        // Credentials travel only over https, wherever the host is.
        for (url, allowed) in [
            ("http://auth@evil.com/", "auth"),
            ("http://user@auth/", "auth"),
            ("http://user:pass@127.0.0.1:8081", ""),
        ] {
            let err = source(url, allowed).unwrap_err();
            assert_eq!(err.var, "AUTH_URL", "{url}");
            assert!(err.to_string().contains("https"), "{err}");
            assert!(!err.to_string().contains("pass"), "{err}");
        }
        for url in ["auth:8081", "ftp://auth", "http://", "http:///path"] {
            let err = source(url, "auth").unwrap_err();
            assert_eq!(err.var, "AUTH_URL", "{url}");
        }
        // A service that verifies with local keys fetches nothing: no check.
        let local = Settings::from_env(&vars(&[
            ("AUTH_URL", "http://auth:8081"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap();
        assert!(local.key_source().is_ok());
    }

    #[test]
    fn eddsa_without_a_key_source_names_auth_url() {
        // Only where keys are needed from the auth service: settings alone are fine.
        let settings = Settings::from_env(&vars(&[])).unwrap();
        let err = settings.key_source().err().unwrap();
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

    /// TLS to Redis: the sharded subscriptions' own connections speak it too.
    #[test]
    fn rediss_urls_are_accepted() {
        let s = Settings::from_env(&vars(&[AUTH, ("REDIS_URL", "rediss://app:pw@redis:6380")]))
            .unwrap();
        assert_eq!(
            s.common.redis_url.as_deref(),
            Some("rediss://app:pw@redis:6380")
        );
        let s = Settings::from_env(&vars(&[
            AUTH,
            (
                "REDIS_CLUSTER_NODES",
                "rediss://app:pw@a:7000,rediss://app:pw@b:7000",
            ),
        ]))
        .unwrap();
        assert_eq!(s.common.redis_cluster_nodes.len(), 2);
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
            ("STREAM_MAX_PER_USER", "0"),
            ("STREAM_MAX_PER_USER", "many"),
            ("AUTH_URL", "auth:8081"),
            ("STREAM_RESUME_TTL_SECS", "0"),
            ("EVENT_HISTORY_MAX", "lots"),
            ("STREAM_SUBSCRIPTION_LINGER_MS", "soon"),
            ("STREAM_LEGACY_FANOUT", "perhaps"),
        ] {
            let err = Settings::from_env(&vars(&[AUTH, (var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}: {err}");
        }
    }
}
