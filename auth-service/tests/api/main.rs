//! Integration tests of the auth service against a real redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod account;
mod admin;
mod demo;
mod generations;
mod keys;
mod me;
mod openapi;
mod operations;
mod refresh;
mod service_tokens;
mod sessions;
mod stream_tokens;
mod validate;
