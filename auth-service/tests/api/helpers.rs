use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use auth_service::config::Settings;
use auth_service::{Application, AuthState};
use authstream_security::keys::KeySet;
use authstream_store::Store;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN_CLIENT: (&str, &str) = ("admin-tool", "admin-secret-0123456789");
pub const BACKEND_CLIENT: (&str, &str) = ("backend", "backend-secret-0123456789");
/// A verifier following the revocation feed.
pub const FEED_CLIENT: (&str, &str) = ("verifier", "verifier-secret-0123456789");

pub struct TestApp {
    pub address: String,
    pub store: Store,
    pub http: reqwest::Client,
    /// The running service's state (to stop its feeds as shutdown does).
    pub state: Arc<AuthState>,
    /// This test's turn on the process-wide metrics (`authstream_testkit::turns`).
    _turn: authstream_testkit::turns::MetricsTurn,
}

pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(authstream_testkit::redis_store(), overrides).await
}

pub async fn spawn_app_on(store: Store, overrides: &[(&str, &str)]) -> TestApp {
    authstream_testkit::logs();
    let turn = authstream_testkit::turns::shared().await;
    let clients = json!([
        {"id": ADMIN_CLIENT.0, "secret": ADMIN_CLIENT.1, "scopes": ["users:admin", "generations:write"]},
        {"id": BACKEND_CLIENT.0, "secret": BACKEND_CLIENT.1, "scopes": ["generations:write", "events:publish"]},
        {"id": FEED_CLIENT.0, "secret": FEED_CLIENT.1, "scopes": ["revocations:read"]},
    ]);
    let mut env: HashMap<String, String> = HashMap::from([
        ("SERVICE_CLIENTS".to_owned(), clients.to_string()),
        (
            "STREAM_PUBLIC_URL".to_owned(),
            "https://stream.example".to_owned(),
        ),
    ]);
    for (k, v) in authstream_testkit::GENEROUS_RATE_LIMITS
        .iter()
        .chain(overrides)
    {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_env(&env).expect("test settings");
    let keys: Arc<KeySet> = settings.common.signing_keys().expect("keys");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app =
        Application::with_listener(settings, store.clone(), keys.clone(), listener).expect("app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().into_inner();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        store,
        http: reqwest::Client::new(),
        state,
        _turn: turn,
    }
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The body of a problem+json answer, checking status and code.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    /// `POST path` with a form body (`application/x-www-form-urlencoded`).
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> RequestBuilder {
        self.post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
    }

    /// The JSON body of `GET path` with a Bearer token.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, access: &str) -> T {
        let res = self.get(path).bearer_auth(access).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// The published verification keys.
    pub async fn jwks(&self) -> Value {
        let res = self.get("/.well-known/jwks.json").send().await.unwrap();
        res.json().await.unwrap()
    }

    /// `POST /auth/validate` of `token` in the body.
    pub async fn validate(&self, token: &str) -> Response {
        self.post("/auth/validate")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
    }

    /// The value of a Prometheus sample (summed over lines starting with `prefix`).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = self.get("/metrics").send().await.unwrap().text().await;
        authstream_testkit::metric_sum(&text.unwrap(), prefix)
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post("/auth/register")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login_as(&self, email: &str, password: &str, agent: &str) -> Response {
        self.post("/auth/login")
            .header("user-agent", agent)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str) -> Session {
        let res = self.login_as(email, PASSWORD, "test-agent").await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let user_id = self.me_id(body["access_token"].as_str().unwrap()).await;
        Session {
            user_id,
            email: email.to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            session_id: body["session_id"].as_str().unwrap().to_owned(),
        }
    }

    /// A new user, signed in.
    pub async fn signup(&self) -> Session {
        let email = unique_email();
        assert_eq!(
            self.register(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        self.login(&email).await
    }

    async fn me_id(&self, access: &str) -> String {
        let me: Value = self.get_json("/auth/me", access).await;
        me["user_id"].as_str().unwrap().to_owned()
    }

    pub async fn refresh(&self, refresh: &str) -> Response {
        self.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .unwrap()
    }

    pub async fn me(&self, access: &str) -> Response {
        self.get("/auth/me")
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    pub async fn service_token(&self, client: (&str, &str)) -> String {
        let res = self
            .post("/auth/service-token")
            .basic_auth(client.0, Some(client.1))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A signed-in user with the admin role (granted by the admin service client).
    pub async fn admin(&self) -> Session {
        let user = self.signup().await;
        let token = self.service_token(ADMIN_CLIENT).await;
        let res = self
            .http
            .patch(self.url(&format!("/auth/users/{}", user.user_id)))
            .bearer_auth(token)
            .json(&json!({"roles": ["admin"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        self.login(&user.email).await
    }

    pub async fn create_generation(&self, access: &str, id: &str) -> Response {
        self.post("/generations")
            .bearer_auth(access)
            .json(&json!({"generation_id": id}))
            .send()
            .await
            .unwrap()
    }

    pub async fn stream_token(&self, access: &str, generation_id: &str) -> Response {
        self.post(&format!(
            "/generations/generate/{generation_id}/stream-token"
        ))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
    }
}
