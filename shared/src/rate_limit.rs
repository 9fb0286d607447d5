//! Rate-limit quotas (contract section 5). Read and checked at start-up now; the
//! limiter that enforces them sits in the request path's authentication step.

use std::fmt;
use std::time::Duration;

use crate::config::{self, ConfigError, Env};

/// `requests` a `window`, with bursts up to `requests`: written `60/60s` (or `m`, `h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    pub window: Duration,
}

impl Quota {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("expected requests/window like 60/60s, got {raw:?}");
        let (requests, window) = raw.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let (amount, unit_secs) = [("s", 1), ("m", 60), ("h", 3600)]
            .into_iter()
            .find_map(|(unit, secs)| Some((window.strip_suffix(unit)?, secs)))
            .ok_or_else(bad)?;
        let amount: u64 = amount.parse().map_err(|_| bad())?;
        if requests == 0 || amount == 0 {
            return Err(format!(
                "{raw:?}: both the count and the window must be positive"
            ));
        }
        Ok(Self {
            requests,
            window: Duration::from_secs(amount.saturating_mul(unit_secs)),
        })
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.requests, self.window.as_secs())
    }
}

/// The four quotas of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per user with tier `free`.
    pub free: Quota,
    /// Per user with tier `paid`.
    pub paid: Quota,
    /// Per client address on the other anonymous routes.
    pub anon: Quota,
    /// Failed logins per email.
    pub login: Quota,
}

impl RateLimits {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let quota = |name: &str, default: &str| {
            Quota::parse(&config::string_or(env, name, default))
                .map_err(|e| ConfigError::new(name, e))
        };
        Ok(Self {
            free: quota("RATE_LIMIT_FREE", "60/60s")?,
            paid: quota("RATE_LIMIT_PAID", "600/60s")?,
            anon: quota("RATE_LIMIT_ANON", "30/60s")?,
            login: quota("RATE_LIMIT_LOGIN", "10/300s")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_as_the_contract_writes_them() {
        let q = Quota::parse("60/60s").unwrap();
        assert_eq!((q.requests, q.window), (60, Duration::from_secs(60)));
        assert_eq!(
            Quota::parse("10/5m").unwrap().window,
            Duration::from_secs(300)
        );
        assert_eq!(Quota::parse(" 1000/1h ").unwrap().requests, 1000);
        assert_eq!(Quota::parse("600/60s").unwrap().to_string(), "600/60s");
        for bad in [
            "", "60", "60/", "/60s", "0/60s", "60/0s", "60/60", "60/60d", "-1/60s", "x/60s",
            "60/ss", "60/é",
        ] {
            assert!(Quota::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let limits = RateLimits::from_env(&config::vars(&[])).unwrap();
        assert_eq!(limits.free, Quota::parse("60/60s").unwrap());
        assert_eq!(limits.paid, Quota::parse("600/60s").unwrap());
        assert_eq!(limits.anon, Quota::parse("30/60s").unwrap());
        assert_eq!(limits.login, Quota::parse("10/300s").unwrap());
    }
}
