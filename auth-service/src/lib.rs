//! The auth service: users and passwords, JWTs, sessions, service clients,
//! generation ownership and stream tokens.

pub mod account;
pub mod clients_command;
pub mod config;
pub mod demo;
pub mod devices;
pub mod domain;
pub mod feed;
pub mod keys_command;
pub mod openapi;
pub mod passwords;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod stream_tokens;
pub mod tokens;
pub mod users;

pub use startup::{Application, mount};
pub use state::AuthState;
