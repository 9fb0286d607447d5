//! Verify [authstream](https://github.com/authstream/authstream) tokens inside your own
//! service: signatures with the auth service's JWKS, revocations from its revocation
//! feed, and **zero network calls per verification**.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use authstream_verify::Verifier;
//!
//! let verifier = Verifier::builder("https://auth.example.com")
//!     .service_credentials("backend", "a-secret-with-revocations-read")
//!     .build()
//!     .await?;
//! match verifier.verify("eyJ…").await {
//!     Ok(claims) => println!("hello {}", claims.reg.sub),
//!     Err(e) => println!("refused: {}", e.code()),
//! }
//! # Ok(()) }
//! ```
//!
//! The checks and error codes are those of the auth service's `/auth/validate`: the
//! algorithm is pinned to the JWKS's (EdDSA; a deployment signing with HS256 publishes
//! no verifying key and cannot be verified by this crate), then `iss`, `aud`,
//! `token_type`, `exp` and `nbf` with the leeway, then revocation of the token, its
//! session and its user.
//!
//! It **fails closed**: while the feed's last heartbeat is older than the staleness
//! bound (100 ms by default), [`Verifier::verify`] answers [`VerifyError::Unavailable`]
//! rather than a verdict it could not check. It reconnects and resumes by itself.
//!
//! The checks themselves are [`token`] and [`jwks`], free of any web framework and
//! store: the auth services validate with them too (`default-features = false` leaves
//! out the feature `verifier`: `Verifier` and its revocation feed).
#![warn(missing_docs)]
// The crate's documentation speaks of `Verifier`, which the core alone leaves out.
#![cfg_attr(not(feature = "verifier"), allow(rustdoc::broken_intra_doc_links))]

mod claims;
mod error;
pub mod jwks;
pub mod token;

#[cfg(feature = "verifier")]
mod feed;
#[cfg(feature = "verifier")]
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower")]
pub mod tower;

pub use claims::Claims;
#[cfg(feature = "verifier")]
pub use error::BuildError;
pub use error::VerifyError;
#[cfg(feature = "verifier")]
pub use verifier::{Verifier, VerifierBuilder};

/// The status, problem+json body and headers of a refusal, shared by the adapters:
/// `WWW-Authenticate: Bearer` on 401 (RFC 6750's `error="invalid_token"` for a token
/// that was presented), `Retry-After` on 503, never cached.
#[cfg(any(feature = "actix", feature = "tower"))]
pub(crate) fn problem(e: &VerifyError) -> (u16, String, Vec<(&'static str, String)>) {
    let status = e.status();
    let body = serde_json::to_string(&authstream_proto::Problem::new(
        e.error_code(),
        e.to_string(),
    ))
    .unwrap_or_default();
    let mut headers = vec![
        ("content-type", "application/problem+json".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ];
    if status == 401 {
        let error = match e {
            VerifyError::Missing => "",
            _ => ", error=\"invalid_token\"",
        };
        headers.push((
            "www-authenticate",
            format!("Bearer realm=\"authstream\"{error}"),
        ));
    } else {
        headers.push(("retry-after", "1".to_owned()));
    }
    (status, body, headers)
}

/// The token of an `Authorization: Bearer <token>` header value; `""` when absent.
#[cfg(any(feature = "actix", feature = "tower"))]
pub(crate) fn bearer(value: Option<&[u8]>) -> &str {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("")
}
