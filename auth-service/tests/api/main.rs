//! Integration tests of the auth service against a real redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod admin;
mod demo;
mod generations;
mod keys;
mod limits;
mod me;
mod oauth;
mod openapi;
mod operations;
mod rate_limits;
mod refresh;
mod revocation_events;
mod revocation_feed;
mod round_trips;
mod service_tokens;
mod session_bounds;
mod sessions;
mod store_reads;
mod stream_tokens;
mod validate;
