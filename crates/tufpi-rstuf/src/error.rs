//! Errors of the RSTUF-compatible service: each names the check that refused.

use std::path::PathBuf;

use tufpi_repo::RepoError;

/// Why a request or task failed.
#[derive(Debug, thiserror::Error)]
pub enum RstufError {
    /// The repository engine refused or failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The task database failed.
    #[error("task database {path}: {source}")]
    TaskDb {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A metadata document in a payload does not parse as TUF metadata.
    #[error("metadata.{role}: not valid TUF metadata: {detail}")]
    BadMetadata {
        /// The role the payload names.
        role: String,
        /// What the parser said.
        detail: String,
    },
    /// The online key could not be located or loaded.
    #[error("online key: {0}")]
    OnlineKey(String),
    /// A check on a payload failed (the message names it).
    #[error("{0}")]
    Refused(String),
    /// File system trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RstufError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> RstufError {
        RstufError::Io {
            what: what.into(),
            source,
        }
    }
}
