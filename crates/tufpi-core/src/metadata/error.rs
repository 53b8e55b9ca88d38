//! Why metadata could not be read, built or signed.

use crate::crypto::CryptoError;
use crate::json::{CanonicalError, ParseError};

/// Why metadata could not be read, built or signed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not valid JSON.
    #[error(transparent)]
    Json(#[from] ParseError),
    /// Has no canonical form (a float somewhere in `signed`).
    #[error("signed: {0}")]
    Canonical(#[from] CanonicalError),
    /// Valid JSON, but not valid TUF metadata.
    #[error("{context}: {message}")]
    Invalid {
        /// Where the problem is, e.g. `signed.roles.root.threshold`.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// A signing failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
