//! The actix side of the shared crate, one file per concern: problem responses
//! (`problem`), the request middleware and CORS (`middleware`), reading bodies
//! (`body`), the client address (re-exported from `crate::client_address`), rate-limit spending (`limits`),
//! the auth extractors (`caller`), and the operations routes (`health`). Everything
//! is re-exported here, so callers name `authstream_web::http::…`.

mod body;
mod caller;
mod health;
mod limits;
mod middleware;
mod problem;

pub use crate::client_address::TrustedProxies;
pub use body::{
    JsonObject, extractor_config, from_json_object, json_config, json_problem, path_config,
    query_config,
};
pub use caller::{Anonymous, Authenticated, Caller, Pending, Validated, bearer_token};
pub use health::*;
pub use limits::{record_limit, spend, spend_and_read};
pub use middleware::{cors, observe, origin_of};
pub use problem::{PROBLEM_JSON, not_found};
