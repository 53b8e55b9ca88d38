//! Client errors: each names the role, the check and the values.

use chrono::{DateTime, Utc};
use tufpi_core::hashes::HashError;
use tufpi_core::metadata::MetadataError;
use tufpi_core::verify::VerifyError;

use crate::fetcher::FetchError;

/// Why an update or a download failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The metadata could not be parsed or is not valid TUF metadata.
    #[error("{role}: {source}")]
    Invalid {
        /// Role being loaded.
        role: String,
        /// The parse/validation error.
        source: MetadataError,
    },
    /// The file is of another metadata type.
    #[error("{role}: expected _type {expected:?}, got {got:?}")]
    WrongType {
        /// Role being loaded.
        role: String,
        /// Expected `_type`.
        expected: &'static str,
        /// Actual `_type`.
        got: &'static str,
    },
    /// Signature threshold not met (or the role is not delegated).
    #[error(transparent)]
    Signatures(#[from] VerifyError),
    /// The same keyid signs twice.
    #[error("{role}: keyid {keyid} signs more than once: refused")]
    DuplicateSignature {
        /// Role being loaded.
        role: String,
        /// The repeated keyid.
        keyid: String,
    },
    /// A version lower than the trusted one.
    #[error("{role} version {got} < trusted {trusted}: rollback refused")]
    Rollback {
        /// Role (or meta entry) concerned.
        role: String,
        /// Version offered.
        got: u64,
        /// Version trusted.
        trusted: u64,
    },
    /// A version other than the one required.
    #[error("{role}: expected version {expected}, got {got}")]
    BadVersion {
        /// Role concerned.
        role: String,
        /// Version required (by the parent, or N+1 for root).
        expected: u64,
        /// Version offered.
        got: u64,
    },
    /// A snapshot that drops an entry the trusted snapshot lists.
    #[error("snapshot v{version}: entry {entry} (trusted at version {trusted}) is missing: rollback refused")]
    MissingMeta {
        /// New snapshot version.
        version: u64,
        /// The vanished `ROLE.json` entry.
        entry: String,
        /// Its trusted version.
        trusted: u64,
    },
    /// The role is not listed where it must be.
    #[error("{role}: not listed in {parent}")]
    NotListed {
        /// Role looked for.
        role: String,
        /// Where it should be listed.
        parent: &'static str,
    },
    /// Expired metadata (freeze attack).
    #[error("{role} v{version} expired at {expires} (update started {now}): freeze refused")]
    Expired {
        /// Role.
        role: String,
        /// Its version.
        version: u64,
        /// Its expiry.
        expires: DateTime<Utc>,
        /// The fixed reference time of this update.
        now: DateTime<Utc>,
    },
    /// Length or hashes disagree with the parent (mix-and-match) or with the target entry.
    #[error("{what}: {source}")]
    Hash {
        /// The role or target checked.
        what: String,
        /// The mismatch.
        source: HashError,
    },
    /// No role in the delegation graph lists this target.
    #[error("target {0:?}: not found in signed metadata")]
    TargetNotFound(String),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Local storage failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An update step was called out of order (a bug in the caller, reported, not panicked).
    #[error("client state: {0}")]
    Order(&'static str),
    /// Bad configuration or arguments.
    #[error("configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// Wrap an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ClientError {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<tufpi_fs::Error> for ClientError {
    /// A failed durable write: its context and OS error.
    fn from(e: tufpi_fs::Error) -> ClientError {
        let (context, source) = e.into_parts();
        ClientError::io(context, source)
    }
}
