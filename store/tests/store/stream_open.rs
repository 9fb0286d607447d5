//! The two steps of a stream open, on both stores: `open_stream` on the generation's
//! slot (take the grant, read the record and the history, store the next resume grant)
//! and `admit_stream` on the user's (rate limit, revocation, session and role, place).
//! Each is one round trip.

use std::time::Duration;

use authstream_runtime::clock::UnixTime;
use authstream_store::Store;
use authstream_store::events::GenerationStatus;
use authstream_store::generations::{self, GenerationId};
use authstream_store::streams::{self, GrantKind, Refusal, StreamGrant, StreamSecret};
use authstream_store::{
    Admission, AppendOutcome, GrantFound, MintAdmission, MintOutcome, Minted, NewEvent,
    NewStreamToken, StreamAdmission, StreamOpened, StreamOpening,
};
use authstream_web::rate_limit::Quota;
use tokio::task::JoinSet;

store_suite!(
    open_stream_takes_a_token_once_and_reads_the_history_after_the_point,
    open_stream_falls_back_to_the_cookie_and_keeps_the_tokens_refusal,
    open_stream_refuses_what_the_generation_slot_tells,
    open_stream_resets_outside_the_kept_history,
    open_stream_has_one_winner_among_concurrent_opens,
    open_stream_reads_one_page_of_history,
    open_stream_reads_the_status_as_the_record_parser_does,
    admit_stream_decides_in_order_and_takes_a_place,
    admit_stream_rereads_the_session_and_role_for_a_resume,
    mint_stream_token_answers_each_side_in_one_round_trip,
);

const OWNER: &str = "owner-1";
const RESUME_TTL: Duration = Duration::from_secs(300);

async fn new_generation(store: &Store, events: usize) -> (GenerationId, Vec<String>) {
    let id = GenerationId::generate();
    let now = UnixTime::now();
    generations::create(store, &id, OWNER, now, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..events {
        let data = format!(r#"{{"n":{i}}}"#);
        let appended = store
            .append_event(&NewEvent {
                generation_id: id.as_str(),
                data: &data,
                status: GenerationStatus::Processing,
                progress: None,
                stage: None,
                now_ms: UnixTime::now().millis(),
                max_len: 100,
                ttl: Duration::from_secs(60),
            })
            .await
            .unwrap();
        let AppendOutcome::Appended { id } = appended else {
            panic!("not appended: {appended:?}");
        };
        ids.push(id);
    }
    (id, ids)
}

fn grant(user: &str, generation: &GenerationId, kind: GrantKind) -> StreamGrant {
    StreamGrant {
        user_id: user.into(),
        session_id: "sid-1".into(),
        generation_id: generation.as_str().into(),
        issued_at: UnixTime::now().millis(),
        client_ip: None,
        admin: false,
        tier: Default::default(),
        kind,
        session_expires_at: UnixTime::now().millis() + 3_600_000,
        expires_at: None,
    }
}

async fn mint(store: &Store, grant: &StreamGrant) -> String {
    streams::mint(store, grant, Duration::from_secs(60), UnixTime::now())
        .await
        .unwrap()
        .digest()
}

/// One `open_stream`, counting its round trips (exactly one).
async fn open(
    store: &Store,
    generation: &GenerationId,
    token: Option<&str>,
    cookie: Option<&str>,
    after: Option<&str>,
) -> (StreamOpened, StreamSecret) {
    let next = StreamSecret::generate().unwrap();
    let before = store.round_trips();
    let opened = store
        .open_stream(&StreamOpening {
            generation_id: generation.as_str(),
            token,
            cookie,
            after,
            page_size: 100,
            next_resume: &next.digest(),
            resume_ttl: RESUME_TTL,
            now_ms: UnixTime::now().millis(),
        })
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    (opened, next)
}

async fn open_stream_takes_a_token_once_and_reads_the_history_after_the_point(store: Store) {
    let (id, ids) = new_generation(&store, 3).await;
    let token_grant = grant(OWNER, &id, GrantKind::Token);
    let token = mint(&store, &token_grant).await;

    let (opened, next) = open(&store, &id, Some(&token), None, Some(&ids[0])).await;
    let StreamOpened::Taken {
        grant: raw,
        via_cookie: false,
        found:
            GrantFound::Open {
                owner_id,
                status,
                page,
                resume_ttl,
            },
    } = opened
    else {
        panic!("not opened: {opened:?}");
    };
    let taken = serde_json::from_str::<StreamGrant>(&raw).unwrap();
    assert!(taken.expires_at.is_some(), "the mint wrote its expiry");
    assert_eq!(
        StreamGrant {
            expires_at: None,
            ..taken
        },
        token_grant
    );
    assert_eq!(
        (owner_id.as_str(), status),
        (OWNER, GenerationStatus::Processing)
    );
    assert!(!page.reset);
    let events: Vec<(&str, &str)> = page
        .events
        .iter()
        .map(|(id, data)| (id.as_str(), data.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (ids[1].as_str(), r#"{"n":1}"#),
            (ids[2].as_str(), r#"{"n":2}"#)
        ]
    );
    assert_eq!(resume_ttl, RESUME_TTL);

    // The next resume grant is the token's, as a resume grant issued now, for as long.
    let left = store
        .pttl(&store.keys().stream_token(id.as_str(), &next.digest()))
        .await
        .unwrap()
        .unwrap();
    assert!(left <= RESUME_TTL && left > RESUME_TTL - Duration::from_secs(2));
    let resume = streams::consume(&store, id.as_str(), &next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            resume.kind,
            resume.user_id.as_str(),
            resume.session_expires_at
        ),
        (GrantKind::Resume, OWNER, token_grant.session_expires_at)
    );
    assert!(resume.issued_at >= token_grant.issued_at);

    // Used up: a replay, and a token never issued is unknown.
    let (again, _) = open(&store, &id, Some(&token), None, None).await;
    assert_eq!(again, StreamOpened::Refused(Refusal::Replay));
    let never = StreamSecret::generate().unwrap().digest();
    let (unknown, _) = open(&store, &id, Some(&never), None, None).await;
    assert_eq!(unknown, StreamOpened::Refused(Refusal::Unknown));
    // Another generation's slot holds no such token.
    let (other, _) = new_generation(&store, 0).await;
    let token = mint(&store, &token_grant).await;
    let (elsewhere, _) = open(&store, &other, Some(&token), None, None).await;
    assert_eq!(elsewhere, StreamOpened::Refused(Refusal::Unknown));
}

async fn open_stream_falls_back_to_the_cookie_and_keeps_the_tokens_refusal(store: Store) {
    let (id, _) = new_generation(&store, 1).await;
    let token = mint(&store, &grant(OWNER, &id, GrantKind::Token)).await;
    let cookie = mint(&store, &grant(OWNER, &id, GrantKind::Resume)).await;
    let (first, _) = open(&store, &id, Some(&token), Some(&cookie), None).await;
    assert!(
        matches!(
            first,
            StreamOpened::Taken {
                via_cookie: false,
                ..
            }
        ),
        "the token first: {first:?}"
    );
    // The browser reconnecting to the used token's URL: its cookie opens.
    let (second, _) = open(&store, &id, Some(&token), Some(&cookie), None).await;
    assert!(
        matches!(
            second,
            StreamOpened::Taken {
                via_cookie: true,
                ..
            }
        ),
        "then the cookie: {second:?}"
    );
    // Both used: the token's refusal is the one told.
    let (third, _) = open(&store, &id, Some(&token), Some(&cookie), None).await;
    assert_eq!(third, StreamOpened::Refused(Refusal::Replay));
    // A grant of the other kind is used up and refused.
    let resume = mint(&store, &grant(OWNER, &id, GrantKind::Resume)).await;
    let (wrong, _) = open(&store, &id, Some(&resume), None, None).await;
    assert_eq!(wrong, StreamOpened::Refused(Refusal::WrongKind));
    let (cookie_only, _) = open(&store, &id, None, Some(&resume), None).await;
    assert_eq!(cookie_only, StreamOpened::Refused(Refusal::Replay));
}

async fn open_stream_refuses_what_the_generation_slot_tells(store: Store) {
    let found = |opened: StreamOpened| match opened {
        StreamOpened::Taken { found, .. } => found,
        refused => panic!("nothing taken: {refused:?}"),
    };
    // No record: the token is used up all the same.
    let missing = GenerationId::generate();
    let token = mint(&store, &grant(OWNER, &missing, GrantKind::Token)).await;
    let (opened, next) = open(&store, &missing, Some(&token), None, None).await;
    assert_eq!(found(opened), GrantFound::Gone);
    let (again, _) = open(&store, &missing, Some(&token), None, None).await;
    assert_eq!(again, StreamOpened::Refused(Refusal::Replay));
    assert!(
        !store
            .exists(&store.keys().stream_token(missing.as_str(), &next.digest()))
            .await
            .unwrap(),
        "no resume grant for a refused open"
    );

    let (id, _) = new_generation(&store, 0).await;
    let token = mint(&store, &grant("someone-else", &id, GrantKind::Token)).await;
    let (opened, _) = open(&store, &id, Some(&token), None, None).await;
    assert_eq!(found(opened), GrantFound::NotOwner);
    let admin = StreamGrant {
        admin: true,
        ..grant("an-admin", &id, GrantKind::Token)
    };
    let token = mint(&store, &admin).await;
    let (opened, _) = open(&store, &id, Some(&token), None, None).await;
    assert!(matches!(found(opened), GrantFound::Open { .. }));

    let ended = StreamGrant {
        session_expires_at: UnixTime::now().millis() - 1,
        ..grant(OWNER, &id, GrantKind::Token)
    };
    let token = mint(&store, &ended).await;
    let (opened, _) = open(&store, &id, Some(&token), None, None).await;
    assert_eq!(found(opened), GrantFound::SessionEnded);

    // The next resume grant never outlives the session.
    let ending = StreamGrant {
        session_expires_at: UnixTime::now().millis() + 1_500,
        ..grant(OWNER, &id, GrantKind::Token)
    };
    let token = mint(&store, &ending).await;
    let (opened, next) = open(&store, &id, Some(&token), None, None).await;
    let GrantFound::Open { resume_ttl, .. } = found(opened) else {
        panic!("not opened");
    };
    assert!(resume_ttl <= Duration::from_millis(1_500), "{resume_ttl:?}");
    let left = store
        .pttl(&store.keys().stream_token(id.as_str(), &next.digest()))
        .await
        .unwrap()
        .unwrap();
    assert!(left <= Duration::from_millis(1_500), "{left:?}");
}

async fn open_stream_resets_outside_the_kept_history(store: Store) {
    let (id, ids) = new_generation(&store, 2).await;
    let page_after = |point: String| {
        let store = store.clone();
        let id = id.clone();
        async move {
            let token = mint(&store, &grant(OWNER, &id, GrantKind::Token)).await;
            match open(&store, &id, Some(&token), None, Some(&point)).await.0 {
                StreamOpened::Taken {
                    found: GrantFound::Open { page, .. },
                    ..
                } => (page.events.len(), page.reset),
                other => panic!("not opened: {other:?}"),
            }
        }
    };
    assert_eq!(
        page_after(ids[1].clone()).await,
        (0, false),
        "at the newest"
    );
    assert_eq!(page_after(ids[0].clone()).await, (1, false));
    assert_eq!(page_after("1-0".into()).await, (2, true), "older than kept");
    let newer = format!("{}-0", u64::MAX - 1);
    assert_eq!(page_after(newer).await, (2, true), "newer than any");
    let (empty, _) = new_generation(&store, 0).await;
    let token = mint(&store, &grant(OWNER, &empty, GrantKind::Token)).await;
    let (opened, _) = open(&store, &empty, Some(&token), None, Some("5-0")).await;
    assert!(
        matches!(&opened, StreamOpened::Taken { found: GrantFound::Open { page, .. }, .. }
            if page.events.is_empty() && page.reset),
        "{opened:?}"
    );
}

async fn open_stream_has_one_winner_among_concurrent_opens(store: Store) {
    let (id, _) = new_generation(&store, 1).await;
    let token = mint(&store, &grant(OWNER, &id, GrantKind::Token)).await;
    let mut set = JoinSet::new();
    for _ in 0..50 {
        let (store, id, token) = (store.clone(), id.clone(), token.clone());
        set.spawn(async move {
            let next = StreamSecret::generate().unwrap().digest();
            store
                .open_stream(&StreamOpening {
                    generation_id: id.as_str(),
                    token: Some(&token),
                    cookie: None,
                    after: None,
                    page_size: 100,
                    next_resume: &next,
                    resume_ttl: RESUME_TTL,
                    now_ms: UnixTime::now().millis(),
                })
                .await
                .unwrap()
        });
    }
    let (mut taken, mut replays) = (0, 0);
    while let Some(opened) = set.join_next().await {
        match opened.unwrap() {
            StreamOpened::Taken { .. } => taken += 1,
            StreamOpened::Refused(Refusal::Replay) => replays += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((taken, replays), (1, 49));
}

struct Admit<'a> {
    user: &'a str,
    issued_at_secs: i64,
    recheck_owner: Option<&'a str>,
    place: &'a str,
    max_streams: usize,
    quota: &'a str,
    released: &'a [String],
}

async fn admit(store: &Store, a: Admit<'_>) -> Admission {
    let budget = store.keys().rate_limit(&format!("u:{}", a.user), "free");
    let now = UnixTime::now();
    let before = store.round_trips();
    let (decision, admission) = store
        .admit_stream(&StreamAdmission {
            user_id: a.user,
            session_id: "sid-1",
            issued_at_secs: a.issued_at_secs,
            rate_limit_key: &budget,
            gcra: Quota::parse(a.quota).unwrap().gcra(),
            recheck_owner: a.recheck_owner,
            place: a.place,
            place_expires_at_ms: now.millis() + 60_000,
            max_streams: a.max_streams,
            now_ms: now.millis(),
            released: a.released,
        })
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    assert_eq!(decision.allowed, admission != Admission::RateLimited);
    admission
}

async fn admit_stream_decides_in_order_and_takes_a_place(store: Store) {
    let now_secs = UnixTime::now().millis() / 1000;
    let base = |place| Admit {
        user: "u-1",
        issued_at_secs: now_secs,
        recheck_owner: None,
        place,
        max_streams: 1,
        quota: "3/60s",
        released: &[],
    };
    assert_eq!(admit(&store, base("a")).await, Admission::Admitted);
    let open_streams = store.keys().open_streams("u-1");
    assert_eq!(store.expiring_count(&open_streams, 0).await.unwrap(), 1);
    assert_eq!(admit(&store, base("b")).await, Admission::TooManyStreams);
    // A user-wide revocation after the grant was issued refuses it; one before does not.
    store
        .set(
            &store.keys().not_before("u-1"),
            &(now_secs + 1).to_string(),
            None,
        )
        .await
        .unwrap();
    // The place of the user's closed stream goes first, whatever the decision.
    let closed = ["a".to_owned()];
    let after_close = Admit {
        released: &closed,
        ..base("c")
    };
    assert_eq!(admit(&store, after_close).await, Admission::Revoked);
    assert_eq!(
        store.expiring_count(&open_streams, 0).await.unwrap(),
        0,
        "a refused open takes no place, and the closed stream's is given back"
    );
    // The budget of 3 is spent (a refused admission spent it too): rate limited first.
    assert_eq!(admit(&store, base("d")).await, Admission::RateLimited);

    // A revoked session is refused.
    store
        .set(&store.keys().revoked_session("u-2", "sid-1"), "1", None)
        .await
        .unwrap();
    let revoked = Admit {
        user: "u-2",
        ..base("e")
    };
    assert_eq!(admit(&store, revoked).await, Admission::Revoked);
}

async fn admit_stream_rereads_the_session_and_role_for_a_resume(store: Store) {
    let now_secs = UnixTime::now().millis() / 1000;
    let resume = |user, owner| Admit {
        user,
        issued_at_secs: now_secs,
        recheck_owner: Some(owner),
        place: "p",
        max_streams: 5,
        quota: "100/60s",
        released: &[],
    };
    let keys = store.keys();
    // No session: ended.
    assert_eq!(
        admit(&store, resume("u-1", "u-1")).await,
        Admission::SessionEnded
    );
    store
        .set(&keys.session("u-1", "sid-1"), "{}", None)
        .await
        .unwrap();
    store
        .set(&keys.user("u-1"), r#"{"roles":["user"]}"#, None)
        .await
        .unwrap();
    assert_eq!(
        admit(&store, resume("u-1", "u-1")).await,
        Admission::Admitted
    );
    assert_eq!(
        admit(&store, resume("u-1", "someone")).await,
        Admission::NotOwner
    );
    store
        .set(&keys.user("u-1"), r#"{"roles":["user","admin"]}"#, None)
        .await
        .unwrap();
    assert_eq!(
        admit(&store, resume("u-1", "someone")).await,
        Admission::Admitted
    );
    // A user record that does not read as one grants nothing.
    store.set(&keys.user("u-1"), "junk", None).await.unwrap();
    assert_eq!(
        admit(&store, resume("u-1", "u-1")).await,
        Admission::SessionEnded
    );
}

async fn mint_once(
    store: &Store,
    admission: Option<&MintAdmission<'_>>,
    token: Option<&NewStreamToken<'_>>,
) -> MintOutcome {
    let before = store.round_trips();
    let outcome = store.mint_stream_token(admission, token).await.unwrap();
    assert_eq!(store.round_trips() - before, 1, "one round trip");
    outcome
}

async fn mint_stream_token_answers_each_side_in_one_round_trip(store: Store) {
    let (id, _) = new_generation(&store, 0).await;
    let budget = store.keys().rate_limit("u:owner-1", "free");
    let admission = MintAdmission {
        user_id: OWNER,
        session_id: "sid-1",
        rate_limit_key: &budget,
        gcra: Quota::parse("2/60s").unwrap().gcra(),
    };
    let grant = serde_json::to_string(&grant(OWNER, &id, GrantKind::Token)).unwrap();
    let token = |generation_id, user_id, admin, digest| NewStreamToken {
        generation_id,
        user_id,
        admin,
        digest,
        grant: &grant,
        ttl: Duration::from_secs(60),
    };
    // The user's side alone: a decision, and no session yet.
    let outcome = mint_once(&store, Some(&admission), None).await;
    let (decision, session) = outcome.admission.clone().unwrap();
    assert!(decision.allowed);
    assert_eq!((session, outcome.minted), (None, None));

    // Both sides together: the session as stored, and the token stored.
    store
        .set(
            &store.keys().session(OWNER, "sid-1"),
            r#"{"created_at":1}"#,
            None,
        )
        .await
        .unwrap();
    let digest = StreamSecret::generate().unwrap().digest();
    let outcome = mint_once(
        &store,
        Some(&admission),
        Some(&token(id.as_str(), OWNER, false, &digest)),
    )
    .await;
    assert_eq!(
        outcome
            .admission
            .as_ref()
            .map(|(d, s)| (d.allowed, s.as_deref())),
        Some((true, Some(r#"{"created_at":1}"#)))
    );
    assert_eq!(outcome.minted, Some(Minted::Stored));
    assert_eq!(
        store
            .get(&store.keys().stream_token(id.as_str(), &digest))
            .await
            .unwrap()
            .as_deref(),
        Some(grant.as_str())
    );
    assert_eq!(
        store
            .get(&store.keys().stream_token_state(id.as_str(), &digest))
            .await
            .unwrap()
            .as_deref(),
        Some("issued")
    );
    // The same digest again: a collision, the first grant untouched.
    let again = mint_once(
        &store,
        None,
        Some(&token(id.as_str(), OWNER, false, &digest)),
    )
    .await;
    assert_eq!(
        again,
        MintOutcome {
            admission: None,
            minted: Some(Minted::Collision)
        }
    );

    // The budget of 2 is spent: refused, and the generation's side still answers.
    let fresh = StreamSecret::generate().unwrap().digest();
    let outcome = mint_once(
        &store,
        Some(&admission),
        Some(&token(id.as_str(), "intruder", false, &fresh)),
    )
    .await;
    assert!(!outcome.admission.unwrap().0.allowed);
    assert_eq!(outcome.minted, Some(Minted::NotOwner));
    assert!(
        !store
            .exists(&store.keys().stream_token(id.as_str(), &fresh))
            .await
            .unwrap(),
        "nothing stored for another user's generation"
    );
    let admin = mint_once(
        &store,
        None,
        Some(&token(id.as_str(), "an-admin", true, &fresh)),
    )
    .await;
    assert_eq!(admin.minted, Some(Minted::Stored));
    let missing = GenerationId::generate();
    let gone = mint_once(
        &store,
        None,
        Some(&token(missing.as_str(), OWNER, false, &fresh)),
    )
    .await;
    assert_eq!(gone.minted, Some(Minted::Gone));
}

async fn open_stream_reads_one_page_of_history(store: Store) {
    let (id, ids) = new_generation(&store, 5).await;
    let page_of = |after: Option<String>| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            let token = mint(&store, &grant(OWNER, &id, GrantKind::Token)).await;
            let next = StreamSecret::generate().unwrap().digest();
            let opened = store
                .open_stream(&StreamOpening {
                    generation_id: id.as_str(),
                    token: Some(&token),
                    cookie: None,
                    after: after.as_deref(),
                    page_size: 2,
                    next_resume: &next,
                    resume_ttl: RESUME_TTL,
                    now_ms: UnixTime::now().millis(),
                })
                .await
                .unwrap();
            match opened {
                StreamOpened::Taken {
                    found: GrantFound::Open { page, .. },
                    ..
                } => (
                    page.events
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect::<Vec<_>>(),
                    page.reset,
                ),
                other => panic!("not opened: {other:?}"),
            }
        }
    };
    assert_eq!(page_of(None).await, (ids[..2].to_vec(), false));
    assert_eq!(
        page_of(Some(ids[1].clone())).await,
        (ids[2..4].to_vec(), false)
    );
    assert_eq!(page_of(Some("1-0".into())).await, (ids[..2].to_vec(), true));
}

/// The status found beside a taken grant is read as `Generation::from_fields` reads
/// it: known ones as they are, none or an unknown one (a corrupt record) as `pending`.
async fn open_stream_reads_the_status_as_the_record_parser_does(store: Store) {
    for (stored, read) in [
        (Some("completed"), GenerationStatus::Completed),
        (None, GenerationStatus::Pending),
        (Some("paused"), GenerationStatus::Pending),
    ] {
        let id = GenerationId::generate();
        let mut fields = vec![("owner_id", OWNER.to_owned())];
        fields.extend(stored.map(|s| ("status", s.to_owned())));
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
        let token = mint(&store, &grant(OWNER, &id, GrantKind::Token)).await;
        let (opened, _) = open(&store, &id, Some(&token), None, None).await;
        let StreamOpened::Taken {
            found: GrantFound::Open { status, .. },
            ..
        } = opened
        else {
            panic!("not opened: {opened:?}");
        };
        assert_eq!(status, read, "stored {stored:?}");
    }
}
