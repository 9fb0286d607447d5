//! The crate both services share: claim types, JWT signing and validation, keys,
//! the store (Redis or in-memory), error codes, configuration helpers and telemetry.

pub mod claims;
pub mod client_address;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod generation;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod openapi;
pub mod probe;
pub mod rate_limit;
pub mod revocation;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod stream_token;
pub mod telemetry;

#[cfg(feature = "test-support")]
pub mod testing;

pub use clock::UnixTime;
pub use error::{ApiError, ErrorCode};
pub use store::{Store, StoreError};
