//! The claims of the three JWT types: wire types, defined in `authstream_proto`.

pub use authstream_proto::claims::{
    AccessClaims, Claims, ROLE_ADMIN, RefreshClaims, Registered, SERVICE_SUBJECT_PREFIX, Scope,
    ServiceClaims, Tier, TokenType,
};
