//! Where an index keeps its state: embedded (the data directory: SQLite, files; the
//! default) or scaled out (`--database URL --storage URL`): the index's and the repository's
//! state in one PostgreSQL database, distributions, pages and TUF metadata (`metadata/`) in
//! one blob store, shared by any number of replicas. Each replica keeps only its upload
//! temp area (`DATA/tmp`) and the repository's keys (`--keys-dir`, default `DATA/repo/keys`)
//! locally; the one leading the publisher lease publishes (see `publisher::leased`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use tufpi_blob::{Bytes, SharedStore, StorageOptions};
use tufpi_pg::Database;
use tufpi_repo::layout::TIMESTAMP_FILE;
use tufpi_repo::{RepoConfig, Repository, METADATA_PREFIX};

use crate::collect::Collected;
use crate::datadir::flush_outbox;
use crate::db::IndexDb;
use crate::error::IndexError;
use crate::index::{lock, role_json, Index, IndexOptions, ProjectLocks, Writer};
use crate::publisher::{Feed, Leased, Publisher, DEFAULT_LEASE_TTL};
use crate::storage::{blob_error, Storage};
use crate::upload::limits::UploadLimiter;

/// How an index is deployed. Neither `database` nor `storage`: embedded.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// PostgreSQL URL for the index's and the repository's state.
    pub database: Option<String>,
    /// Blob store URL (`s3://BUCKET[/PREFIX]`, `file:///path`) for files, pages, metadata.
    pub storage: Option<String>,
    /// An S3-compatible server's endpoint.
    pub storage_endpoint: Option<String>,
    /// The repository's keys on this replica (default `DATA/repo/keys`).
    pub keys_dir: Option<PathBuf>,
    /// The publisher lease's time to live.
    pub lease_ttl: Duration,
    /// Where clients fetch TUF metadata (a CDN in front of the bucket's `metadata/`):
    /// printed for clients; `/metadata/…` keeps being served here too.
    pub public_metadata_url: Option<String>,
    /// Where clients fetch files (a CDN in front of the bucket's `packages/`): `/packages/…`
    /// answers a redirect there (pages keep relative links: the same signed bytes on every
    /// replica).
    pub files_url: Option<String>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            database: None,
            storage: None,
            storage_endpoint: None,
            keys_dir: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            public_metadata_url: None,
            files_url: None,
        }
    }
}

impl Deployment {
    /// Whether anything lives outside the data directory.
    pub fn is_scaled_out(&self) -> bool {
        self.database.is_some() || self.storage.is_some()
    }
}

/// The last `timestamp.json` read from the blob store.
#[derive(Debug, Clone)]
struct Memo {
    etag: tufpi_blob::Etag,
    bytes: Bytes,
    /// Its version (0 if it does not parse: then any other replaces it).
    version: u64,
}

/// The version `timestamp.json`'s bytes carry, 0 if they do not parse.
fn timestamp_version(bytes: &[u8]) -> u64 {
    tufpi_core::metadata::Metadata::from_bytes(bytes).map_or(0, |m| m.signed.version)
}

/// A scaled-out index's shared dependencies.
#[derive(Debug)]
pub struct ScaleOut {
    /// The shared database.
    pub db: Database,
    /// The shared blob store.
    pub blobs: SharedStore,
    /// Its `metadata/` prefix: the published TUF metadata.
    pub metadata: SharedStore,
    /// The repository's keys on this replica.
    pub keys_dir: PathBuf,
    /// Where clients fetch TUF metadata, if not here.
    pub public_metadata_url: Option<String>,
    /// Where `/packages/…` redirects to, if set.
    pub files_url: Option<String>,
    /// The last `timestamp.json` read (served again while its ETag is the store's).
    timestamp: Mutex<Option<Memo>>,
}

impl ScaleOut {
    /// `timestamp.json` as the store holds it now (unavailable while the store cannot be
    /// reached: never an older copy); `None` if there is none.
    pub fn timestamp(&self) -> Result<Option<Bytes>, IndexError> {
        // Read the store on every request (a HEAD when these bytes are known), never a copy
        // older than the store's: a client moving between replicas (a load balancer) must
        // never see the version go down. The lock is not held across the network.
        let memo = self
            .timestamp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let read = match &memo {
            Some(m) => match self.metadata.head(TIMESTAMP_FILE) {
                Ok(Some(h)) if h.etag.as_ref() == Some(&m.etag) => {
                    return Ok(Some(m.bytes.clone()))
                }
                Ok(Some(_)) => self.metadata.get_tagged(TIMESTAMP_FILE),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            None => self.metadata.get_tagged(TIMESTAMP_FILE),
        };
        match read {
            Ok(Some((bytes, etag))) => {
                let version = timestamp_version(&bytes);
                let mut slot = self.timestamp.lock().unwrap_or_else(|p| p.into_inner());
                // Concurrent readers may finish out of order: keep the newest.
                if slot.as_ref().is_none_or(|m| m.version <= version) {
                    *slot = Some(Memo {
                        etag,
                        bytes: bytes.clone(),
                        version,
                    });
                }
                Ok(Some(bytes))
            }
            Ok(None) => Ok(None),
            // Not the last copy read: another replica may have served a newer one, and a
            // client going from it to this one would see a rollback. A 503 with Retry-After
            // leaves the client on what it trusts until the store is back.
            Err(e) => Err(blob_error(e)),
        }
    }

    /// Whether the database answers: `(ok, detail)`.
    pub fn check_database(&self) -> (bool, String) {
        let r = self
            .db
            .get()
            .and_then(|mut c| c.simple_query("SELECT 1").map_err(Into::into));
        match r {
            Ok(_) => (true, self.db.url_redacted().to_string()),
            Err(e) => (false, e.to_string()),
        }
    }

    /// Whether the blob store answers: `(ok, detail)`.
    pub fn check_storage(&self) -> (bool, String) {
        match self.metadata.head(TIMESTAMP_FILE) {
            Ok(_) => (true, self.blobs.describe()),
            Err(e) => (false, e.to_string()),
        }
    }
}

/// Read handles beside the first (they share the database pool of 16 connections).
const READERS: usize = 7;

/// Handles uploads commit through side by side (on the same pool).
const COMMITTERS: usize = 4;

/// Upload temp files this old are left by a crash (a live upload writes to its file).
const STALE_TMP: Duration = Duration::from_secs(3600);

/// Remove temp files of uploads interrupted by a crash (older than [`STALE_TMP`]: the
/// directory may be shared by mistake with a running replica, whose uploads are fresh).
fn clean_stale_tmp(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if stale && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!(file = %e.path().display(), "removed the temp file of an interrupted upload");
        }
    }
}

/// How often a replica waiting for the repository says so.
const WAIT_NOTICE: Duration = Duration::from_secs(10);

/// Connect to the database, waiting for it while it cannot be reached (a replica started
/// while PostgreSQL restarts comes up when it is back; saying so every [`WAIT_NOTICE`]).
/// Any other failure (a wrong password, an unknown database) is an error at once.
fn connect_patiently(url: &str) -> Result<Database, IndexError> {
    let mut notice = Instant::now();
    loop {
        match Database::connect(url) {
            Err(e) if e.is_unavailable() => {
                if Instant::now() >= notice {
                    tracing::warn!("waiting for the database: {e}");
                    notice = Instant::now() + WAIT_NOTICE;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return Ok(other?),
        }
    }
}

/// Wait until a repository exists (made by whichever replica leads the lease first).
fn wait_for_repository(leased: &Leased, publisher: &Publisher) -> Result<Repository, IndexError> {
    let mut notice = Instant::now() + WAIT_NOTICE;
    loop {
        match leased.open_unfenced() {
            Ok(Some(repo)) => return Ok(repo),
            Ok(None) => {}
            // The database or the store went away meanwhile: wait for it too.
            Err(tufpi_repo::RepoError::Unavailable(_)) => {}
            Err(tufpi_repo::RepoError::Blob(b)) if b.is_unavailable() => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= notice {
            let st = publisher.status();
            tracing::warn!(
                publisher = %st.state,
                last_error = st.last_error.as_deref().unwrap_or(""),
                "waiting for the repository to be initialised (by the replica leading the \
                 publisher lease)"
            );
            notice = Instant::now() + WAIT_NOTICE;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Open a scaled-out index: connect, start campaigning, wait for the repository (a first
/// start makes one), queue what the outbox holds. Returns it and whether this replica made
/// the repository.
pub(crate) fn open(dir: &Path, opts: &IndexOptions) -> Result<(Index, bool), IndexError> {
    let d = &opts.deployment;
    let (Some(db_url), Some(storage_url)) = (&d.database, &d.storage) else {
        return Err(IndexError::bad(
            "a scaled-out index needs both --database (PostgreSQL) and --storage (a blob store; \
             file:///path on one machine)",
        ));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| IndexError::io(format!("creating {}", dir.display()), e))?;
    let db = connect_patiently(db_url)?;
    let blobs = tufpi_blob::open(
        storage_url,
        &StorageOptions {
            endpoint: d.storage_endpoint.clone(),
        },
    )
    .map_err(blob_error)?;
    let keys_dir = d
        .keys_dir
        .clone()
        .unwrap_or_else(|| dir.join("repo").join("keys"));
    let tmp = dir.join("tmp");
    let storage = Storage::with_store(blobs.clone(), &tmp)?;
    clean_stale_tmp(&tmp);
    let mut writer_db = IndexDb::open_postgres(&db)?;
    let reader = IndexDb::open_postgres(&db)?;
    let readers = (0..READERS)
        .map(|_| IndexDb::open_postgres(&db).map(Mutex::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut committers = (0..COMMITTERS)
        .map(|_| IndexDb::open_postgres(&db))
        .collect::<Result<Vec<_>, _>>()?;
    let mut feed_db = IndexDb::open_postgres(&db)?;
    let leased = Leased {
        db: db.clone(),
        blobs: blobs.clone(),
        keys_dir: keys_dir.clone(),
        ttl: d.lease_ttl.max(Duration::from_millis(300)),
        init: RepoConfig {
            bit_length: opts.bins_bit_length,
            target_hashes: opts.target_hashes.clone().unwrap_or_default(),
            ..RepoConfig::default()
        },
        created: Arc::default(),
    };
    let feed: Feed = Box::new(move |repo| flush_outbox(&mut feed_db, repo));
    let publisher = Publisher::start_leased(leased.clone(), opts.publisher.clone(), feed)?;
    let mut repo = wait_for_repository(&leased, &publisher)?;
    if let Some(want) = opts
        .target_hashes
        .as_ref()
        .filter(|h| **h != repo.config().target_hashes)
    {
        return Err(IndexError::bad(format!(
            "--target-hashes {want}: this scaled-out repository lists {}; changing it is done \
             with one replica, embedded, for now",
            repo.config().target_hashes
        )));
    }
    // An upload's rows and its target changes in one transaction: straight into the
    // repository's queue, which the leader polls (the outbox keeps what others left).
    writer_db.queue_in_repository(repo.config().clone())?;
    for c in &mut committers {
        c.queue_in_repository(repo.config().clone())?;
    }
    let n = flush_outbox(&mut writer_db, &mut repo)?;
    if n > 0 {
        tracing::info!(changes = n, "queued target changes left in the outbox");
    }
    let created = leased.created.load(std::sync::atomic::Ordering::SeqCst);
    let metadata: SharedStore =
        Arc::new(tufpi_blob::Scoped::new(blobs.clone(), METADATA_PREFIX).map_err(blob_error)?);
    let scale = ScaleOut {
        db,
        blobs,
        metadata,
        keys_dir,
        public_metadata_url: d.public_metadata_url.clone(),
        files_url: d.files_url.clone(),
        timestamp: Mutex::new(None),
    };
    tracing::info!(
        database = scale.db.url_redacted(),
        storage = %scale.blobs.describe(),
        keys = %scale.keys_dir.display(),
        "scaled-out index open"
    );
    Ok((
        Index {
            dir: dir.to_path_buf(),
            storage,
            projects: ProjectLocks::default(),
            writer: Mutex::new(Writer {
                db: writer_db,
                repo,
            }),
            reader: Mutex::new(reader),
            readers,
            committers: committers.into_iter().map(Mutex::new).collect(),
            publisher,
            max_upload: opts.max_upload,
            uploads: UploadLimiter::new(opts.uploads.clone()),
            scale: Some(Arc::new(scale)),
            known: Some(crate::lastknown::LastKnown::new()),
        },
        created,
    ))
}

/// A scaled-out index's health and garbage collection.
impl Index {
    /// Scaled out: each dependency checked (HTTP 503 when one cannot be reached), whether
    /// this replica leads the publisher lease and under which term, and what is pending.
    pub(crate) fn health_scaled(&self, so: &ScaleOut) -> (bool, Value) {
        let (db_ok, db_detail) = so.check_database();
        let (st_ok, st_detail) = so.check_storage();
        let st = self.publisher.status();
        let counted = || -> Result<(u64, u64, u64), IndexError> {
            let pending = lock(&self.writer).repo.pending()? + self.read(|db| db.outbox_len())?;
            let (projects, files) = self.read(|db| db.counts())?;
            Ok((pending, projects, files))
        };
        let (pending, projects, files) = match db_ok.then(counted) {
            Some(Ok((p, pr, f))) => (json!(p), json!(pr), json!(f)),
            _ => (Value::Null, Value::Null, Value::Null),
        };
        let ok = db_ok && st_ok && st.state != "error";
        // A standby records no versions: the timestamp it serves says which are current.
        let timestamp = match st.timestamp {
            Some(t) => role_json(Some(t)),
            None => so
                .timestamp()
                .ok()
                .flatten()
                .and_then(|b| tufpi_core::metadata::Metadata::from_bytes(&b).ok())
                .map_or(Value::Null, |md| {
                    json!({
                        "version": md.signed.version,
                        "expires": md.signed.expires
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    })
                }),
        };
        (
            ok,
            json!({
                "status": if ok { "ok" } else { "degraded" },
                "mode": "scale-out",
                "database": { "ok": db_ok, "detail": db_detail },
                "storage": { "ok": st_ok, "detail": st_detail },
                "publisher": {
                    "state": st.state,
                    "leader": st.leader,
                    "term": st.term,
                    "keys": st.keys,
                    "keys_dir": so.keys_dir.display().to_string(),
                    "last_error": st.last_error,
                    "last_publish": st.last_publish,
                    "published_changes": st.published_changes,
                },
                "pending_changes": pending,
                "snapshot": role_json(st.snapshot),
                "timestamp": timestamp,
                "projects": projects,
                "files": files,
            }),
        )
    }

    /// Scaled out, on the leader only: superseded metadata older than `retention` (through
    /// the blob store), then objects of interrupted uploads no row references (older than
    /// the sweep's grace: other replicas upload meanwhile). Superseded pages stay for now.
    pub(crate) fn collect_scaled(
        &self,
        retention: std::time::Duration,
    ) -> Result<Collected, IndexError> {
        let mut out = Collected::default();
        let Some(gc) = self.publisher.with_leased(|repo| Ok(repo.gc(retention)?)) else {
            return Ok(out);
        };
        out.metadata = gc?;
        // The references are read under the database's lock, the bucket listed and swept
        // after it is let go (listing a bucket takes long, and every replica's uploads wait
        // on that lock). Only objects older than the grace go, whatever the store: another
        // replica's upload is in the store before its row is committed.
        let refs = lock(&self.writer).db.with_references(|refs| refs.clone())?;
        let swept = self
            .storage
            .sweep_older_than(&refs, crate::storage::SWEEP_GRACE)?;
        for f in &swept {
            tracing::info!(file = %f, "removed an object no database row references (an interrupted upload)");
        }
        Ok(out)
    }
}
