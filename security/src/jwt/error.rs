//! Why a token was refused (`TokenError`): the verification core's verdicts
//! (`authstream_verify::token::TokenError`), with this store's error for a revocation
//! it could not read. The web crate maps it to an answer.

use authstream_store::StoreError;

/// Why a token was refused. `reason()` is the metric label and log field;
/// `Store` is a revocation check the store could not answer.
pub type TokenError = authstream_verify::token::TokenError<StoreError>;
