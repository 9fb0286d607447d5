//! End-to-end tests across the two services and of the single-process binary; the
//! stack and its fixtures are the test kit's `stack` module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_smoke;
mod cluster;
mod cross_service;
mod deployment;
mod embedded;
mod failover;
mod openapi;
mod rate_limits;
mod store_commands;
