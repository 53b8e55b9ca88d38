//! Repository errors: one variant per failed check, naming what failed. Input the caller can
//! fix reads `invalid input: …`; trouble with the state store reads `state store: …`.

use std::path::PathBuf;

use tufpi_core::crypto::CryptoError;
use tufpi_core::json::CanonicalError;
use tufpi_core::metadata::MetadataError;
use tufpi_core::verify::VerifyError;

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    // ---- The repository and its state store.
    /// `dir` holds no repository.
    #[error("{} is not a tufpi repository (no state.db)", dir.display())]
    NotARepository {
        /// The directory given.
        dir: PathBuf,
    },
    /// `dir` holds a repository whose initialisation did not finish (no settings stored).
    #[error("{}: repository settings missing: initialisation did not finish", dir.display())]
    InitialisationUnfinished {
        /// The repository directory.
        dir: PathBuf,
    },
    /// A repository cannot be made where there is one.
    #[error("{} already holds a repository", dir.display())]
    AlreadyInitialised {
        /// The directory given.
        dir: PathBuf,
    },
    /// Another publisher holds the repository lock.
    #[error("another publisher holds {0}; refusing to write")]
    Locked(String),
    /// This publisher's lease term is no longer the current one: another publisher took
    /// over, and this one must stop writing.
    #[error("fenced: this publisher holds lease term {held} but the lease is at term {current}; another publisher took over: refusing to write")]
    Fenced {
        /// The term this publisher holds.
        held: i64,
        /// The lease's term now (0 if the lease is gone).
        current: i64,
    },
    /// The state store cannot be reached now (connection refused, closed or timed out); a
    /// retry may succeed.
    #[error("state store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A key needed for this operation is not available here (offline role).
    #[error("no {0} key in this repository's key directory: this role is offline, sign it in a ceremony")]
    MissingKey(&'static str),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A value read back from the state store does not parse.
    #[error("state store: stored {what}: {detail}")]
    CorruptStore {
        /// What was read: `plan`, `hashes`, `custom`.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The state store has no state for a role the operation needs.
    #[error("state store: no state for {role}")]
    NoRoleState {
        /// The role.
        role: String,
    },
    /// An interrupted publish in the format of an older tufpi.
    #[error(
        "this repository was left mid-publish by an older tufpi: finish it with that version \
         (`tufpi repo publish`), then open it with this one"
    )]
    LeftMidPublish,
    /// A bulk import's spill data does not decode (it was changed or cut short).
    #[error("import spill data: {detail}")]
    CorruptSpill {
        /// What is wrong with it.
        detail: String,
    },

    // ---- Published files.
    /// The metadata blob store failed (unreachable, refused a key, local I/O).
    #[error("metadata store: {0}")]
    Blob(#[from] tufpi_blob::BlobError),
    /// `timestamp.json` is not the one this publisher last wrote or read: another writer
    /// replaced it (this publisher lost its lease). The recorded plan stays for the leader.
    #[error("timestamp.json was replaced by another writer (lost the publisher lease?): refusing to publish ({detail})")]
    TimestampReplaced {
        /// What was found.
        detail: String,
    },
    /// A metadata file the operation needs is not in the metadata store.
    #[error("{key}: not found in {store}")]
    NotPublished {
        /// The file's key (`N.role.json`).
        key: String,
        /// The store, as it describes itself.
        store: String,
    },
    /// A published metadata file does not parse.
    #[error("{}: {source}", path.display())]
    BadPublishedFile {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        source: MetadataError,
    },
    /// A metadata file is of another role type than expected.
    #[error("{file} is not {expected} metadata")]
    WrongMetadataType {
        /// The file (or what it is).
        file: String,
        /// The role type expected.
        expected: &'static str,
    },
    /// Metadata could not be built or read.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A key could not be used.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Building or signing a bin failed.
    #[error("{bin}: {source}")]
    Bin {
        /// The bin.
        bin: String,
        /// What failed.
        source: Box<RepoError>,
    },
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },

    // ---- Layout and targets.
    /// The number of bins is out of range.
    #[error("invalid input: bins bit length must be 1..=32, got {got}")]
    BadBitLength {
        /// The bit length given.
        got: u32,
    },
    /// A target path that could escape or alias: empty, absolute, or with an empty, `.` or
    /// `..` segment.
    #[error(
        "invalid input: target path {path:?} must be relative, without empty, . or .. segments"
    )]
    BadTargetPath {
        /// The path given.
        path: String,
    },
    /// A target's `custom` value has no canonical JSON form.
    #[error("invalid input: target {path:?}: custom: {source}")]
    BadCustom {
        /// The target.
        path: String,
        /// Why.
        source: CanonicalError,
    },
    /// A target hash algorithm tufpi does not list.
    #[error("invalid input: target hash algorithm {name:?} is not one of {known}")]
    UnknownHashAlgorithm {
        /// The name given.
        name: String,
        /// The algorithms there are.
        known: String,
    },
    /// Target hashes without `sha256`.
    #[error("invalid input: target hashes {given:?} must include sha256: it is the one algorithm every TUF client verifies")]
    Sha256Required {
        /// The list given.
        given: String,
    },
    /// A target lacks a digest the repository lists for every target.
    #[error("invalid input: target {path:?}: hashes lack {alg}, which this repository lists for every target (target hashes: {listed})")]
    MissingTargetHash {
        /// The target.
        path: String,
        /// The algorithm lacking.
        alg: &'static str,
        /// The repository's target hashes.
        listed: String,
    },
    /// A target digest that is not hex of the algorithm's length.
    #[error("invalid input: target {path:?}: {alg} must be {want} hex digits, got {got:?}")]
    BadTargetHash {
        /// The target.
        path: String,
        /// The algorithm.
        alg: &'static str,
        /// Hex digits expected.
        want: usize,
        /// The digest given.
        got: String,
    },
    /// Switching the target hashes would leave targets without a digest to list.
    #[error(
        "invalid input: cannot list {new} for every target: {count} targets lack a digest \
         (first: {first}); add them again with it, or keep the target hashes as they are \
         ({current})"
    )]
    TargetsLackDigest {
        /// The target hashes asked for.
        new: String,
        /// How many targets lack a digest.
        count: usize,
        /// The first target's error.
        first: Box<RepoError>,
        /// The target hashes kept.
        current: String,
    },
    /// Bad input the caller's own check refused: a record an import's conversion could not
    /// make (the engine's own checks have their variants).
    #[error("invalid input: {0}")]
    Invalid(String),

    // ---- Ceremonies.
    /// A ceremony file of a role ceremonies do not publish.
    #[error(
        "invalid input: only root, targets and bins are published from ceremonies, not {role_type}"
    )]
    NotPublishable {
        /// Its role type.
        role_type: String,
    },
    /// Two ceremony files for one role.
    #[error("invalid input: two files for {role}")]
    DuplicateRole {
        /// The role.
        role: String,
    },
    /// The first publication lacks one of the offline roles.
    #[error("invalid input: the first publication needs signed {needed:?}")]
    FirstPublicationIncomplete {
        /// The roles it needs.
        needed: &'static [&'static str],
    },
    /// A ceremony file is not the next version of its role.
    #[error("invalid input: {role}: version {got} but the next version is {expected}")]
    NotNextVersion {
        /// The role.
        role: String,
        /// The next version.
        expected: u64,
        /// The file's version.
        got: u64,
    },
    /// A ceremony file does not meet its delegator's signature threshold (or is not
    /// delegated by it).
    #[error("invalid input: {check}: {source}")]
    Threshold {
        /// Which keys it was checked against, e.g. `root v1 (trusted) keys`.
        check: String,
        /// What failed.
        source: VerifyError,
    },
    /// The new root does not trust the online key for an online role.
    #[error(
        "invalid input: root v{root_version} does not assign the online key {keyid} to {role}"
    )]
    OnlineKeyNotTrusted {
        /// The root checked.
        root_version: u64,
        /// The online key.
        keyid: String,
        /// The role.
        role: &'static str,
    },
    /// A threshold that can never (or always) be met.
    #[error("invalid input: {role}: threshold {threshold} with {keys} key(s) can never (or always) be met")]
    BadThreshold {
        /// The role.
        role: String,
        /// The threshold.
        threshold: u64,
        /// Its number of keys.
        keys: usize,
    },
    /// A ceremony edit of a role that root does not have.
    #[error("invalid input: root has no role {role:?}")]
    NoRootRole {
        /// The role.
        role: String,
    },
    /// A ceremony edit of delegations in a targets role that delegates nothing.
    #[error("invalid input: this targets role delegates nothing")]
    NoDelegations,
    /// A ceremony edit of a delegated role that is not there.
    #[error("invalid input: no delegated role {role:?}")]
    NoDelegatedRole {
        /// The role.
        role: String,
    },
    /// A ceremony edit of a role type ceremonies do not edit.
    #[error(
        "invalid input: only root, targets and bins are edited in ceremonies, not {role_type}"
    )]
    NotEditable {
        /// Its role type.
        role_type: String,
    },
    /// Removing a key a role does not have.
    #[error("invalid input: {role}: keyid {keyid} is not one of its keys")]
    NotAKey {
        /// The role.
        role: String,
        /// The keyid.
        keyid: String,
    },
    /// Combining no copies.
    #[error("invalid input: nothing to combine")]
    NothingToCombine,
    /// Signed copies of different content.
    #[error(
        "invalid input: copies differ in their signed content; each holder must sign the same file"
    )]
    CopiesDiffer,
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

    /// A state store failure.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RepoError {
        RepoError::Store(source.into())
    }
}
