//! The services' HTTP glue: the error answer (`ApiError`, mapped to
//! `application/problem+json` in one place), middleware, extractors, the client's
//! address behind trusted proxies, rate limits, the health routes, the OpenAPI
//! document's shared parts, and the settings both services read.
//!
//! The top of the shared crates: it may import every other; none imports it.

pub mod client_address;
pub mod error;
pub mod http;
pub mod openapi;
pub mod rate_limit;
pub mod settings;

pub use error::{ApiError, ErrorCode};
