//! The bodies of the auth service: accounts, sessions, tokens, discovery, keys,
//! generations, stream tokens and the demo routes.
//!
//! Kept in modules by purpose; every body is re-exported here, so that its one path
//! is `authstream_proto::auth::X`.

mod account;
mod demo;
mod generations;
mod oauth;
mod tokens;

pub use account::{Credentials, Profile, ProfilePatch, Registered, SessionView, UserPatch};
pub use demo::{DisconnectAnnounced, SimulateBody, SimulationStarted};
pub use generations::{
    CreatedGeneration, GenerationView, NewGeneration, StreamTokenAnswer, StreamTokenStats,
};
pub use oauth::{
    ClientCredentials, ClientCredentialsForm, Jwk, Jwks, ServerMetadata, ServiceToken,
};
pub use tokens::{Introspection, RefreshBody, Revoked, TokenBody, TokenForm, TokenPair};
