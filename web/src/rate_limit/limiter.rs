//! The limiter the request path asks: a policy's budget for a subject, decided in the
//! store (alone, or in the same round trip as a read), answered as `Limit`.

use std::net::IpAddr;

use super::{Failures, Limit, Policy, Quota, RateLimits, Subject, address_field, email_tag};
use crate::client_address::TrustedProxies;
use authstream_store::{Cost, Decision, KeySpend, Read, ReadAnswer, Spend, Store, StoreError};

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
            .rate_limit_and_read(
                KeySpend {
                    key: &key,
                    gcra: quota.gcra(),
                    cost,
                },
                read,
            )
            .await?;
        Ok((self.decided(policy, quota, decision, cost), found))
    }

    /// The store this limiter decides in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key and quota of `subject`'s budget under `policy`, for a script that makes
    /// the decision in the same round trip as its own work (`store/rate_limits/lua/gcra_function.lua`);
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
