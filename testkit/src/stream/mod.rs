//! The stream service on a free port over a real Redis with a fresh key prefix, and
//! its fixtures: local signing keys for service and access tokens, generations and
//! stream tokens minted straight into the store (as the auth service does), publishing
//! and opening streams over [`StreamClient`], and an open stream read with the client's
//! [`SseReader`] within a patience ([`OpenStream`]).
//!
//! Every stream token and resume grant a test sees is remembered, so that
//! [`StreamApp::assert_no_secrets_leaked`] can check none reached the store or the logs.

mod fixtures;
mod open;

pub use fixtures::*;
pub use open::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web;
use authstream_client::{Call, ErrorKind, SseEvent, SseReader, StreamClient, StreamQuery};
use authstream_proto::GenerationId;
use authstream_proto::claims::{AccessClaims, ServiceClaims, Tier, TokenType};
use authstream_proto::ops::{Readiness, ReadyStatus};
use authstream_proto::stream::{GenerationStatus, NewEventBody, StreamEventKind};
use authstream_runtime::UnixTime;
use authstream_security::jwt::{KeySource, Signer, new_jti};
use authstream_security::keys::KeySet;
use authstream_store::streams::{self, GrantKind, StreamGrant, StreamSecret};
use authstream_store::{RedisStore, Store, generations};
use reqwest::header::{ACCEPT, COOKIE, HeaderMap, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Map, Value, json};
use stream_service::{Application, Settings, Stopper, StreamState};

use crate::turns::MetricsTurn;

/// How long a test waits for something that should come promptly before failing.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The route of a stream open, as the client names it in errors.
const OPEN: &str = "GET /generations/generate/{generation_id}/stream";

/// A stream service of this test, with what its fixtures need.
pub struct StreamApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    pub port: u16,
    pub store: Store,
    pub keys: Arc<KeySet>,
    pub signer: Signer,
    pub state: web::Data<StreamState>,
    pub stopper: Stopper,
    /// The service's client, without a token.
    pub client: StreamClient,
    /// Every stream token and resume grant this test saw: none may reach the store or
    /// the logs.
    secrets: Mutex<Vec<String>>,
    /// This test's turn on the process-wide metrics (`crate::turns`).
    _turn: MetricsTurn,
}

/// The settings of a test service: a free port, keys never fetched, a keep-alive every
/// second, rate limits no ordinary test reaches; `env` adds or overrides variables,
/// e.g. `("EVENT_HISTORY_MAX", "3")`.
pub fn settings(env: &[(&str, &str)]) -> Settings {
    let vars: HashMap<String, String> = [
        ("STREAM_BIND", "127.0.0.1:0"),
        // Never fetched: the keys are local.
        ("AUTH_URL", "http://127.0.0.1:9"),
        ("SSE_KEEPALIVE_SECS", "1"),
    ]
    .iter()
    .chain(&crate::GENEROUS_RATE_LIMITS)
    .chain(env)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    Settings::from_env(&vars).unwrap()
}

/// A stream service with the default test configuration.
pub async fn spawn_app() -> StreamApp {
    spawn_app_with(&[]).await
}

/// With extra environment variables, e.g. `("EVENT_HISTORY_MAX", "3")`.
pub async fn spawn_app_with(env: &[(&str, &str)]) -> StreamApp {
    let keys = Arc::new(KeySet::ephemeral().unwrap());
    spawn_app_on(crate::redis_store(), keys, env).await
}

/// For tests that push megabytes through Redis: on two busy cores the default 500 ms
/// store timeout can pass, which would be a 503 unrelated to what is tested.
pub async fn spawn_patient_app_with(env: &[(&str, &str)]) -> StreamApp {
    let store = Store::redis(
        RedisStore::connect(&crate::shared_redis().url(), Duration::from_secs(3)).unwrap(),
        &crate::unique_prefix(),
    );
    spawn_app_on(store, Arc::new(KeySet::ephemeral().unwrap()), env).await
}

/// On a given store (another replica, or a dedicated Redis) with given keys.
pub async fn spawn_app_on(store: Store, keys: Arc<KeySet>, env: &[(&str, &str)]) -> StreamApp {
    // Installed before anything logs, so that every line is captured.
    crate::logs();
    let turn = crate::turns::shared().await;
    let settings = settings(env);
    let signer = Signer::new(keys.clone(), settings.common.jwt.clone());
    let app =
        Application::build_with(settings, store.clone(), KeySource::Local(keys.clone())).unwrap();
    let port = app.port();
    let state = app.state();
    let stopper = app.stopper();
    tokio::spawn(app.run_until_stopped());
    let address = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    StreamApp {
        client: StreamClient::new(http, &address),
        address,
        port,
        store,
        keys,
        signer,
        state,
        stopper,
        secrets: Mutex::new(Vec::new()),
        _turn: turn,
    }
}

/// A second replica: the same Redis and key prefix, its own connections and hub.
pub async fn spawn_replica(of: &StreamApp) -> StreamApp {
    spawn_replica_with(of, &[]).await
}

/// A second replica with extra environment variables.
pub async fn spawn_replica_with(of: &StreamApp, env: &[(&str, &str)]) -> StreamApp {
    let store = crate::redis_store_sharing(&crate::shared_redis().url(), of.store.keys().prefix());
    spawn_app_on(store, of.keys.clone(), env).await
}

impl StreamApp {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    /// A new generation owned by `owner`.
    pub async fn create_generation(&self, owner: &str) -> GenerationId {
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
        id
    }

    /// Mints a stream token the way the auth service does, for a holder whose session
    /// and user exist (unless the test made them otherwise).
    pub async fn mint(&self, grant: &StreamGrant, ttl: Duration) -> String {
        self.ensure_holder(&grant.user_id, &grant.session_id, &[])
            .await;
        let secret = streams::mint(&self.store, grant, ttl, UnixTime::now())
            .await
            .unwrap();
        self.remember(secret.expose());
        secret.expose().to_owned()
    }

    /// A 60-second token of `user` (session `session`) for `generation`.
    pub async fn token(&self, user: &str, session: &str, generation: &GenerationId) -> String {
        self.mint(&grant(user, session, generation), Duration::from_secs(60))
            .await
    }

    /// [`ensure_holder`] on this service's store.
    pub async fn ensure_holder(&self, user: &str, session: &str, roles: &[&str]) {
        ensure_holder(&self.store, user, session, roles).await;
    }

    /// Replaces the user's roles, as an administrator's `PATCH /auth/users` does.
    pub async fn set_roles(&self, user: &str, roles: &[&str]) {
        let record = json!({ "user_id": user, "roles": roles }).to_string();
        self.store
            .set(&self.store.keys().user(user), &record, None)
            .await
            .unwrap();
    }

    /// Counts `secret` among those that must not leak.
    pub fn remember(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    /// The secrets this test saw.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets.lock().unwrap().clone()
    }

    /// A service token of `service:backend` with `scopes`, signed with the service's
    /// keys.
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

    /// An access token of `user` in `session`, signed with the service's keys.
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

    /// The client with a fresh service token that may publish (`events:publish`).
    pub fn publisher(&self) -> StreamClient {
        self.client
            .with_token(&self.service_token(&["events:publish"]))
    }

    /// `POST /generations/{id}/events` by a publishing service: the raw response.
    pub async fn publish(&self, generation: &GenerationId, event: &NewEventBody) -> Response {
        self.publisher()
            .publish(generation, event)
            .send()
            .await
            .unwrap()
    }

    /// `POST /generations/{id}/events` by a publishing service, of any JSON to any
    /// id, for what the typed call cannot send (ill-formed ids, invalid bodies).
    pub fn publish_raw(&self, generation: &str) -> RequestBuilder {
        self.publisher()
            .request(Method::POST, &format!("/generations/{generation}/events"))
    }

    /// Publishes an event of `status` at `progress` and returns its id.
    pub async fn publish_ok(
        &self,
        generation: &GenerationId,
        status: GenerationStatus,
        progress: f64,
    ) -> String {
        self.publisher()
            .publish(generation, &event(status, progress))
            .await
            .unwrap()
            .id
    }

    /// Publishes a `processing` event at `progress` and returns its id.
    pub async fn progress(&self, generation: &GenerationId, progress: f64) -> String {
        self.publish_ok(generation, GenerationStatus::Processing, progress)
            .await
    }

    /// Publishes the `completed` event (progress 1.0) and returns its id.
    pub async fn complete(&self, generation: &GenerationId) -> String {
        self.publish_ok(generation, GenerationStatus::Completed, 1.0)
            .await
    }

    /// Opens `generation`'s stream with `token`: the raw response.
    pub async fn open_stream(&self, generation: &GenerationId, token: &str) -> Response {
        self.client.open(generation, token).send().await.unwrap()
    }

    /// A stream request the typed client cannot build: `generation` is the path
    /// segment as sent (ill-formed, percent-encoded), `query` the query as written.
    pub fn raw_stream_request(&self, generation: &str, query: &str) -> RequestBuilder {
        self.client
            .request(
                Method::GET,
                &format!("/generations/generate/{generation}/stream?{query}"),
            )
            .header(ACCEPT, "text/event-stream")
    }

    /// Opens a stream with `token` at the path segment `generation` as sent: the raw
    /// response.
    pub async fn open_stream_at(&self, generation: &str, token: &str) -> Response {
        self.raw_stream_request(generation, &format!("token={token}"))
            .send()
            .await
            .unwrap()
    }

    /// Resumes as a browser does with only its `as_resume` cookie (add a
    /// `Last-Event-ID` or another header on the call).
    pub fn resume(&self, generation: &GenerationId, cookie: &str) -> Call<SseReader> {
        self.client
            .open_with(generation, StreamQuery::default())
            .header(COOKIE, format!("as_resume={cookie}"))
    }

    /// Reconnects as a browser does: the same URL (its token used) with the cookie.
    pub async fn reconnect(
        &self,
        generation: &GenerationId,
        token: &str,
        cookie: &str,
    ) -> Response {
        self.client
            .open(generation, token)
            .header(COOKIE, format!("as_resume={cookie}"))
            .send()
            .await
            .unwrap()
    }

    /// Opens a stream that must succeed, and remembers its resume cookie.
    pub async fn sse(&self, generation: &GenerationId, token: &str) -> OpenStream {
        let res = self.open_stream(generation, token).await;
        self.sse_from(res)
    }

    /// The stream a `200` opened, its resume cookie remembered.
    pub fn sse_from(&self, res: Response) -> OpenStream {
        let stream = OpenStream::new(res);
        self.remember(&stream.cookie);
        stream
    }

    /// Nothing the test saw as a secret is in any key or value of the store, or in the
    /// logs.
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
        let logs = crate::logs().contents();
        for secret in &secrets {
            assert!(!logs.contains(secret.as_str()), "a secret in the logs");
        }
    }

    /// The value of a Prometheus sample, e.g. `authstream_stream_opens_total{...}`.
    pub async fn metric(&self, prefix: &str) -> f64 {
        crate::metric_sum(&self.client.metrics().await.unwrap(), prefix)
    }

    /// `authstream_stream_opens_total` of SSE opens with this `result`.
    pub async fn sse_opens(&self, result: &str) -> f64 {
        self.metric(&format!(
            "authstream_stream_opens_total{{transport=\"sse\",result=\"{result}\"}}"
        ))
        .await
    }
}
