//! The security crate's integration tests, one binary: JWT validation (algorithms,
//! claims, revocations seen through the store) and remote JWKS fetching, against a
//! real `redis-server` started by the test kit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwks;
mod jwt_validation;
