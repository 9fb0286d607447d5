//! Who is asking: the bearer token, and the auth extractors built on it
//! (`Authenticated`, `Pending`, `Validated`, `Anonymous`, `Caller`), which validate
//! the token and charge the caller's rate limit.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;

use super::limits::{limiter_of, spend, spend_and_read};
use crate::error::{ApiError, ErrorCode};
use crate::rate_limit::{Policy, Subject};
use authstream_store::{Read, ReadAnswer};

/// The bearer token of the `Authorization` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingToken,
            "an Authorization: Bearer token is required",
        )
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::InvalidToken, "unreadable Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::new(
            ErrorCode::MissingToken,
            "an Authorization: Bearer token is required",
        )),
    }
}

/// The app's validator and the request's bearer token, taken before the async part.
struct Presented {
    validator: Option<web::Data<authstream_security::jwt::Validator>>,
    token: Result<String, ApiError>,
}

impl Presented {
    fn of(req: &HttpRequest) -> Self {
        Self {
            validator: req
                .app_data::<web::Data<authstream_security::jwt::Validator>>()
                .cloned(),
            token: bearer_token(req).map(str::to_owned),
        }
    }

    fn into_parts(
        self,
    ) -> Result<(web::Data<authstream_security::jwt::Validator>, String), ApiError> {
        let validator = self
            .validator
            .ok_or_else(|| ApiError::internal("no validator registered"))?;
        Ok((validator, self.token?))
    }

    /// The token's claims, validated as a `C`.
    async fn validate<C: authstream_proto::claims::Claims>(self) -> Result<C, ApiError> {
        let (validator, token) = self.into_parts()?;
        Ok(validator
            .validate::<C>(&token, authstream_runtime::UnixTime::now())
            .await?)
    }

    /// A user's access token, or else a service token.
    async fn caller(self) -> Result<Caller, ApiError> {
        let (validator, token) = self.into_parts()?;
        Caller::validate(&validator, &token).await
    }
}

/// A request authenticated by a Bearer token of type `C`, validated (signature,
/// claims, revocation) by the `web::Data<Validator>` of the app, then admitted by the
/// user's per-tier rate limit (service tokens are not limited).
pub struct Authenticated<C>(pub C);

impl<C: authstream_proto::claims::Claims + 'static> actix_web::FromRequest for Authenticated<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let pending = Pending::<C>::from_request(req, payload);
        Box::pin(async move { Ok(Self(pending.await?.admit().await?)) })
    }
}

/// A request authenticated like `Authenticated<C>` (or a `Caller`, or an
/// `Anonymous` one), whose rate-limit decision the route makes together with its
/// first store read, in one round trip: nothing of it is usable before
/// `admit_reading` (or `admit`) has spent the budget. Service tokens are not limited:
/// for them it is the read alone.
pub struct Pending<T> {
    value: T,
    charged: Option<Charged>,
    req: HttpRequest,
}

/// Whose budget a pending request spends.
enum Charged {
    /// A user, under the policy of its tier.
    User(String, authstream_proto::claims::Tier),
    /// The client address, under `anon`.
    Address(Option<IpAddr>),
}

impl Charged {
    fn user((id, tier): (&str, authstream_proto::claims::Tier)) -> Self {
        Self::User(id.to_owned(), tier)
    }

    fn budget(&self) -> (Policy, Subject<'_>) {
        match self {
            Self::User(id, tier) => (Policy::for_tier(*tier), Subject::User(id)),
            Self::Address(ip) => (Policy::Anon, Subject::Address(*ip)),
        }
    }
}

impl<T> Pending<T> {
    /// Who is asking, to name what to read: the route acts on nothing before the
    /// request is admitted.
    pub fn presented(&self) -> &T {
        &self.value
    }

    /// Spends the user's budget and makes `read`, in one round trip; 429 when refused.
    pub async fn admit_reading(self, read: Read<'_>) -> Result<(T, ReadAnswer), ApiError> {
        let limiter = limiter_of(&self.req)?;
        let Some(charged) = &self.charged else {
            return Ok((self.value, limiter.store().read(read).await?));
        };
        let (policy, subject) = charged.budget();
        let found = spend_and_read(&self.req, &limiter, policy, subject, read).await?;
        Ok((self.value, found))
    }

    /// Spends the user's budget with no read (a route refusing before it reads).
    pub async fn admit(self) -> Result<T, ApiError> {
        if let Some(charged) = &self.charged {
            let (policy, subject) = charged.budget();
            let limiter = limiter_of(&self.req)?;
            spend(&self.req, &limiter, policy, subject).await?;
        }
        Ok(self.value)
    }
}

impl<C: authstream_proto::claims::Claims + 'static> actix_web::FromRequest for Pending<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        let req = req.clone();
        Box::pin(async move {
            let claims = presented.validate::<C>().await?;
            let charged = claims.rate_limited_user().map(Charged::user);
            Ok(Self {
                value: claims,
                charged,
                req,
            })
        })
    }
}

impl actix_web::FromRequest for Pending<Caller> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        let req = req.clone();
        Box::pin(async move {
            let caller = presented.caller().await?;
            let charged = match &caller {
                Caller::User(claims) => {
                    authstream_proto::claims::Claims::rate_limited_user(claims).map(Charged::user)
                }
                Caller::Service(_) => None,
            };
            Ok(Self {
                value: caller,
                charged,
                req,
            })
        })
    }
}

/// A request authenticated like `Authenticated`, whose handler spends the user's
/// rate limit itself, in the same store round trip as its own work
/// (`RateLimiter::budget`, then `RateLimiter::decided` and `record_limit`).
pub struct Validated<C>(pub C);

impl<C: authstream_proto::claims::Claims + 'static> actix_web::FromRequest for Validated<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        Box::pin(async move { Ok(Self(presented.validate::<C>().await?)) })
    }
}

/// An anonymous request (no Bearer token), admitted by the per-address rate limit
/// (`anon`). Holds the client address (`TRUSTED_PROXIES` applied).
pub struct Anonymous {
    pub client_ip: Option<IpAddr>,
}

impl actix_web::FromRequest for Anonymous {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let limiter = limiter_of(&req)?;
            let client_ip = limiter.trusted_proxies().client_ip(&req);
            spend(&req, &limiter, Policy::Anon, Subject::Address(client_ip)).await?;
            Ok(Self { client_ip })
        })
    }
}

impl actix_web::FromRequest for Pending<Anonymous> {
    type Error = ApiError;
    type Future = futures_util::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        futures_util::future::ready(limiter_of(req).map(|limiter| {
            let client_ip = limiter.trusted_proxies().client_ip(req);
            Self {
                value: Anonymous { client_ip },
                charged: Some(Charged::Address(client_ip)),
                req: req.clone(),
            }
        }))
    }
}

/// A caller that is either a signed-in user or a service client.
pub enum Caller {
    User(authstream_proto::claims::AccessClaims),
    Service(authstream_proto::claims::ServiceClaims),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::User(c) if c.is_admin())
    }

    pub fn has_scope(&self, scope: authstream_proto::claims::Scope) -> bool {
        matches!(self, Self::Service(c) if c.has_scope(scope))
    }

    /// An admin user or a service client with `scope`; otherwise 403.
    pub fn require_admin_or_scope(
        &self,
        scope: authstream_proto::claims::Scope,
    ) -> Result<(), ApiError> {
        match self {
            _ if self.is_admin() || self.has_scope(scope) => Ok(()),
            Self::Service(_) => Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("the scope {scope} is required"),
            )),
            Self::User(_) => Err(ApiError::forbidden("this needs the admin role")),
        }
    }
}

impl Caller {
    /// A user's access token, or else a service token.
    async fn validate(
        validator: &authstream_security::jwt::Validator,
        token: &str,
    ) -> Result<Self, ApiError> {
        let now = authstream_runtime::UnixTime::now();
        match validator
            .validate::<authstream_proto::claims::AccessClaims>(token, now)
            .await
        {
            Ok(claims) => Ok(Self::User(claims)),
            Err(authstream_security::jwt::TokenError::WrongType(
                authstream_proto::claims::TokenType::Service,
            )) => Ok(Self::Service(validator.validate(token, now).await?)),
            Err(e) => Err(e.into()),
        }
    }
}

impl actix_web::FromRequest for Caller {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let pending = Pending::<Caller>::from_request(req, payload);
        Box::pin(async move { pending.await?.admit().await })
    }
}
