use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use authstream_security::keys::KeySet;
use authstream_store::Store;
use authstream_verify::Verifier;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const VERIFIER: (&str, &str) = ("verifier", "verifier-secret-0123456789");
pub const PASSWORD: &str = "correct horse battery";

fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let clients = json!([
        {"id": VERIFIER.0, "secret": VERIFIER.1, "scopes": ["revocations:read"]},
        {"id": "backend", "secret": "backend-secret-0123456789", "scopes": ["events:publish"]},
    ]);
    let mut env = HashMap::from([
        ("SERVICE_CLIENTS".to_owned(), clients.to_string()),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
    ]);
    for (k, v) in authstream_testkit::GENEROUS_RATE_LIMITS.iter().chain(vars) {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// A real auth service (its routes and state) on real Redis, on a port it keeps across
/// a stop and a restart.
pub struct Auth {
    pub url: String,
    port: u16,
    store: Store,
    keys: Arc<KeySet>,
    vars: Vec<(String, String)>,
    running: Option<(ServerHandle, web::Data<auth_service::AuthState>)>,
}

impl Auth {
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let store = authstream_testkit::redis_store();
        let settings = auth_service::config::Settings::from_env(&env(vars)).unwrap();
        let keys = settings.common.signing_keys().unwrap();
        let mut auth = Self {
            url: String::new(),
            port: 0,
            store,
            keys,
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            running: None,
        };
        auth.run();
        auth
    }

    /// Serves on `self.port` (a free one the first time).
    pub fn run(&mut self) {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let settings = auth_service::config::Settings::from_env(&env(&vars)).unwrap();
        let state = web::Data::new(
            auth_service::AuthState::new(settings, self.store.clone(), self.keys.clone()).unwrap(),
        );
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.port = listener.local_addr().unwrap().port();
        self.url = format!("http://127.0.0.1:{}", self.port);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new().configure(|cfg| auth_service::mount(cfg, &app_state))
        })
        .listen(listener)
        .unwrap()
        .disable_signals()
        .workers(1)
        .shutdown_timeout(0)
        .run();
        self.running = Some((server.handle(), state));
        tokio::spawn(server);
    }

    /// Stops the service: it no longer listens, its feeds end.
    pub async fn stop(&mut self) {
        if let Some((handle, state)) = self.running.take() {
            state.shutdown();
            handle.stop(false).await;
        }
    }

    /// A new user, signed in: its login answer.
    pub async fn user(&self) -> Value {
        let http = reqwest::Client::new();
        let email = format!("{}@example.com", uuid());
        let body = json!({"email": email, "password": PASSWORD});
        let res = http
            .post(format!("{}/auth/register", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        self.login(&email).await
    }

    /// Another session of the user with `email`.
    pub async fn login(&self, email: &str) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/auth/login", self.url))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// `POST {path}` as the holder of `token` (or with `body`): the status.
    pub async fn post(&self, path: &str, token: &str, body: Option<Value>) -> u16 {
        let mut req = reqwest::Client::new().post(format!("{}{path}", self.url));
        req = match body {
            Some(body) => req.json(&body),
            None => req.bearer_auth(token),
        };
        req.send().await.unwrap().status().as_u16()
    }
}

pub fn uuid() -> String {
    format!("{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (u128::from(h.finish()) << 64) | u128::from(std::process::id())
}

/// A verifier of `auth_url`.
pub async fn verifier(auth_url: &str) -> Verifier {
    Verifier::builder(auth_url)
        .service_credentials(VERIFIER.0, VERIFIER.1)
        .build()
        .await
        .unwrap()
}

/// A TCP proxy to `upstream` that keeps every byte its clients send.
pub struct Proxy {
    pub url: String,
    pub sent: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let kept = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        kept.lock().extend_from_slice(&buf[..n]);
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
            }
        });
        Self { url, sent }
    }

    /// How many requests went through: request lines seen so far.
    pub fn requests(&self) -> usize {
        let sent = self.sent.lock();
        let text = String::from_utf8_lossy(&sent);
        text.matches(" HTTP/1.1\r\n").count()
    }

    /// How many requests for `path` went through.
    pub fn requests_for(&self, path: &str) -> usize {
        let sent = self.sent.lock();
        let text = String::from_utf8_lossy(&sent);
        text.matches(&format!(" {path} HTTP/1.1\r\n")).count()
    }
}

/// Polls `check` every millisecond until it is true; how long it took, or `None`
/// after `limit`.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}
