//! One module per resource. The two stream routes (`stream`: SSE, `ws`: WebSocket)
//! read what an open needs from the request (`stream::open_request`) and call
//! `crate::open::open`.

pub mod events;
pub mod openapi;
pub mod stream;
pub mod ws;
