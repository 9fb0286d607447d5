use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use authstream_security::jwt::KeySource;
use authstream_security::keys::KeySet;
use authstream_store::RedisStore;
use authstream_store::Store;
use eventsource_stream::{Event, Eventsource as _};
use futures_util::{Stream, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";
pub const BACKEND: (&str, &str) = ("backend", "backend-secret-0123456789");
pub const ADMIN: (&str, &str) = ("admin-tool", "admin-secret-0123456789");

fn base_env() -> HashMap<String, String> {
    env_with(&[])
}

/// The test defaults with `vars` on top.
fn env_with(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let clients = json!([
        {"id": BACKEND.0, "secret": BACKEND.1, "scopes": ["generations:write", "events:publish"]},
        {"id": ADMIN.0, "secret": ADMIN.1, "scopes": ["users:admin"]},
    ]);
    let mut env = HashMap::from([
        ("SERVICE_CLIENTS".to_owned(), clients.to_string()),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
    ]);
    let generous = authstream_testkit::GENEROUS_RATE_LIMITS;
    for (k, v) in generous.iter().chain(vars) {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// The two services as separate apps with their own Redis connections on one Redis
/// (one key prefix, as in production), the stream service verifying JWTs through the
/// auth service's JWKS over HTTP.
pub struct Stack {
    pub auth: String,
    pub stream: String,
    pub store: Store,
    pub http: reqwest::Client,
    /// The auth service's signing keys (`None` for the single process).
    pub auth_keys: Option<Arc<KeySet>>,
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(&[]).await
}

/// The two services with these variables (on top of the test defaults).
pub async fn spawn_stack_with(vars: &[(&str, &str)]) -> Stack {
    authstream_testkit::logs();
    let url = authstream_testkit::shared_redis().url();
    let prefix = authstream_testkit::unique_prefix();
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
    Stack {
        auth,
        stream,
        store: store_of(),
        http: reqwest::Client::new(),
        auth_keys: Some(keys),
    }
}

fn auth_settings(vars: &[(&str, &str)]) -> auth_service::config::Settings {
    auth_service::config::Settings::from_env(&env_with(vars)).unwrap()
}

/// An auth service on `listener` signing with `keys`; its base URL.
pub fn spawn_auth(listener: TcpListener, store: Store, keys: Arc<KeySet>) -> String {
    spawn_auth_with(listener, store, keys, &[])
}

/// `spawn_auth` with these variables (on top of the test defaults).
pub fn spawn_auth_with(
    listener: TcpListener,
    store: Store,
    keys: Arc<KeySet>,
    vars: &[(&str, &str)],
) -> String {
    let app = auth_service::Application::with_listener(auth_settings(vars), store, keys, listener)
        .unwrap();
    let auth = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    auth
}

/// A stream service finding the JWKS at `auth_url` (refetched as configured, or as
/// `keys` says); its base URL.
pub fn spawn_stream(auth_url: &str, store: Store, keys: Option<KeySource>) -> String {
    spawn_stream_with(auth_url, store, keys, &[])
}

fn spawn_stream_with(
    auth_url: &str,
    store: Store,
    keys: Option<KeySource>,
    vars: &[(&str, &str)],
) -> String {
    let mut env = env_with(vars);
    env.insert("AUTH_URL".into(), auth_url.to_owned());
    env.insert("STREAM_BIND".into(), "127.0.0.1:0".into());
    env.insert("SSE_KEEPALIVE_SECS".into(), "1".into());
    let settings = stream_service::Settings::from_env(&env).unwrap();
    let keys = keys.unwrap_or_else(|| settings.key_source().unwrap());
    let app = stream_service::Application::build_with(settings, store, keys).unwrap();
    let stream = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    stream
}

/// The single-process `authstream` with these variables (on top of the test defaults).
pub async fn spawn_embedded(vars: &[(&str, &str)]) -> Stack {
    authstream_testkit::logs();
    let mut env = base_env();
    env.insert("AUTHSTREAM_BIND".into(), "127.0.0.1:0".into());
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let app = authstream::Application::build(&env).unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Stack {
        auth: address.clone(),
        stream: address,
        store: Store::memory("unused"),
        http: reqwest::Client::new(),
        auth_keys: None,
    }
}

pub struct User {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl Stack {
    pub async fn signup(&self) -> User {
        let email = format!("u-{}@example.com", uuid::Uuid::new_v4().simple());
        let res = self
            .http
            .post(format!("{}/auth/register", self.auth))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let user_id = res.json::<Value>().await.unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut user = self.login(&email).await;
        user.user_id = user_id;
        user
    }

    pub async fn login(&self, email: &str) -> User {
        let res = self.try_login(email).await;
        assert_eq!(res.status(), StatusCode::OK);
        User::signed_in(email, res.json().await.unwrap())
    }

    /// `POST /auth/login` with the test password, whatever it answers.
    pub async fn try_login(&self, email: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/login", self.auth))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
    }

    /// `GET /auth/validate` with `token`, whatever it answers.
    pub async fn validate(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/auth/validate", self.auth))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `POST /auth/refresh`, whatever it answers.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/refresh", self.auth))
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .unwrap()
    }

    /// `POST /auth/logout` with `access`, whatever it answers.
    pub async fn logout(&self, access: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/logout", self.auth))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    /// `POST /auth/revoke` (RFC 7009) of `token`, whatever it answers.
    pub async fn revoke(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/revoke", self.auth))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /auth/sessions/{session_id}` as `access`, whatever it answers.
    pub async fn delete_session(&self, access: &str, session_id: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}/auth/sessions/{session_id}", self.auth))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    pub async fn service_token(&self, client: (&str, &str)) -> String {
        let res = self
            .http
            .post(format!("{}/auth/service-token", self.auth))
            .basic_auth(client.0, Some(client.1))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_generation(&self, access: &str, id: &str) {
        let res = self
            .http
            .post(format!("{}/generations", self.auth))
            .bearer_auth(access)
            .json(&json!({"generation_id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    pub async fn stream_token(&self, access: &str, id: &str) -> String {
        let res = self.mint(access, id).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["sse_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A stream-token request, whatever it answers.
    pub async fn mint(&self, access: &str, id: &str) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/generations/generate/{id}/stream-token",
                self.auth
            ))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    /// Opens the stream with `token`, resuming after `last_event_id` (the
    /// `Last-Event-ID` header, as a browser sends it), whatever it answers.
    pub async fn open_after(
        &self,
        id: &str,
        token: &str,
        last_event_id: &str,
    ) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/generations/generate/{id}/stream?token={token}",
                self.stream
            ))
            .header("Last-Event-ID", last_event_id)
            .send()
            .await
            .unwrap()
    }

    pub async fn open(&self, id: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/generations/generate/{id}/stream?token={token}",
                self.stream
            ))
            .send()
            .await
            .unwrap()
    }

    /// Opens a stream and returns its events, past the `connected` one.
    pub async fn stream(
        &self,
        access: &str,
        id: &str,
    ) -> impl Stream<Item = Event> + Unpin + use<> {
        let token = self.stream_token(access, id).await;
        let res = self.open(id, &token).await;
        assert_eq!(res.status(), StatusCode::OK);
        let mut events = Box::pin(
            res.bytes_stream()
                .eventsource()
                .filter_map(|e| async move { e.ok() }),
        );
        let connected = next_event(&mut events).await.expect("connected");
        assert_eq!(
            serde_json::from_str::<Value>(&connected.data).unwrap()["event"],
            "connected"
        );
        events
    }

    pub async fn publish(&self, service: &str, id: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/generations/{id}/events", self.stream))
            .bearer_auth(service)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

impl User {
    /// The user of a login's 200 body.
    pub fn signed_in(email: &str, body: Value) -> Self {
        let text = |field: &str| body[field].as_str().unwrap().to_owned();
        Self {
            user_id: String::new(),
            email: email.to_owned(),
            access: text("access_token"),
            refresh: text("refresh_token"),
            session_id: text("session_id"),
        }
    }
}

/// Events of an SSE response.
pub fn events_of(res: reqwest::Response) -> impl Stream<Item = Event> + Unpin + use<> {
    Box::pin(
        res.bytes_stream()
            .eventsource()
            .filter_map(|e| async move { e.ok() }),
    )
}

/// The next event within 5 s (`None` when the stream ended).
pub async fn next_event(events: &mut (impl Stream<Item = Event> + Unpin)) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
}

pub fn progress(status: &str, progress: f64) -> Value {
    json!({"status": status, "stage": "work", "progress": progress, "message": format!("at {progress}")})
}
