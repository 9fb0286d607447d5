//! Failover under the services: a real Redis Cluster (three masters, one replica each,
//! a password on every node), two replicas of each service on it, and a master
//! SIGKILLed under them. What was acknowledged survives the promotion of its replica
//! (a revocation, a stream token's use, a 202 event), and while the cluster elects,
//! every answer is a success or 503 `store_unavailable` within `REDIS_TIMEOUT_MS`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authstream_client::{SseEvent, answer};
use authstream_proto::GenerationStatus::{Completed, Processing};
use authstream_proto::auth::{StreamTokenAnswer, TokenPair};
use authstream_proto::stream::{NewEventBody, Published};
use authstream_testkit::stack::*;
use authstream_testkit::{RedisCluster, assert_problem};
use reqwest::StatusCode;
use serde_json::Value;

use crate::cluster::two_replicas_each;

/// The services' `REDIS_TIMEOUT_MS` (the test stores' timeout, and the default).
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

/// What a loaded two-core machine may add to an answer bounded by `REDIS_TIMEOUT`
/// (a login adds its password hash, bounded by the hashing queue).
const MARGIN: Duration = Duration::from_millis(750);

/// How long a failover may take to be over, from the kill to a healed cluster:
/// `cluster-node-timeout` is 1.5 s; a loaded machine is slow to gossip.
const ELECTION_BOUND: Duration = Duration::from_secs(30);

/// SIGKILLs the master serving `key`'s slot; its port.
fn kill_master_of(cluster: &RedisCluster, key: &str) -> u16 {
    tokio::task::block_in_place(|| {
        let victim = cluster.master_of(key);
        assert_eq!(
            cluster.replicas_of(victim).len(),
            1,
            "the victim has its replica"
        );
        cluster.kill(victim);
        victim
    })
}

/// Waits until `CLUSTER NODES` shows another master serving `key`'s slot than
/// `victim` (its replica promoted) and every live node sees the cluster whole again.
async fn promoted(cluster: &RedisCluster, victim: u16, key: &str) -> Instant {
    let deadline = Instant::now() + ELECTION_BOUND;
    loop {
        let master = tokio::task::block_in_place(|| cluster.try_master_of(key));
        if master.is_some_and(|m| m != victim) {
            tokio::task::block_in_place(|| cluster.wait_healthy());
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no promotion within {ELECTION_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `send` again while it answers 503 `store_unavailable` (every other 503 or a
/// 5xx fails the test), for up to `ELECTION_BOUND`; the first other answer and how
/// many 503s came before it.
async fn past_503<F, Fut>(what: &str, mut send: F) -> (reqwest::Response, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    let deadline = Instant::now() + ELECTION_BOUND;
    let mut unavailable = 0;
    loop {
        let res = send().await;
        if res.status() != StatusCode::SERVICE_UNAVAILABLE {
            assert!(!res.status().is_server_error(), "{what}: {}", res.status());
            return (res, unavailable);
        }
        assert_problem(res, 503, "store_unavailable").await;
        unavailable += 1;
        assert!(
            Instant::now() < deadline,
            "{what}: still 503 after {ELECTION_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first confirmed write of a process also makes its connection for confirmed
/// writes (a cluster connection of its own, made on first use), which on a loaded
/// machine can outlast the timeout (503). Made here, before anything is timed or
/// killed: a revocation (of a throwaway service token) on each auth replica, and a
/// stream open on each stream replica.
async fn warm_up(stacks: [&Stack; 2], access: &str, generation: &str) {
    for stack in stacks {
        let (res, revoke_503s) = past_503("warm-up revoke", || async {
            let token = stack.service_token(BACKEND_CLIENT).await;
            sent(stack.revoke(&token)).await
        })
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let (res, open_503s) =
            past_503("warm-up open", || open(stack, access, generation, None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        if revoke_503s + open_503s > 0 {
            let logs = authstream_testkit::logs().contents();
            let last = logs.lines().rfind(|l| l.contains("store unavailable"));
            eprintln!("warm-up: {revoke_503s} + {open_503s} 503s, the last: {last:?}");
        }
    }
}

/// Mints a stream token of `generation` as the holder of `access` and opens the
/// stream with it (after `last_event_id`, when given): the opening's response, or the
/// minting's when that failed.
async fn open(
    stack: &Stack,
    access: &str,
    generation: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let id = generation_id(generation);
    let res = sent(stack.mint(access, generation)).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let minted: StreamTokenAnswer = res.json().await.unwrap();
    match last_event_id {
        Some(last) => sent(stack.stream.open_after(&id, &minted.sse_token, last)).await,
        None => sent(stack.stream.open(&id, &minted.sse_token)).await,
    }
}

/// The status and problem `code` of an answer (the code empty for a success, or for
/// an answer that is no problem document).
async fn verdict(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let problem = answer::problem(res).await.ok();
    let code = problem
        .map(|p| p.code.as_str().to_owned())
        .unwrap_or_default();
    (status, code)
}

/// An event id `<ms>-<seq>` as a pair that orders like the ids.
fn event_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap();
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// Sessions revoked just before and during a failover of their user's master, on
/// either auth replica and by each route (logout, session delete, `/auth/revoke`):
/// from the moment each answered success, its access token never validates again on
/// any replica, across the election and after it, its refresh token refreshes
/// nothing, and the store itself (what a process whose view of the revocation log is
/// stale asks) holds the revocation. A session never revoked still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_revoked_during_a_failover_never_validate_again_on_any_replica() {
    let cluster = RedisCluster::start(3, 1);
    let (a, b) = two_replicas_each(&cluster).await;
    let stacks = [&a, &b];
    let user = a.signup().await;
    a.create_generation(&user.access, "failover-warm-up").await;
    warm_up(stacks, &user.access, "failover-warm-up").await;
    let early = b.login(&user.email).await;
    let deleted = a.login(&user.email).await;
    let by_token = b.login(&user.email).await;
    let kept = a.login(&user.email).await;
    // Revoked: just before the kill, then during the election by logout, by session
    // delete, by RFC 7009 revoke of the refresh token.
    let revoked = [&early, &user, &deleted, &by_token];
    let revoked_at: Vec<Mutex<Option<Instant>>> =
        revoked.iter().map(|_| Mutex::new(None)).collect();
    let user_key = a.store.keys().user(&user.user_id);

    // Confirmed by the replica before its 204: the promotion cannot undo it.
    let res = sent(b.bearer(&early.access).logout()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    *revoked_at[0].lock().unwrap() = Some(Instant::now());
    let victim = kill_master_of(&cluster, &user_key);

    // Every token checked on both replicas, over and over, until told to stop:
    // (token index, replica, sent at, status, code).
    let stop = AtomicBool::new(false);
    let checks = Mutex::new(Vec::new());
    let checker = async {
        while !stop.load(Ordering::Relaxed) {
            for (i, session) in revoked.iter().chain([&&kept]).enumerate() {
                for (r, stack) in stacks.iter().enumerate() {
                    let at = Instant::now();
                    let validate = stack.bearer(&session.access).validate(None);
                    let (status, code) = verdict(sent(validate).await).await;
                    checks.lock().unwrap().push((i, r, at, status, code));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The three at once, each retried on 503 until it answers success. A 503 may
    // come after the write was made (the store answered too late): the retry then
    // finds it done, and says so.
    let revoking = async {
        let logout = async {
            let (res, unavailable) =
                past_503("logout", || sent(a.bearer(&user.access).logout())).await;
            let answer = verdict(res).await;
            let done = (StatusCode::UNAUTHORIZED, "token_revoked".to_owned());
            assert!(
                answer.0 == StatusCode::NO_CONTENT || (unavailable > 0 && answer == done),
                "logout after {unavailable} 503s: {answer:?}"
            );
            *revoked_at[1].lock().unwrap() = Some(Instant::now());
            unavailable
        };
        let delete = async {
            let (res, unavailable) = past_503("session delete", || {
                sent(b.bearer(&kept.access).delete_session(&deleted.session_id))
            })
            .await;
            let answer = verdict(res).await;
            let done = (StatusCode::NOT_FOUND, "not_found".to_owned());
            assert!(
                answer.0 == StatusCode::NO_CONTENT || (unavailable > 0 && answer == done),
                "session delete after {unavailable} 503s: {answer:?}"
            );
            *revoked_at[2].lock().unwrap() = Some(Instant::now());
            unavailable
        };
        let revoke = async {
            let (res, unavailable) = past_503("revoke", || sent(a.revoke(&by_token.refresh))).await;
            assert_eq!(res.status(), StatusCode::OK, "after {unavailable} 503s");
            *revoked_at[3].lock().unwrap() = Some(Instant::now());
            unavailable
        };
        let unavailable = tokio::join!(logout, delete, revoke);
        eprintln!("503s before success (logout, delete, revoke): {unavailable:?}");
        // Checked across the election and some seconds after it.
        promoted(&cluster, victim, &user_key).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(checker, revoking);

    // From the moment a revocation answered success, its token is refused as revoked
    // (or 503 while a check cannot be made) on every replica. Before that, anything
    // goes: a revocation answered 503 may be partly in force (its log entry written,
    // its markers not), so a replica may refuse the token and another, or the same
    // one with a stale view, accept it, until the retry completes it.
    let mut checks = checks.into_inner().unwrap();
    checks.sort_by_key(|(_, _, sent, ..)| *sent);
    let mut after = 0;
    let mut flips = 0;
    let mut refused = vec![false; revoked.len() + 1];
    for (i, r, sent, status, code) in &checks {
        let revoked_then = revoked_at
            .get(*i)
            .and_then(|at| *at.lock().unwrap())
            .is_some_and(|at| at <= *sent);
        match (status.as_u16(), code.as_str()) {
            (503, "store_unavailable") => {}
            (401, "token_revoked") if *i < revoked.len() => {
                after += usize::from(revoked_then);
                refused[*i] = true;
            }
            (200, _) if !revoked_then => flips += usize::from(refused[*i]),
            _ => panic!("token {i} on replica {r}: {status} {code:?} (revoked: {revoked_then})"),
        }
    }
    eprintln!("valid again before its revocation answered success: {flips} checks");
    assert!(after > 20, "{after} checks after the revocations");
    // After the election: refused for the right reason everywhere, the untouched
    // session valid everywhere, the revoked sessions' refresh tokens refused.
    for stack in stacks {
        for session in revoked {
            let validate = stack.bearer(&session.access).validate(None);
            let checked = verdict(sent(validate).await).await;
            assert_eq!(checked, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
            let refresh = stack.refresh(&session.refresh);
            let refreshed = verdict(sent(refresh).await).await;
            assert_eq!(
                refreshed,
                (StatusCode::UNAUTHORIZED, "token_revoked".into())
            );
        }
        let validate = stack.bearer(&kept.access).validate(None);
        assert_eq!(sent(validate).await.status(), StatusCode::OK);
    }
    // The store holds every revocation: a process whose view of the log is stale
    // asks it, and must get the same answer.
    for session in revoked {
        let c = claims_of(&session.access);
        let in_store = a
            .store
            .revoked_in_store(&user.user_id, &c.reg.jti, Some(&c.sid), c.reg.iat)
            .await
            .unwrap();
        assert!(in_store, "the store lost the revocation of {}", c.sid);
    }
}

/// A stream token used (its consumption confirmed by the replica) just before the
/// master of its slot is SIGKILLed stays used after the replica's promotion: opening
/// with it again, on either stream replica, is 401 `invalid_stream_token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_token_used_just_before_its_master_is_killed_stays_used_after_the_election() {
    let cluster = RedisCluster::start(3, 1);
    let (a, b) = two_replicas_each(&cluster).await;
    let user = a.signup().await;
    let generation = "failover-used-1";
    let id = a
        .create_generation(&user.access, generation)
        .await
        .generation_id;
    warm_up([&a, &b], &user.access, generation).await;
    let token = a.stream_token(&user.access, generation).await.sse_token;
    let res = sent(a.stream.open(&id, &token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let key = a.store.keys().generation(generation);
    let victim = kill_master_of(&cluster, &key);
    drop(res);
    promoted(&cluster, victim, &key).await;

    for stack in [&b, &a] {
        let (res, _) = past_503("open again", || sent(stack.stream.open(&id, &token))).await;
        assert_eq!(
            verdict(res).await,
            (StatusCode::UNAUTHORIZED, "invalid_stream_token".into())
        );
    }
    // The generation itself streams again on the promoted replica, with a new token.
    let (res, _) = past_503("mint", || sent(b.mint(&user.access, generation))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh: StreamTokenAnswer = res.json().await.unwrap();
    let res = sent(b.stream.open(&id, &fresh.sse_token)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// A stream follows a generation while events are published through both stream
/// replicas (each 503 retried); the master of the generation's slot is SIGKILLed
/// mid-traffic; after the election the client reconnects with a new stream token and
/// `Last-Event-ID` on the other stream replica. Every event that was answered 202
/// arrives exactly once, in publishing order, and the stream ends with the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_by_last_event_id_across_a_master_kill_with_nothing_lost_or_doubled() {
    const EVENTS: u64 = 40;
    const KILL_AFTER: usize = 10;
    let cluster = RedisCluster::start(3, 1);
    let (a, b) = two_replicas_each(&cluster).await;
    let user = a.signup().await;
    let generation = "failover-resume-1";
    a.create_generation(&user.access, generation).await;
    warm_up([&a, &b], &user.access, generation).await;
    let backend = a.service_token(BACKEND_CLIENT).await;
    let key = a.store.keys().generation(generation);

    // (id, seq) of every 202, in order; the last is the completed event.
    let acked: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    let retried = AtomicUsize::new(0);
    let publishing = async {
        for seq in 0..=EVENTS {
            let stack = [&a, &b][seq as usize % 2];
            let mut body = match seq {
                EVENTS => NewEventBody::new(Completed),
                _ => NewEventBody::new(Processing),
            };
            body.progress = Some(seq as f64 / EVENTS as f64);
            body.extra.insert("seq".to_owned(), seq.into());
            let (res, unavailable) = past_503("publish", || {
                sent(stack.publish(&backend, generation, &body))
            })
            .await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            retried.fetch_add(unavailable, Ordering::Relaxed);
            let published: Published = res.json().await.unwrap();
            acked.lock().unwrap().push((published.id, seq));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };

    // What the client received, over both connections: (id, seq).
    let mut received: Vec<(String, u64)> = Vec::new();
    // The publisher's own field, passed through.
    let keep = |received: &mut Vec<(String, u64)>, event: SseEvent| {
        if let Some(seq) = event.data.extra.get("seq").and_then(Value::as_u64) {
            received.push((event.id, seq));
        }
    };
    let following = async {
        let mut first = b.follow(&user.access, generation).await;
        while acked.lock().unwrap().len() < KILL_AFTER {
            if let Ok(Ok(Some(event))) =
                tokio::time::timeout(Duration::from_millis(50), first.reader().next()).await
            {
                keep(&mut received, event);
            }
        }
        let victim = kill_master_of(&cluster, &key);
        // Read on until the promotion shows (or the server ends the stream).
        let election = promoted(&cluster, victim, &key);
        tokio::pin!(election);
        loop {
            tokio::select! {
                _ = &mut election => break,
                event = first.reader().next() => match event {
                    Ok(Some(event)) => keep(&mut received, event),
                    // Ended (or cut) by the server.
                    Ok(None) | Err(_) => {
                        (&mut election).await;
                        break;
                    }
                },
            }
        }
        drop(first);
        // Reconnect on the other stream replica, after the last event received.
        let last = received
            .last()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let (res, _) = past_503("resume", || open(&a, &user.access, generation, Some(&last))).await;
        assert_eq!(res.status(), StatusCode::OK);
        let mut second = OpenStream::new(res);
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(Some(event)) = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            second.reader().next(),
        )
        .await
        .expect("the stream ends with the completed event within 60 s")
        {
            keep(&mut received, event);
        }
    };
    tokio::join!(publishing, following);

    let acked = acked.into_inner().unwrap();
    assert_eq!(acked.len() as u64, EVENTS + 1);
    // In order, none twice: ids strictly increasing over both connections.
    for pair in received.windows(2) {
        assert!(
            event_id(&pair[0].0) < event_id(&pair[1].0),
            "out of order or doubled: {pair:?}"
        );
    }
    // Nothing acknowledged lost: every 202 received, and in publishing order.
    let got: HashMap<&str, u64> = received.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    for (id, seq) in &acked {
        assert_eq!(got.get(id.as_str()), Some(seq), "event {seq} ({id}) lost");
    }
    assert_eq!(
        received.last().map(|(_, s)| *s),
        Some(EVENTS),
        "ends with completed"
    );
    // An event answered 503 may still have been stored (its retry then stored it
    // again): at most the retries' count of extras.
    assert!(
        received.len() - acked.len() <= retried.load(Ordering::Relaxed),
        "{} received, {} acknowledged",
        received.len(),
        acked.len()
    );
    eprintln!(
        "resume: {} acknowledged, {} received, {} publishes answered 503",
        acked.len(),
        received.len(),
        retried.load(Ordering::Relaxed)
    );
}

/// One answer of the mixed traffic: what was asked, the status (0: no answer within
/// 10 s, a hang), the problem code, how long the status took.
#[derive(Debug)]
struct Answer {
    kind: &'static str,
    status: u16,
    code: String,
    took: Duration,
}

/// Sends `request` and notes its answer; the response when it was a success.
async fn ask(
    answers: &Mutex<Vec<Answer>>,
    kind: &'static str,
    request: impl Future<Output = reqwest::Response>,
) -> Option<reqwest::Response> {
    let started = Instant::now();
    let Ok(res) = tokio::time::timeout(Duration::from_secs(10), request).await else {
        let hang = Answer {
            kind,
            status: 0,
            code: "hang".into(),
            took: started.elapsed(),
        };
        answers.lock().unwrap().push(hang);
        return None;
    };
    let took = started.elapsed();
    let status = res.status().as_u16();
    if res.status().is_success() {
        let code = String::new();
        answers.lock().unwrap().push(Answer {
            kind,
            status,
            code,
            took,
        });
        return Some(res);
    }
    let (_, code) = verdict(res).await;
    answers.lock().unwrap().push(Answer {
        kind,
        status,
        code,
        took,
    });
    None
}

/// One user's round of every kind of request, alternating the replicas: login,
/// validate, refresh, mint, open, publish, revoke (the session, by its refresh
/// token). A step that fails is not retried; the steps that need it are skipped.
async fn round(
    stacks: [&Stack; 2],
    turn: usize,
    email: &str,
    generation: &str,
    backend: &str,
    answers: &Mutex<Vec<Answer>>,
) {
    let (auth, other) = (stacks[turn % 2], stacks[(turn + 1) % 2]);
    let login = auth.login_as(email, PASSWORD);
    let Some(res) = ask(answers, "login", sent(login)).await else {
        return;
    };
    let mut session = User::signed_in(email, res.json::<TokenPair>().await.unwrap());
    let validate = other.bearer(&session.access).validate(None);
    ask(answers, "validate", sent(validate)).await;
    let refresh = other.refresh(&session.refresh);
    if let Some(res) = ask(answers, "refresh", sent(refresh)).await {
        session = User::signed_in(email, res.json::<TokenPair>().await.unwrap());
    }
    let id = generation_id(generation);
    let mint = auth.mint(&session.access, generation);
    if let Some(res) = ask(answers, "mint", sent(mint)).await {
        let minted: StreamTokenAnswer = res.json().await.unwrap();
        // Its status is the answer; the stream closes as the response is dropped.
        let open = other.stream.open(&id, &minted.sse_token);
        ask(answers, "open", sent(open)).await;
    }
    let body = event(Processing, 0.5);
    let publish = auth.publish(backend, generation, &body);
    ask(answers, "publish", sent(publish)).await;
    let revoke = other.revoke(&session.refresh);
    ask(answers, "revoke", sent(revoke)).await;
}

/// A master SIGKILLed under concurrent traffic of every kind (login, validate,
/// refresh, mint, open, publish, revoke) through both replicas of each service:
/// every answer is a success or 503 `store_unavailable`, within `REDIS_TIMEOUT_MS`
/// (and a margin for a loaded machine), never another error and never a hang. Within
/// seconds of the election every kind succeeds again, on the same in-process services
/// (nothing restarted: they answer on the addresses they were started on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_failover_every_answer_is_a_success_or_503_in_time_and_all_works_after() {
    const USERS: usize = 6;
    let cluster = RedisCluster::start(3, 1);
    let (a, b) = two_replicas_each(&cluster).await;
    let stacks = [&a, &b];
    let backend = a.service_token(BACKEND_CLIENT).await;
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = stacks[i % 2].signup().await;
        let generation = format!("failover-mix-{i}");
        a.create_generation(&user.access, &generation).await;
        users.push((user, generation));
    }
    warm_up(stacks, &users[0].0.access, &users[0].1).await;
    let victim_key = a.store.keys().user(&users[0].0.user_id);
    let on_victim = users
        .iter()
        .filter(|(u, _)| {
            cluster.master_of(&a.store.keys().user(&u.user_id)) == cluster.master_of(&victim_key)
        })
        .count();

    let answers = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let traffic = users.iter().enumerate().map(|(i, (user, generation))| {
        let (answers, stop, backend) = (&answers, &stop, &backend);
        async move {
            let mut turn = i;
            while !stop.load(Ordering::Relaxed) {
                round(stacks, turn, &user.email, generation, backend, answers).await;
                turn += 1;
            }
        }
    });
    let failover = async {
        // Traffic flows before the kill, during the election and some seconds after.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim = kill_master_of(&cluster, &victim_key);
        let killed = Instant::now();
        let elected = promoted(&cluster, victim, &victim_key).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        (killed, elected)
    };
    let (_, (killed, elected)) = tokio::join!(futures_util::future::join_all(traffic), failover);

    let answers = answers.into_inner().unwrap();
    // (answers, 503s, slowest success, slowest 503) of each kind.
    let mut by_kind: std::collections::BTreeMap<&str, (usize, usize, Duration, Duration)> =
        Default::default();
    for answer in &answers {
        let entry = by_kind.entry(answer.kind).or_default();
        entry.0 += 1;
        if answer.status == 503 {
            entry.1 += 1;
            entry.3 = entry.3.max(answer.took);
        } else {
            entry.2 = entry.2.max(answer.took);
        }
    }
    eprintln!(
        "election {:?} after the kill; {on_victim} of {USERS} users on the victim; \
         (answers, 503s, slowest success, slowest 503) by kind: {by_kind:?}",
        elected - killed
    );
    for answer in &answers {
        let fine = (200..300).contains(&answer.status)
            || (answer.status == 503 && answer.code == "store_unavailable");
        assert!(fine, "{answer:?}");
        assert!(
            answer.took <= REDIS_TIMEOUT + MARGIN,
            "too slow: {answer:?}"
        );
    }
    for kind in [
        "login", "validate", "refresh", "mint", "open", "publish", "revoke",
    ] {
        let (count, unavailable, ..) = by_kind.get(kind).copied().unwrap_or_default();
        assert!(count > unavailable, "{kind}: no success in {count} answers");
    }
    assert!(
        answers.iter().any(|a| a.status == 503),
        "the kill was felt (503s while the cluster elected)"
    );

    // After the election: a round of every user succeeds in full, within seconds.
    let deadline = elected + Duration::from_secs(10);
    for (i, (user, generation)) in users.iter().enumerate() {
        loop {
            let answers = Mutex::new(Vec::new());
            round(stacks, i, &user.email, generation, &backend, &answers).await;
            let answers = answers.into_inner().unwrap();
            if answers.len() == 7 && answers.iter().all(|a| (200..300).contains(&a.status)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not all works after the election: {answers:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The same services, on the addresses they were started on, ready.
    for stack in stacks {
        stack.auth.healthz().await.unwrap();
        stack.stream.healthz().await.unwrap();
    }
    for stack in stacks {
        stack.auth.readyz().await.unwrap();
    }
}
