//! The stream service's API, end to end over HTTP, against a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod config;
mod fanout;
mod health;
mod logs;
mod openapi;
mod publish;
mod rate_limits;
mod readiness;
mod resilience;
mod resume;
mod revocation;
mod sharded;
mod shutdown;
mod sse;
mod tls;
mod tokens;
mod websocket;
