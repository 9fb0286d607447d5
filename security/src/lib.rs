//! Tokens: the key sets (Ed25519 PEM files, an ephemeral key, an HS256 secret, or a
//! remote JWKS), signing, and validation with the algorithm pinned, against the local
//! revocation view the store keeps fresh.
//!
//! The checks themselves are the verification core of `authstream-verify` (its
//! `token` and `jwks`, without its default features): written once, for these services
//! and for other Rust services alike. Imports that core, the store (for the revocation
//! view) and the wire types; never the web glue.

pub mod jwt;
pub mod keys;
