//! An actix-web extractor: [`Verified`] verifies the request's Bearer token with the
//! [`Verifier`] in the app data (`web::Data<Verifier>`).
//!
//! ```no_run
//! use actix_web::{get, web};
//! use authstream_verify::{Claims, actix::Verified};
//!
//! #[get("/me")]
//! async fn me(Verified(claims): Verified) -> web::Json<Claims> {
//!     web::Json(claims)
//! }
//! ```

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};

use crate::{Claims, Verifier, VerifyError};

/// The claims of the request's verified access token (`Authorization: Bearer`).
/// A refusal answers problem+json with the stable `code`: 401 with
/// `WWW-Authenticate: Bearer`, or 503 `store_unavailable` while the revocation feed is
/// not current.
#[derive(Debug, Clone)]
pub struct Verified<C = Claims>(pub C);

/// A refused request: the answer of a [`Verified`] extraction that failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Refused(pub VerifyError);

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let (_, body, headers) = crate::problem(&self.0);
        let mut res = HttpResponse::build(self.status_code());
        for header in headers {
            res.insert_header(header);
        }
        res.body(body)
    }
}

impl FromRequest for Verified<Claims> {
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refused>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let token =
            crate::bearer(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())).to_owned();
        Box::pin(async move {
            let Some(verifier) = verifier else {
                tracing::error!("authstream-verify: no web::Data<Verifier> in the app data");
                return Err(Refused(VerifyError::Unavailable(
                    "no verifier is configured",
                )));
            };
            verifier.verify(&token).await.map(Verified).map_err(Refused)
        })
    }
}
