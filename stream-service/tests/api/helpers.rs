//! `spawn_app()` and the helpers every test uses: a stream-service on port 0 over a
//! real Redis with a fresh key prefix, local signing keys for service tokens, and
//! stream tokens minted straight into the store.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;
use authstream_proto::claims::{AccessClaims, ServiceClaims, Tier, TokenType};
use authstream_runtime::UnixTime;
use authstream_security::jwt::{KeySource, Signer, new_jti};
use authstream_security::keys::KeySet;
use authstream_store::generations::{self, GenerationId};
use authstream_store::streams::{self, GrantKind, StreamGrant, StreamSecret};
use authstream_store::{RedisStore, Store};
use eventsource_stream::{EventStreamError, Eventsource as _};
use futures_util::{Stream, StreamExt as _};
use serde_json::{Value, json};
use stream_service::{Application, Settings, Stopper, StreamState};

/// How long a test waits for something that should come promptly before failing.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub store: Store,
    pub keys: Arc<KeySet>,
    pub signer: Signer,
    pub state: web::Data<StreamState>,
    pub stopper: Stopper,
    pub http: reqwest::Client,
    /// Every stream token and resume grant this test saw: none may reach the store or the logs.
    secrets: Mutex<Vec<String>>,
    /// This test's turn on the process-wide metrics (`authstream_testkit::turns`).
    _turn: authstream_testkit::turns::MetricsTurn,
}

/// A stream-service with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// With extra environment variables, e.g. `("EVENT_HISTORY_MAX", "3")`.
pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    spawn_app_on(authstream_testkit::redis_store(), keys, env).await
}

/// For tests that push megabytes through Redis: on two busy cores the default 500 ms
/// store timeout can pass, which would be a 503 unrelated to what is tested.
pub async fn spawn_patient_app_with(env: &[(&str, &str)]) -> TestApp {
    let store = Store::redis(
        RedisStore::connect(
            &authstream_testkit::shared_redis().url(),
            Duration::from_secs(3),
        )
        .unwrap(),
        &authstream_testkit::unique_prefix(),
    );
    spawn_app_on(store, Arc::new(KeySet::ephemeral().unwrap()), env).await
}

/// On a given store (another replica, or a dedicated Redis) with given keys.
pub async fn spawn_app_on(store: Store, keys: Arc<KeySet>, env: &[(&str, &str)]) -> TestApp {
    // Installed before anything logs, so that every line is captured.
    authstream_testkit::logs();
    let turn = authstream_testkit::turns::shared().await;
    let mut vars: HashMap<String, String> = [
        ("STREAM_BIND", "127.0.0.1:0"),
        // Never fetched: the keys are local.
        ("AUTH_URL", "http://127.0.0.1:9"),
        ("SSE_KEEPALIVE_SECS", "1"),
    ]
    .iter()
    .chain(&authstream_testkit::GENEROUS_RATE_LIMITS)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let settings = Settings::from_env(&vars).unwrap();
    let signer = Signer::new(keys.clone(), settings.common.jwt.clone());
    let app = Application::build_with(
        settings.clone(),
        store.clone(),
        KeySource::Local(keys.clone()),
    )
    .unwrap();
    let port = app.port();
    let state = app.state();
    let stopper = app.stopper();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        store,
        keys,
        signer,
        state,
        stopper,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        secrets: Mutex::new(Vec::new()),
        _turn: turn,
    }
}

/// A second replica: the same Redis and key prefix, its own connections and hub.
pub async fn spawn_replica(of: &TestApp) -> TestApp {
    spawn_replica_with(of, &[]).await
}

pub async fn spawn_replica_with(of: &TestApp, env: &[(&str, &str)]) -> TestApp {
    let store = authstream_testkit::redis_store_sharing(
        &authstream_testkit::shared_redis().url(),
        of.store.keys().prefix(),
    );
    spawn_app_on(store, of.keys.clone(), env).await
}

pub fn grant(user_id: &str, session_id: &str, generation_id: &str) -> StreamGrant {
    StreamGrant {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        generation_id: generation_id.to_owned(),
        issued_at: UnixTime::now().millis(),
        client_ip: None,
        admin: false,
        tier: Default::default(),
        kind: GrantKind::Token,
        session_expires_at: UnixTime::now().millis() + 3_600_000,
        expires_at: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn stream_path(generation_id: &str) -> String {
        format!("/generations/generate/{generation_id}/stream")
    }

    /// A new generation owned by `owner`.
    pub async fn create_generation(&self, owner: &str) -> String {
        let id = GenerationId::generate();
        generations::create(
            &self.store,
            &id,
            owner,
            UnixTime::now(),
            Duration::from_secs(600),
        )
        .await
        .unwrap()
        .unwrap();
        id.to_string()
    }

    /// Mints a stream token the way the auth service does, for a holder whose
    /// session and user exist (unless the test made them otherwise).
    pub async fn mint(&self, grant: &StreamGrant, ttl: Duration) -> String {
        self.ensure_holder(&grant.user_id, &grant.session_id, &[])
            .await;
        let secret = streams::mint(&self.store, grant, ttl, UnixTime::now())
            .await
            .unwrap();
        self.remember(secret.expose());
        secret.expose().to_owned()
    }

    /// A 60-second token of `user` (session `session`) for `generation_id`.
    pub async fn token(&self, user: &str, session: &str, generation_id: &str) -> String {
        self.mint(
            &grant(user, session, generation_id),
            Duration::from_secs(60),
        )
        .await
    }

    /// The session record and the user record (with `roles`) the auth service keeps,
    /// as far as a resume reads them; an existing user keeps its roles.
    pub async fn ensure_holder(&self, user: &str, session: &str, roles: &[&str]) {
        let keys = self.store.keys();
        self.store
            .set_nx(&keys.session(user, session), "{}", Duration::from_secs(600))
            .await
            .unwrap();
        let record = json!({ "user_id": user, "roles": roles }).to_string();
        self.store
            .set_nx_no_expiry(&keys.user(user), &record)
            .await
            .unwrap();
    }

    /// Replaces the user's roles, as an administrator's `PATCH /auth/users` does.
    pub async fn set_roles(&self, user: &str, roles: &[&str]) {
        let record = json!({ "user_id": user, "roles": roles }).to_string();
        self.store
            .set(&self.store.keys().user(user), &record, None)
            .await
            .unwrap();
    }

    pub fn remember(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    pub fn secrets(&self) -> Vec<String> {
        self.secrets.lock().unwrap().clone()
    }

    pub fn service_token(&self, scopes: &[&str]) -> String {
        let reg = self.signer.registered(
            "service:backend",
            TokenType::Service,
            new_jti(),
            UnixTime::now(),
            Duration::from_secs(900),
        );
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.signer.sign(&ServiceClaims { reg, scopes }).unwrap()
    }

    pub fn access_token(&self, user: &str, session: &str) -> String {
        let reg = self.signer.registered(
            user,
            TokenType::Access,
            new_jti(),
            UnixTime::now(),
            Duration::from_secs(900),
        );
        self.signer
            .sign(&AccessClaims {
                reg,
                email: format!("{user}@example.com"),
                roles: Vec::new(),
                tier: Tier::Free,
                sid: session.to_owned(),
            })
            .unwrap()
    }

    /// `POST /generations/{id}/events` with a publishing service token.
    pub async fn publish(&self, generation_id: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/generations/{generation_id}/events")))
            .bearer_auth(self.service_token(&["events:publish"]))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Publishes a progress event and returns its id.
    pub async fn publish_ok(&self, generation_id: &str, status: &str, progress: f64) -> String {
        let res = self
            .publish(
                generation_id,
                &json!({ "status": status, "progress": progress, "stage": "work" }),
            )
            .await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `GET .../stream` with these query parameters (values here never need escaping).
    pub fn stream_request(
        &self,
        generation_id: &str,
        query: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.http
            .get(format!(
                "{}?{}",
                self.url(&Self::stream_path(generation_id)),
                query.join("&")
            ))
            .header("accept", "text/event-stream")
    }

    pub async fn open_stream(&self, generation_id: &str, token: &str) -> reqwest::Response {
        self.stream_request(generation_id, &[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// Reconnects as a browser does: the same URL (its token used) with the cookie.
    pub async fn reconnect(
        &self,
        generation_id: &str,
        token: &str,
        cookie: &str,
    ) -> reqwest::Response {
        self.stream_request(generation_id, &[("token", token)])
            .header("cookie", format!("as_resume={cookie}"))
            .send()
            .await
            .unwrap()
    }

    /// Opens a stream that must succeed, and remembers its resume cookie.
    pub async fn sse(&self, generation_id: &str, token: &str) -> SseClient {
        let res = self.open_stream(generation_id, token).await;
        self.sse_from(res)
    }

    pub fn sse_from(&self, res: reqwest::Response) -> SseClient {
        assert_eq!(res.status(), 200);
        let cookie = resume_cookie(&res).expect("a resume cookie");
        self.remember(&cookie);
        SseClient::new(res, cookie)
    }

    /// Nothing the test saw as a secret is in any key or value of the store, or in the logs.
    pub async fn assert_no_secrets_leaked(&self) {
        let secrets = self.secrets();
        assert!(!secrets.is_empty(), "the test should have seen secrets");
        let dump = self.store.debug_dump().await.unwrap();
        for (key, value) in &dump {
            for secret in &secrets {
                assert!(!key.contains(secret.as_str()), "a secret in key {key}");
                assert!(
                    !value.contains(secret.as_str()),
                    "a secret in the value of {key}"
                );
            }
        }
        let logs = authstream_testkit::logs().contents();
        for secret in &secrets {
            assert!(!logs.contains(secret.as_str()), "a secret in the logs");
        }
    }

    /// The value of a Prometheus sample, e.g. `authstream_stream_opens_total{...}`.
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        authstream_testkit::metric_sum(&text, prefix)
    }
}

impl TestApp {
    /// `authstream_stream_opens_total` of SSE opens with this `result`.
    pub async fn sse_opens(&self, result: &str) -> f64 {
        self.metric(&format!(
            "authstream_stream_opens_total{{transport=\"sse\",result=\"{result}\"}}"
        ))
        .await
    }
}

/// The `as_resume` value of a response's `Set-Cookie`.
pub fn resume_cookie(res: &reqwest::Response) -> Option<String> {
    set_cookie(res).and_then(|c| {
        c.split(';')
            .next()?
            .strip_prefix("as_resume=")
            .map(str::to_owned)
    })
}

pub fn set_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("as_resume="))
        .map(str::to_owned)
}

/// Asserts a problem+json answer with this status and code.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// One received SSE event.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub event: String,
    pub data: Value,
}

type EventStream = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

pub struct SseClient {
    events: EventStream,
    pub cookie: String,
    pub ended: bool,
}

impl SseClient {
    pub fn new(res: reqwest::Response, cookie: String) -> Self {
        Self {
            events: Box::pin(res.bytes_stream().eventsource()),
            cookie,
            ended: false,
        }
    }

    /// The next event, or `None` once the server ended the stream.
    pub async fn next(&mut self) -> Option<Received> {
        self.next_within(PATIENCE).await
    }

    pub async fn next_within(&mut self, patience: Duration) -> Option<Received> {
        let item = tokio::time::timeout(patience, self.events.next())
            .await
            .expect("no event in time");
        match item {
            Some(Ok(e)) => Some(Received {
                id: e.id,
                event: e.event,
                data: serde_json::from_str(&e.data).unwrap(),
            }),
            Some(Err(_)) | None => {
                self.ended = true;
                None
            }
        }
    }

    /// The next `n` events; panics if the stream ends first.
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await.expect("the stream ended early"));
        }
        out
    }

    /// Everything until the server ends the stream.
    pub async fn until_end(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// The ids of the progress events among `events`.
pub fn ids(events: &[Received]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.data["event"] == "progress")
        .map(|e| e.id.clone())
        .collect()
}

/// Enough events of `size` bytes to fill the largest send buffer the kernel may give
/// the server's socket (`tcp_wmem` max), plus the hub's queue, with room to spare.
pub fn events_to_overflow(size: usize) -> usize {
    let max_send_buffer = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    max_send_buffer / size + 64
}

/// A fresh random secret that was never minted.
pub fn unknown_secret() -> String {
    StreamSecret::generate().unwrap().expose().to_owned()
}
