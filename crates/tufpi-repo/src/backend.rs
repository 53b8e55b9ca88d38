//! Where a repository keeps its state, chosen at start: one seam per kind of state, so the
//! engine is the same code in both modes.
//!
//! - **Embedded** ([`Backend::embedded`], what [`Repository::open`](crate::Repository::open)
//!   uses): `DIR/state.db` (SQLite), `DIR/metadata/` (files, durable writes), `DIR/keys/`,
//!   the publisher lock `DIR/publisher.lock` and a bulk import's staging in `DIR/staging/`.
//! - **Scale-out**: the state in PostgreSQL, the metadata in S3-compatible object storage.
//!   Keys are read from a local keys directory that every publishing replica has (the online
//!   key is all a publisher needs; offline keys stay offline). There is no local lock: the
//!   state store's lease fences publishers, and `timestamp.json` is only ever replaced with
//!   `If-Match` on the ETag this publisher last wrote, so a publisher that lost the lease is
//!   refused by the store itself. A bulk import stages its signed bins in a local scratch
//!   directory (`$TMPDIR/tufpi-staging-PID`), records the plan naming them, and the publisher
//!   writes each bin once into the object store, create-only, many in flight. Nothing is staged
//!   in the object store: that cost two PUTs and a GET per bin on top of the final write. If
//!   the importer dies after recording its plan, whoever finishes the plan (a re-run, the next
//!   leader) keeps the bins already written (the plan holds their target counts) and re-signs
//!   the others from what the state store and the published bins hold, so the snapshot never
//!   names a missing bin; the import's records in those bins are then not published (the
//!   import never returned: run it again, which converges). A bin version already present
//!   is kept as it is, never overwritten (create-only): the same bytes when it is this plan's
//!   own earlier attempt; other bytes only if a publisher that lost the lease raced the new
//!   leader on the same version (the loser's plan-clearing is refused by the fence, but the
//!   new leader records the target count of the bytes it built, not of those stored).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tufpi_blob::{BlobStore, FsStore};

use crate::error::RepoError;
use crate::store::{SqliteStore, StateStore};

/// The parts a repository is made of: its state store, its metadata store and local paths.
pub struct Backend {
    /// The relational state: role versions, the queue, the in-flight plan.
    pub state: Box<dyn StateStore + Send>,
    /// The published metadata, keyed by file name (`N.role.json`, `timestamp.json`).
    pub metadata: Arc<dyn BlobStore>,
    /// Where a bulk import stages signed bins before recording the plan that names them: a
    /// store every replica can read (lets another replica finish an import, at two requests
    /// more per bin; no deployment uses one now), or `None` for `work_dir/staging` (a temp
    /// directory without a work directory).
    pub staging: Option<Arc<dyn BlobStore>>,
    /// The signing keys (`<role>.pem`); a local directory on every publishing replica.
    pub keys_dir: PathBuf,
    /// A local directory for the publisher lock file and import scratch files; `None` in
    /// scale-out mode (no local lock: the state store's lease fences publishers).
    pub work_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("metadata", &self.metadata.describe())
            .field("staging", &self.staging.as_ref().map(|s| s.describe()))
            .field("keys_dir", &self.keys_dir)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// The embedded layout in `dir`: SQLite at `DIR/state.db` (created if missing), files in
    /// `DIR/metadata/`, keys in `DIR/keys/`, lock and staging in `DIR`.
    pub fn embedded(dir: &Path) -> Result<Backend, RepoError> {
        let state = SqliteStore::open(&dir.join("state.db"))?;
        Backend::embedded_with(dir, Box::new(state))
    }

    /// [`Backend::embedded`] over an already opened state store.
    pub(crate) fn embedded_with(
        dir: &Path,
        state: Box<dyn StateStore + Send>,
    ) -> Result<Backend, RepoError> {
        Ok(Backend {
            state,
            metadata: Arc::new(FsStore::open(&dir.join("metadata"))?),
            staging: None,
            keys_dir: crate::keys::key_dir(dir),
            work_dir: Some(dir.to_path_buf()),
        })
    }
}

/// The lease every publisher of a scale-out repository campaigns for (the index's
/// publishers and `tufpi repo` commands alike): one name, so they exclude each other.
pub const PUBLISHER_LEASE: &str = "publisher";

/// The key prefix of the published TUF metadata in a scale-out deployment's blob store: the
/// public URL path (`/metadata/…`), so a CDN can front the bucket directly.
pub const METADATA_PREFIX: &str = "metadata";

/// The key prefix where bulk imports of earlier versions staged their signed bins in a
/// scale-out deployment (imports now stage locally; nothing is written there any more).
pub const STAGING_PREFIX: &str = "staging";

impl Backend {
    /// Scale-out: the state in PostgreSQL `db` (its publishing transactions checked against
    /// `fence`, the term of [`PUBLISHER_LEASE`] this process holds; `None` to queue and read
    /// only), the metadata under `metadata/` of `blobs`, the keys in the local `keys_dir`;
    /// bulk imports stage in a local temp directory.
    pub fn scale_out(
        db: &tufpi_pg::Database,
        fence: Option<tufpi_pg::lease::Fence>,
        blobs: Arc<dyn BlobStore>,
        keys_dir: &Path,
    ) -> Result<Backend, RepoError> {
        let state = crate::store::PostgresStore::open(db, fence)?;
        Ok(Backend {
            state: Box::new(state),
            metadata: Arc::new(tufpi_blob::Scoped::new(blobs, METADATA_PREFIX)?),
            staging: None,
            keys_dir: keys_dir.to_path_buf(),
            work_dir: None,
        })
    }
}

/// Where a bulk import's signed bins wait for the plan that names them.
#[derive(Debug, Clone)]
pub(crate) enum Staging {
    /// A local directory, made when an import starts and removed when its plan is done.
    Dir(PathBuf),
    /// A blob store (shared by every replica in scale-out mode).
    Store(Arc<dyn BlobStore>),
}

impl Staging {
    /// The staging store, made if missing.
    pub fn open(&self) -> Result<Arc<dyn BlobStore>, RepoError> {
        match self {
            Staging::Dir(d) => Ok(Arc::new(FsStore::open(d)?)),
            Staging::Store(s) => Ok(s.clone()),
        }
    }

    /// The local directory for an import's spill files, if staging is local.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Staging::Dir(d) => Some(d),
            Staging::Store(_) => None,
        }
    }

    /// A key prefix for a new import's staged files: none in a local directory (one
    /// publisher per directory, which clears it first), a fresh one in a shared store (so a
    /// replica clearing what an earlier import left never takes a running import's files).
    pub fn new_prefix(&self) -> String {
        match self {
            Staging::Dir(_) => String::new(),
            Staging::Store(_) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                format!("import-{nanos}-{}", std::process::id())
            }
        }
    }

    /// Remove the files staged under `prefix` (best effort: what is left is removed later).
    pub fn clear_prefix(&self, prefix: &str) {
        match self {
            Staging::Dir(d) => {
                let _ = std::fs::remove_dir_all(if prefix.is_empty() {
                    d.clone()
                } else {
                    d.join(prefix)
                });
            }
            Staging::Store(s) => {
                let under = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                delete_listed(&**s, &under, None);
            }
        }
    }

    /// Remove what imports that never recorded their plan left (no plan is pending): a local
    /// directory entirely; in a shared store only files older than [`STALE_STAGING`], as
    /// another replica may be staging an import right now.
    pub fn clear_stale(&self) {
        match self {
            Staging::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Staging::Store(s) => {
                let stale = chrono::Duration::from_std(STALE_STAGING).unwrap_or_default();
                delete_listed(&**s, "", Some(chrono::Utc::now() - stale));
            }
        }
    }
}

/// How old a staged file in a shared store must be before it counts as left behind.
pub(crate) const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Delete the objects under `prefix` (written before `before`, if given); best effort.
fn delete_listed(
    store: &dyn BlobStore,
    prefix: &str,
    before: Option<chrono::DateTime<chrono::Utc>>,
) {
    let Ok(list) = store.list(prefix) else {
        return;
    };
    for m in list {
        if before.is_none_or(|t| m.modified < t) {
            let _ = store.delete(&m.key);
        }
    }
}

/// The key of staged file `key` under `prefix`.
pub(crate) fn staged_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

/// The local directory a store keeps its top-level keys in, if it is on the file system.
pub(crate) fn local_dir(store: &dyn BlobStore) -> Option<PathBuf> {
    store
        .local_path(crate::layout::TIMESTAMP_FILE)
        .and_then(|p| p.parent().map(Path::to_path_buf))
}
