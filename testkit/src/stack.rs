//! Both services together, as the end-to-end tests run them: apart ([`spawn_stack`]:
//! each its own app and Redis connections on one Redis and one key prefix, the
//! stream service verifying JWTs through the auth service's JWKS over HTTP), or as
//! the single `authstream` process ([`spawn_embedded`]).
//!
//! A [`Stack`] is the auth service's fixtures ([`Accounts`], which it dereferences
//! to: `stack.signup()`, `stack.service_token(BACKEND_CLIENT)`, `stack.auth`) with a
//! client of the stream service beside them; its streams are the stream kit's
//! [`OpenStream`]s. The fixtures and the stream reader are re-exported here, so that
//! an end-to-end test needs this module alone.

use std::collections::HashMap;
use std::net::TcpListener;
use std::ops::Deref;
use std::sync::Arc;

use authstream_client::{AuthClient, Call, StreamClient};
use authstream_proto::GenerationId;
use authstream_proto::stream::{NewEventBody, Published, StreamEventKind};
use authstream_security::jwt::KeySource;
use authstream_security::keys::KeySet;
use authstream_store::Store;

pub use crate::auth::{
    ADMIN_CLIENT, Accounts, BACKEND_CLIENT, PASSWORD, SERVICE_CLIENTS, ServiceClient, User,
    claims_of, credentials, token_body, unique_email,
};
pub use crate::stream::{OpenStream, PATIENCE, event};

/// The stack's settings: the auth kit's service clients, plain-http cookies, rate
/// limits no ordinary test reaches, and `vars` on top.
pub fn stack_env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let clients = crate::auth::service_clients_json(&SERVICE_CLIENTS);
    let mut env = HashMap::from([
        ("SERVICE_CLIENTS".to_owned(), clients),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
    ]);
    for (k, v) in crate::GENEROUS_RATE_LIMITS.iter().chain(vars) {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// The two services (or the single process): the auth service's fixtures, a client
/// of the stream service, the store they share, and the auth service's signing keys
/// (`None` for the single process).
pub struct Stack {
    pub accounts: Accounts,
    pub stream: StreamClient,
    pub store: Store,
    pub auth_keys: Option<Arc<KeySet>>,
}

impl Deref for Stack {
    type Target = Accounts;

    fn deref(&self) -> &Accounts {
        &self.accounts
    }
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
    let store_of = || crate::redis_store_sharing(&url, &prefix);
    let keys = auth_settings(vars).common.signing_keys().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let auth = spawn_auth_with(listener, store_of(), keys.clone(), vars);
    let stream = spawn_stream_with(&auth, store_of(), None, vars);
    Stack::new(&auth, &stream, store_of(), Some(keys))
}

fn auth_settings(vars: &[(&str, &str)]) -> auth_service::config::Settings {
    auth_service::config::Settings::from_env(&stack_env(vars)).unwrap()
}

/// An auth service of the stack on `listener` signing with `keys`; its base URL.
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
    crate::auth::serve(auth_settings(vars), store, keys, listener).0
}

/// A stream service of the stack finding the JWKS at `auth_url` (refetched as
/// configured, or as `keys` says); its base URL.
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
    let env = stack_env(vars);
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    vars.push(("AUTH_URL", auth_url));
    let settings = crate::stream::settings(&vars);
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

/// `raw` as a generation id (a test's literal).
pub fn generation_id(raw: &str) -> GenerationId {
    GenerationId::parse(raw).unwrap()
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
            accounts: Accounts::new(AuthClient::new(http.clone(), auth)),
            stream: StreamClient::new(http, stream),
            store,
            auth_keys,
        }
    }

    /// Opens generation `id`'s stream for the holder of `access` (a fresh stream
    /// token): its events, past the `connected` one.
    pub async fn follow(&self, access: &str, id: &str) -> OpenStream {
        let minted = self.stream_token(access, id).await;
        let opened = self.stream.open(&minted.generation_id, &minted.sse_token);
        let mut events = OpenStream::new(sent(opened).await);
        let connected = events.next().await.expect("connected");
        assert_eq!(connected.data.event, StreamEventKind::Connected);
        assert_eq!(connected.data.generation_id, id);
        events
    }

    /// `POST /generations/{id}/events` of `event` with the service token `service`.
    pub fn publish(&self, service: &str, id: &str, event: &NewEventBody) -> Call<Published> {
        self.stream
            .with_token(service)
            .publish(&generation_id(id), event)
    }
}
