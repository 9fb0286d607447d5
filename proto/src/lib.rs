//! The wire types of authstream, free of any web framework or store.
//!
//! - [`ids`]: id newtypes with `parse` constructors (an invalid id cannot exist past
//!   the edge);
//! - [`claims`]: the JWT claims, with [`TokenType`], [`Tier`] and [`Scope`];
//! - [`error`]: the stable [`ErrorCode`]s and the [`Problem`] body every error is;
//! - [`auth`], [`stream`], [`feed`], [`ops`]: every request and response body of the
//!   auth service, the stream service, the revocation feed and the operational routes;
//! - [`paths`]: every route path, and URL builders for those with parameters.
//!
//! With the default feature `openapi`, every body derives `utoipa::ToSchema`: the
//! services' OpenAPI documents are generated from these very types.

pub mod auth;
pub mod claims;
pub mod error;
pub mod feed;
pub mod ids;
pub mod ops;
pub mod paths;
pub mod stream;

pub use claims::{
    AccessClaims, Claims, ROLE_ADMIN, RefreshClaims, Registered, SERVICE_SUBJECT_PREFIX, Scope,
    ServiceClaims, Tier, TokenType,
};
pub use error::{ErrorCode, Problem};
pub use ids::{ClientId, GenerationId, IdError, SessionId, UserId};
pub use stream::GenerationStatus;
