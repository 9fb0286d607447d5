//! One conformance suite for both stores: every test is an `async fn(Store)`, run
//! once on a real Redis and once on the in-memory store (`store_suite!`).

use std::collections::HashMap;
use std::time::Duration;

use authstream_runtime::clock::UnixTime;
use authstream_store::StoreError;
use authstream_store::events::GenerationStatus;
use authstream_store::generations::{self, GenerationId};
use authstream_store::revocations::Revocation;
use authstream_store::{
    AppendOutcome, EventPage, Keys, NewEvent, NewSession, PublishedEvent, Read, ReadAnswer,
    Rotation, SessionRotation, Spend, Taken, Write, parse_event_id,
};
use authstream_store::{ExpiringMember, KeySpend, Store};
use authstream_web::rate_limit::Cost;
use tokio::task::JoinSet;

use crate::helpers::{key, next_message};

const SHORT: Duration = Duration::from_millis(150);
/// Comfortably longer than `SHORT`.
const PAST_SHORT: Duration = Duration::from_millis(300);

store_suite!(
    get_and_set_without_ttl,
    set_with_ttl_expires,
    set_without_ttl_clears_an_earlier_ttl,
    set_nx_creates_once_until_expiry,
    get_del_returns_the_value_once,
    del_and_exists,
    compare_and_swap_swaps_only_the_expected_value,
    compare_and_swap_with_none_deletes,
    compare_and_swap_applies_the_ttl,
    incr_counts_from_one_and_keeps_the_ttl,
    set_add_remove_members,
    set_add_refreshes_the_whole_set_expiry,
    expiring_count_drops_expired_members,
    expiring_add_drops_expired_members_and_the_set_expires,
    expiring_add_capped_admits_up_to_max_live_members,
    expiring_add_capped_has_one_winner_for_the_last_place,
    write_all_applies_every_write,
    get_del_marking_marks_only_what_it_took,
    pttl_tells_the_time_left,
    set_nx_with_whole_seconds_expires,
    hash_create_only_once_and_get_all,
    hash_create_applies_the_ttl,
    append_event_ids_increase_and_update_the_record,
    append_event_without_record_is_no_generation,
    append_event_after_terminal_status_is_finished,
    a_record_with_an_unknown_status_reads_as_pending_and_takes_events,
    append_event_caps_history_at_max_len,
    read_events_after_an_id_is_exclusive,
    read_events_after_a_trimmed_id_resets,
    read_events_after_a_malformed_id_resets,
    read_events_after_an_id_newer_than_any_resets,
    read_events_page_holds_at_most_its_limit_and_continues_after_its_last,
    publish_reaches_a_subscriber,
    append_event_publishes_a_published_event,
    mget_returns_values_in_order,
    concurrent_set_nx_has_one_winner,
    concurrent_get_del_has_one_winner,
    concurrent_compare_and_swap_has_one_winner,
    revoke_writes_the_markers_and_appends_to_the_log_in_one_round_trip,
    revocation_log_reads_after_an_id_in_order,
    revocation_log_keeps_only_the_revocation_window,
    revoke_after_every_covered_token_expired_writes_nothing,
    rotate_session_rotates_the_current_token_once_and_returns_the_user,
    rotate_session_grace_reuse_expiry_and_gone,
    concurrent_rotate_session_has_one_winner,
    rotate_session_spends_the_budget_of_a_current_or_just_retired_token_only,
    stream_stats_count_live_tokens_by_expiry_second_without_a_key_per_token,
    revoking_a_session_ends_its_record_in_the_same_round_trip,
    revoking_a_user_ends_every_indexed_session_in_one_round_trip,
    rate_limit_and_read_decide_and_read_in_one_round_trip,
    save_session_indexes_it_and_decides_along_in_one_round_trip,
);

async fn get_and_set_without_ttl(store: Store) {
    let k = key(&store, "plain");
    assert_eq!(store.get(&k).await.unwrap(), None);
    store.set(&k, "one", None).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("one"));
    store.set(&k, "two", None).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("two"));
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.get(&k).await.unwrap().as_deref(),
        Some("two"),
        "a key without ttl does not expire"
    );
}

async fn set_with_ttl_expires(store: Store) {
    let k = key(&store, "ttl");
    store.set(&k, "v", Some(SHORT)).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("v"));
    assert!(store.exists(&k).await.unwrap());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.get(&k).await.unwrap(), None);
    assert!(!store.exists(&k).await.unwrap());
}

async fn set_without_ttl_clears_an_earlier_ttl(store: Store) {
    let k = key(&store, "ttl-cleared");
    store.set(&k, "short", Some(SHORT)).await.unwrap();
    store.set(&k, "forever", None).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("forever"));
}

async fn set_nx_creates_once_until_expiry(store: Store) {
    let k = key(&store, "nx");
    assert!(store.set_nx(&k, "first", SHORT).await.unwrap());
    assert!(!store.set_nx(&k, "second", SHORT).await.unwrap());
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("first"));
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        store.set_nx(&k, "third", SHORT).await.unwrap(),
        "an expired key can be created again"
    );
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("third"));
}

async fn get_del_returns_the_value_once(store: Store) {
    let k = key(&store, "getdel");
    assert_eq!(store.get_del(&k).await.unwrap(), None);
    store
        .set(&k, "v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(store.get_del(&k).await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.get_del(&k).await.unwrap(), None);
    assert!(!store.exists(&k).await.unwrap());
    assert_eq!(store.get(&k).await.unwrap(), None);
}

async fn del_and_exists(store: Store) {
    let k = key(&store, "del");
    assert!(!store.exists(&k).await.unwrap());
    assert!(
        !store.del(&k).await.unwrap(),
        "deleting a missing key reports false"
    );
    store.set(&k, "v", None).await.unwrap();
    assert!(store.exists(&k).await.unwrap());
    assert!(store.del(&k).await.unwrap());
    assert!(!store.exists(&k).await.unwrap());
    assert!(!store.del(&k).await.unwrap());
}

async fn compare_and_swap_swaps_only_the_expected_value(store: Store) {
    let k = key(&store, "cas");
    assert!(
        !store
            .compare_and_swap(&k, "a", Some("b"), None)
            .await
            .unwrap(),
        "a missing key never matches"
    );
    assert!(!store.exists(&k).await.unwrap());

    store.set(&k, "a", None).await.unwrap();
    assert!(
        !store
            .compare_and_swap(&k, "x", Some("b"), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("a"));
    assert!(
        store
            .compare_and_swap(&k, "a", Some("b"), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("b"));
    assert!(
        !store
            .compare_and_swap(&k, "a", Some("c"), None)
            .await
            .unwrap(),
        "a stale expected value fails"
    );
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("b"));
}

async fn compare_and_swap_with_none_deletes(store: Store) {
    let k = key(&store, "cas-del");
    store.set(&k, "v", None).await.unwrap();
    assert!(
        !store
            .compare_and_swap(&k, "stale", None, None)
            .await
            .unwrap()
    );
    assert!(
        store.exists(&k).await.unwrap(),
        "a failed delete leaves the key"
    );
    assert!(store.compare_and_swap(&k, "v", None, None).await.unwrap());
    assert!(!store.exists(&k).await.unwrap());
}

async fn compare_and_swap_applies_the_ttl(store: Store) {
    let with_ttl = key(&store, "cas-ttl");
    let without_ttl = key(&store, "cas-no-ttl");
    store.set(&with_ttl, "a", None).await.unwrap();
    store.set(&without_ttl, "a", Some(SHORT)).await.unwrap();
    assert!(
        store
            .compare_and_swap(&with_ttl, "a", Some("b"), Some(SHORT))
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(&without_ttl, "a", Some("b"), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&with_ttl).await.unwrap().as_deref(), Some("b"));
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.get(&with_ttl).await.unwrap(),
        None,
        "the new value expires after the ttl"
    );
    assert_eq!(
        store.get(&without_ttl).await.unwrap().as_deref(),
        Some("b"),
        "ttl None keeps no expiry"
    );
}

async fn incr_counts_from_one_and_keeps_the_ttl(store: Store) {
    let k = key(&store, "counter");
    assert_eq!(store.incr(&k).await.unwrap(), 1);
    assert_eq!(store.incr(&k).await.unwrap(), 2);
    assert_eq!(store.incr(&k).await.unwrap(), 3);
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("3"));

    let expiring = key(&store, "counter-ttl");
    store.set(&expiring, "5", Some(SHORT)).await.unwrap();
    assert_eq!(store.incr(&expiring).await.unwrap(), 6);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.get(&expiring).await.unwrap(),
        None,
        "incr keeps the key's expiry"
    );
}

async fn set_add_remove_members(store: Store) {
    let k = key(&store, "set");
    assert!(store.set_members(&k).await.unwrap().is_empty());
    store
        .set_add(&k, "b", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .set_add(&k, "a", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .set_add(&k, "a", Duration::from_secs(60))
        .await
        .unwrap();
    let mut members = store.set_members(&k).await.unwrap();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    store.set_remove(&k, "a").await.unwrap();
    store.set_remove(&k, "never-added").await.unwrap();
    assert_eq!(store.set_members(&k).await.unwrap(), ["b"]);
    store.set_remove(&k, "b").await.unwrap();
    assert!(store.set_members(&k).await.unwrap().is_empty());
    assert!(!store.exists(&k).await.unwrap(), "an emptied set is gone");
}

async fn set_add_refreshes_the_whole_set_expiry(store: Store) {
    let k = key(&store, "set-ttl");
    let ttl = Duration::from_millis(300);
    store.set_add(&k, "x", ttl).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.set_add(&k, "y", ttl).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut members = store.set_members(&k).await.unwrap();
    members.sort();
    assert_eq!(
        members,
        ["x", "y"],
        "the second add renewed the expiry of the first member too"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(store.set_members(&k).await.unwrap().is_empty());
    assert!(!store.exists(&k).await.unwrap());
}

async fn expiring_count_drops_expired_members(store: Store) {
    let k = key(&store, "expiring");
    assert_eq!(store.expiring_count(&k, 0).await.unwrap(), 0);
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "m1",
            expires_at_ms: 1_000,
            now_ms: 0,
        })
        .await
        .unwrap();
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "m2",
            expires_at_ms: 2_000,
            now_ms: 0,
        })
        .await
        .unwrap();
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "m3",
            expires_at_ms: 3_000,
            now_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(store.expiring_count(&k, 999).await.unwrap(), 3);
    assert_eq!(
        store.expiring_count(&k, 1_000).await.unwrap(),
        2,
        "a member is expired at its own time"
    );
    // Expired members are dropped, not just skipped: asking about the past again
    // does not bring m1 back.
    assert_eq!(store.expiring_count(&k, 0).await.unwrap(), 2);
    store.expiring_remove(&k, "m2").await.unwrap();
    assert_eq!(store.expiring_count(&k, 1_500).await.unwrap(), 1);
    // Adding an existing member moves its expiry.
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "m3",
            expires_at_ms: 10_000,
            now_ms: 1_500,
        })
        .await
        .unwrap();
    assert_eq!(store.expiring_count(&k, 5_000).await.unwrap(), 1);
    assert_eq!(store.expiring_count(&k, 10_000).await.unwrap(), 0);
}

async fn expiring_add_drops_expired_members_and_the_set_expires(store: Store) {
    let k = key(&store, "expiring-bounded");
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "old",
            expires_at_ms: 1_000,
            now_ms: 0,
        })
        .await
        .unwrap();
    // Adding at a later "now" drops what expired meanwhile, without a count.
    store
        .expiring_add(ExpiringMember {
            key: &k,
            member: "new",
            expires_at_ms: 5_200,
            now_ms: 5_000,
        })
        .await
        .unwrap();
    assert_eq!(
        store.expiring_count(&k, 0).await.unwrap(),
        1,
        "old was dropped on add"
    );
    // The set lives as long as its longest-lived member (here 1 s from the first add).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        !store.exists(&k).await.unwrap(),
        "the set expired with its members"
    );
}

async fn expiring_add_capped_admits_up_to_max_live_members(store: Store) {
    let k = key(&store, "capped");
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "a",
                    expires_at_ms: 1_000,
                    now_ms: 0
                },
                2
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "b",
                    expires_at_ms: 2_000,
                    now_ms: 0
                },
                2
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "c",
                    expires_at_ms: 2_000,
                    now_ms: 0
                },
                2
            )
            .await
            .unwrap(),
        "a third is refused"
    );
    assert_eq!(
        store.expiring_count(&k, 0).await.unwrap(),
        2,
        "and not added"
    );
    // A member already in renews at the cap.
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "a",
                    expires_at_ms: 3_000,
                    now_ms: 500
                },
                2
            )
            .await
            .unwrap()
    );
    // Once a member expires (b at 2 000), its place is free.
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "c",
                    expires_at_ms: 4_000,
                    now_ms: 2_000
                },
                2
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "d",
                    expires_at_ms: 4_000,
                    now_ms: 2_000
                },
                2
            )
            .await
            .unwrap()
    );
    // A removed member frees its place at once.
    store.expiring_remove(&k, "a").await.unwrap();
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "d",
                    expires_at_ms: 4_000,
                    now_ms: 2_000
                },
                2
            )
            .await
            .unwrap()
    );
    assert_eq!(store.expiring_count(&k, 2_000).await.unwrap(), 2);
    // The set lives as long as its longest-lived member, no longer.
    let left = store.pttl(&k).await.unwrap().unwrap();
    assert!(left <= Duration::from_millis(3_500), "{left:?}");
    let short = key(&store, "capped-short");
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &short,
                    member: "m",
                    expires_at_ms: 200,
                    now_ms: 0
                },
                1
            )
            .await
            .unwrap()
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        !store.exists(&short).await.unwrap(),
        "the set expired with its member"
    );
}

async fn expiring_add_capped_has_one_winner_for_the_last_place(store: Store) {
    let k = key(&store, "capped-race");
    assert!(
        store
            .expiring_add_capped(
                ExpiringMember {
                    key: &k,
                    member: "first",
                    expires_at_ms: 60_000,
                    now_ms: 0
                },
                2
            )
            .await
            .unwrap()
    );
    let mut set = JoinSet::new();
    for i in 0..20 {
        let (store, k) = (store.clone(), k.clone());
        set.spawn(async move {
            store
                .expiring_add_capped(
                    ExpiringMember {
                        key: &k,
                        member: &format!("m{i}"),
                        expires_at_ms: 60_000,
                        now_ms: 0,
                    },
                    2,
                )
                .await
                .unwrap()
        });
    }
    let mut admitted = 0;
    while let Some(won) = set.join_next().await {
        admitted += usize::from(won.unwrap());
    }
    assert_eq!(admitted, 1);
    assert_eq!(store.expiring_count(&k, 0).await.unwrap(), 2);
}

async fn write_all_applies_every_write(store: Store) {
    let (plain, counter, set) = (
        key(&store, "w-plain"),
        key(&store, "w-counter"),
        key(&store, "w-set"),
    );
    assert!(store.write_all(&[]).await.unwrap());
    let once = key(&store, "w-once");
    let set_once = [Write::SetNx {
        key: &once,
        value: "first",
        ttl: Duration::from_secs(5),
    }];
    assert!(store.write_all(&set_once).await.unwrap(), "created");
    let again = [
        Write::SetNx {
            key: &once,
            value: "second",
            ttl: Duration::from_secs(5),
        },
        Write::IncrBy {
            key: &counter,
            by: 1,
        },
    ];
    assert!(!store.write_all(&again).await.unwrap(), "not created again");
    assert_eq!(store.get(&once).await.unwrap().as_deref(), Some("first"));
    store.del(&counter).await.unwrap();
    let created = store
        .write_all(&[
            Write::Set {
                key: &plain,
                value: "v",
                ttl: Some(Duration::from_millis(200)),
            },
            Write::IncrBy {
                key: &counter,
                by: 1,
            },
            Write::IncrBy {
                key: &counter,
                by: 5,
            },
            Write::ExpiringAdd(ExpiringMember {
                key: &set,
                member: "a",
                expires_at_ms: 5_000,
                now_ms: 0,
            }),
            Write::ExpiringAdd(ExpiringMember {
                key: &set,
                member: "b",
                expires_at_ms: 5_000,
                now_ms: 0,
            }),
            Write::ExpiringRemove {
                key: &set,
                member: "a",
            },
        ])
        .await
        .unwrap();
    assert!(
        created,
        "no SET NX among them: nothing failed to be created"
    );
    assert_eq!(store.get(&plain).await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.get(&counter).await.unwrap().as_deref(), Some("6"));
    assert_eq!(store.expiring_count(&set, 0).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.get(&plain).await.unwrap(), None, "the ttl applied");
}

async fn get_del_marking_marks_only_what_it_took(store: Store) {
    let (k, marker, lone) = (
        key(&store, "{m}:value"),
        key(&store, "{m}:marker"),
        key(&store, "{m}:lone"),
    );
    let missing = |marker: Option<&str>| Taken::Missing {
        marker: marker.map(str::to_owned),
    };
    assert_eq!(
        store.get_del_marking(&k, &marker, "used").await.unwrap(),
        missing(None)
    );
    store.set(&marker, "issued", Some(SHORT)).await.unwrap();
    assert_eq!(
        store.get_del_marking(&k, &marker, "used").await.unwrap(),
        missing(Some("issued")),
        "a miss leaves the marker alone"
    );
    store
        .set(&k, "v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        store.get_del_marking(&k, &marker, "used").await.unwrap(),
        Taken::Value("v".into())
    );
    assert!(!store.exists(&k).await.unwrap());
    assert_eq!(
        store.get_del_marking(&k, &marker, "used").await.unwrap(),
        missing(Some("used"))
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        !store.exists(&marker).await.unwrap(),
        "the marker kept its expiry"
    );
    // A value without a marker: taken, and no marker is created.
    store.set(&lone, "v", None).await.unwrap();
    assert_eq!(
        store.get_del_marking(&lone, &marker, "used").await.unwrap(),
        Taken::Value("v".into())
    );
    assert!(!store.exists(&marker).await.unwrap(), "never created");
}

async fn pttl_tells_the_time_left(store: Store) {
    let (expiring, forever) = (key(&store, "pttl-expiring"), key(&store, "pttl-forever"));
    assert_eq!(store.pttl(&expiring).await.unwrap(), None, "missing");
    store
        .set(&expiring, "v", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    store.set(&forever, "v", None).await.unwrap();
    let left = store.pttl(&expiring).await.unwrap().unwrap();
    assert!(
        left <= Duration::from_secs(10) && left > Duration::from_secs(9),
        "{left:?}"
    );
    assert_eq!(store.pttl(&forever).await.unwrap(), None, "never expires");
}

/// Whole seconds go to Redis as `EX`: the key lives that long, not a thousandth of it.
async fn set_nx_with_whole_seconds_expires(store: Store) {
    let k = key(&store, "nx-secs");
    assert!(store.set_nx(&k, "v", Duration::from_secs(1)).await.unwrap());
    let left = store.pttl(&k).await.unwrap().unwrap();
    assert!(
        left <= Duration::from_secs(1) && left > Duration::from_millis(500),
        "{left:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!store.exists(&k).await.unwrap());
}

async fn hash_create_only_once_and_get_all(store: Store) {
    let k = key(&store, "hash");
    assert!(store.hash_get_all(&k).await.unwrap().is_empty());
    let fields = [("a", "1".to_owned()), ("b", "two".to_owned())];
    assert!(
        store
            .hash_create(&k, &fields, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let expected: HashMap<String, String> =
        [("a".into(), "1".into()), ("b".into(), "two".into())].into();
    assert_eq!(store.hash_get_all(&k).await.unwrap(), expected);
    assert!(
        !store
            .hash_create(&k, &[("a", "other".to_owned())], Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(
        store.hash_get_all(&k).await.unwrap(),
        expected,
        "a refused create changes nothing"
    );
}

async fn hash_create_applies_the_ttl(store: Store) {
    let k = key(&store, "hash-ttl");
    assert!(
        store
            .hash_create(&k, &[("a", "1".to_owned())], SHORT)
            .await
            .unwrap()
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(store.hash_get_all(&k).await.unwrap().is_empty());
    assert!(
        store
            .hash_create(&k, &[("a", "2".to_owned())], SHORT)
            .await
            .unwrap(),
        "an expired hash can be created"
    );
}

// --- generation events ---

async fn new_generation(store: &Store) -> GenerationId {
    let id = GenerationId::generate();
    let created = generations::create(
        store,
        &id,
        "owner-1",
        UnixTime::now(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(created.is_some());
    id
}

fn event<'a>(
    id: &'a GenerationId,
    data: &'a str,
    status: GenerationStatus,
    max_len: usize,
) -> NewEvent<'a> {
    NewEvent {
        generation_id: id.as_str(),
        data,
        status,
        progress: None,
        stage: None,
        now_ms: UnixTime::now().millis(),
        max_len,
        ttl: Duration::from_secs(60),
    }
}

async fn append(store: &Store, event: &NewEvent<'_>) -> String {
    match store.append_event(event).await.unwrap() {
        AppendOutcome::Appended { id } => id,
        other => panic!("expected Appended, got {other:?}"),
    }
}

/// Appends `n` events `{"n":i}` and returns their ids.
async fn append_n(store: &Store, id: &GenerationId, n: usize, max_len: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let data = format!(r#"{{"n":{i}}}"#);
        ids.push(
            append(
                store,
                &event(id, &data, GenerationStatus::Processing, max_len),
            )
            .await,
        );
    }
    ids
}

fn data_of(page: &EventPage) -> Vec<&str> {
    page.events.iter().map(|(_, d)| d.as_str()).collect()
}

fn ids_of(page: &EventPage) -> Vec<&str> {
    page.events.iter().map(|(id, _)| id.as_str()).collect()
}

async fn append_event_ids_increase_and_update_the_record(store: Store) {
    let id = new_generation(&store).await;
    let mut ids = Vec::new();
    for (i, stage) in ["parse", "schema_extraction", "render"].iter().enumerate() {
        let data = format!(r#"{{"event":"progress","n":{i}}}"#);
        let mut e = event(&id, &data, GenerationStatus::Processing, 100);
        e.progress = Some(0.25 * (i as f64 + 1.0));
        e.stage = Some(stage);
        ids.push(append(&store, &e).await);
    }
    let parsed: Vec<(u64, u64)> = ids.iter().map(|i| parse_event_id(i).unwrap()).collect();
    assert!(
        parsed.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {ids:?}"
    );

    let page = store.read_events(id.as_str(), None).await.unwrap();
    assert!(!page.reset);
    assert_eq!(ids_of(&page), ids);
    assert_eq!(
        data_of(&page),
        [
            r#"{"event":"progress","n":0}"#,
            r#"{"event":"progress","n":1}"#,
            r#"{"event":"progress","n":2}"#
        ]
    );

    let record = generations::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(record.status, GenerationStatus::Processing);
    assert_eq!(record.stage.as_deref(), Some("render"));
    assert!(
        (record.progress - 0.75).abs() < 1e-9,
        "progress {}",
        record.progress
    );
    assert!(record.updated_at >= record.created_at);
}

async fn append_event_without_record_is_no_generation(store: Store) {
    let id = GenerationId::generate();
    assert_eq!(
        store
            .append_event(&event(&id, "{}", GenerationStatus::Processing, 10))
            .await
            .unwrap(),
        AppendOutcome::NoGeneration
    );
    assert!(
        store
            .read_events(id.as_str(), None)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert!(
        !store
            .exists(&store.keys().events(id.as_str()))
            .await
            .unwrap(),
        "nothing was written"
    );
}

async fn append_event_after_terminal_status_is_finished(store: Store) {
    for terminal in [GenerationStatus::Completed, GenerationStatus::Failed] {
        let id = new_generation(&store).await;
        append(
            &store,
            &event(&id, r#"{"n":1}"#, GenerationStatus::Processing, 10),
        )
        .await;
        append(&store, &event(&id, r#"{"n":2}"#, terminal, 10)).await;
        assert_eq!(
            store
                .append_event(&event(&id, r#"{"n":3}"#, GenerationStatus::Processing, 10))
                .await
                .unwrap(),
            AppendOutcome::Finished,
            "after {terminal}"
        );
        let page = store.read_events(id.as_str(), None).await.unwrap();
        assert_eq!(data_of(&page), [r#"{"n":1}"#, r#"{"n":2}"#]);
        assert_eq!(
            generations::load(&store, &id)
                .await
                .unwrap()
                .unwrap()
                .status,
            terminal
        );
    }
}

/// A status no version of the code wrote (a corrupt record) is read as `pending`, as
/// a `progress` that does not parse is read as 0, and ends nothing: the next event
/// overwrites it.
async fn a_record_with_an_unknown_status_reads_as_pending_and_takes_events(store: Store) {
    let id = GenerationId::generate();
    let fields = [
        ("owner_id", "owner-1".to_owned()),
        ("status", "paused".to_owned()),
        ("progress", "half".to_owned()),
    ];
    assert!(
        store
            .hash_create(
                &store.keys().generation(id.as_str()),
                &fields,
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    let record = generations::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.progress),
        (GenerationStatus::Pending, 0.0)
    );
    append(&store, &event(&id, "{}", GenerationStatus::Processing, 10)).await;
    let record = generations::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(record.status, GenerationStatus::Processing);
}

async fn append_event_caps_history_at_max_len(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 5, 3).await;
    let page = store.read_events(id.as_str(), None).await.unwrap();
    assert_eq!(ids_of(&page), &ids[2..]);
    assert_eq!(data_of(&page), [r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#]);
}

async fn read_events_after_an_id_is_exclusive(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 4, 100).await;
    let page = store.read_events(id.as_str(), Some(&ids[1])).await.unwrap();
    assert!(!page.reset);
    assert_eq!(ids_of(&page), &ids[2..]);
    let page = store.read_events(id.as_str(), Some(&ids[0])).await.unwrap();
    assert_eq!(
        (ids_of(&page), page.reset),
        (ids[1..].iter().map(String::as_str).collect(), false)
    );
    let page = store.read_events(id.as_str(), Some(&ids[3])).await.unwrap();
    assert_eq!(
        page,
        EventPage {
            events: Vec::new(),
            reset: false
        },
        "nothing after the newest"
    );
}

async fn read_events_after_a_trimmed_id_resets(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 4, 2).await;
    for older in [ids[0].as_str(), "0-1"] {
        let page = store.read_events(id.as_str(), Some(older)).await.unwrap();
        assert!(page.reset, "after {older}");
        assert_eq!(
            ids_of(&page),
            &ids[2..],
            "after {older}: the whole kept history"
        );
    }
    let page = store.read_events(id.as_str(), Some(&ids[2])).await.unwrap();
    assert_eq!((ids_of(&page), page.reset), (vec![ids[3].as_str()], false));
}

async fn read_events_after_a_malformed_id_resets(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 2, 100).await;
    for bad in ["garbage", "12", "a-b", "-", ""] {
        let page = store.read_events(id.as_str(), Some(bad)).await.unwrap();
        assert!(page.reset, "{bad:?}");
        assert_eq!(ids_of(&page), ids, "{bad:?}");
    }
}

/// A made-up id beyond the newest event would otherwise make every live event look
/// like a duplicate to the stream.
async fn read_events_after_an_id_newer_than_any_resets(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 2, 100).await;
    let newest = ids.last().unwrap().clone();
    let page = store.read_events(id.as_str(), Some(&newest)).await.unwrap();
    assert!(
        !page.reset && page.events.is_empty(),
        "at the newest: nothing more"
    );
    let page = store
        .read_events(id.as_str(), Some("99999999999999-0"))
        .await
        .unwrap();
    assert!(page.reset);
    assert_eq!(ids_of(&page), ids);
}

async fn publish_reaches_a_subscriber(store: Store) {
    let mut rx = store.subscribe().await.unwrap();
    let events = store.keys().events_channel();
    let revocations = store.keys().notices_channel();
    store.publish(&events, "hello").await.unwrap();
    assert_eq!(next_message(&mut rx, &events).await, "hello");
    store
        .publish(&revocations, r#"{"user_id":"u"}"#)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut rx, &revocations).await,
        r#"{"user_id":"u"}"#
    );
    // A second subscriber gets its own copy.
    let mut second = store.subscribe().await.unwrap();
    store.publish(&events, "both").await.unwrap();
    assert_eq!(next_message(&mut rx, &events).await, "both");
    assert_eq!(next_message(&mut second, &events).await, "both");
}

async fn append_event_publishes_a_published_event(store: Store) {
    let id = new_generation(&store).await;
    let mut rx = store.subscribe().await.unwrap();
    let data = r#"{"event":"progress","message":"Extracting \"schema\"…","progress":0.5}"#;
    let event_id = append(&store, &event(&id, data, GenerationStatus::Processing, 10)).await;
    let payload = next_message(&mut rx, &store.keys().events_channel()).await;
    let published: PublishedEvent = serde_json::from_str(&payload).unwrap();
    assert_eq!(published.generation_id, id.as_str());
    assert_eq!(published.id, event_id);
    assert_eq!(published.status, Some(GenerationStatus::Processing));
    assert_eq!(published.data.get(), data);
}

async fn mget_returns_values_in_order(store: Store) {
    assert!(store.mget(&[]).await.unwrap().is_empty());
    // One hash tag: a multi-key command touches one slot.
    let (a, b, missing) = (
        key(&store, "{m}:a"),
        key(&store, "{m}:b"),
        key(&store, "{m}:missing"),
    );
    store.set(&a, "1", None).await.unwrap();
    store
        .set(&b, "2", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let got = store.mget(&[b.clone(), missing, a]).await.unwrap();
    assert_eq!(got, [Some("2".to_owned()), None, Some("1".to_owned())]);
}

// --- concurrency ---

async fn all<T: Send + 'static>(mut set: JoinSet<Result<T, StoreError>>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.push(joined.unwrap().unwrap());
    }
    out
}

async fn concurrent_set_nx_has_one_winner(store: Store) {
    let k = key(&store, "race-nx");
    let mut set = JoinSet::new();
    for i in 0..50 {
        let (store, k) = (store.clone(), k.clone());
        set.spawn(async move {
            store
                .set_nx(&k, &i.to_string(), Duration::from_secs(60))
                .await
                .map(|won| (i, won))
        });
    }
    let results = all(set).await;
    let winners: Vec<i32> = results
        .iter()
        .filter(|(_, won)| *won)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(store.get(&k).await.unwrap(), Some(winners[0].to_string()));
}

async fn concurrent_get_del_has_one_winner(store: Store) {
    let k = key(&store, "race-getdel");
    store
        .set(&k, "prize", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let mut set = JoinSet::new();
    for _ in 0..50 {
        let (store, k) = (store.clone(), k.clone());
        set.spawn(async move { store.get_del(&k).await });
    }
    let results = all(set).await;
    let got: Vec<&String> = results.iter().flatten().collect();
    assert_eq!(got, ["prize"], "exactly one caller gets the value");
    assert!(!store.exists(&k).await.unwrap());
}

async fn concurrent_compare_and_swap_has_one_winner(store: Store) {
    let k = key(&store, "race-cas");
    store.set(&k, "v0", None).await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..20 {
        let (store, k) = (store.clone(), k.clone());
        set.spawn(async move {
            let new = format!("v1-{i}");
            store
                .compare_and_swap(&k, "v0", Some(&new), None)
                .await
                .map(|won| won.then_some(new))
        });
    }
    let winners: Vec<String> = all(set).await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.get(&k).await.unwrap().as_ref(), Some(&winners[0]));
}

fn session_revocation(user: &str, session: &str, now: UnixTime, keep: Duration) -> Revocation {
    Revocation::Session {
        user_id: user.into(),
        session_id: session.into(),
        until_ms: now.plus(keep).millis(),
    }
}

fn logged(store_entries: &[(String, String)]) -> Vec<Revocation> {
    store_entries
        .iter()
        .map(|(_, entry)| serde_json::from_str(entry).unwrap())
        .collect()
}

async fn revoke_writes_the_markers_and_appends_to_the_log_in_one_round_trip(store: Store) {
    let now = UnixTime::now();
    let revocation = Revocation::User {
        user_id: "u1".into(),
        not_before: now.secs(),
        sessions: vec!["s1".into(), "s2".into(), "s3".into()],
        until_ms: now.plus(SHORT).millis(),
    };
    let before = store.round_trips();
    store.revoke(&revocation, now).await.unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");

    let keys = store.keys();
    let markers = [
        keys.revoked_session("u1", "s1"),
        keys.revoked_session("u1", "s2"),
        keys.revoked_session("u1", "s3"),
        keys.not_before("u1"),
    ];
    let values = store.mget(&markers).await.unwrap();
    assert_eq!(
        values[..3],
        [Some("1".to_owned()), Some("1".into()), Some("1".into())]
    );
    assert_eq!(values[3], Some(now.secs().to_string()));
    let entries = store
        .revocations_after(Keys::revocation_shard("u1"), "0-0")
        .await
        .unwrap();
    assert_eq!(logged(&entries), [revocation]);
    assert!(parse_event_id(&entries[0].0).is_some(), "{}", entries[0].0);

    // The markers go when every token they cover has expired.
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.mget(&markers).await.unwrap(),
        [None, None, None, None]
    );
}

async fn revocation_log_reads_after_an_id_in_order(store: Store) {
    let now = UnixTime::now();
    let keep = Duration::from_secs(60);
    let made: Vec<Revocation> = (0..5)
        .map(|i| session_revocation("u1", &format!("s{i}"), now, keep))
        .collect();
    for revocation in &made {
        store.revoke(revocation, now).await.unwrap();
    }
    let all = store
        .revocations_after(Keys::revocation_shard("u1"), "0-0")
        .await
        .unwrap();
    assert_eq!(logged(&all), made);
    let ids: Vec<_> = all
        .iter()
        .map(|(id, _)| parse_event_id(id).unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let rest = store
        .revocations_after(Keys::revocation_shard("u1"), &all[1].0)
        .await
        .unwrap();
    assert_eq!(logged(&rest), made[2..]);
    assert!(
        store
            .revocations_after(Keys::revocation_shard("u1"), &all[4].0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn revocation_log_keeps_only_the_revocation_window(store: Store) {
    let store = store.with_revocation_window(SHORT);
    let keep = Duration::from_secs(60);
    let old = session_revocation("u1", "old", UnixTime::now(), keep);
    store.revoke(&old, UnixTime::now()).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    let new = session_revocation("u1", "new", UnixTime::now(), keep);
    store.revoke(&new, UnixTime::now()).await.unwrap();
    let kept = store
        .revocations_after(Keys::revocation_shard("u1"), "0-0")
        .await
        .unwrap();
    assert_eq!(logged(&kept), [new], "older than the window: trimmed");
}

async fn revoke_after_every_covered_token_expired_writes_nothing(store: Store) {
    let now = UnixTime::now();
    let before = store.round_trips();
    let expired = session_revocation("u1", "s1", now, Duration::ZERO);
    store.revoke(&expired, now).await.unwrap();
    assert_eq!(store.round_trips(), before);
    assert!(
        store
            .revocations_after(Keys::revocation_shard("u1"), "0-0")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.debug_keys().await.unwrap().is_empty());
}

/// A session record as the auth service stores it (the fields `rotate_session` reads
/// and writes, and one it must keep as it is).
fn session_record(created_at: i64) -> serde_json::Value {
    serde_json::json!({
        "session_id": "s1",
        "user_id": "u1",
        "created_at": created_at,
        "last_seen_at": created_at,
        "user_agent": "curl/8.5 (x86_64) \"quoted\" é",
        "ip": null,
        "access_jti": "a0",
        "refresh_jti": "r0",
        "issued_at": created_at / 1000,
        "previous_refresh_jti": null,
        "rotated_at": null,
    })
}

fn rotation<'a>(presented: &'a str, next: &'a str, now: UnixTime) -> SessionRotation<'a> {
    SessionRotation {
        user_id: "u1",
        session_id: "s1",
        presented_jti: presented,
        access_jti: "a-next",
        refresh_jti: next,
        now,
        grace: Duration::from_secs(10),
        max_age: Duration::from_secs(3600),
        refresh_ttl: Duration::from_secs(60),
        budget: None,
    }
}

fn json(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap()
}

async fn rotate_session_rotates_the_current_token_once_and_returns_the_user(store: Store) {
    let keys = store.keys().clone();
    let now = UnixTime::now();
    let record = session_record(now.millis() - 5_000);
    store
        .set(&keys.session("u1", "s1"), &record.to_string(), None)
        .await
        .unwrap();
    store
        .set(&keys.user("u1"), r#"{"tier":"paid"}"#, None)
        .await
        .unwrap();

    let before = store.round_trips();
    let rotated = store
        .rotate_session(&rotation("r0", "r1", now))
        .await
        .unwrap()
        .0;
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    let Rotation::Rotated { session, user } = rotated else {
        panic!("not rotated: {rotated:?}");
    };
    assert_eq!(user.as_deref(), Some(r#"{"tier":"paid"}"#));
    let mut expected = record.clone();
    for (field, value) in [
        ("access_jti", serde_json::json!("a-next")),
        ("refresh_jti", "r1".into()),
        ("previous_refresh_jti", "r0".into()),
        ("rotated_at", now.millis().into()),
        ("last_seen_at", now.millis().into()),
        ("issued_at", now.secs().into()),
    ] {
        expected[field] = value;
    }
    assert_eq!(json(&session), expected);
    let stored = store.get(&keys.session("u1", "s1")).await.unwrap().unwrap();
    assert_eq!(json(&stored), expected, "what is stored is what came back");
    // The record lives a refresh token's lifetime, the index too.
    let left = store
        .pttl(&keys.session("u1", "s1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        left > Duration::from_secs(55) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(
        store.set_members(&keys.sessions("u1")).await.unwrap(),
        ["s1"]
    );
    assert!(store.pttl(&keys.sessions("u1")).await.unwrap().is_some());

    // The same token again is the grace answer, the same record, unchanged.
    let again = store
        .rotate_session(&rotation("r0", "r2", now))
        .await
        .unwrap()
        .0;
    assert_eq!(
        again,
        Rotation::Grace {
            session: session.clone(),
            user: Some(r#"{"tier":"paid"}"#.into())
        }
    );
    assert_eq!(
        store.get(&keys.session("u1", "s1")).await.unwrap(),
        Some(stored)
    );
}

async fn rotate_session_grace_reuse_expiry_and_gone(store: Store) {
    let keys = store.keys().clone();
    let now = UnixTime::now();
    let key = keys.session("u1", "s1");
    store
        .set(&key, &session_record(now.millis()).to_string(), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_session(&rotation("unknown", "x", now))
            .await
            .unwrap()
            .0,
        Rotation::Reused,
        "a token that was never current"
    );
    assert!(matches!(
        store
            .rotate_session(&rotation("r0", "r1", now))
            .await
            .unwrap()
            .0,
        Rotation::Rotated { user: None, .. }
    ));
    assert!(matches!(
        store
            .rotate_session(&rotation("r1", "r2", now))
            .await
            .unwrap()
            .0,
        Rotation::Rotated { .. }
    ));
    // Two rotations back: theft even within the grace.
    assert_eq!(
        store
            .rotate_session(&rotation("r0", "x", now))
            .await
            .unwrap()
            .0,
        Rotation::Reused
    );
    // The just-retired one after the grace: theft.
    let later = UnixTime(now.millis() + 10_001);
    assert_eq!(
        store
            .rotate_session(&rotation("r1", "x", later))
            .await
            .unwrap()
            .0,
        Rotation::Reused
    );
    assert!(matches!(
        store
            .rotate_session(&rotation("r1", "x", UnixTime(now.millis() + 10_000)))
            .await
            .unwrap()
            .0,
        Rotation::Grace { .. }
    ));
    // Past the maximum age: expired, even the current token, and nothing changes.
    let stored = store.get(&key).await.unwrap();
    let past = UnixTime(now.millis() + 3_600_000);
    assert_eq!(
        store
            .rotate_session(&rotation("r2", "x", past))
            .await
            .unwrap()
            .0,
        Rotation::Expired
    );
    assert_eq!(store.get(&key).await.unwrap(), stored);
    // Close to it, the record lives only until the maximum age.
    let near = UnixTime(now.millis() + 3_600_000 - 2_000);
    assert!(matches!(
        store
            .rotate_session(&rotation("r2", "r3", near))
            .await
            .unwrap()
            .0,
        Rotation::Rotated { .. }
    ));
    let left = store.pttl(&key).await.unwrap().unwrap();
    assert!(left <= Duration::from_secs(2), "{left:?}");
    store.del(&key).await.unwrap();
    assert_eq!(
        store
            .rotate_session(&rotation("r3", "x", now))
            .await
            .unwrap()
            .0,
        Rotation::Gone
    );
}

async fn concurrent_rotate_session_has_one_winner(store: Store) {
    let now = UnixTime::now();
    store
        .set(
            &store.keys().session("u1", "s1"),
            &session_record(now.millis()).to_string(),
            None,
        )
        .await
        .unwrap();
    let mut set = JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        set.spawn(async move {
            let next = format!("r-{i}");
            store
                .rotate_session(&rotation("r0", &next, now))
                .await
                .unwrap()
                .0
        });
    }
    let mut rotated = Vec::new();
    let mut graced = Vec::new();
    while let Some(outcome) = set.join_next().await {
        match outcome.unwrap() {
            Rotation::Rotated { session, .. } => rotated.push(session),
            Rotation::Grace { session, .. } => graced.push(session),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one rotation");
    assert!(
        graced.iter().all(|s| *s == rotated[0]),
        "every loser sees the winner's pair"
    );
}

async fn rotate_session_spends_the_budget_of_a_current_or_just_retired_token_only(store: Store) {
    let keys = store.keys().clone();
    let now = UnixTime::now();
    store
        .set(
            &keys.session("u1", "s1"),
            &session_record(now.millis()).to_string(),
            None,
        )
        .await
        .unwrap();
    let budget = keys.rate_limit("u:u1", "refresh:s1");
    let gcra = authstream_web::rate_limit::Quota::parse("2/60s")
        .unwrap()
        .gcra();
    let with_budget = |presented, next| SessionRotation {
        budget: Some(authstream_store::KeySpend {
            key: &budget,
            gcra,
            cost: Cost::Take,
        }),
        ..rotation(presented, next, now)
    };
    // Another token of the session touches no budget.
    let (reused, decision) = store
        .rotate_session(&with_budget("unknown", "x"))
        .await
        .unwrap();
    assert_eq!((reused, decision), (Rotation::Reused, None));
    assert!(!store.exists(&budget).await.unwrap());

    let before = store.round_trips();
    let (rotated, decision) = store
        .rotate_session(&with_budget("r0", "r1"))
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    assert!(matches!(rotated, Rotation::Rotated { .. }), "{rotated:?}");
    let decision = decision.unwrap();
    assert!(decision.allowed && decision.remaining == 1, "{decision:?}");
    // The just-retired token within the grace spends too.
    let (graced, decision) = store.rotate_session(&with_budget("r0", "x")).await.unwrap();
    assert!(matches!(graced, Rotation::Grace { .. }), "{graced:?}");
    assert_eq!(decision.unwrap().remaining, 0);
    // Spent: nothing changes, and the decision says when to come back.
    let stored = store.get(&keys.session("u1", "s1")).await.unwrap();
    let (limited, decision) = store
        .rotate_session(&with_budget("r1", "r2"))
        .await
        .unwrap();
    assert_eq!(limited, Rotation::Limited);
    let decision = decision.unwrap();
    assert!(
        !decision.allowed && decision.retry_after_us > 0,
        "{decision:?}"
    );
    assert_eq!(store.get(&keys.session("u1", "s1")).await.unwrap(), stored);
    // Another session's budget is its own.
    store
        .set(
            &keys.session("u1", "s2"),
            &session_record(now.millis()).to_string(),
            None,
        )
        .await
        .unwrap();
    let other = keys.rate_limit("u:u1", "refresh:s2");
    let (rotated, _) = store
        .rotate_session(&SessionRotation {
            session_id: "s2",
            budget: Some(authstream_store::KeySpend {
                key: &other,
                gcra,
                cost: Cost::Take,
            }),
            ..rotation("r0", "r1", now)
        })
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated { .. }), "{rotated:?}");
}

async fn stream_stats_count_live_tokens_by_expiry_second_without_a_key_per_token(store: Store) {
    use authstream_store::streams::{Stats, StatsFlush};
    let now_ms = UnixTime::now().millis();
    let second = |after_ms: i64| (now_ms + after_ms).div_euclid(1000);
    let before = store.round_trips();
    store
        .flush_stream_stats(&StatsFlush {
            issued: 5,
            consumed: 1,
            rejected: 2,
            // 3 tokens live for 30 s, 2 for 60 s (1 of them consumed), and one
            // already expired: left out.
            live: vec![
                (second(-2_000), 1),
                (second(30_000), 3),
                (second(60_000), 1),
            ],
            now_ms,
        })
        .await
        .unwrap();
    assert_eq!(store.round_trips(), before, "a background flush");
    let read = |at_ms: i64| {
        let store = store.clone();
        async move {
            store
                .flush_and_read_stream_stats(&StatsFlush {
                    now_ms: at_ms,
                    ..StatsFlush::default()
                })
                .await
                .unwrap()
        }
    };
    let totals = |active| Stats {
        active,
        issued_total: 5,
        consumed_total: 1,
        rejected_total: 2,
    };
    assert_eq!(read(now_ms).await, totals(4));
    assert_eq!(store.round_trips() - before, 1, "a read is one round trip");
    // A token leaves `active` when its expiry second begins.
    assert_eq!(read(second(30_000) * 1000 - 1).await, totals(4));
    assert_eq!(read(second(30_000) * 1000).await, totals(1));
    assert_eq!(read(second(60_000) * 1000).await, totals(0));
    // Another process's consumption of a live token, and one of a token whose second
    // has begun (changes nothing).
    let consumed = store
        .flush_and_read_stream_stats(&StatsFlush {
            consumed: 2,
            live: vec![(second(30_000), -1), (second(-2_000), -1)],
            now_ms,
            ..StatsFlush::default()
        })
        .await
        .unwrap();
    assert_eq!(
        consumed,
        Stats {
            active: 3,
            consumed_total: 3,
            ..totals(3)
        }
    );
    // Three counters and one hash, whatever the number of tokens; the hash goes
    // with its last second.
    let keys = store.keys();
    let stats_keys: Vec<String> = store
        .debug_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("{stats}"))
        .collect();
    let mut expected: Vec<String> = ["consumed", "issued", "live", "rejected"]
        .map(|n| keys.stream_stats(n))
        .to_vec();
    expected.sort();
    assert_eq!(stats_keys, expected);
    let left = store
        .pttl(&keys.stream_stats("live"))
        .await
        .unwrap()
        .unwrap();
    assert!(left <= Duration::from_secs(61), "{left:?}");
}

/// Session records of `user` and its session index, as logins leave them.
async fn with_sessions(store: &Store, user: &str, sessions: &[&str]) {
    let keys = store.keys();
    for sid in sessions {
        store
            .set(&keys.session(user, sid), "{}", None)
            .await
            .unwrap();
        store
            .set_add(&keys.sessions(user), sid, Duration::from_secs(60))
            .await
            .unwrap();
    }
}

async fn revoking_a_session_ends_its_record_in_the_same_round_trip(store: Store) {
    let keys = store.keys().clone();
    let now = UnixTime::now();
    with_sessions(&store, "u1", &["s1", "s2"]).await;
    let before = store.round_trips();
    store
        .revoke(
            &session_revocation("u1", "s1", now, Duration::from_secs(60)),
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    assert_eq!(store.get(&keys.session("u1", "s1")).await.unwrap(), None);
    assert!(store.exists(&keys.session("u1", "s2")).await.unwrap());
    assert_eq!(
        store.set_members(&keys.sessions("u1")).await.unwrap(),
        ["s2"]
    );
    assert!(
        store
            .exists(&keys.revoked_session("u1", "s1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .exists(&keys.revoked_session("u1", "s2"))
            .await
            .unwrap()
    );
}

async fn revoking_a_user_ends_every_indexed_session_in_one_round_trip(store: Store) {
    let keys = store.keys().clone();
    let now = UnixTime::now();
    with_sessions(&store, "u1", &["s1", "s2", "s3"]).await;
    // Another user's session stays.
    with_sessions(&store, "u2", &["t1"]).await;
    let revocation = Revocation::User {
        user_id: "u1".into(),
        not_before: now.secs(),
        sessions: Vec::new(),
        until_ms: now.plus(SHORT).millis(),
    };
    let before = store.round_trips();
    store.revoke(&revocation, now).await.unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");

    let mut kept = store.debug_keys().await.unwrap();
    kept.retain(|k| !k.ends_with(":log"));
    let mut expected = vec![
        keys.revoked_session("u1", "s1"),
        keys.revoked_session("u1", "s2"),
        keys.revoked_session("u1", "s3"),
        keys.not_before("u1"),
        keys.session("u2", "t1"),
        keys.sessions("u2"),
    ];
    expected.sort();
    assert_eq!(
        kept, expected,
        "the sessions are gone, their markers written"
    );
    let entries = store
        .revocations_after(Keys::revocation_shard("u1"), "0-0")
        .await
        .unwrap();
    assert_eq!(logged(&entries), [revocation]);
    // The markers expire with the revocation.
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        !store
            .exists(&keys.revoked_session("u1", "s2"))
            .await
            .unwrap()
    );
}

/// Makes a Redis forget its scripts, as a restart does (nothing to do in memory).
fn forget_scripts(store: &Store) {
    use std::io::{Read as _, Write as _};
    if store.kind() != "redis" {
        return;
    }
    let port = authstream_testkit::shared_redis().port();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"SCRIPT FLUSH\r\n").unwrap();
    let mut ok = [0; 5];
    conn.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
}

async fn rate_limit_and_read_decide_and_read_in_one_round_trip(store: Store) {
    let gcra = authstream_web::rate_limit::Quota::parse("2/60s")
        .unwrap()
        .gcra();
    let (budget, value, hash, set) = (
        key(&store, "budget"),
        key(&store, "value"),
        key(&store, "hash"),
        key(&store, "set"),
    );
    store.set(&value, "v", None).await.unwrap();
    store
        .hash_create(&hash, &[("f", "1".to_owned())], Duration::from_secs(60))
        .await
        .unwrap();
    store
        .set_add(&set, "m", Duration::from_secs(60))
        .await
        .unwrap();
    forget_scripts(&store);

    let before = store.round_trips();
    let (decision, found) = store
        .rate_limit_and_read(
            KeySpend {
                key: &budget,
                gcra,
                cost: Cost::Take,
            },
            Read::Get(&value),
        )
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    assert!(decision.allowed && decision.remaining == 1);
    assert_eq!(found, ReadAnswer::Value(Some("v".into())));

    let (decision, found) = store
        .rate_limit_and_read(
            KeySpend {
                key: &budget,
                gcra,
                cost: Cost::Take,
            },
            Read::HashGetAll(&hash),
        )
        .await
        .unwrap();
    assert!(decision.allowed && decision.remaining == 0);
    assert_eq!(found.into_hash(), HashMap::from([("f".into(), "1".into())]));
    // Refused: the read still answers (the caller drops it), the budget is unchanged.
    let (decision, found) = store
        .rate_limit_and_read(
            KeySpend {
                key: &budget,
                gcra,
                cost: Cost::Take,
            },
            Read::SetMembers(&set),
        )
        .await
        .unwrap();
    assert!(!decision.allowed);
    assert_eq!(found.into_members(), ["m"]);
    let missing = key(&store, "missing");
    assert_eq!(
        store.read(Read::Get(&missing)).await.unwrap(),
        ReadAnswer::Value(None)
    );
}

async fn save_session_indexes_it_and_decides_along_in_one_round_trip(store: Store) {
    let keys = store.keys().clone();
    let gcra = authstream_web::rate_limit::Quota::parse("3/60s")
        .unwrap()
        .gcra();
    let budget = key(&store, "login-budget");
    let budgets = [authstream_store::Budget {
        field: "account",
        gcra,
    }];
    let spend = |cost| Spend {
        key: &budget,
        budgets: &budgets,
        cost,
    };
    store
        .rate_limit_fields(&spend(Cost::Take), None)
        .await
        .unwrap();
    forget_scripts(&store);
    let session = |sid: &'static str| NewSession {
        user_id: "u1",
        session_id: sid,
        record: r#"{"a":1}"#,
        ttl: SHORT,
        index_ttl: Duration::from_secs(60),
    };
    let before = store.round_trips();
    let (indexed, given_back) = store
        .save_session(&session("s1"), Some(spend(Cost::GiveBack)))
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    assert_eq!(indexed, 1);
    let remaining: Vec<u32> = given_back.iter().map(|d| d.remaining).collect();
    assert_eq!(remaining, [3], "given back");
    let (indexed, none) = store.save_session(&session("s2"), None).await.unwrap();
    assert_eq!((indexed, none), (2, Vec::new()));
    assert_eq!(
        store
            .get(&keys.session("u1", "s1"))
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"a":1}"#)
    );
    let mut members = store.set_members(&keys.sessions("u1")).await.unwrap();
    members.sort();
    assert_eq!(members, ["s1", "s2"]);
    assert!(store.pttl(&keys.sessions("u1")).await.unwrap().unwrap() > SHORT);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.get(&keys.session("u1", "s1")).await.unwrap(), None);
}

/// A stream reads a long history a page at a time, each after the last it sent.
async fn read_events_page_holds_at_most_its_limit_and_continues_after_its_last(store: Store) {
    let id = new_generation(&store).await;
    let ids = append_n(&store, &id, 5, 100).await;
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = store
            .read_events_page(id.as_str(), after.as_deref(), 2)
            .await
            .unwrap();
        assert!(!page.reset);
        let got: Vec<String> = ids_of(&page).into_iter().map(str::to_owned).collect();
        pages.push(got.clone());
        if got.len() < 2 {
            break;
        }
        after = got.last().cloned();
    }
    assert_eq!(
        pages,
        [ids[..2].to_vec(), ids[2..4].to_vec(), ids[4..].to_vec()]
    );
    // A reset page is bounded too: the oldest kept events first.
    let page = store
        .read_events_page(id.as_str(), Some("0-1"), 3)
        .await
        .unwrap();
    assert!(page.reset);
    assert_eq!(ids_of(&page), &ids[..3]);
}
