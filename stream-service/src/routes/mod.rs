//! One module per resource.

pub mod events;
pub mod openapi;
pub mod stream;
pub mod ws;
