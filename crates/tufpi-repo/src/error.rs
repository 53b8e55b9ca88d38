//! Repository errors.

use tufpi_core::crypto::CryptoError;
use tufpi_core::metadata::MetadataError;

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The state store failed.
    #[error("state store: {0}")]
    Store(String),
    /// Bad input (a target record, an option).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Metadata could not be built or read.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A key could not be used.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another publisher holds the repository lock.
    #[error("another publisher holds {0}; refusing to write")]
    Locked(String),
    /// A key needed for this operation is not available here (offline role).
    #[error("no {0} key in this repository's key directory: this role is offline, sign it in a ceremony")]
    MissingKey(&'static str),
    /// The repository is not initialised, or is already.
    #[error("{0}")]
    State(String),
}

impl From<tufpi_fs::Error> for RepoError {
    fn from(e: tufpi_fs::Error) -> RepoError {
        let (context, source) = e.into_parts();
        RepoError::Io { context, source }
    }
}

impl RepoError {
    /// Wrap an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> RepoError {
        RepoError::Io {
            context: context.into(),
            source,
        }
    }
}
