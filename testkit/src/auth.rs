//! The auth service under test, and its fixtures.
//!
//! - [`spawn_auth`], [`spawn_auth_with`], [`spawn_auth_on`]: the service on a free
//!   port with a store (a fresh key prefix on the shared Redis by default), as an
//!   [`AuthApp`]; [`test_env`] and [`serve`] are the parts, for a deployment built
//!   otherwise (the e2e stack).
//! - [`Accounts`]: the fixtures (register, log in, sign up, an administrator, a
//!   service token, a generation, a stream token…) over an
//!   [`AuthClient`](authstream_client::AuthClient), whatever serves it: the app of
//!   this module, a stack of both services or the single process. Each fixture checks
//!   its route's success and gives the typed answer; the routes' other answers are
//!   the client's [`Call`]s, sent with [`Call::send`].
//! - [`ServiceClient`]: the service clients the test settings configure.

use std::collections::HashMap;
use std::net::TcpListener;
use std::ops::Deref;
use std::sync::Arc;

use auth_service::config::Settings;
use auth_service::{Application, AuthState};
use authstream_client::{AuthClient, Call};
use authstream_proto::auth::{
    CreatedGeneration, Credentials, Introspection, NewGeneration, Profile, RefreshBody, Registered,
    Revoked, StreamTokenAnswer, TokenBody, TokenPair, UserPatch,
};
use authstream_proto::{AccessClaims, GenerationId, ROLE_ADMIN, Scope, Tier};
use authstream_security::keys::KeySet;
use authstream_store::Store;
use serde_json::json;

use crate::turns::MetricsTurn;

/// The password of every user the fixtures make.
pub const PASSWORD: &str = "correct horse battery";

/// A service client of the test settings (`SERVICE_CLIENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceClient {
    pub id: &'static str,
    pub secret: &'static str,
    pub scopes: &'static [Scope],
}

/// Administers users (and creates generations for them).
pub const ADMIN_CLIENT: ServiceClient = ServiceClient {
    id: "admin-tool",
    secret: "admin-secret-0123456789",
    scopes: &[Scope::UsersAdmin, Scope::GenerationsWrite],
};

/// A backend: creates generations and publishes their events.
pub const BACKEND_CLIENT: ServiceClient = ServiceClient {
    id: "backend",
    secret: "backend-secret-0123456789",
    scopes: &[Scope::GenerationsWrite, Scope::EventsPublish],
};

/// A verifier following the revocation feed.
pub const FEED_CLIENT: ServiceClient = ServiceClient {
    id: "verifier",
    secret: "verifier-secret-0123456789",
    scopes: &[Scope::RevocationsRead],
};

/// The service clients of [`test_env`].
pub const SERVICE_CLIENTS: [ServiceClient; 3] = [ADMIN_CLIENT, BACKEND_CLIENT, FEED_CLIENT];

/// `SERVICE_CLIENTS` naming these clients.
pub fn service_clients_json(clients: &[ServiceClient]) -> String {
    let clients: Vec<_> = clients
        .iter()
        .map(|c| json!({"id": c.id, "secret": c.secret, "scopes": c.scopes}))
        .collect();
    serde_json::Value::Array(clients).to_string()
}

/// The auth service's test settings, `overrides` on top: the [`SERVICE_CLIENTS`], a
/// public stream URL, and rate limits no ordinary test reaches.
pub fn test_env(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = HashMap::from([
        (
            "SERVICE_CLIENTS".to_owned(),
            service_clients_json(&SERVICE_CLIENTS),
        ),
        (
            "STREAM_PUBLIC_URL".to_owned(),
            "https://stream.example".to_owned(),
        ),
    ]);
    for (k, v) in crate::GENEROUS_RATE_LIMITS.iter().chain(overrides) {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// Starts the auth service on `listener` (in the background of the test's runtime):
/// its base URL and its state.
pub fn serve(
    settings: Settings,
    store: Store,
    keys: Arc<KeySet>,
    listener: TcpListener,
) -> (String, Arc<AuthState>) {
    let app = Application::with_listener(settings, store, keys, listener).expect("auth service");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().into_inner();
    tokio::spawn(app.run_until_stopped());
    (address, state)
}

/// The auth service on a free port with the test settings, on a fresh key prefix of
/// the shared Redis.
pub async fn spawn_auth() -> AuthApp {
    spawn_auth_with(&[]).await
}

/// [`spawn_auth`] with these settings on top of the test ones.
pub async fn spawn_auth_with(overrides: &[(&str, &str)]) -> AuthApp {
    spawn_auth_on(crate::redis_store(), overrides).await
}

/// [`spawn_auth_with`] on `store`.
pub async fn spawn_auth_on(store: Store, overrides: &[(&str, &str)]) -> AuthApp {
    crate::logs();
    let turn = crate::turns::shared().await;
    let settings = Settings::from_env(&test_env(overrides)).expect("test settings");
    let keys = settings.common.signing_keys().expect("keys");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (address, state) = serve(settings, store.clone(), keys, listener);
    let auth = AuthClient::new(reqwest::Client::new(), &address);
    AuthApp {
        accounts: Accounts::new(auth),
        address,
        store,
        state,
        _turn: turn,
    }
}

/// A running auth service: its address and store, its state, and the [`Accounts`]
/// fixtures over a client of it (`app.signup()`, `app.auth.me()`).
pub struct AuthApp {
    pub accounts: Accounts,
    pub address: String,
    pub store: Store,
    /// The running service's state (to stop its feeds as shutdown does).
    pub state: Arc<AuthState>,
    /// This test's turn on the process-wide metrics ([`crate::turns`]).
    _turn: MetricsTurn,
}

impl Deref for AuthApp {
    type Target = Accounts;

    fn deref(&self) -> &Accounts {
        &self.accounts
    }
}

impl AuthApp {
    /// The value of a Prometheus sample of this process (summed over the lines
    /// starting with `prefix`).
    pub async fn metric(&self, prefix: &str) -> f64 {
        crate::metric_sum(&self.auth.metrics().await.unwrap(), prefix)
    }
}

/// An email no other test uses.
pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// An email and a password.
pub fn credentials(email: &str, password: &str) -> Credentials {
    Credentials {
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

/// A signed-in user: one session's tokens.
#[derive(Clone)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl std::fmt::Debug for User {
    /// The ids alone, never a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The user of a login's answer (the user id read from the access token).
    pub fn signed_in(email: &str, pair: TokenPair) -> Self {
        Self {
            user_id: claims_of(&pair.access_token).reg.sub,
            email: email.to_owned(),
            access: pair.access_token,
            refresh: pair.refresh_token,
            session_id: pair.session_id,
        }
    }
}

/// The claims of an access token, read without checking it (what the service put
/// there; checking is the service's job).
pub fn claims_of(access: &str) -> AccessClaims {
    jsonwebtoken::dangerous::insecure_decode_claims(access).expect("the claims of an access token")
}

/// The fixtures of the auth service over a client of it (without a token), wherever
/// it runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The client, without a token: `auth.with_token(..)` for a Bearer's calls.
    pub auth: AuthClient,
}

impl Accounts {
    pub fn new(auth: AuthClient) -> Self {
        Self { auth }
    }

    /// The client sending `token` as its Bearer token.
    pub fn bearer(&self, token: &str) -> AuthClient {
        self.auth.with_token(token)
    }

    /// `POST /auth/register` with [`PASSWORD`]: `201`.
    pub async fn register(&self, email: &str) -> Registered {
        self.auth
            .register(&credentials(email, PASSWORD))
            .await
            .unwrap()
    }

    /// `POST /auth/login` with these credentials, whatever it answers.
    pub fn login_as(&self, email: &str, password: &str) -> Call<TokenPair> {
        self.auth.login(&credentials(email, password))
    }

    /// A new session of the user of `email` ([`PASSWORD`]).
    pub async fn login(&self, email: &str) -> User {
        let pair = self.login_as(email, PASSWORD).await.unwrap();
        User::signed_in(email, pair)
    }

    /// A new user, signed in.
    pub async fn signup(&self) -> User {
        let email = unique_email();
        let registered = self.register(&email).await;
        let user = self.login(&email).await;
        assert_eq!(user.user_id, registered.user_id);
        user
    }

    /// A signed-in user with the admin role (granted by [`ADMIN_CLIENT`]), in a
    /// session begun after the grant.
    pub async fn admin(&self) -> User {
        let user = self.signup().await;
        let roles = Some(vec![ROLE_ADMIN.to_owned()]);
        self.administer(&user.user_id, &UserPatch { roles, tier: None })
            .await;
        self.login(&user.email).await
    }

    /// `PATCH /auth/users/{user_id}` by [`ADMIN_CLIENT`]: the changed user.
    pub async fn administer(&self, user_id: &str, patch: &UserPatch) -> Profile {
        let admin = self.service_token(ADMIN_CLIENT).await;
        self.bearer(&admin)
            .update_user(user_id, patch)
            .await
            .unwrap()
    }

    /// Changes a user's tier (by [`ADMIN_CLIENT`]).
    pub async fn set_tier(&self, user_id: &str, tier: Tier) -> Profile {
        let patch = UserPatch {
            tier: Some(tier.as_str().to_owned()),
            roles: None,
        };
        self.administer(user_id, &patch).await
    }

    /// A service token of `client` (its id and secret as HTTP Basic).
    pub async fn service_token(&self, client: ServiceClient) -> String {
        self.auth
            .service_token(client.id, client.secret)
            .await
            .unwrap()
            .access_token
    }

    /// `POST /generations` of generation `id` by the holder of `access`: `201`.
    pub async fn create_generation(&self, access: &str, id: &str) -> CreatedGeneration {
        self.new_generation(access, id).await.unwrap()
    }

    /// `POST /generations` of generation `id` (any string) by the holder of `access`,
    /// whatever it answers.
    pub fn new_generation(&self, access: &str, id: &str) -> Call<CreatedGeneration> {
        let body = NewGeneration {
            generation_id: Some(id.to_owned()),
            owner_id: None,
        };
        self.bearer(access).create_generation(&body)
    }

    /// A stream token for generation `id`, minted by the holder of `access`.
    pub async fn stream_token(&self, access: &str, id: &str) -> StreamTokenAnswer {
        self.mint(access, id).await.unwrap()
    }

    /// `POST /generations/generate/{id}/stream-token` by the holder of `access`,
    /// whatever it answers.
    pub fn mint(&self, access: &str, id: &str) -> Call<StreamTokenAnswer> {
        let id = GenerationId::parse(id).expect("a well-formed generation id");
        self.bearer(access).stream_token(&id)
    }

    /// `POST /auth/validate` of `token` in the body, whatever it answers.
    pub fn validate(&self, token: &str) -> Call<Introspection> {
        self.auth.validate_token(&token_body(token), None)
    }

    /// `POST /auth/refresh` of `refresh_token`, whatever it answers.
    pub fn refresh(&self, refresh_token: &str) -> Call<TokenPair> {
        self.auth.refresh(&RefreshBody {
            refresh_token: refresh_token.to_owned(),
        })
    }

    /// `POST /auth/revoke` (RFC 7009) of `token` as JSON, whatever it answers.
    pub fn revoke(&self, token: &str) -> Call<Revoked> {
        self.auth.revoke(&token_body(token))
    }

    /// `GET /auth/me` with `access`, whatever it answers.
    pub fn me(&self, access: &str) -> Call<Profile> {
        self.bearer(access).me()
    }
}

/// `{"token": token}`.
pub fn token_body(token: &str) -> TokenBody {
    TokenBody {
        token: Some(token.to_owned()),
    }
}
