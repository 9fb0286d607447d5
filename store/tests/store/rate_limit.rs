//! The GCRA decision of both stores (`store_suite!`: Redis and in-memory) and the
//! limiter's keys.

use std::time::Duration;

use authstream_store::Store;
use authstream_store::StoreError;
use authstream_web::rate_limit::{Cost, Gcra, Policy, Quota, RateLimiter, RateLimits, Subject};
use tokio::task::JoinSet;

use crate::helpers::key;

store_suite!(
    rate_limit_allows_the_burst_then_refuses_without_spending,
    rate_limit_budget_comes_back_and_the_key_expires_when_idle,
    rate_limit_peek_spends_nothing_and_give_back_returns_one,
    rate_limit_concurrent_takes_never_exceed_the_quota,
    rate_limit_keys_are_tagged_by_subject_and_hold_no_email,
    failure_budgets_are_spent_all_or_nothing_and_given_back_together,
);

/// An account's failure budgets (per address, account-wide, per device) are fields of
/// one hash: a take that any refuses spends none; giving back returns each.
async fn failure_budgets_are_spent_all_or_nothing_and_given_back_together(store: Store) {
    let limits = RateLimits {
        free: Quota::parse("1/60s").unwrap(),
        paid: Quota::parse("1/60s").unwrap(),
        anon: Quota::parse("1/60s").unwrap(),
        login: Quota::parse("2/60s").unwrap(),
        login_account: Quota::parse("3/60s").unwrap(),
        refresh: Quota::parse("1/60s").unwrap(),
    };
    let limiter = RateLimiter::new(store.clone(), limits, Default::default());
    let email = "grace@example.com";
    let at = |i: u8| Some(std::net::IpAddr::from([203, 0, 113, i]));
    let take = |address, device: Option<&'static str>| {
        let failures = limiter.login_failures(email, address, device);
        let limiter = limiter.clone();
        async move {
            let (limits, _) = limiter
                .spend_failures(&failures, Cost::Take, None)
                .await
                .unwrap();
            limits
                .iter()
                .map(|l| (l.policy.as_str(), l.decision.allowed, l.decision.remaining))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        take(at(1), None).await,
        [("login", true, 1), ("login_account", true, 2)]
    );
    assert_eq!(
        take(at(1), None).await,
        [("login", true, 0), ("login_account", true, 1)]
    );
    // The address is spent: refused, and the account's budget is left as it was.
    assert_eq!(
        take(at(1), None).await,
        [("login", false, 0), ("login_account", true, 1)]
    );
    assert_eq!(
        take(at(2), None).await,
        [("login", true, 1), ("login_account", true, 0)]
    );
    // The account is spent: another address is refused, and spends nothing of its own.
    assert_eq!(
        take(at(3), None).await,
        [("login", true, 2), ("login_account", false, 0)]
    );
    // A known device spends its own budget instead.
    assert_eq!(
        take(at(3), Some("dev")).await,
        [("login", true, 1), ("login_device", true, 1)]
    );
    // Giving back returns every budget of the set.
    let failures = limiter.login_failures(email, at(3), Some("dev"));
    let (back, _) = limiter
        .spend_failures(&failures, Cost::GiveBack, None)
        .await
        .unwrap();
    let remaining: Vec<u32> = back.iter().map(|l| l.decision.remaining).collect();
    assert_eq!(remaining, [2, 2]);
    // One key holds them all, and clearing it clears them all.
    let key = limiter.login_failures_key(email);
    assert_eq!(store.hash_get_all(&key).await.unwrap().len(), 3);
    assert!(store.pttl(&key).await.unwrap().is_some());
    store.del(&key).await.unwrap();
    assert_eq!(
        take(at(1), None).await,
        [("login", true, 1), ("login_account", true, 2)]
    );
}

fn quota(raw: &str) -> Gcra {
    Quota::parse(raw).unwrap().gcra()
}

async fn rate_limit_allows_the_burst_then_refuses_without_spending(store: Store) {
    let k = key(&store, "{u:burst}:rl");
    let g = quota("5/60s");
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let d = store.rate_limit(&k, g, Cost::Take).await.unwrap();
        assert!(d.allowed);
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let ttl = store.pttl(&k).await.unwrap().unwrap();
    assert!(
        ttl > Duration::from_secs(58) && ttl <= Duration::from_secs(60),
        "{ttl:?}"
    );

    let refused = store.rate_limit(&k, g, Cost::Take).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // One interval (12 s) after the burst began, less the time the burst took.
    assert!(
        (11_000_000..=12_000_000).contains(&refused.retry_after_us),
        "{refused:?}"
    );
    assert_eq!(refused.retry_after_secs(), 12);
    assert!(refused.reset_after_us > 58_000_000, "{refused:?}");
    // A refusal spends nothing: the next one is told the same.
    let again = store.rate_limit(&k, g, Cost::Take).await.unwrap();
    assert!(!again.allowed && again.retry_after_us <= refused.retry_after_us);
    assert!(store.pttl(&k).await.unwrap().unwrap() <= ttl);
}

async fn rate_limit_budget_comes_back_and_the_key_expires_when_idle(store: Store) {
    let k = key(&store, "{u:idle}:rl");
    let g = quota("2/1s");
    assert!(store.rate_limit(&k, g, Cost::Take).await.unwrap().allowed);
    assert!(store.rate_limit(&k, g, Cost::Take).await.unwrap().allowed);
    assert!(!store.rate_limit(&k, g, Cost::Take).await.unwrap().allowed);
    let ttl = store.pttl(&k).await.unwrap().unwrap();
    assert!(ttl <= Duration::from_secs(1), "{ttl:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !store.exists(&k).await.unwrap(),
        "an idle budget leaves nothing"
    );
    let fresh = store.rate_limit(&k, g, Cost::Take).await.unwrap();
    assert!(fresh.allowed && fresh.remaining == 1, "{fresh:?}");
}

async fn rate_limit_peek_spends_nothing_and_give_back_returns_one(store: Store) {
    let k = key(&store, "{e:peek}:rl");
    let g = quota("2/60s");
    let peeked = store.rate_limit(&k, g, Cost::Peek).await.unwrap();
    assert!(peeked.allowed && peeked.remaining == 2);
    assert!(!store.exists(&k).await.unwrap(), "a peek writes nothing");

    store.rate_limit(&k, g, Cost::Take).await.unwrap();
    store.rate_limit(&k, g, Cost::Take).await.unwrap();
    let full = store.rate_limit(&k, g, Cost::Peek).await.unwrap();
    assert!(!full.allowed && full.remaining == 0);
    assert!(full.retry_after_us > 29_000_000, "{full:?}");

    let back = store.rate_limit(&k, g, Cost::GiveBack).await.unwrap();
    assert!(back.allowed && back.remaining == 1, "{back:?}");
    assert!(store.rate_limit(&k, g, Cost::Take).await.unwrap().allowed);
    assert!(!store.rate_limit(&k, g, Cost::Take).await.unwrap().allowed);
    store.rate_limit(&k, g, Cost::GiveBack).await.unwrap();
    store.rate_limit(&k, g, Cost::GiveBack).await.unwrap();
    store.rate_limit(&k, g, Cost::GiveBack).await.unwrap();
    assert!(
        !store.exists(&k).await.unwrap(),
        "an untouched budget is no key"
    );
}

async fn rate_limit_concurrent_takes_never_exceed_the_quota(store: Store) {
    let k = key(&store, "{ip:concurrent}:rl");
    let g = quota("10/60s");
    let mut set = JoinSet::new();
    for _ in 0..50 {
        let (store, k) = (store.clone(), k.clone());
        set.spawn(async move { store.rate_limit(&k, g, Cost::Take).await });
    }
    let mut allowed = 0;
    while let Some(d) = set.join_next().await {
        let d: Result<_, StoreError> = d.unwrap();
        allowed += usize::from(d.unwrap().allowed);
    }
    assert_eq!(allowed, 10);
}

async fn rate_limit_keys_are_tagged_by_subject_and_hold_no_email(store: Store) {
    let limits = RateLimits {
        free: Quota::parse("1/60s").unwrap(),
        paid: Quota::parse("2/60s").unwrap(),
        anon: Quota::parse("1/60s").unwrap(),
        login: Quota::parse("1/60s").unwrap(),
        login_account: Quota::parse("5/60s").unwrap(),
        refresh: Quota::parse("1/60s").unwrap(),
    };
    let limiter = RateLimiter::new(store.clone(), limits, Default::default());
    let email = "ada@example.com";
    let ip = Some("2001:db8::1".parse().unwrap());
    for (policy, subject) in [
        (Policy::Free, Subject::User("u1")),
        (Policy::Paid, Subject::User("u1")),
        (Policy::Anon, Subject::Address(ip)),
        (
            Policy::Refresh,
            Subject::Session {
                user_id: "u1",
                session_id: "s1",
            },
        ),
    ] {
        let limit = limiter.decide(policy, subject, Cost::Take).await.unwrap();
        assert!(limit.decision.allowed, "{policy:?}");
    }
    let failures = limiter.login_failures(email, ip, None);
    let (limits, _) = limiter
        .spend_failures(&failures, Cost::Take, None)
        .await
        .unwrap();
    assert!(limits.iter().all(|l| l.decision.allowed));
    // One budget per policy: the free one is spent, the paid one is not.
    let free = limiter
        .decide(Policy::Free, Subject::User("u1"), Cost::Take)
        .await
        .unwrap();
    let paid = limiter
        .decide(Policy::Paid, Subject::User("u1"), Cost::Take)
        .await
        .unwrap();
    assert!(!free.decision.allowed && paid.decision.allowed);

    let digest = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        email.as_bytes(),
    ));
    let p = store.keys().prefix();
    let mut expected = vec![
        format!("{p}:{{u:u1}}:rl:free"),
        format!("{p}:{{u:u1}}:rl:paid"),
        format!("{p}:{{ip6:2001:db8:0:0::/64}}:rl:anon"),
        format!("{p}:{{e:{digest}}}:rl:login_failures"),
        format!("{p}:{{u:u1}}:rl:refresh:s1"),
    ];
    expected.sort();
    let dump = store.debug_dump().await.unwrap();
    assert!(
        dump.iter()
            .all(|(k, v)| !k.contains(email) && !v.contains(email))
    );
    assert_eq!(store.debug_keys().await.unwrap(), expected);
}
