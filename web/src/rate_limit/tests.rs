//! Tests of GCRA as the limiter uses it, the quotas, the headers and client address tags.

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
        "", "60", "60/", "/60s", "0/60s", "60/0s", "60/60", "60/60d", "-1/60s", "x/60s", "60/ss",
        "60/é",
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
