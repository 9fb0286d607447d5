//! Signing and validating JWTs. The validator pins the algorithm, checks the claims
//! against a `now` passed in, then checks revocation (in the local view while it is
//! fresh, else in ONE store round trip). A token's signature is verified once: its
//! claims are kept by the SHA-256 of its bytes until it expires.
//!
//! The checks themselves (header, pinned algorithm, signature, type, issuer, audience,
//! times; the JWKS) are the verification core of `authstream-verify`, written once;
//! this crate adds the keys, signing, the verified-token cache, metrics and the
//! store's revocation view.
//!
//! One file per part: `error` (why a token was refused), `signer`, `remote` (the
//! auth service's JWKS), `validator`. Everything is re-exported here.

mod error;
mod remote;
mod signer;
mod validator;

pub use error::TokenError;
pub use remote::{
    JWKS_DEFAULT_REFRESH, JWKS_MAX_BYTES, KeySource, RemoteKeys, jwks_url, redacted_url,
};
pub use signer::{SignError, Signer, new_jti};
pub use validator::{Validator, revoked};

/// What both services agree on about tokens: issuer, audience, leeway.
pub use authstream_verify::token::JwtSettings;
