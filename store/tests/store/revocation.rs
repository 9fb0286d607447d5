//! Revocation per token, session and user, checked by `Validator::validate` at once,
//! kept only as long as needed, announced to open streams, and known to other
//! processes through the revocation log; checks never fail open without it.

use std::time::{Duration, Instant};

use authstream_proto::claims::{AccessClaims, RefreshClaims, ServiceClaims};
use authstream_runtime::clock::UnixTime;
use authstream_security::jwt::TokenError;
use authstream_store::Keys;
use authstream_store::Store;
use authstream_store::revocations::{self, StreamNotice};
use authstream_testkit::{
    RedisServer, redis_store, redis_store_at, redis_store_sharing, revocations_fresh,
    revocations_stale, shared_redis,
};
use tokio::sync::broadcast;

use crate::helpers::{Jwt, LEEWAY_SECS, code_of};
use crate::store_outage::eventually;

store_suite!(
    revoking_a_token_refuses_only_that_token,
    a_token_can_be_revoked_within_the_leeway_after_expiry,
    revoking_a_session_refuses_all_its_tokens_and_no_others,
    revoking_a_user_refuses_earlier_tokens_but_not_a_later_login,
    a_token_revocation_is_kept_only_until_the_token_expires,
    session_and_user_revocations_expire_after_keep_for,
    revoking_a_session_or_user_is_announced,
    a_revocation_takes_effect_at_once_and_validation_needs_no_round_trip,
    revoking_a_user_is_one_round_trip,
);

const LEEWAY: Duration = Duration::from_secs(LEEWAY_SECS);
const KEEP: Duration = Duration::from_secs(3600);

async fn assert_revoked(jwt: &Jwt, token: &str, now: UnixTime) {
    let err = jwt
        .validator
        .validate::<AccessClaims>(token, now)
        .await
        .expect_err("a revoked token was accepted");
    assert!(matches!(err, TokenError::Revoked), "{err:?}");
    assert_eq!(code_of(token, err), "token_revoked");
}

async fn assert_valid(jwt: &Jwt, token: &str, now: UnixTime) {
    if let Err(e) = jwt.validator.validate::<AccessClaims>(token, now).await {
        panic!("a valid token was refused: {e:?}");
    }
}

async fn revoking_a_token_refuses_only_that_token(store: Store) {
    let jwt = Jwt::new(store.clone());
    let now = UnixTime::now();
    let (revoked, claims) = jwt.access("user-1", "sid-1", now);
    let (same_session, _) = jwt.access("user-1", "sid-1", now);
    let (other_session, _) = jwt.access("user-1", "sid-2", now);
    assert_valid(&jwt, &revoked, now).await;

    revocations::revoke_token(
        &store,
        &claims.reg.sub,
        &claims.reg.jti,
        claims.reg.exp,
        now,
        LEEWAY,
    )
    .await
    .unwrap();
    assert_revoked(&jwt, &revoked, now).await;
    assert_revoked(&jwt, &revoked, now.plus(Duration::from_secs(600))).await;
    assert_valid(&jwt, &same_session, now).await;
    assert_valid(&jwt, &other_session, now).await;

    // A service token is revoked by its jti too.
    let (service, claims) = jwt.service("backend", &["events:publish"], now);
    revocations::revoke_token(
        &store,
        &claims.reg.sub,
        &claims.reg.jti,
        claims.reg.exp,
        now,
        LEEWAY,
    )
    .await
    .unwrap();
    let err = jwt
        .validator
        .validate::<ServiceClaims>(&service, now)
        .await
        .unwrap_err();
    assert_eq!(code_of(&service, err), "token_revoked");
}

/// A token past its `exp` but inside the clock leeway is still accepted, so revoking it
/// then must still take effect.
async fn a_token_can_be_revoked_within_the_leeway_after_expiry(store: Store) {
    let jwt = Jwt::new(store.clone());
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    let just_expired = UnixTime::from_secs(claims.reg.exp + 2);
    assert_valid(&jwt, &token, just_expired).await;
    revocations::revoke_token(
        &store,
        &claims.reg.sub,
        &claims.reg.jti,
        claims.reg.exp,
        just_expired,
        LEEWAY,
    )
    .await
    .unwrap();
    assert_revoked(&jwt, &token, UnixTime::from_secs(claims.reg.exp + 3)).await;
}

async fn revoking_a_session_refuses_all_its_tokens_and_no_others(store: Store) {
    let jwt = Jwt::new(store.clone());
    let now = UnixTime::now();
    let (access_1, _) = jwt.access("user-1", "sid-1", now);
    let (access_2, _) = jwt.access("user-1", "sid-1", now);
    let (refresh, _) = jwt.refresh("user-1", "sid-1", now);
    let (other_session, _) = jwt.access("user-1", "sid-2", now);
    let (other_user, _) = jwt.access("user-2", "sid-1", now);

    revocations::revoke_session(&store, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    assert_revoked(&jwt, &access_1, now).await;
    assert_revoked(&jwt, &access_2, now).await;
    let err = jwt
        .validator
        .validate::<RefreshClaims>(&refresh, now)
        .await
        .unwrap_err();
    assert_eq!(code_of(&refresh, err), "token_revoked");
    // A token of the session issued later is refused too.
    let (later, _) = jwt.access("user-1", "sid-1", now.plus(Duration::from_secs(60)));
    assert_revoked(&jwt, &later, now.plus(Duration::from_secs(61))).await;

    assert_valid(&jwt, &other_session, now).await;
    assert_valid(&jwt, &other_user, now).await;
}

async fn revoking_a_user_refuses_earlier_tokens_but_not_a_later_login(store: Store) {
    let jwt = Jwt::new(store.clone());
    let t = UnixTime::now().secs();
    let at = UnixTime::from_secs;
    let (old, _) = jwt.access("user-1", "sid-1", at(t - 100));
    let (old_other_session, _) = jwt.access("user-1", "sid-0", at(t - 50));
    let (same_second, _) = jwt.access("user-1", "sid-1", at(t));
    let (old_other_user, _) = jwt.access("user-2", "sid-9", at(t - 100));

    // Revoked half a second into second `t`, with one open session.
    revocations::revoke_user(
        &store,
        "user-1",
        &["sid-1".to_owned()],
        at(t).plus(Duration::from_millis(500)),
        KEEP,
    )
    .await
    .unwrap();
    let check = at(t + 2);
    assert_revoked(&jwt, &old, check).await;
    assert_revoked(&jwt, &old_other_session, check).await;
    assert_revoked(&jwt, &same_second, check).await;
    let (same_session_later, _) = jwt.access("user-1", "sid-1", at(t + 1));
    assert_revoked(&jwt, &same_session_later, check).await;

    // A login a moment later works, even within the same second.
    let (new_same_second, _) = jwt.access("user-1", "sid-2", at(t));
    let (new_later, _) = jwt.access("user-1", "sid-3", at(t + 1));
    assert_valid(&jwt, &new_same_second, check).await;
    assert_valid(&jwt, &new_later, check).await;
    // Other users are untouched.
    assert_valid(&jwt, &old_other_user, check).await;
}

async fn a_token_revocation_is_kept_only_until_the_token_expires(store: Store) {
    let jwt = Jwt::new(store.clone());
    let now = UnixTime::now();
    let (_, claims) = jwt.access("user-1", "sid-1", now);
    let key = store.keys().revoked_token(&claims.reg.sub, &claims.reg.jti);
    // Revoked 200 ms before `exp` with a 100 ms leeway: kept for about 300 ms.
    let shortly_before_exp = UnixTime(UnixTime::from_secs(claims.reg.exp).millis() - 200);
    revocations::revoke_token(
        &store,
        "user-1",
        &claims.reg.jti,
        claims.reg.exp,
        shortly_before_exp,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert!(
        store
            .debug_dump()
            .await
            .unwrap()
            .iter()
            .any(|(k, _)| *k == key)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !store.exists(&key).await.unwrap(),
        "the revocation outlived its token"
    );
    assert!(
        store
            .debug_dump()
            .await
            .unwrap()
            .iter()
            .all(|(k, _)| *k != key)
    );

    // A token that can no longer be accepted leaves nothing behind.
    let (_, old) = jwt.access("user-1", "sid-1", now);
    let long_after = UnixTime::from_secs(old.reg.exp + 3600);
    revocations::revoke_token(
        &store,
        "user-1",
        &old.reg.jti,
        old.reg.exp,
        long_after,
        LEEWAY,
    )
    .await
    .unwrap();
    assert!(
        !store
            .exists(&store.keys().revoked_token("user-1", &old.reg.jti))
            .await
            .unwrap()
    );
}

async fn session_and_user_revocations_expire_after_keep_for(store: Store) {
    let keep = Duration::from_millis(200);
    let now = UnixTime::now();
    revocations::revoke_session(&store, "user-1", "sid-1", keep)
        .await
        .unwrap();
    revocations::revoke_user(&store, "user-2", &["sid-2".to_owned()], now, keep)
        .await
        .unwrap();
    let keys = store.keys();
    let written = [
        keys.revoked_session("user-1", "sid-1"),
        keys.revoked_session("user-2", "sid-2"),
        keys.not_before("user-2"),
    ];
    for key in &written {
        assert!(store.exists(key).await.unwrap(), "{key}");
    }
    assert_eq!(
        store.get(&keys.not_before("user-2")).await.unwrap(),
        Some(now.secs().to_string())
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for key in &written {
        assert!(!store.exists(key).await.unwrap(), "{key} outlived keep_for");
    }
}

async fn next_notice(rx: &mut broadcast::Receiver<StreamNotice>) -> StreamNotice {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("no notice within 3 s")
        .unwrap()
}

async fn revoking_a_session_or_user_is_announced(store: Store) {
    let mut rx = store.revocation_notices();

    revocations::revoke_session(&store, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    let notice = next_notice(&mut rx).await;
    assert_eq!(notice, StreamNotice::revoked("user-1", Some("sid-1")));
    assert_eq!(notice.reason, revocations::NoticeReason::Revoked);
    assert!(notice.covers("user-1", "sid-1", "any-generation"));
    assert!(!notice.covers("user-1", "sid-2", "any-generation"));
    assert!(!notice.covers("user-2", "sid-1", "any-generation"));

    revocations::revoke_user(&store, "user-2", &[], UnixTime::now(), KEEP)
        .await
        .unwrap();
    let notice = next_notice(&mut rx).await;
    assert_eq!(notice, StreamNotice::revoked("user-2", None));
    assert!(notice.covers("user-2", "any-session", "any-generation"));
    assert!(!notice.covers("user-1", "sid-1", "any-generation"));

    // A disconnect covers one generation of one session, and revokes nothing.
    let cut = StreamNotice::disconnect("user-3", "sid-3", "gen-3");
    assert!(cut.covers("user-3", "sid-3", "gen-3"));
    assert!(!cut.covers("user-3", "sid-3", "gen-4"));
    assert!(!cut.covers("user-3", "sid-4", "gen-3"));
}

/// The revoking process knows at once, and a validation asks the store nothing while
/// the view is fresh. A loaded machine may delay the tail past the bound now and then
/// (the check then asks the store, correctly): one clean attempt of five suffices.
async fn a_revocation_takes_effect_at_once_and_validation_needs_no_round_trip(store: Store) {
    let jwt = Jwt::new(store.clone());
    let mut clean = 0;
    for attempt in 0..5 {
        let now = UnixTime::now();
        let session = format!("sid-{attempt}");
        let (token, _) = jwt.access("user-1", &session, now);
        assert_valid(&jwt, &token, now).await;
        revocations_fresh(&store).await;
        let before = store.round_trips();
        assert_valid(&jwt, &token, now).await;
        revocations::revoke_session(&store, "user-1", &session, KEEP)
            .await
            .unwrap();
        assert_revoked(&jwt, &token, now).await;
        // The revocation itself is the one round trip.
        if store.round_trips() - before == 1 {
            clean += 1;
        }
    }
    assert!(clean > 0, "every validation asked the store");
}

async fn revoking_a_user_is_one_round_trip(store: Store) {
    let before = store.round_trips();
    let sessions: Vec<String> = (0..20).map(|i| format!("sid-{i}")).collect();
    revocations::revoke_user(&store, "user-1", &sessions, UnixTime::now(), KEEP)
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1);
    let keys: Vec<String> = sessions
        .iter()
        .map(|s| store.keys().revoked_session("user-1", s))
        .chain([store.keys().not_before("user-1")])
        .collect();
    let found = store.mget(&keys).await.unwrap();
    assert!(found.iter().all(Option::is_some), "{found:?}");
}

/// A second process on the same Redis: its own connections and its own view.
fn other_process(store: &Store, url: &str) -> Store {
    redis_store_sharing(url, store.keys().prefix())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_learns_a_revocation_from_the_log() {
    let revoking = redis_store();
    let other = other_process(&revoking, &shared_redis().url());
    let jwt = Jwt::new(other.clone());
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    assert_valid(&jwt, &token, now).await;
    revocations_fresh(&other).await;
    let mut notices = other.revocation_notices();

    revocations::revoke_session(&revoking, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    // Within 50 ms by design; checked with a wide margin (speed is a benchmark's job).
    assert_eq!(
        next_notice(&mut notices).await,
        StreamNotice::revoked("user-1", Some("sid-1"))
    );
    assert_revoked(&jwt, &token, now).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_loads_earlier_revocations_from_the_log() {
    let revoking = redis_store();
    let now = UnixTime::now();
    revocations::revoke_user(&revoking, "user-1", &[], now, KEEP)
        .await
        .unwrap();
    let later = other_process(&revoking, &shared_redis().url());
    revocations_fresh(&later).await;
    let before = later.round_trips();
    let earlier = later.revoked("user-1", "jti", None, now.secs() - 1);
    assert!(earlier.await.unwrap(), "issued before the revocation");
    let same_second = later.revoked("user-1", "jti", None, now.secs());
    assert!(!same_second.await.unwrap(), "issued in its second");
    // From the view, unless a loaded machine let it go stale in between.
    assert!(later.round_trips() - before <= 2);
}

/// The tail cannot read the log (an ACL takes the command away, as a proxy that
/// drops the connection would): checks ask the store and stay exact; with the store
/// down they fail (503), never accept; when the log is readable again the view is
/// fresh again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tail_checks_ask_the_store_and_never_fail_open() {
    let server = RedisServer::start();
    let revoking = redis_store_at(&server.url());
    let other = other_process(&revoking, &server.url());
    let jwt = Jwt::new(other.clone());
    let now = UnixTime::now();
    let (token, claims) = jwt.access("user-1", "sid-1", now);
    assert_valid(&jwt, &token, now).await;
    revocations_fresh(&other).await;

    server.acl_default_user("-xrange");
    revocations_stale(&other).await;
    let before = other.round_trips();
    assert_valid(&jwt, &token, now).await;
    assert_eq!(other.round_trips() - before, 1, "asked the store");
    revocations::revoke_token(
        &revoking,
        "user-1",
        &claims.reg.jti,
        claims.reg.exp,
        now,
        LEEWAY,
    )
    .await
    .unwrap();
    assert_revoked(&jwt, &token, now).await;

    let (fresh_token, _) = jwt.access("user-1", "sid-2", now);
    server.freeze();
    let started = Instant::now();
    let err = jwt
        .validator
        .validate::<AccessClaims>(&fresh_token, now)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Store(_)), "{err:?}");
    assert_eq!(code_of(&fresh_token, err), "store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    server.thaw();

    server.acl_default_user("+@all");
    revocations_fresh(&other).await;
    assert_revoked(&jwt, &token, now).await;
    assert_valid(&jwt, &fresh_token, now).await;
}

/// A store that stops answering in the middle of revoking a user: the call fails fast,
/// and whatever Redis ends up with is every marker or none, never some sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_revocation_cut_off_by_an_outage_leaves_all_markers_or_none() {
    let server = RedisServer::start();
    let store = redis_store_at(&server.url());
    let sessions: Vec<String> = (0..50).map(|i| format!("sid-{i}")).collect();
    let keys: Vec<String> = sessions
        .iter()
        .map(|s| store.keys().revoked_session("user-1", s))
        .chain([store.keys().not_before("user-1")])
        .collect();
    store.ping().await.unwrap();

    server.freeze();
    let started = Instant::now();
    let result = revocations::revoke_user(&store, "user-1", &sessions, UnixTime::now(), KEEP).await;
    assert!(
        result.is_err(),
        "a revocation Redis never answered reported success"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // Redis runs what it had received once it goes on: the whole script, or nothing.
    server.thaw();
    let found = eventually("mget", || store.mget(&keys)).await;
    let written = found.iter().filter(|v| v.is_some()).count();
    assert!(
        written == 0 || written == keys.len(),
        "{written} of {} markers",
        keys.len()
    );
}

/// The markers are written but the log entry is refused (an ACL takes `XADD` away):
/// the revocation is not reported done, since other processes would never learn of
/// it from the log; the retry writes both, and then they do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_whose_log_entry_fails_is_not_reported_done_and_a_retry_writes_it() {
    let server = RedisServer::start();
    let revoking = redis_store_at(&server.url());
    let other = other_process(&revoking, &server.url());
    let jwt = Jwt::new(other.clone());
    let now = UnixTime::now();
    let (token, _) = jwt.access("user-1", "sid-1", now);
    assert_valid(&jwt, &token, now).await;
    revocations_fresh(&other).await;
    let log = revoking
        .keys()
        .revocation_log(Keys::revocation_shard("user-1"));

    server.acl_default_user("-xadd");
    let failed = revocations::revoke_session(&revoking, "user-1", "sid-1", KEEP).await;
    assert!(failed.is_err(), "reported done without its log entry");
    server.acl_default_user("+@all");
    let logged = revoking
        .revocations_after(Keys::revocation_shard("user-1"), "0-0")
        .await
        .unwrap();
    assert!(logged.is_empty(), "{log}: {logged:?}");

    let mut notices = other.revocation_notices();
    revocations::revoke_session(&revoking, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    assert_eq!(
        revoking
            .revocations_after(Keys::revocation_shard("user-1"), "0-0")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        next_notice(&mut notices).await,
        StreamNotice::revoked("user-1", Some("sid-1"))
    );
    assert_revoked(&jwt, &token, now).await;
}

/// While `REVOCATION_LEGACY_LOG` is on (a rolling upgrade), a revocation also goes to
/// the one log of the release before, which its processes tail, and what a process of
/// that release appends there (it knows no other log) reaches this release's views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_upgrading_revocations_cross_the_legacy_log_both_ways() {
    let server = shared_redis();
    let revoking = redis_store().with_legacy_revocation_log(true);
    let other = other_process(&revoking, &server.url()).with_legacy_revocation_log(true);
    let now = UnixTime::now();

    // This release to the one before: in the user's shard and in the legacy log.
    revocations::revoke_session(&revoking, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    let shard = Keys::revocation_shard("user-1");
    for log in [shard, revocations::LEGACY_LOG] {
        let entries = revoking.revocations_after(log, "0-0").await.unwrap();
        assert_eq!(entries.len(), 1, "log {log}: {entries:?}");
    }

    // The release before to this one: an entry only in the legacy log.
    let jwt = Jwt::new(other.clone());
    let (token, _) = jwt.access("user-2", "sid-2", now);
    revocations_fresh(&other).await;
    assert_valid(&jwt, &token, now).await;
    let entry = serde_json::to_string(&revocations::Revocation::Session {
        user_id: "user-2".into(),
        session_id: "sid-2".into(),
        until_ms: now.plus(KEEP).millis(),
    })
    .unwrap();
    let legacy = revoking.keys().legacy_revocation_log();
    let added = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "XADD",
            &legacy,
            "*",
            "r",
            &entry,
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    // The view alone can know it (the release before wrote its markers; this entry
    // has none).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(other.revocations_fresh()
        && other
            .revoked("user-2", "any", Some("sid-2"), now.secs())
            .await
            .unwrap())
    {
        assert!(Instant::now() < deadline, "the legacy entry never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_revoked(&jwt, &token, now).await;

    // After the upgrade (the setting off) the legacy log is neither written nor read.
    let upgraded = redis_store_sharing(&server.url(), revoking.keys().prefix());
    assert_eq!(
        upgraded.revocation_log_indexes().len(),
        authstream_store::REVOCATION_LOG_SHARDS
    );
    revocations::revoke_session(&upgraded, "user-3", "sid-3", KEEP)
        .await
        .unwrap();
    let legacy_entries = revoking
        .revocations_after(revocations::LEGACY_LOG, "0-0")
        .await
        .unwrap();
    assert_eq!(legacy_entries.len(), 2, "{legacy_entries:?}");
}
