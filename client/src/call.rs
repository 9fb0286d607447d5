//! [`Call`]: one prepared request to one route, that can be awaited for the route's
//! typed answer or sent as it is for the raw response.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use authstream_proto::Problem;
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ClientError, ErrorKind, is_problem};
use crate::sse::SseReader;

/// Reads a success answer into the route's type.
type Decode<T> = fn(&'static str, Response) -> BoxFuture<'static, Result<T, ClientError>>;

/// One request to one route, ready to send.
///
/// - `call.await` (or [`Call::answer`]) sends it, checks the route's success status
///   and reads the typed answer; any other status is a [`ClientError`] with the
///   problem document and `Retry-After`.
/// - [`Call::send`] sends it and returns the raw [`Response`] whatever its status, for
///   tests that check statuses and headers (a `429` and its `Retry-After`);
///   [`Call::checked`] returns it only with the success status (to read an `ETag`).
/// - [`Call::header`], [`Call::bearer`], [`Call::basic_auth`], [`Call::timeout`] and
///   [`Call::with`] change the request first; [`Call::into_request`] gives it up.
///
/// ```no_run
/// # async fn demo(auth: authstream_client::AuthClient) -> Result<(), authstream_client::ClientError> {
/// use authstream_proto::auth::Credentials;
///
/// let creds = Credentials { email: "ada@example.com".into(), password: "correct horse".into() };
/// // The typed answer:
/// let pair = auth.login(&creds).await?;
/// // The raw response, with a header added:
/// let res = auth.login(&creds).header("user-agent", "phone").send().await?;
/// if res.status() == 429 {
///     println!("retry after {:?}", authstream_client::answer::retry_after(res.headers()));
/// }
/// # drop(pair); Ok(()) }
/// ```
#[must_use = "a call does nothing until it is awaited or sent"]
pub struct Call<T> {
    route: &'static str,
    request: RequestBuilder,
    success: StatusCode,
    decode: Decode<T>,
    _answer: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Call<T> {
    /// The route and the expected status alone: the request may carry a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("route", &self.route)
            .field("success", &self.success)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Call<T> {
    fn new(
        route: &'static str,
        request: RequestBuilder,
        success: StatusCode,
        decode: Decode<T>,
    ) -> Self {
        Self {
            route,
            request,
            success,
            decode,
            _answer: PhantomData,
        }
    }

    /// The route as a template, e.g. `POST /auth/login`.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// The status of the route's success.
    pub fn success(&self) -> StatusCode {
        self.success
    }

    /// With this header.
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.with(|r| r.header(name, value))
    }

    /// With this Bearer token (in place of the client's).
    pub fn bearer(self, token: &str) -> Self {
        self.with(|r| r.bearer_auth(token))
    }

    /// With HTTP Basic credentials (a service client's id and secret).
    pub fn basic_auth(self, id: &str, secret: &str) -> Self {
        self.with(|r| r.basic_auth(id, Some(secret)))
    }

    /// With this timeout for the whole exchange, body included.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|r| r.timeout(timeout))
    }

    /// With any other change to the request.
    pub fn with(mut self, change: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Self {
        self.request = change(self.request);
        self
    }

    /// The request itself, to send some other way.
    pub fn into_request(self) -> RequestBuilder {
        self.request
    }

    /// Sends the request: the response whatever its status; an error only when there
    /// is no response.
    pub async fn send(self) -> Result<Response, ClientError> {
        let route = self.route;
        self.request
            .send()
            .await
            .map_err(|e| ClientError::transport(route, e))
    }

    /// Sends the request and checks the route's success status: the response, its
    /// body unread (to read headers such as `ETag`, or to leave the body alone);
    /// another status is an error holding the status, the problem and `Retry-After`.
    pub async fn checked(self) -> Result<Response, ClientError> {
        let (route, success) = (self.route, self.success);
        let res = self.send().await?;
        if res.status() != success {
            return Err(ClientError::from_response(route, res).await);
        }
        Ok(res)
    }

    /// Sends the request and reads the typed answer; another status than the route's
    /// success is an error holding the status, the problem and `Retry-After`.
    pub async fn answer(self) -> Result<T, ClientError> {
        let (route, decode) = (self.route, self.decode);
        let res = self.checked().await?;
        decode(route, res).await
    }
}

impl<T: DeserializeOwned + Send + 'static> Call<T> {
    /// A route answering JSON with `success`.
    pub(crate) fn json(route: &'static str, request: RequestBuilder, success: StatusCode) -> Self {
        Self::new(route, request, success, |route, res| {
            Box::pin(answer::read_json(route, res))
        })
    }
}

impl Call<()> {
    /// A route answering `success` with nothing to read (`204`, or a body to drop).
    pub(crate) fn empty(route: &'static str, request: RequestBuilder, success: StatusCode) -> Self {
        Self::new(route, request, success, |_, _| Box::pin(async { Ok(()) }))
    }
}

impl Call<String> {
    /// A route answering text (`/metrics`).
    pub(crate) fn text(route: &'static str, request: RequestBuilder) -> Self {
        Self::new(route, request, StatusCode::OK, |route, res| {
            Box::pin(async move {
                res.text()
                    .await
                    .map_err(|e| ClientError::transport(route, e))
            })
        })
    }
}

impl Call<SseReader> {
    /// A route answering Server-Sent Events with `200`.
    pub(crate) fn events(route: &'static str, request: RequestBuilder) -> Self {
        Self::new(route, request, StatusCode::OK, |route, res| {
            Box::pin(async move { Ok(SseReader::new(route, res)) })
        })
    }
}

impl<T: Send + 'static> IntoFuture for Call<T> {
    type Output = Result<T, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    /// [`Call::answer`].
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.answer())
    }
}

/// Reading raw responses the way the typed calls do, for code that sent a
/// [`Call`] itself (tests checking an error answer).
pub mod answer {
    use super::*;

    pub use crate::error::retry_after;

    /// The problem document of an error answer; an error when the body is not
    /// `application/problem+json` or not a problem. The status is left to the caller
    /// (read it before: this takes the response).
    ///
    /// ```no_run
    /// # async fn demo(auth: authstream_client::AuthClient) -> Result<(), authstream_client::ClientError> {
    /// use authstream_proto::{ErrorCode, auth::RefreshBody};
    ///
    /// let res = auth.refresh(&RefreshBody { refresh_token: "used".into() }).send().await?;
    /// assert_eq!(res.status(), 401);
    /// let problem = authstream_client::answer::problem(res).await?;
    /// assert_eq!(problem.code, ErrorCode::InvalidToken);
    /// # Ok(()) }
    /// ```
    pub async fn problem(res: Response) -> Result<Problem, ClientError> {
        const ROUTE: &str = "problem+json answer";
        if !is_problem(res.headers()) {
            return Err(ClientError::from_response(ROUTE, res)
                .await
                .with_kind(ErrorKind::Body));
        }
        read_json(ROUTE, res).await
    }

    /// The JSON body of a response as `T`, whatever its status.
    pub async fn json<T: DeserializeOwned>(res: Response) -> Result<T, ClientError> {
        read_json("JSON answer", res).await
    }

    pub(crate) async fn read_json<T: DeserializeOwned>(
        route: &'static str,
        res: Response,
    ) -> Result<T, ClientError> {
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ClientError::transport(route, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::body(route, Some(status), &e))
    }
}
