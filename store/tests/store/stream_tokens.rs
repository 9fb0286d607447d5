//! Stream tokens: single use, counted, expiring, unique, and held by the store only
//! as a SHA-256 digest.

use std::collections::HashSet;
use std::time::Duration;

use authstream_runtime::clock::UnixTime;
use authstream_store::Store;
use authstream_store::streams::{self, GrantKind, Refusal, Stats, StreamGrant, StreamSecret};
use tokio::task::JoinSet;

store_suite!(
    a_token_is_consumed_once,
    stats_count_issued_consumed_active_and_rejected,
    an_expired_token_is_refused_as_expired_then_forgotten,
    the_store_holds_the_digest_never_the_secret,
    minted_secrets_are_unique,
    concurrent_mints_all_succeed_and_differ,
    a_thousand_expired_tokens_leave_nothing_behind,
);

const TTL: Duration = Duration::from_secs(60);
const GEN: &str = "gen-1";

fn new_grant(kind: GrantKind) -> StreamGrant {
    StreamGrant {
        user_id: "user-1".into(),
        session_id: "sid-1".into(),
        generation_id: "gen-1".into(),
        issued_at: UnixTime::now().millis(),
        client_ip: Some("203.0.113.7".into()),
        admin: false,
        tier: Default::default(),
        kind,
        session_expires_at: UnixTime::now().millis() + 3_600_000,
        expires_at: None,
    }
}

/// The grant as `mint` stores it: with its expiry.
fn minted(grant: &StreamGrant, now: UnixTime) -> StreamGrant {
    StreamGrant {
        expires_at: Some(now.plus(TTL).millis()),
        ..grant.clone()
    }
}

async fn a_token_is_consumed_once(store: Store) {
    let grant = new_grant(GrantKind::Token);
    let now = UnixTime::now();
    let secret = streams::mint(&store, &grant, TTL, now).await.unwrap();
    assert_eq!(secret.expose().len(), streams::STREAM_TOKEN_LEN);
    assert!(StreamSecret::parse(secret.expose()).is_some());

    // The client presents the string; the server parses it back.
    let presented = StreamSecret::parse(secret.expose()).unwrap();
    assert_eq!(
        streams::consume(&store, GEN, &presented).await.unwrap(),
        Ok(minted(&grant, now))
    );
    assert_eq!(
        streams::consume(&store, GEN, &presented).await.unwrap(),
        Err(Refusal::Replay)
    );
    assert_eq!(
        streams::consume(&store, GEN, &secret).await.unwrap(),
        Err(Refusal::Replay)
    );

    let never_issued = StreamSecret::generate().unwrap();
    assert_eq!(
        streams::consume(&store, GEN, &never_issued).await.unwrap(),
        Err(Refusal::Unknown)
    );

    // A resume grant is single-use the same way.
    let resume = StreamGrant {
        generation_id: "gen-2".into(),
        ..new_grant(GrantKind::Resume)
    };
    let secret = streams::mint(&store, &resume, TTL, now).await.unwrap();
    assert_eq!(
        streams::consume(&store, "gen-2", &secret).await.unwrap(),
        Ok(minted(&resume, now))
    );
    assert_eq!(
        streams::consume(&store, "gen-2", &secret).await.unwrap(),
        Err(Refusal::Replay)
    );
}

async fn stats_count_issued_consumed_active_and_rejected(store: Store) {
    let now = UnixTime::now();
    let zero = Stats {
        active: 0,
        issued_total: 0,
        consumed_total: 0,
        rejected_total: 0,
    };
    assert_eq!(streams::stats(&store, now).await.unwrap(), zero);

    let mut secrets = Vec::new();
    for _ in 0..3 {
        secrets.push(
            streams::mint(&store, &new_grant(GrantKind::Token), TTL, now)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        streams::stats(&store, now).await.unwrap(),
        Stats {
            active: 3,
            issued_total: 3,
            consumed_total: 0,
            rejected_total: 0
        }
    );

    streams::consume(&store, GEN, &secrets[0])
        .await
        .unwrap()
        .unwrap();
    // A replay and an unknown token are refusals, not consumptions.
    streams::consume(&store, GEN, &secrets[0])
        .await
        .unwrap()
        .unwrap_err();
    streams::consume(&store, GEN, &StreamSecret::generate().unwrap())
        .await
        .unwrap()
        .unwrap_err();
    streams::record_rejected(&store);
    // Resume grants are not stream tokens issued by the auth service.
    let resume = streams::mint(&store, &new_grant(GrantKind::Resume), TTL, now)
        .await
        .unwrap();
    streams::consume(&store, GEN, &resume)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        streams::stats(&store, now).await.unwrap(),
        Stats {
            active: 2,
            issued_total: 3,
            consumed_total: 1,
            rejected_total: 1
        }
    );
    // Counted as active until their expiry time, not after.
    assert_eq!(
        streams::stats(&store, now.plus(TTL)).await.unwrap().active,
        0
    );
}

/// Refused as expired while its state marker lives (twice the lifetime), then as
/// unknown: nothing of it is left.
async fn an_expired_token_is_refused_as_expired_then_forgotten(store: Store) {
    let ttl = Duration::from_secs(1);
    // Read at the mint's own instant: a token leaves `active` when its expiry second
    // begins, so a later reading of a one-second token could already miss it.
    let minted_at = UnixTime::now();
    let secret = streams::mint(&store, &new_grant(GrantKind::Token), ttl, minted_at)
        .await
        .unwrap();
    assert_eq!(streams::stats(&store, minted_at).await.unwrap().active, 1);
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let stats = streams::stats(&store, UnixTime::now()).await.unwrap();
    assert_eq!((stats.active, stats.issued_total), (0, 1));
    assert_eq!(
        streams::consume(&store, GEN, &secret).await.unwrap(),
        Err(Refusal::Expired)
    );
    assert!(
        !store
            .exists(&store.keys().stream_token(GEN, &secret.digest()))
            .await
            .unwrap()
    );
    // Presenting it did not mark it used.
    assert_eq!(
        streams::consume(&store, GEN, &secret).await.unwrap(),
        Err(Refusal::Expired)
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        streams::consume(&store, GEN, &secret).await.unwrap(),
        Err(Refusal::Unknown)
    );
    assert!(
        !store
            .debug_dump()
            .await
            .unwrap()
            .iter()
            .any(|(k, _)| k.contains(&secret.digest())),
        "the state marker expired"
    );
}

async fn the_store_holds_the_digest_never_the_secret(store: Store) {
    let logs = authstream_testkit::logs();
    let now = UnixTime::now();
    let grant = new_grant(GrantKind::Token);
    let consumed = streams::mint(&store, &grant, TTL, now).await.unwrap();
    let pending = streams::mint(&store, &grant, TTL, now).await.unwrap();
    streams::consume(&store, GEN, &consumed)
        .await
        .unwrap()
        .unwrap();
    streams::consume(&store, GEN, &consumed)
        .await
        .unwrap()
        .unwrap_err();

    let keys = store.keys();
    let digest = pending.digest();
    assert_eq!(digest, hex_sha256(pending.expose()));
    let stored: StreamGrant = serde_json::from_str(
        &store
            .get(&keys.stream_token(GEN, &digest))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        stored,
        StreamGrant {
            expires_at: Some(now.plus(TTL).millis()),
            ..grant
        },
        "the grant is stored under the digest, with its expiry"
    );
    let state = |s: &StreamSecret| keys.stream_token_state(GEN, &s.digest());
    assert_eq!(
        store.get(&state(&consumed)).await.unwrap().as_deref(),
        Some("used")
    );
    assert_eq!(
        store.get(&state(&pending)).await.unwrap().as_deref(),
        Some("issued")
    );

    let dump = store.debug_dump().await.unwrap();
    assert!(dump.iter().any(|(k, _)| k.contains(&digest)), "{dump:?}");
    for secret in [&consumed, &pending] {
        let raw = secret.expose();
        for (k, v) in &dump {
            assert!(
                !k.contains(raw) && !v.contains(raw),
                "the secret is in the store at {k}"
            );
        }
        assert!(!logs.contents().contains(raw), "the secret was logged");
        assert!(!format!("{secret:?}").contains(raw));
    }
}

fn hex_sha256(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

async fn minted_secrets_are_unique(store: Store) {
    let now = UnixTime::now();
    let mut secrets = HashSet::new();
    let mut digests = HashSet::new();
    for _ in 0..100 {
        let secret = streams::mint(&store, &new_grant(GrantKind::Token), TTL, now)
            .await
            .unwrap();
        assert!(
            StreamSecret::parse(secret.expose()).is_some(),
            "43 URL-safe characters"
        );
        digests.insert(secret.digest());
        secrets.insert(secret.expose().to_owned());
    }
    assert_eq!((secrets.len(), digests.len()), (100, 100));
    assert_eq!(streams::stats(&store, now).await.unwrap().issued_total, 100);
}

async fn concurrent_mints_all_succeed_and_differ(store: Store) {
    let now = UnixTime::now();
    let mut set = JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        set.spawn(async move {
            let grant = StreamGrant {
                generation_id: format!("gen-{i}"),
                ..new_grant(GrantKind::Token)
            };
            let secret = streams::mint(&store, &grant, TTL, now).await;
            (grant, secret)
        });
    }
    let mut minted = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (grant, secret) = joined.unwrap();
        minted.push((grant, secret.unwrap()));
    }
    let distinct: HashSet<&str> = minted.iter().map(|(_, s)| s.expose()).collect();
    assert_eq!(distinct.len(), 50);
    assert_eq!(
        streams::stats(&store, now).await.unwrap(),
        Stats {
            active: 50,
            issued_total: 50,
            consumed_total: 0,
            rejected_total: 0
        }
    );
    // Each secret stands for its own grant.
    for (grant, secret) in &minted {
        assert_eq!(
            streams::consume(&store, &grant.generation_id, secret)
                .await
                .unwrap(),
            Ok(self::minted(grant, now))
        );
    }
}

/// The memory case: 1000 tokens, used or left to expire. While their state
/// markers live (twice the token lifetime) those and the counters are all that is
/// left, each marker with a bounded lifetime; after that, only the counters.
async fn a_thousand_expired_tokens_leave_nothing_behind(store: Store) {
    let ttl = Duration::from_secs(1);
    let horizon = ttl * 2;
    for i in 0..1000 {
        let secret = streams::mint(&store, &new_grant(GrantKind::Token), ttl, UnixTime::now())
            .await
            .unwrap();
        if i % 2 == 0 {
            assert!(
                streams::consume(&store, GEN, &secret)
                    .await
                    .unwrap()
                    .is_ok()
            );
        }
    }
    let keys = store.keys();
    let counters = [keys.stream_stats("issued"), keys.stream_stats("consumed")];
    let is_token = |k: &str| k.contains(":st:") && !k.ends_with(":state");
    let dump = store.debug_dump().await.unwrap();
    assert!(dump.iter().filter(|(k, _)| is_token(k)).count() <= 500);
    for (k, _) in &dump {
        if counters.contains(k) {
            continue;
        }
        assert!(
            is_token(k) || k.ends_with(":state") || k == &keys.stream_stats("live"),
            "unexpected key {k}"
        );
        // Every other key expires, and within the marker horizon.
        match store.pttl(k).await.unwrap() {
            Some(left) => assert!(left <= horizon, "{k} lives {left:?}"),
            None => assert!(!store.exists(k).await.unwrap(), "{k} never expires"),
        }
    }

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let dump = store.debug_dump().await.unwrap();
    assert_eq!(
        dump.iter().filter(|(k, _)| is_token(k)).count(),
        0,
        "every token expired or was consumed"
    );

    tokio::time::sleep(horizon - ttl).await;
    let left = store.debug_keys().await.unwrap();
    assert_eq!(
        left,
        [keys.stream_stats("consumed"), keys.stream_stats("issued")],
        "only the counters outlive the markers"
    );
    let stats = streams::stats(&store, UnixTime::now()).await.unwrap();
    assert_eq!(
        (stats.issued_total, stats.consumed_total, stats.active),
        (1000, 500, 0)
    );
}
