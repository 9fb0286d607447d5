//! What a process needs before it serves anything: configuration read from the
//! environment (a bad value names its variable), the clock as a value, logs and
//! metrics, the shutdown signal, and the container health probe.
//!
//! The bottom of the house: it imports none of the other crates.

pub mod clock;
pub mod config;
pub mod probe;
pub mod shutdown;
pub mod telemetry;

pub use clock::UnixTime;
