//! The auth service's settings, read once from the environment at start-up.

use std::time::Duration;

use authstream_runtime::config::{self, ConfigError, Env};
use authstream_web::settings::CommonSettings;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub bind: String,
    /// `AUTH_PUBLIC_URL`: this service's URL as callers reach it (no trailing `/`), the
    /// base of the absolute URLs it publishes (the discovery document).
    pub public_url: String,
    pub stream_public_url: String,
    pub refresh_reuse_grace: Duration,
    pub service_clients: Vec<ServiceClient>,
    /// At most this many password hashes run at once (each takes ~19 MiB and a core).
    pub max_concurrent_hashes: usize,
    /// The longest a login or registration waits for a hashing slot before 503.
    pub password_queue_timeout: Duration,
    /// `SESSION_MAX_AGE_SECS`, default 30 days: no session outlives this from its login.
    pub session_max_age: Duration,
    /// `SESSIONS_MAX_PER_USER`, default 100: a login past it ends the least recently used.
    pub sessions_max_per_user: usize,
}

/// A configured service-to-service client.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceClient {
    pub id: String,
    pub secret: SecretString,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env(env)?;
        let bind = config::bind_addr(env, "AUTH_BIND", "0.0.0.0:8081")?;
        Ok(Self {
            public_url: public_url(env, &bind)?,
            bind,
            stream_public_url: config::string_or(env, "STREAM_PUBLIC_URL", "")
                .trim_end_matches('/')
                .to_owned(),
            refresh_reuse_grace: Duration::from_secs(config::parsed(
                env,
                "REFRESH_REUSE_GRACE_SECS",
                10,
            )?),
            service_clients: service_clients(env)?,
            max_concurrent_hashes: config::parsed(env, "PASSWORD_HASH_CONCURRENCY", 2usize)?.max(1),
            password_queue_timeout: password_queue_timeout(env)?,
            session_max_age: config::positive_secs(env, "SESSION_MAX_AGE_SECS", 2_592_000)?,
            sessions_max_per_user: at_least_one(env, "SESSIONS_MAX_PER_USER", 100)?,
            common,
        })
    }

    /// The lifetimes that bound every session.
    pub fn session_bounds(&self) -> SessionBounds {
        SessionBounds {
            refresh_ttl: self.common.refresh_ttl,
            max_age: self.session_max_age,
        }
    }
}

/// `AUTH_PUBLIC_URL`, default `http://` + `AUTH_BIND`: an absolute `http` or `https`
/// URL with a host, maybe a path, no query or fragment; kept without a trailing `/`.
fn public_url(env: &dyn Env, bind: &str) -> Result<String, ConfigError> {
    let Some(url) = config::string(env, "AUTH_PUBLIC_URL") else {
        return Ok(format!("http://{bind}"));
    };
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('@'))
        && !url.contains(['?', '#'])
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ConfigError::new(
            "AUTH_PUBLIC_URL",
            "must be an absolute http:// or https:// URL with a host and no query, fragment or credentials",
        ));
    }
    Ok(url.to_owned())
}

fn at_least_one(env: &dyn Env, name: &str, default: usize) -> Result<usize, ConfigError> {
    match config::parsed(env, name, default)? {
        0 => Err(ConfigError::new(name, "must be at least 1")),
        n => Ok(n),
    }
}

fn password_queue_timeout(env: &dyn Env) -> Result<Duration, ConfigError> {
    let ms: u64 = config::parsed(env, "PASSWORD_QUEUE_TIMEOUT_MS", 2000)?;
    if ms == 0 {
        return Err(ConfigError::new(
            "PASSWORD_QUEUE_TIMEOUT_MS",
            "must be a positive number of milliseconds",
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn service_clients(env: &dyn Env) -> Result<Vec<ServiceClient>, ConfigError> {
    let (var, raw) = match (
        config::string(env, "SERVICE_CLIENTS"),
        config::string(env, "SERVICE_CLIENTS_FILE"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "SERVICE_CLIENTS_FILE",
                "set SERVICE_CLIENTS or SERVICE_CLIENTS_FILE, not both",
            ));
        }
        (Some(json), None) => ("SERVICE_CLIENTS", json),
        (None, Some(path)) => (
            "SERVICE_CLIENTS_FILE",
            std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new("SERVICE_CLIENTS_FILE", format!("cannot read {path}: {e}"))
            })?,
        ),
        (None, None) => return Ok(Vec::new()),
    };
    parse_service_clients(&raw).map_err(|e| ConfigError::new(var, e))
}

/// A service-clients JSON array, checked: ids, no repeats, secrets of at least 16
/// characters, known scopes. The message never echoes the text (it holds secrets).
pub fn parse_service_clients(raw: &str) -> Result<Vec<ServiceClient>, String> {
    let clients: Vec<ServiceClient> = serde_json::from_str(raw).map_err(|e| {
        format!(
            "expected a JSON array of {{id, secret, scopes}} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let mut seen = std::collections::HashSet::new();
    for client in &clients {
        use secrecy::ExposeSecret as _;
        let id_ok = !client.id.is_empty()
            && client.id.len() <= 64
            && client
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(format!(
                "client id {:?} must be 1-64 of A-Z a-z 0-9 - _ .",
                client.id
            ));
        }
        if !seen.insert(client.id.clone()) {
            return Err(format!("client id {:?} appears twice", client.id));
        }
        if client.secret.expose_secret().len() < 16 {
            return Err(format!(
                "the secret of client {:?} must be at least 16 characters",
                client.id
            ));
        }
        if let Some(bad) = client
            .scopes
            .iter()
            .find(|s| authstream_proto::Scope::parse(s).is_none())
        {
            return Err(format!("client {:?} has unknown scope {bad:?}", client.id));
        }
    }
    Ok(clients)
}

/// The lifetimes that bound a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionBounds {
    /// A refresh token's lifetime: the session record lives that long after each refresh.
    pub refresh_ttl: Duration,
    /// `SESSION_MAX_AGE_SECS`: the absolute bound from `created_at`.
    pub max_age: Duration,
}

#[cfg(test)]
mod tests {

    use super::*;
    use authstream_runtime::config::vars;

    #[test]
    fn service_clients_are_checked_and_secrets_never_echoed() {
        let ok = Settings::from_env(&vars(&[(
            "SERVICE_CLIENTS",
            r#"[{"id":"backend","secret":"0123456789abcdef","scopes":["events:publish"]}]"#,
        )]))
        .unwrap();
        assert_eq!(ok.service_clients[0].scopes, ["events:publish"]);
        for bad in [
            r#"[{"id":"backend","secret":"short"}]"#,
            r#"[{"id":"b a d","secret":"0123456789abcdef"}]"#,
            r#"[{"id":"b","secret":"0123456789abcdef","scopes":["root"]}]"#,
            r#"{"id":"b","secret":"0123456789abcdefSECRET"}"#,
        ] {
            let err = Settings::from_env(&vars(&[("SERVICE_CLIENTS", bad)])).unwrap_err();
            assert_eq!(err.var, "SERVICE_CLIENTS");
            assert!(
                !err.to_string().contains("SECRET") && !err.to_string().contains("short"),
                "{err}"
            );
        }
        let err = Settings::from_env(&vars(&[("AUTH_BIND", "nowhere")])).unwrap_err();
        assert_eq!(err.var, "AUTH_BIND");
        for bad in ["0", "-1", "soon"] {
            let err = Settings::from_env(&vars(&[("PASSWORD_QUEUE_TIMEOUT_MS", bad)])).unwrap_err();
            assert_eq!(err.var, "PASSWORD_QUEUE_TIMEOUT_MS");
        }
        let default = Settings::from_env(&vars(&[])).unwrap();
        assert_eq!(default.password_queue_timeout, Duration::from_secs(2));
        assert_eq!(
            Settings::from_env(&vars(&[(
                "SERVICE_CLIENTS",
                r#"[{"id":"verifier","secret":"0123456789abcdef","scopes":["revocations:read"]}]"#,
            )]))
            .unwrap()
            .service_clients[0]
                .scopes,
            ["revocations:read"]
        );
    }

    #[test]
    fn the_public_url_defaults_to_the_bind_address_and_is_checked() {
        let s = Settings::from_env(&vars(&[("AUTH_BIND", "127.0.0.1:9001")])).unwrap();
        assert_eq!(s.public_url, "http://127.0.0.1:9001");
        let s =
            Settings::from_env(&vars(&[("AUTH_PUBLIC_URL", "https://auth.example/id/")])).unwrap();
        assert_eq!(s.public_url, "https://auth.example/id");
        for bad in [
            "auth.example",
            "ftp://auth.example",
            "https://",
            "https://auth.example/?x=1",
            "https://auth.example/#top",
            "https://user:pw@auth.example",
            "https://auth example",
        ] {
            let err = Settings::from_env(&vars(&[("AUTH_PUBLIC_URL", bad)])).unwrap_err();
            assert_eq!(err.var, "AUTH_PUBLIC_URL", "{bad}");
        }
    }

    #[test]
    fn session_bounds_default_to_30_days_and_100_sessions_and_refuse_zero() {
        let s = Settings::from_env(&vars(&[])).unwrap();
        assert_eq!(s.session_max_age, Duration::from_secs(2_592_000));
        assert_eq!(s.sessions_max_per_user, 100);
        for (var, value) in [
            ("SESSION_MAX_AGE_SECS", "0"),
            ("SESSION_MAX_AGE_SECS", "forever"),
            ("SESSIONS_MAX_PER_USER", "0"),
            ("SESSIONS_MAX_PER_USER", "-3"),
        ] {
            let err = Settings::from_env(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
    }
}
