//! Values that are valid by construction: parse at the edge, trust inside.

mod email;
mod password;
mod profile;

pub use email::Email;
pub use password::Password;
pub use profile::{DisplayName, Preferences, Role};
