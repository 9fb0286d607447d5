//! The stream service: consumes single-use stream tokens, delivers a generation's
//! events over SSE and WebSocket (history, then live, resumable by event id), and
//! accepts events from services holding the `events:publish` scope.

pub mod config;
pub mod feed;
pub mod hub;
pub mod leases;
mod meters;
pub mod open;
pub mod routes;
pub mod startup;
pub mod state;

pub use config::Settings;
pub use routes::openapi::openapi;
pub use startup::{Application, Stopper, StreamState, send_timeout};
