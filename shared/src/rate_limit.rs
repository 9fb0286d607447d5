//! Rate limits shared through the store: the quotas, the GCRA decision (one Lua
//! script on Redis, its twin in Rust for the in-memory store), and the limiter the
//! request path asks. Every decision uses the store's clock, in integer microseconds,
//! so replicas with skewed clocks agree and a budget is one budget everywhere.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::claims::Tier;
use crate::config::{self, ConfigError, Env};
use crate::error::{ApiError, ErrorCode};
use crate::http::TrustedProxies;
pub use crate::store::rate_limits::{Cost, Decision, Gcra, TatUpdate, gcra, gcra_all};
use crate::store::{Budget, Read, ReadAnswer, Spend, Store, StoreError};

mod spent;
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

/// The quotas of the contract.
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

/// Budgets of failed attempts, kept as the fields of one hash (`FIELDS_SCRIPT`):
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

/// The limiter both services (and the single process) ask: decisions are made in the
/// store, so every replica shares each budget.
#[derive(Clone)]
pub struct RateLimiter {
    store: Store,
    limits: RateLimits,
    trusted_proxies: TrustedProxies,
}

impl RateLimiter {
    pub fn new(store: Store, limits: RateLimits, trusted_proxies: TrustedProxies) -> Self {
        Self {
            store,
            limits,
            trusted_proxies,
        }
    }

    /// Whose `X-Forwarded-For` tells the client address the `anon` budget is keyed by.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    fn quota(&self, policy: Policy) -> Quota {
        match policy {
            Policy::Free => self.limits.free,
            Policy::Paid => self.limits.paid,
            Policy::Anon => self.limits.anon,
            Policy::Login | Policy::LoginDevice => self.limits.login,
            Policy::LoginAccount => self.limits.login_account,
            Policy::Refresh => self.limits.refresh,
        }
    }

    /// One decision in one store round trip. A store that cannot answer is an error
    /// (503), never a pass. Takes and peeks are counted by policy and outcome.
    pub async fn decide(
        &self,
        policy: Policy,
        subject: Subject<'_>,
        cost: Cost,
    ) -> Result<Limit, StoreError> {
        let (key, quota) = self.budget(policy, subject);
        let decision = self.store.rate_limit(&key, quota.gcra(), cost).await?;
        Ok(self.decided(policy, quota, decision, cost))
    }

    /// `decide`, with one read of the request's own sent in the same round trip (the
    /// read is made whatever the decision; it changes nothing).
    pub async fn decide_and_read(
        &self,
        policy: Policy,
        subject: Subject<'_>,
        cost: Cost,
        read: Read<'_>,
    ) -> Result<(Limit, ReadAnswer), StoreError> {
        let (key, quota) = self.budget(policy, subject);
        let (decision, found) = self
            .store
            .rate_limit_and_read(&key, quota.gcra(), cost, read)
            .await?;
        Ok((self.decided(policy, quota, decision, cost), found))
    }

    /// The store this limiter decides in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key and quota of `subject`'s budget under `policy`, for a script that makes
    /// the decision in the same round trip as its own work (`gcra_lua_function!`);
    /// `decided` then reports it.
    pub fn budget(&self, policy: Policy, subject: Subject<'_>) -> (String, Quota) {
        let key = self
            .store
            .keys()
            .rate_limit(&subject.hash_tag(), &subject.budget_name(policy));
        (key, self.quota(policy))
    }

    /// The failed-login budgets of `email` at `address`: the address's own, and the
    /// account's from every address, or instead of that, for a device that signed in
    /// to this account before, that device's own (others' failures never lock the
    /// owner out). Every budget of an account lives in one hash, which
    /// `login_failures_key` names for clearing.
    pub fn login_failures(
        &self,
        email: &str,
        address: Option<IpAddr>,
        device: Option<&str>,
    ) -> Failures {
        let address = address_field(address);
        let wide = match device {
            Some(device) => (Policy::LoginDevice, format!("d:{device}")),
            None => (Policy::LoginAccount, "account".to_owned()),
        };
        Failures {
            key: self.login_failures_key(email),
            budgets: vec![
                (Policy::Login, address, self.quota(Policy::Login)),
                (wide.0, wide.1, self.quota(wide.0)),
            ],
        }
    }

    /// The hash of every failed-login budget of `email`.
    pub fn login_failures_key(&self, email: &str) -> String {
        self.store
            .keys()
            .rate_limit(&email_tag(email), "login_failures")
    }

    /// The failed service-token budget of `client_id` at `address`: a guesser's
    /// address runs out, the real client's elsewhere does not.
    pub fn client_failures(&self, client_id: &str, address: Option<IpAddr>) -> Failures {
        Failures {
            key: self
                .store
                .keys()
                .rate_limit(&format!("c:{client_id}"), "failures"),
            budgets: vec![(
                Policy::Login,
                address_field(address),
                self.quota(Policy::Login),
            )],
        }
    }

    /// Spends (or gives back) `failures` all together, with `read` in the same round
    /// trip; each decision as a `Limit`, counted like `decide`'s.
    pub async fn spend_failures(
        &self,
        failures: &Failures,
        cost: Cost,
        read: Option<Read<'_>>,
    ) -> Result<(Vec<Limit>, Option<ReadAnswer>), StoreError> {
        let budgets = failures.budgets();
        let spend = Spend {
            key: &failures.key,
            budgets: &budgets,
            cost,
        };
        let (decisions, found) = self.store.rate_limit_fields(&spend, read).await?;
        Ok((self.decided_failures(failures, &decisions, cost), found))
    }

    /// The decisions a store operation made on `failures` (in order), as `Limit`s.
    pub fn decided_failures(
        &self,
        failures: &Failures,
        decisions: &[Decision],
        cost: Cost,
    ) -> Vec<Limit> {
        failures
            .budgets
            .iter()
            .zip(decisions)
            .map(|((policy, _, quota), d)| self.decided(*policy, *quota, *d, cost))
            .collect()
    }

    /// A decision made on `budget`'s key, counted like `decide`'s.
    pub fn decided(&self, policy: Policy, quota: Quota, decision: Decision, cost: Cost) -> Limit {
        if cost != Cost::GiveBack {
            let outcome = if decision.allowed {
                "allowed"
            } else {
                "limited"
            };
            metrics::counter!(
                "authstream_rate_limit_decisions_total",
                "policy" => policy.as_str(),
                "decision" => outcome
            )
            .increment(1);
        }
        Limit {
            policy,
            quota,
            decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn take(tat: &mut Option<i64>, now: i64, g: Gcra) -> Decision {
        let (d, update) = gcra(*tat, now, g, Cost::Take);
        match update {
            TatUpdate::Set { tat_us, .. } => *tat = Some(tat_us),
            TatUpdate::Delete => *tat = None,
            TatUpdate::Keep => {}
        }
        d
    }

    #[test]
    fn gcra_allows_the_burst_then_refuses_until_an_interval_passes() {
        let g = Quota::parse("5/60s").unwrap().gcra();
        assert_eq!(
            g,
            Gcra {
                interval_us: 12 * SECOND,
                capacity_us: 60 * SECOND
            }
        );
        let (mut tat, now) = (None, 1_000 * SECOND);
        let remaining: Vec<u32> = (0..5).map(|_| take(&mut tat, now, g).remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0]);
        let refused = take(&mut tat, now, g);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_us, 12 * SECOND);
        assert_eq!((refused.retry_after_secs(), refused.reset_secs()), (12, 12));
        assert!(!take(&mut tat, now + 12 * SECOND - 1, g).allowed);
        let again = take(&mut tat, now + 12 * SECOND, g);
        assert!(again.allowed && again.remaining == 0);
        // A whole window later, the whole budget is back.
        let later = now + 72 * SECOND;
        assert_eq!(take(&mut tat, later, g).remaining, 4);
    }

    #[test]
    fn peek_spends_nothing_and_give_back_returns_one() {
        let g = Quota::parse("2/10s").unwrap().gcra();
        let now = 5 * SECOND;
        let (peeked, update) = gcra(None, now, g, Cost::Peek);
        assert!(peeked.allowed && peeked.remaining == 2 && update == TatUpdate::Keep);
        let mut tat = None;
        take(&mut tat, now, g);
        take(&mut tat, now, g);
        let (full, _) = gcra(tat, now, g, Cost::Peek);
        assert!(!full.allowed && full.retry_after_us == 5 * SECOND);
        let (back, update) = gcra(tat, now, g, Cost::GiveBack);
        assert!(back.allowed && back.remaining == 1);
        assert_eq!(
            update,
            TatUpdate::Set {
                tat_us: now + 5 * SECOND,
                ttl: Duration::from_secs(5)
            }
        );
        assert_eq!(gcra(None, now, g, Cost::GiveBack).1, TatUpdate::Delete);
    }

    #[test]
    fn an_uneven_window_never_allows_more_than_the_quota() {
        let g = Quota {
            requests: 999_999,
            window: Duration::from_secs(1),
        }
        .gcra();
        assert!(g.interval_us * 999_999 >= 1_000_000 && g.capacity_us == g.interval_us * 999_999);
    }

    #[test]
    fn headers_read_as_the_draft_writes_them() {
        let limit = Limit {
            policy: Policy::Free,
            quota: Quota::parse("60/60s").unwrap(),
            decision: Decision {
                allowed: false,
                remaining: 0,
                reset_after_us: 60 * SECOND,
                retry_after_us: 11 * SECOND + 1,
            },
        };
        assert_eq!(limit.policy_item(), r#""free";q=60;w=60"#);
        assert_eq!(limit.state_item(), r#""free";r=0;t=12"#);
        let refused = limit.check().unwrap_err();
        assert_eq!(
            (refused.status(), refused.retry_after_secs),
            (429, Some(12))
        );
    }

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
    fn ipv6_addresses_share_a_budget_per_64_and_mapped_ones_are_ipv4() {
        let tag = |s: &str| address_tag(s.parse().unwrap());
        assert_eq!(
            tag("2001:db8:1:2::1"),
            tag("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(tag("2001:db8:1:2::1"), tag("2001:db8:1:3::1"));
        assert_eq!(tag("2001:db8:1:2::1"), "ip6:2001:db8:1:2::/64");
        assert_eq!(tag("::ffff:192.0.2.1"), tag("192.0.2.1"));
        assert_eq!(tag("192.0.2.1"), "ip:192.0.2.1");
        assert_ne!(tag("192.0.2.1"), tag("192.0.2.2"));
    }

    #[test]
    fn defaults_are_the_contracts() {
        let limits = RateLimits::from_env(&config::vars(&[])).unwrap();
        assert_eq!(limits.free, Quota::parse("60/60s").unwrap());
        assert_eq!(limits.paid, Quota::parse("600/60s").unwrap());
        assert_eq!(limits.anon, Quota::parse("30/60s").unwrap());
        assert_eq!(limits.login, Quota::parse("10/300s").unwrap());
        assert_eq!(limits.login_account, Quota::parse("100/300s").unwrap());
        assert_eq!(limits.refresh, Quota::parse("10/60s").unwrap());
    }
}
