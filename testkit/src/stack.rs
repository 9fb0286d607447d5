//! Both services together, as the end-to-end tests run them: apart ([`spawn_stack`]:
//! each its own app and Redis connections on one Redis and one key prefix, the
//! stream service verifying JWTs through the auth service's JWKS over HTTP), or as
//! the single `authstream` process ([`spawn_embedded`]); and a user of the stack
//! ([`User`]), over the typed client.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use authstream_client::{AuthClient, Call, SseEvent, SseReader, StreamClient};
use authstream_proto::auth::{Credentials, NewGeneration, TokenPair};
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_proto::{GenerationId, GenerationStatus};
use authstream_security::jwt::KeySource;
use authstream_security::keys::KeySet;
use authstream_store::{RedisStore, Store};
use serde_json::json;

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";
/// The service client that creates generations and publishes their events.
pub const BACKEND: (&str, &str) = ("backend", "backend-secret-0123456789");
/// The service client that administers users (`users:admin`).
pub const ADMIN: (&str, &str) = ("admin-tool", "admin-secret-0123456789");

/// How long a stream read waits for its next event.
pub const EVENT_PATIENCE: Duration = Duration::from_secs(5);

/// The stack's settings: the two service clients, plain-http cookies, rate limits no
/// ordinary test reaches, and `vars` on top.
pub fn stack_env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let clients = json!([
        {"id": BACKEND.0, "secret": BACKEND.1, "scopes": ["generations:write", "events:publish"]},
        {"id": ADMIN.0, "secret": ADMIN.1, "scopes": ["users:admin"]},
    ]);
    let mut env = HashMap::from([
        ("SERVICE_CLIENTS".to_owned(), clients.to_string()),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
    ]);
    for (k, v) in crate::GENEROUS_RATE_LIMITS.iter().chain(vars) {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// The two services (or the single process), the store they share, and the auth
/// service's signing keys (`None` for the single process).
pub struct Stack {
    pub auth: AuthClient,
    pub stream: StreamClient,
    pub store: Store,
    pub auth_keys: Option<Arc<KeySet>>,
}

/// The two services on the shared Redis, with the test defaults.
pub async fn spawn_stack() -> Stack {
    spawn_stack_with(&[]).await
}

/// The two services on the shared Redis, with these variables on top of the test
/// defaults.
pub async fn spawn_stack_with(vars: &[(&str, &str)]) -> Stack {
    crate::logs();
    let url = crate::shared_redis().url();
    let prefix = crate::unique_prefix();
    let store_of = || {
        Store::redis(
            RedisStore::connect(&url, Duration::from_millis(500)).unwrap(),
            &prefix,
        )
    };
    let keys = auth_settings(vars).common.signing_keys().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let auth = spawn_auth_with(listener, store_of(), keys.clone(), vars);
    let stream = spawn_stream_with(&auth, store_of(), None, vars);
    Stack::new(&auth, &stream, store_of(), Some(keys))
}

fn auth_settings(vars: &[(&str, &str)]) -> auth_service::config::Settings {
    auth_service::config::Settings::from_env(&stack_env(vars)).unwrap()
}

/// An auth service on `listener` signing with `keys`, with the test defaults; its
/// base URL.
pub fn spawn_auth(listener: TcpListener, store: Store, keys: Arc<KeySet>) -> String {
    spawn_auth_with(listener, store, keys, &[])
}

/// [`spawn_auth`] with these variables on top of the test defaults.
pub fn spawn_auth_with(
    listener: TcpListener,
    store: Store,
    keys: Arc<KeySet>,
    vars: &[(&str, &str)],
) -> String {
    let app = auth_service::Application::with_listener(auth_settings(vars), store, keys, listener)
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// A stream service finding the JWKS at `auth_url` (refetched as configured, or as
/// `keys` says), with the test defaults; its base URL.
pub fn spawn_stream(auth_url: &str, store: Store, keys: Option<KeySource>) -> String {
    spawn_stream_with(auth_url, store, keys, &[])
}

/// [`spawn_stream`] with these variables on top of the test defaults.
pub fn spawn_stream_with(
    auth_url: &str,
    store: Store,
    keys: Option<KeySource>,
    vars: &[(&str, &str)],
) -> String {
    let mut env = stack_env(vars);
    env.insert("AUTH_URL".into(), auth_url.to_owned());
    env.insert("STREAM_BIND".into(), "127.0.0.1:0".into());
    env.insert("SSE_KEEPALIVE_SECS".into(), "1".into());
    let settings = stream_service::Settings::from_env(&env).unwrap();
    let keys = keys.unwrap_or_else(|| settings.key_source().unwrap());
    let app = stream_service::Application::build_with(settings, store, keys).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// The single-process `authstream` (in memory unless `REDIS_URL` says otherwise) with
/// these variables on top of the test defaults.
pub async fn spawn_embedded(vars: &[(&str, &str)]) -> Stack {
    crate::logs();
    let mut env = stack_env(vars);
    env.insert("AUTHSTREAM_BIND".into(), "127.0.0.1:0".into());
    let app = authstream::Application::build(&env).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Stack::new(&base, &base, Store::memory("unused"), None)
}

/// A user signed in: one session's tokens.
#[derive(Debug, Clone)]
pub struct User {
    /// Empty for a user met by [`Stack::login`] alone.
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl User {
    /// The session a login (or a refresh) answered.
    pub fn signed_in(email: &str, pair: TokenPair) -> Self {
        Self {
            user_id: String::new(),
            email: email.to_owned(),
            access: pair.access_token,
            refresh: pair.refresh_token,
            session_id: pair.session_id,
        }
    }
}

/// The test password's credentials for `email`.
pub fn credentials(email: &str) -> Credentials {
    Credentials {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
    }
}

/// An address no other test uses.
pub fn unique_email() -> String {
    format!("u-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// `raw` as a generation id (a test's literal).
pub fn generation_id(raw: &str) -> GenerationId {
    GenerationId::parse(raw).unwrap()
}

/// A progress event: `status`, stage `work`, `progress`, message `at {progress}`.
pub fn progress(status: GenerationStatus, progress: f64) -> NewEventBody {
    NewEventBody {
        stage: Some("work".to_owned()),
        progress: Some(progress),
        message: Some(format!("at {progress}")),
        ..NewEventBody::new(status)
    }
}

/// Sends `call`: the response, whatever its status.
pub async fn sent<T: Send + 'static>(call: Call<T>) -> reqwest::Response {
    let route = call.route();
    call.send()
        .await
        .unwrap_or_else(|e| panic!("{route}: no answer: {e}"))
}

impl Stack {
    /// The services at these base URLs (the same one for the single process), over
    /// one connection pool.
    pub fn new(auth: &str, stream: &str, store: Store, auth_keys: Option<Arc<KeySet>>) -> Self {
        let http = reqwest::Client::new();
        Self {
            auth: AuthClient::new(http.clone(), auth),
            stream: StreamClient::new(http, stream),
            store,
            auth_keys,
        }
    }

    /// The auth service as the holder of `token`.
    pub fn auth_as(&self, token: &str) -> AuthClient {
        self.auth.with_token(token)
    }

    /// The stream service as the holder of `token` (a service token, to publish).
    pub fn stream_as(&self, token: &str) -> StreamClient {
        self.stream.with_token(token)
    }

    /// A new user, registered and signed in.
    pub async fn signup(&self) -> User {
        let email = unique_email();
        let registered = self.auth.register(&credentials(&email)).await.unwrap();
        let mut user = self.login(&email).await;
        user.user_id = registered.user_id;
        user
    }

    /// A new session of the user of `email`.
    pub async fn login(&self, email: &str) -> User {
        let pair = self.auth.login(&credentials(email)).await.unwrap();
        User::signed_in(email, pair)
    }

    /// A service token of `client` (id, secret).
    pub async fn service_token(&self, client: (&str, &str)) -> String {
        let token = self.auth.service_token(client.0, client.1).await.unwrap();
        token.access_token
    }

    /// Creates the generation `id`, owned by the holder of `access`.
    pub async fn create_generation(&self, access: &str, id: &str) -> GenerationId {
        let body = NewGeneration {
            generation_id: Some(id.to_owned()),
            ..NewGeneration::default()
        };
        let created = self.auth_as(access).create_generation(&body).await.unwrap();
        assert_eq!(created.generation_id, id);
        created.generation_id
    }

    /// A stream token of generation `id` for the holder of `access`.
    pub async fn stream_token(&self, access: &str, id: &str) -> String {
        let minted = self.auth_as(access).stream_token(&generation_id(id)).await;
        minted.unwrap().sse_token
    }

    /// Opens generation `id`'s stream for the holder of `access` (a fresh stream
    /// token): its events, past the `connected` one.
    pub async fn stream(&self, access: &str, id: &str) -> SseReader {
        let token = self.stream_token(access, id).await;
        let mut events = self.stream.open(&generation_id(id), &token).await.unwrap();
        let connected = next_event(&mut events).await.expect("connected");
        assert_eq!(connected.data.event, StreamEventKind::Connected);
        assert_eq!(connected.data.generation_id, id);
        events
    }

    /// Publishes `event` to generation `id` with the service token `service`.
    pub fn publish(
        &self,
        service: &str,
        id: &str,
        event: &NewEventBody,
    ) -> Call<authstream_proto::stream::Published> {
        self.stream_as(service).publish(&generation_id(id), event)
    }
}

/// The next event of a stream within [`EVENT_PATIENCE`] (a test failure otherwise);
/// `None` when the stream ended (or its connection broke).
pub async fn next_event(events: &mut SseReader) -> Option<SseEvent> {
    tokio::time::timeout(EVENT_PATIENCE, events.next())
        .await
        .expect("an event within 5 s")
        .ok()
        .flatten()
}

/// Reads the stream until it ends (or its connection breaks), however long.
pub async fn until_end(events: &mut SseReader) {
    while let Ok(Some(_)) = events.next().await {}
}
