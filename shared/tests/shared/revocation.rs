//! Revocation per token, session and user, checked by `Validator::validate` at once,
//! kept only as long as needed, and announced on the revocations channel.

use std::time::Duration;

use shared::Store;
use shared::claims::{AccessClaims, RefreshClaims, ServiceClaims};
use shared::clock::UnixTime;
use shared::jwt::TokenError;
use shared::revocation::{self, StreamNotice};

use crate::helpers::{Jwt, LEEWAY_SECS, code_of, next_message};

store_suite!(
    revoking_a_token_refuses_only_that_token,
    a_token_can_be_revoked_within_the_leeway_after_expiry,
    revoking_a_session_refuses_all_its_tokens_and_no_others,
    revoking_a_user_refuses_earlier_tokens_but_not_a_later_login,
    a_token_revocation_is_kept_only_until_the_token_expires,
    session_and_user_revocations_expire_after_keep_for,
    revoking_a_session_or_user_is_announced,
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

    revocation::revoke_token(
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
    revocation::revoke_token(
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
    revocation::revoke_token(
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

    revocation::revoke_session(&store, "user-1", "sid-1", KEEP)
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
    revocation::revoke_user(
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
    revocation::revoke_token(
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
    revocation::revoke_token(
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
    revocation::revoke_session(&store, "user-1", "sid-1", keep)
        .await
        .unwrap();
    revocation::revoke_user(&store, "user-2", &["sid-2".to_owned()], now, keep)
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

async fn revoking_a_session_or_user_is_announced(store: Store) {
    let mut rx = store.subscribe().await.unwrap();
    let channel = store.keys().notices_channel();

    revocation::revoke_session(&store, "user-1", "sid-1", KEEP)
        .await
        .unwrap();
    let notice: StreamNotice =
        serde_json::from_str(&next_message(&mut rx, &channel).await).unwrap();
    assert_eq!(notice, StreamNotice::revoked("user-1", Some("sid-1")));
    assert_eq!(notice.reason, revocation::NoticeReason::Revoked);
    assert!(notice.covers("user-1", "sid-1", "any-generation"));
    assert!(!notice.covers("user-1", "sid-2", "any-generation"));
    assert!(!notice.covers("user-2", "sid-1", "any-generation"));

    revocation::revoke_user(&store, "user-2", &[], UnixTime::now(), KEEP)
        .await
        .unwrap();
    let notice: StreamNotice =
        serde_json::from_str(&next_message(&mut rx, &channel).await).unwrap();
    assert_eq!(notice, StreamNotice::revoked("user-2", None));
    assert!(notice.covers("user-2", "any-session", "any-generation"));
    assert!(!notice.covers("user-1", "sid-1", "any-generation"));

    // A disconnect covers one generation of one session, and revokes nothing.
    let cut = StreamNotice::disconnect("user-3", "sid-3", "gen-3");
    assert!(cut.covers("user-3", "sid-3", "gen-3"));
    assert!(!cut.covers("user-3", "sid-3", "gen-4"));
    assert!(!cut.covers("user-3", "sid-4", "gen-3"));
}
