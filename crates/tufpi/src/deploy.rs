//! What a command's directory and `--database`/`--storage` open: the embedded layout (SQLite
//! and files in the directory), or scale-out (state in PostgreSQL, metadata and files in a
//! blob store, keys in the directory). Commands that publish in scale-out mode first become
//! the repository's one publisher by taking the PostgreSQL lease a `tufpi serve` leader
//! holds, so the two never publish at once.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tufpi_blob::{BlobStore, StorageOptions};
use tufpi_pg::leadership::{Leadership, DEFAULT_TTL};
use tufpi_pg::lease::{holder_id, Fence, Lease};
use tufpi_pg::Database;
use tufpi_repo::store::PostgresStore;
use tufpi_repo::{Backend, RepoConfig, Repository, StateStore, PUBLISHER_LEASE};

use tufpi_index::db::IndexDb;
use tufpi_index::storage::Storage;

use crate::args::{DataDir, Deployment, RepoDir};

/// How long a command waits for the publisher lease before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(30);

/// What a command does with a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read its state or queue changes (any number at once).
    Queue,
    /// Publish, refresh, collect, rotate, initialise: as its one publisher.
    Publish,
}

/// An open repository and, in scale-out mode when publishing, the lease that makes this
/// process its publisher (renewed in the background, released on drop).
pub struct OpenRepo {
    repo: Repository,
    _lease: Option<Led>,
}

impl Deref for OpenRepo {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        &self.repo
    }
}

impl DerefMut for OpenRepo {
    fn deref_mut(&mut self) -> &mut Repository {
        &mut self.repo
    }
}

impl Deployment {
    /// The database, if one is named.
    pub fn database(&self) -> Result<Option<Database>> {
        let Some(url) = &self.database else {
            return Ok(None);
        };
        let db = Database::connect(url)
            .with_context(|| format!("connecting to {}", tufpi_pg::redact_url(url)))?;
        Ok(Some(db))
    }

    /// The blob store, if one is named.
    pub fn storage(&self) -> Result<Option<Arc<dyn BlobStore>>> {
        let Some(url) = &self.storage else {
            return Ok(None);
        };
        let opts = StorageOptions {
            endpoint: self.storage_endpoint.clone(),
        };
        Ok(Some(tufpi_blob::open(url, &opts)?))
    }
}

/// The publisher lease held by this process, and the fence its writes carry.
struct Led {
    /// Kept alive (renewed in the background) until the command ends, then released.
    _lease: Leadership,
    fence: Fence,
}

/// Become the publisher of the repository in `db`, waiting up to [`LEASE_WAIT`] for another
/// holder (a `tufpi serve` leader, another command) to let go.
fn lead(db: &Database) -> Result<Led> {
    let lease = Leadership::start(db.clone(), PUBLISHER_LEASE, &holder_id(), DEFAULT_TTL);
    if let Some(term) = lease.wait_for_leadership(LEASE_WAIT) {
        // The term won, not whatever `fence()` says later: if the lease is lost meanwhile,
        // every publishing transaction is refused by this term rather than left unfenced.
        let fence = Fence {
            name: PUBLISHER_LEASE.to_string(),
            term,
        };
        return Ok(Led {
            _lease: lease,
            fence,
        });
    }
    let holder = match Lease::current(db, PUBLISHER_LEASE) {
        Ok(Some((holder, term, left))) => {
            format!("{holder} (term {term}, {left:.0} s left on its lease)")
        }
        _ => "another process".to_string(),
    };
    bail!(
        "the repository's publisher lease is held by {holder}: stop that publisher (a `tufpi serve` replica leading?) or queue without publishing"
    )
}

impl RepoDir {
    /// The keys directory: `DIR/keys` (in scale-out mode DIR holds only the keys).
    fn keys_dir(&self) -> PathBuf {
        self.path.join("keys")
    }

    /// The scale-out backend, fenced by `lease`'s term if given; `None` when embedded.
    fn backend(&self, db: Option<&Database>, lease: Option<&Led>) -> Result<Option<Backend>> {
        let dep = &self.deployment;
        if !dep.is_scaled_out() {
            return Ok(None);
        }
        let storage = dep
            .storage()?
            .context("--database needs --storage: the metadata must be where every replica and client sees it")?;
        let backend = match db {
            Some(db) => {
                let fence = lease.map(|l| l.fence.clone());
                Backend::scale_out(db, fence, storage, &self.keys_dir())?
            }
            None => {
                // Metadata in the blob store, state in DIR/state.db under DIR's lock file.
                let mut b = Backend::embedded(&self.path)?;
                b.metadata = Arc::new(tufpi_blob::Scoped::new(
                    storage,
                    tufpi_repo::METADATA_PREFIX,
                )?);
                b
            }
        };
        Ok(Some(backend))
    }

    /// Open the repository for `access`.
    pub fn open(&self, access: Access) -> Result<OpenRepo> {
        let db = self.deployment.database()?;
        let lease = match (&db, access) {
            (Some(db), Access::Publish) => Some(lead(db)?),
            _ => None,
        };
        let repo = match self.backend(db.as_ref(), lease.as_ref())? {
            Some(b) => Repository::open_with(b)?,
            None => Repository::open(&self.path)?,
        };
        Ok(OpenRepo {
            repo,
            _lease: lease,
        })
    }

    /// Create a development repository (every key generated into `DIR/keys`).
    pub fn init_dev(&self, config: RepoConfig) -> Result<OpenRepo> {
        let db = self.deployment.database()?;
        let lease = db.as_ref().map(lead).transpose()?;
        let repo = match self.backend(db.as_ref(), lease.as_ref())? {
            Some(b) => Repository::init_dev_with(b, config)?,
            None => Repository::init_dev(&self.path, config)?,
        };
        Ok(OpenRepo {
            repo,
            _lease: lease,
        })
    }

    /// Start a production repository: the online key into `DIR/keys`, unsigned version 1 of
    /// the offline roles into `DIR/ceremony/`.
    pub fn init_ceremony(
        &self,
        config: RepoConfig,
        keys: &tufpi_repo::OfflineKeys,
    ) -> Result<Vec<PathBuf>> {
        let db = self.deployment.database()?;
        let lease = db.as_ref().map(lead).transpose()?;
        Ok(match self.backend(db.as_ref(), lease.as_ref())? {
            Some(b) => {
                Repository::init_ceremony_with(b, config, keys, &self.path.join("ceremony"))?
            }
            None => Repository::init_ceremony(&self.path, config, keys)?,
        })
    }

    /// Where the published metadata is, for messages.
    pub fn describe_metadata(&self, r: &Repository) -> String {
        match r.metadata_local_dir() {
            Some(d) => d.display().to_string(),
            None => r.metadata_store().describe(),
        }
    }
}

impl DataDir {
    /// The index database: PostgreSQL with `--database`, else `DIR/index.db` (which must
    /// exist unless `create`).
    pub fn index_db(&self, create: bool) -> Result<IndexDb> {
        if let Some(db) = self.deployment.database()? {
            return Ok(IndexDb::open_postgres(&db)?);
        }
        let dir = &self.path;
        if create {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        } else if !tufpi_index::is_index_dir(dir) {
            bail!(
                "{} holds no index (no index.db and repo/state.db): give the data directory of tufpi serve with --data-dir, or its --database and --storage",
                dir.display()
            );
        }
        Ok(IndexDb::open(&dir.join("index.db"))?)
    }

    /// Scaled out: the index database whose changes queue their target changes in the
    /// repository's queue in their own transaction, as the replicas' do (through the outbox a
    /// change could be queued after a later one of the same project, and sign an older page),
    /// and the repository's state store, to see them signed.
    pub fn index_db_queueing(&self) -> Result<(IndexDb, PostgresStore)> {
        let Some(db) = self.deployment.database()? else {
            bail!("no --database given");
        };
        let mut index = IndexDb::open_postgres(&db)?;
        let state = PostgresStore::open(&db, None)?;
        let settings = state.settings()?;
        let cfg = RepoConfig::from_settings(|k| settings.get(k).cloned());
        let Some(cfg) = cfg else {
            bail!("the database holds no repository yet: start a `tufpi serve` replica first");
        };
        index.queue_in_repository(cfg)?;
        Ok((index, state))
    }

    /// In scale-out mode, the index's file areas in the blob store (temp files in DIR/tmp).
    pub fn storage(&self) -> Result<Option<Storage>> {
        match self.deployment.storage()? {
            Some(blobs) => Ok(Some(Storage::with_store(blobs, &self.path.join("tmp"))?)),
            None => Ok(None),
        }
    }
}
