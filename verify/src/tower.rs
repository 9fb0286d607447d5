//! A tower [`Layer`](tower_layer::Layer) for axum, hyper and tonic services: it
//! verifies each request's Bearer token and puts the [`Claims`](crate::Claims) in the request's
//! extensions, or answers the refusal itself.
//!
//! ```no_run
//! # fn app(verifier: authstream_verify::Verifier) -> axum::Router {
//! use authstream_verify::{Claims, tower::VerifyLayer};
//! use axum::{Extension, Router, routing::get};
//!
//! Router::new()
//!     .route("/me", get(|Extension(c): Extension<Claims>| async move { c.reg.sub }))
//!     .layer(VerifyLayer::new(verifier))
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};

use crate::{Verifier, VerifyError};

/// Verifies the Bearer token of every request before the inner service sees it.
/// A refusal is problem+json with the stable `code`: 401 with
/// `WWW-Authenticate: Bearer`, or 503 `store_unavailable`.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    service_tokens: bool,
}

impl VerifyLayer {
    /// Access tokens of users, verified by `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            service_tokens: false,
        }
    }

    /// Service tokens instead of access tokens ([`Verifier::verify_service`]).
    #[must_use]
    pub fn service_tokens(mut self) -> Self {
        self.service_tokens = true;
        self
    }
}

impl<S> tower_layer::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was not polled ready goes on; the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let token = crate::bearer(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
                .to_owned();
            let verified = if layer.service_tokens {
                layer.verifier.verify_service(&token).await
            } else {
                layer.verifier.verify(&token).await
            };
            match verified {
                Ok(claims) => {
                    req.extensions_mut().insert(claims);
                    inner.call(req).await
                }
                Err(e) => Ok(refusal(&e)),
            }
        })
    }
}

/// The problem+json answer of a refusal.
pub fn refusal<B: From<String>>(e: &VerifyError) -> Response<B> {
    let (status, body, headers) = crate::problem(e);
    let mut res = Response::new(B::from(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}
