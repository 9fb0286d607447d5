//! The stream service's view of the auth service's keys: the JWKS fetched on a timer
//! that honours `Cache-Control: max-age`, so a key the auth service stops publishing
//! stops verifying; no redirects followed; at most 64 KiB read.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use authstream_proto::claims::AccessClaims;
use authstream_runtime::clock::UnixTime;
use authstream_security::jwt::{KeySource, RemoteKeys, TokenError, Validator};
use authstream_security::keys::{Algorithm, KeySet};
use authstream_testkit::redis_store;
use parking_lot::Mutex;
use serde_json::{Value, json};

use authstream_testkit::jwt::{Jwt, settings};

/// What the fake auth service answers at `/.well-known/jwks.json`.
#[derive(Clone)]
enum Answer {
    Keys {
        jwks: Value,
        cache_control: &'static str,
    },
    Redirect(&'static str),
}

struct FakeAuth {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeAuth {
    fn start(answer: Answer) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (a, f) = (answer.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let (a, f) = (a.clone(), f.clone());
            App::new()
                .route(
                    "/.well-known/jwks.json",
                    web::get().to(move || {
                        f.fetch_add(1, Ordering::SeqCst);
                        let answer = a.lock().clone();
                        async move {
                            match answer {
                                Answer::Keys {
                                    jwks,
                                    cache_control,
                                } => HttpResponse::Ok()
                                    .insert_header(("Cache-Control", cache_control))
                                    .json(jwks),
                                Answer::Redirect(to) => HttpResponse::Found()
                                    .insert_header(("Location", to))
                                    .finish(),
                            }
                        }
                    }),
                )
                .route(
                    "/elsewhere/.well-known/jwks.json",
                    web::get().to(|| async { HttpResponse::Ok().json(json!({"keys": []})) }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            url,
            answer,
            fetches,
        }
    }

    fn serve(&self, answer: Answer) {
        *self.answer.lock() = answer;
    }
}

fn keys(jwt: &Jwt, cache_control: &'static str) -> Answer {
    Answer::Keys {
        jwks: jwt.keys.jwks_json(),
        cache_control,
    }
}

fn remote_validator(url: &str, max_refresh: Duration) -> Validator {
    let remote = RemoteKeys::with_refresh(url, Duration::from_millis(100), max_refresh).unwrap();
    Validator::new(
        Algorithm::EdDSA,
        KeySource::Remote(Arc::new(remote)),
        settings(),
        redis_store(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_auth_service_stops_publishing_stops_verifying_within_max_age() {
    let old = Jwt::new(redis_store());
    let auth = FakeAuth::start(keys(&old, "public, max-age=1"));
    // A long ceiling: the one-second max-age of the answers is what sets the pace.
    let validator = remote_validator(&auth.url, Duration::from_secs(60));
    let now = UnixTime::now();
    let (token, _) = old.access("user-1", "sid-1", now);
    validator
        .validate::<AccessClaims>(&token, now)
        .await
        .expect("the published key verifies");

    // The old key is retired: only the new one is published. Its kid stays cached,
    // so only the timer can notice.
    let new = Jwt::with_keys(Arc::new(KeySet::ephemeral().unwrap()), redis_store());
    auth.serve(keys(&new, "public, max-age=1"));
    let retired_at = Instant::now();
    let refused = loop {
        match validator
            .validate::<AccessClaims>(&token, UnixTime::now())
            .await
        {
            Err(e) => break e,
            Ok(_) if retired_at.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => panic!("a retired key still verifies after 10 s"),
        }
    };
    assert!(matches!(refused, TokenError::UnknownKey), "{refused:?}");
    let (fresh, _) = new.access("user-1", "sid-2", UnixTime::now());
    validator
        .validate::<AccessClaims>(&fresh, UnixTime::now())
        .await
        .expect("the new key verifies");
    assert!(auth.fetches.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_max_age_the_jwks_is_refetched_at_the_configured_interval() {
    let old = Jwt::new(redis_store());
    let auth = FakeAuth::start(keys(&old, "no-transform"));
    let validator = remote_validator(&auth.url, Duration::from_millis(300));
    let (token, _) = old.access("user-1", "sid-1", UnixTime::now());
    validator
        .validate::<AccessClaims>(&token, UnixTime::now())
        .await
        .unwrap();
    let before = auth.fetches.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = auth.fetches.load(Ordering::SeqCst);
    assert!(after >= before + 2, "timed fetches: {before} then {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_fetch_follows_no_redirect() {
    let jwt = Jwt::new(redis_store());
    let auth = FakeAuth::start(Answer::Redirect("/elsewhere/.well-known/jwks.json"));
    let validator = remote_validator(&auth.url, Duration::from_secs(60));
    let (token, _) = jwt.access("user-1", "sid-1", UnixTime::now());
    let err = validator
        .validate::<AccessClaims>(&token, UnixTime::now())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::KeysUnavailable), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_over_64_kib_is_refused_and_one_under_it_is_read() {
    let jwt = Jwt::new(redis_store());
    let padded = |bytes: usize| {
        let mut jwks = jwt.keys.jwks_json();
        jwks["padding"] = json!("x".repeat(bytes));
        Answer::Keys {
            jwks,
            cache_control: "max-age=60",
        }
    };
    let (token, _) = jwt.access("user-1", "sid-1", UnixTime::now());

    let auth = FakeAuth::start(padded(65 * 1024));
    let validator = remote_validator(&auth.url, Duration::from_secs(60));
    let err = validator
        .validate::<AccessClaims>(&token, UnixTime::now())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::KeysUnavailable), "{err:?}");

    let auth = FakeAuth::start(padded(60 * 1024));
    let validator = remote_validator(&auth.url, Duration::from_secs(60));
    validator
        .validate::<AccessClaims>(&token, UnixTime::now())
        .await
        .expect("a 60 KiB JWKS is read");
}

/// Every log line of the JWKS fetch names its URL without credentials or query
/// string: neither the fetch's own message nor the HTTP client's error repeats them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_fetch_logs_its_url_without_credentials_or_query() {
    let logs = authstream_testkit::logs();
    // A fetch that is answered (with a redirect, which is refused)...
    let answered = FakeAuth::start(Answer::Redirect("/elsewhere/.well-known/jwks.json"));
    let answered_port = answered.url.rsplit(':').next().unwrap().to_owned();
    // ...and one that cannot connect at all.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let mut remotes = Vec::new();
    for port in [&answered_port, &closed_port] {
        let url = format!("http://jwks-user:hunter2@127.0.0.1:{port}/?key=s3cr3t&x=1");
        remotes.push(RemoteKeys::new(&url, Duration::from_millis(100)).unwrap());
    }
    let lines = |port: &str| {
        let needle = format!("127.0.0.1:{port}/");
        logs.contents()
            .lines()
            .filter(|l| l.contains("cannot fetch the JWKS") && l.contains(&needle))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    while (lines(&answered_port).is_empty() || lines(&closed_port).is_empty())
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The fetch kept the query: the fake auth service was asked.
    assert!(answered.fetches.load(Ordering::SeqCst) >= 1);
    for port in [&answered_port, &closed_port] {
        let lines = lines(port);
        assert!(!lines.is_empty(), "no log line of the fetch from {port}");
        for line in lines {
            assert!(line.contains(".well-known/jwks.json"), "{line}");
            for secret in ["jwks-user", "hunter2", "s3cr3t", "key=", "x=1"] {
                assert!(!line.contains(secret), "{secret} logged: {line}");
            }
        }
    }
    drop(remotes);
}
