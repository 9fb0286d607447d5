//! Demo mode (filled in by the demo page work).

pub fn mount(_cfg: &mut actix_web::web::ServiceConfig) {}
