//! Tests of the local revocation view: freshness per log, matching, pruning, notices.

use super::*;

fn session(user: &str, sid: &str, until_ms: i64) -> Revocation {
    Revocation::Session {
        user_id: user.into(),
        session_id: sid.into(),
        until_ms,
    }
}

#[test]
fn a_tailed_view_answers_only_between_a_read_and_the_freshness_bound() {
    let view = RevocationView::tailed();
    let shard = Keys::revocation_shard("u");
    view.apply(&session("u", "s", i64::MAX));
    assert_eq!(view.check("u", "j", Some("s"), 0), None, "never read");
    view.heard(shard, Instant::now());
    assert_eq!(view.check("u", "j", Some("s"), 0), Some(true));
    std::thread::sleep(FRESH_WITHIN + Duration::from_millis(20));
    assert_eq!(view.check("u", "j", Some("s"), 0), None, "too old");
    view.heard(shard, Instant::now());
    view.lost(shard);
    assert_eq!(view.check("u", "j", Some("s"), 0), None, "connection lost");
    assert_eq!(
        RevocationView::complete().check("u", "j", None, 0),
        Some(false)
    );
}

#[test]
fn a_stale_log_makes_only_its_own_users_ask_the_store() {
    let view = RevocationView::tailed();
    let a = "user-a";
    let b = (0..)
        .map(|i| format!("user-{i}"))
        .find(|u| Keys::revocation_shard(u) != Keys::revocation_shard(a))
        .unwrap();
    for shard in 0..REVOCATION_LOG_SHARDS {
        view.heard(shard, Instant::now());
    }
    assert!(view.is_fresh());
    view.lost(Keys::revocation_shard(a));
    assert!(!view.is_fresh());
    assert_eq!(view.check(a, "j", None, 0), None, "its log is stale");
    assert_eq!(view.check(&b, "j", None, 0), Some(false), "another log");
    // The legacy log, while on, counts for everyone.
    view.heard(Keys::revocation_shard(a), Instant::now());
    view.set_legacy(true);
    assert_eq!(view.tailed_logs().last(), Some(&LEGACY_LOG));
    assert_eq!(view.check(&b, "j", None, 0), None, "legacy never read");
    view.heard(LEGACY_LOG, Instant::now());
    assert_eq!(view.check(&b, "j", None, 0), Some(false));
}

#[test]
fn the_view_matches_the_subject_and_the_not_before_second() {
    let view = RevocationView::complete();
    view.apply(&Revocation::Token {
        sub: "u".into(),
        jti: "j1".into(),
        until_ms: i64::MAX,
    });
    view.apply(&Revocation::User {
        user_id: "v".into(),
        not_before: 100,
        sessions: vec!["current".into()],
        until_ms: i64::MAX,
    });
    assert_eq!(view.check("u", "j1", None, 0), Some(true));
    assert_eq!(
        view.check("other", "j1", None, 0),
        Some(false),
        "same jti, other subject"
    );
    assert_eq!(
        view.check("v", "j", Some("new"), 99),
        Some(true),
        "issued before"
    );
    assert_eq!(
        view.check("v", "j", Some("new"), 100),
        None,
        "the same second, a session not listed: the store's markers tell"
    );
    assert_eq!(
        view.check("v", "j", Some("new"), 101),
        Some(false),
        "a later login"
    );
    assert_eq!(view.check("v", "j", Some("current"), 100), Some(true));
    assert_eq!(view.check("u", "j2", Some("current"), 100), Some(false));
}

#[test]
fn expired_revocations_are_pruned_and_sessions_and_users_are_announced() {
    let view = RevocationView::complete();
    let mut notices = view.notices();
    view.apply(&session("u", "old", 1_000));
    view.apply(&session("u", "new", 3_000));
    view.prune(2_000);
    assert_eq!(view.check("u", "j", Some("old"), 0), Some(false));
    assert_eq!(view.check("u", "j", Some("new"), 0), Some(true));
    assert_eq!(
        notices.try_recv().unwrap(),
        StreamNotice::revoked("u", Some("old"))
    );
    assert_eq!(
        notices.try_recv().unwrap(),
        StreamNotice::revoked("u", Some("new"))
    );
    // Read back from the log after being applied here: told once.
    view.apply(&session("u", "new", 3_000));
    assert!(notices.try_recv().is_err());
    let user = Revocation::User {
        user_id: "u".into(),
        not_before: 5,
        sessions: vec![],
        until_ms: 3_000,
    };
    view.apply(&user);
    view.apply(&user);
    assert_eq!(
        notices.try_recv().unwrap(),
        StreamNotice::revoked("u", None)
    );
    assert!(notices.try_recv().is_err());
}
