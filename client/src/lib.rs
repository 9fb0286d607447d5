//! The one HTTP client of authstream's two services, typed with the wire types of
//! [`authstream_proto`]: the bench tool, the test kit and every test suite call the
//! services through it, so that a route's path, method, body and success status are
//! written once.
//!
//! - [`AuthClient`] and [`StreamClient`]: one method per route of each service,
//!   returning a [`Call`]. Awaiting it gives the typed answer or a [`ClientError`]
//!   (status, problem document, `Retry-After`; never a token); [`Call::send`] gives
//!   the raw response, for tests that check statuses and headers.
//! - [`SseReader`]: the events of a stream or of the revocation feed, over
//!   [`SseParser`].
//! - [`answer`]: reading raw responses the way the typed calls do.
//!
//! Two client types, not one with two bases: the services run apart (each its own
//! base URL) or as one process (the same base), and each type offers only its own
//! service's routes, so a call cannot go to the wrong one. Both are [`Client`] over
//! a marker, sharing construction, the Bearer token and the operational routes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use authstream_client::{AuthClient, StreamClient};
//! use authstream_proto::auth::{Credentials, NewGeneration};
//!
//! let http = reqwest::Client::new();
//! let auth = AuthClient::new(http.clone(), "http://127.0.0.1:8080");
//! let stream = StreamClient::new(http, "http://127.0.0.1:8081");
//!
//! let creds = Credentials { email: "ada@example.com".into(), password: "correct horse".into() };
//! auth.register(&creds).await?;
//! let pair = auth.login(&creds).await?;
//! let me = auth.with_token(&pair.access_token);
//! let generation = me.create_generation(&NewGeneration::default()).await?;
//! let minted = me.stream_token(&generation.generation_id).await?;
//! let mut events = stream.open_minted(&minted).await?;
//! while let Some(event) = events.next().await? {
//!     println!("{:?}", event.data);
//! }
//! # Ok(()) }
//! ```

mod auth;
mod call;
mod error;
mod sse;
mod stream;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use authstream_proto::ops::{Health, Readiness};
use authstream_proto::paths;
use reqwest::{Method, RequestBuilder, StatusCode};

pub use auth::DEVICE_TOKEN;
pub use call::{Call, answer};
pub use error::{ClientError, ErrorKind, PROBLEM_JSON};
pub use sse::{SseEvent, SseFrame, SseParser, SseReader};
pub use stream::{STREAM_TIMEOUT, StreamQuery};

/// The auth service's side of [`Client`].
#[derive(Debug, Clone, Copy)]
pub enum Auth {}

/// The stream service's side of [`Client`].
#[derive(Debug, Clone, Copy)]
pub enum Stream {}

/// A client of the auth service.
pub type AuthClient = Client<Auth>;
/// A client of the stream service.
pub type StreamClient = Client<Stream>;

/// A client of one service: a [`reqwest::Client`] (its connection pool, shared by
/// clones), the service's base URL (`http://host:port`), and an optional Bearer token
/// sent with every request. Cheap to clone.
pub struct Client<S> {
    http: reqwest::Client,
    base: Arc<str>,
    token: Option<Arc<str>>,
    _service: PhantomData<fn() -> S>,
}

impl<S> Clone for Client<S> {
    fn clone(&self) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            token: self.token.clone(),
            _service: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Client<S> {
    /// The base URL, and whether there is a token (never the token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl<S> Client<S> {
    /// A client of the service at `base` (`http://host:port`, a trailing `/` ignored),
    /// without a token.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: Arc::from(base.trim_end_matches('/')),
            token: None,
            _service: PhantomData,
        }
    }

    /// The same client, sending `token` as its Bearer token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(Arc::from(token)),
            ..self.clone()
        }
    }

    /// The same client, without a token.
    pub fn without_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to any path of the service (with the token, if any): for what the
    /// typed routes do not send, such as ill-formed ids.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET /healthz`: liveness.
    pub fn healthz(&self) -> Call<Health> {
        self.json("GET /healthz", Method::GET, paths::HEALTHZ, StatusCode::OK)
    }

    /// `GET /readyz`: readiness (a `503` is an error holding the problem).
    pub fn readyz(&self) -> Call<Readiness> {
        self.json("GET /readyz", Method::GET, paths::READYZ, StatusCode::OK)
    }

    /// `GET /metrics`: the Prometheus text.
    pub fn metrics(&self) -> Call<String> {
        Call::text("GET /metrics", self.request(Method::GET, paths::METRICS))
    }

    /// `GET /openapi.json`: the service's OpenAPI document.
    pub fn openapi(&self) -> Call<serde_json::Value> {
        self.json(
            "GET /openapi.json",
            Method::GET,
            paths::OPENAPI,
            StatusCode::OK,
        )
    }

    /// A call without a body answering JSON with `success`.
    fn json<T>(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        success: StatusCode,
    ) -> Call<T>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        Call::json(route, self.request(method, path), success)
    }

    /// A call without a body answering `success` with nothing to read.
    fn empty(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        success: StatusCode,
    ) -> Call<()> {
        Call::empty(route, self.request(method, path), success)
    }
}

/// Both clients, for a deployment of the two services (or the single process, where
/// both have the same base).
#[derive(Debug, Clone)]
pub struct Clients {
    pub auth: AuthClient,
    pub stream: StreamClient,
}

impl Clients {
    /// The services at their base URLs, over one connection pool.
    pub fn new(http: reqwest::Client, auth_base: &str, stream_base: &str) -> Self {
        Self {
            auth: AuthClient::new(http.clone(), auth_base),
            stream: StreamClient::new(http, stream_base),
        }
    }

    /// The single process serving both at `base`.
    pub fn single(http: reqwest::Client, base: &str) -> Self {
        Self::new(http, base, base)
    }
}
