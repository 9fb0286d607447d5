//! Rate limits shared through the store: the quotas, the GCRA decision (one Lua
//! script on Redis, its twin in Rust for the in-memory store), and the limiter the
//! request path asks. Every decision uses the store's clock, in integer microseconds,
//! so replicas with skewed clocks agree and a budget is one budget everywhere.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::{ApiError, ErrorCode};
use authstream_proto::claims::Tier;
use authstream_runtime::config::{self, ConfigError, Env};
use authstream_store::Budget;
pub use authstream_store::rate_limits::{Cost, Decision, Gcra, TatUpdate, gcra, gcra_all};

mod limiter;
mod spent;

pub use limiter::RateLimiter;
pub use spent::SpentBudgets;

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

impl Quota {
    /// The GCRA parameters: one request is worth `interval_us`, and at most
    /// `requests` of them fit in the burst (`capacity_us`). The interval is rounded up,
    /// so a burst never exceeds `requests`.
    pub fn gcra(self) -> Gcra {
        let window_us = i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX / 2);
        let requests = i64::from(self.requests.max(1));
        let interval_us = (window_us + requests - 1) / requests;
        Gcra {
            interval_us: interval_us.max(1),
            capacity_us: interval_us.max(1).saturating_mul(requests),
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.requests, self.window.as_secs())
    }
}

/// The quotas (`RATE_LIMIT_*`, see the README's configuration table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per user with tier `free`.
    pub free: Quota,
    /// Per user with tier `paid`.
    pub paid: Quota,
    /// Per client address on the other anonymous routes.
    pub anon: Quota,
    /// Failed logins per email and address; failed service-token attempts per
    /// client and address; failed logins per device.
    pub login: Quota,
    /// Failed logins per email from all addresses.
    pub login_account: Quota,
    /// Refreshes per session, decided by the rotation itself.
    pub refresh: Quota,
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
            login_account: quota("RATE_LIMIT_LOGIN_ACCOUNT", "100/300s")?,
            refresh: quota("RATE_LIMIT_REFRESH", "10/60s")?,
        })
    }
}

/// The policies, named as in the `RateLimit-Policy` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Free,
    Paid,
    Anon,
    /// Failed logins per account and address; failed service-token attempts per
    /// client and address.
    Login,
    /// Failed logins per account from every address together.
    LoginAccount,
    /// Failed logins of an account from one device that signed in before (a device
    /// cookie), instead of `LoginAccount`.
    LoginDevice,
    /// Refreshes of one session.
    Refresh,
}

impl Policy {
    pub fn for_tier(tier: Tier) -> Self {
        match tier {
            Tier::Free => Self::Free,
            Tier::Paid => Self::Paid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
            Self::Anon => "anon",
            Self::Login => "login",
            Self::LoginAccount => "login_account",
            Self::LoginDevice => "login_device",
            Self::Refresh => "refresh",
        }
    }
}

/// Whose budget a decision spends. Each has its own hash tag, so the one key a
/// decision touches is Cluster-safe.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User(&'a str),
    Address(Option<IpAddr>),
    /// One session of a user (under the user's hash tag, beside the session record).
    Session {
        user_id: &'a str,
        session_id: &'a str,
    },
}

impl Subject<'_> {
    /// The budget's name under its hash tag: the policy's, and a session's id.
    fn budget_name(&self, policy: Policy) -> String {
        match self {
            Self::Session { session_id, .. } => format!("{}:{session_id}", policy.as_str()),
            _ => policy.as_str().to_owned(),
        }
    }

    fn hash_tag(&self) -> String {
        match self {
            Self::User(id) | Self::Session { user_id: id, .. } => format!("u:{id}"),
            Self::Address(Some(ip)) => address_tag(*ip),
            // No address known (not over TCP): one shared budget, never none.
            Self::Address(None) => "ip:unknown".to_owned(),
        }
    }
}

/// The hash tag of an account's failure budgets: only the SHA-256 digest of its
/// normalised email, never the email itself.
fn email_tag(email: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, email.as_bytes());
    format!("e:{}", hex::encode(digest))
}

/// Budgets of failed attempts, kept as the fields of one hash (`store/rate_limits/lua/fields.lua`):
/// spent all together before a secret is checked, or after a refusal, and given
/// back together when it was right.
#[derive(Debug, Clone)]
pub struct Failures {
    key: String,
    budgets: Vec<(Policy, String, Quota)>,
}

impl Failures {
    /// What to send along with another store operation (`Store::save_session`).
    pub fn budgets(&self) -> Vec<Budget<'_>> {
        self.budgets
            .iter()
            .map(|(_, field, quota)| Budget {
                field,
                gcra: quota.gcra(),
            })
            .collect()
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// An address's field in a hash of failure budgets.
fn address_field(address: Option<IpAddr>) -> String {
    address.map_or_else(|| "ip:unknown".to_owned(), address_tag)
}

/// The budget of an address: IPv4 (and IPv4-mapped IPv6) per address, other IPv6
/// per /64, the smallest block a host is commonly given, so that one host cannot
/// rotate through its block for a fresh budget per address.
pub fn address_tag(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// A decision with the policy and quota it was made under: what the `RateLimit-Policy`
/// and `RateLimit` headers say, and the 429 when it refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub policy: Policy,
    pub quota: Quota,
    pub decision: Decision,
}

impl Limit {
    /// One item of `RateLimit-Policy`, e.g. `"free";q=60;w=60`.
    pub fn policy_item(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.policy.as_str(),
            self.quota.requests,
            self.quota.window.as_secs()
        )
    }

    /// One item of `RateLimit`, e.g. `"free";r=0;t=12`.
    pub fn state_item(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.policy.as_str(),
            self.decision.remaining,
            self.decision.reset_secs()
        )
    }

    /// 429 `rate_limited` with `Retry-After` when refused.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.decision.allowed {
            return Ok(());
        }
        let mut err = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests under the {} limit, retry later",
                self.policy.as_str()
            ),
        );
        err.retry_after_secs = Some(self.decision.retry_after_secs());
        Err(err)
    }
}

#[cfg(test)]
mod tests;
