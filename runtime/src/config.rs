//! Reading configuration from the environment. A bad value is an error that names
//! the variable; callers stop start-up with it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A source of variables: the process environment, or a fixed list in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables (tests, embedding).
pub fn vars(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A value; empty counts as absent.
pub fn string(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn string_or(env: &dyn Env, name: &str, default: &str) -> String {
    string(env, name).unwrap_or_else(|| default.to_owned())
}

pub fn parsed<T>(env: &dyn Env, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match string(env, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
    }
}

pub fn boolean(env: &dyn Env, name: &str, default: bool) -> Result<bool, ConfigError> {
    match string(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::new(
            name,
            format!("expected true or false, got {v:?}"),
        )),
    }
}

/// A strictly positive number of seconds; zero or negative is an error, never a silent default.
pub fn positive_secs(env: &dyn Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    match string(env, name) {
        None => Ok(Duration::from_secs(default)),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n.unsigned_abs())),
            Ok(n) => Err(ConfigError::new(
                name,
                format!("must be a positive number of seconds, got {n}"),
            )),
            Err(e) => Err(ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
        },
    }
}

/// A comma-separated list; empty items are dropped.
pub fn list(env: &dyn Env, name: &str) -> Vec<String> {
    string(env, name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A `host:port` address to bind.
pub fn bind_addr(env: &dyn Env, name: &str, default: &str) -> Result<String, ConfigError> {
    let addr = string_or(env, name, default);
    addr.parse::<std::net::SocketAddr>()
        .map_err(|e| ConfigError::new(name, format!("not a host:port address {addr:?}: {e}")))?;
    Ok(addr)
}

/// The output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// How and what to log: `LOG_FORMAT` and the `RUST_LOG` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub format: LogFormat,
    pub filter: String,
}

pub fn logging(env: &dyn Env) -> Result<Logging, ConfigError> {
    let format = match string(env, "LOG_FORMAT").as_deref() {
        None | Some("pretty") => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::new(
                "LOG_FORMAT",
                format!("expected json or pretty, got {other:?}"),
            ));
        }
    };
    let filter = string_or(env, "RUST_LOG", "info");
    // A typo here would otherwise silently log everything at `info`, or nothing.
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| ConfigError::new("RUST_LOG", format!("not a log filter {filter:?}: {e}")))?;
    Ok(Logging { format, filter })
}
