//! The index as a server runs it: the data directory (`repo/`, `index.db`, `packages/`,
//! `pages/`, `tmp/`) opened, the commit of an accepted upload, management operations, the
//! publisher, health and garbage collection. Without a server, see [`crate::datadir`].
//! Scaled out (`--database`, `--storage`), see [`crate::deploy`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde_json::{json, Value};
use tufpi_repo::{RepoConfig, RepoError, Repository, RoleState, TargetHashes};
use tufpi_simple::targets::{metadata_path, package_path};

use crate::collect::Collected;
use crate::datadir::flush_outbox;
use crate::db::IndexDb;
use crate::deploy::{Deployment, ScaleOut};
use crate::error::IndexError;
use crate::manage::{self, Operation, Outcome};
use crate::names::DistKind;
use crate::pages::{self, Digests, FileRow};
use crate::publisher::{Feed, Publisher, PublisherConfig};
use crate::storage::{self, Storage};
use crate::upload::limits::{UploadLimiter, UploadLimits};
use crate::wheel::CoreMetadata;

/// Times an upload's pages are rendered outside its transaction before, the project
/// changing under it each time, they are rendered inside it.
const RENDER_ATTEMPTS: u32 = 3;

/// Default largest accepted distribution file (100 MiB).
pub const DEFAULT_MAX_UPLOAD: u64 = 100 << 20;

/// How to open (or create) an index.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// 2^N bins for a new repository (PEP 458: 14).
    pub bins_bit_length: u32,
    /// Largest accepted distribution file, bytes.
    pub max_upload: u64,
    /// Publisher pacing.
    pub publisher: PublisherConfig,
    /// Concurrent uploads allowed, per server and per token.
    pub uploads: UploadLimits,
    /// Hash algorithms every target lists: for a new index (default sha256 alone), or a
    /// change for an existing one (every target is re-listed); `None` keeps what it lists.
    pub target_hashes: Option<TargetHashes>,
    /// Embedded (the default) or scaled out.
    pub deployment: Deployment,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            bins_bit_length: 14,
            max_upload: DEFAULT_MAX_UPLOAD,
            publisher: PublisherConfig::default(),
            uploads: UploadLimits::default(),
            target_hashes: None,
            deployment: Deployment::default(),
        }
    }
}

/// An upload that passed every check and waits to be committed.
#[derive(Debug)]
pub struct Accepted {
    /// Normalised project name.
    pub project: String,
    /// The project name as uploaded.
    pub display_name: String,
    /// PEP 440 version, normalised.
    pub version: String,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// File name.
    pub filename: String,
    /// The received file (fsynced) in the temp area.
    pub tmp: PathBuf,
    /// Its size and digests.
    pub digests: Digests,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// Core metadata extracted from a wheel.
    pub metadata: Option<CoreMetadata>,
}

/// The write connection and the repository to queue changes in.
pub(crate) struct Writer {
    pub(crate) db: IndexDb,
    pub(crate) repo: Repository,
}

/// Per-project locks: a project's uploads are serialised among themselves, so its pages (which
/// grow with the project) are rendered and stored outside the index-wide writer lock.
#[derive(Default)]
pub(crate) struct ProjectLocks {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// A held project lock; released on drop.
struct ProjectGuard<'a> {
    locks: &'a ProjectLocks,
    project: String,
}

impl ProjectLocks {
    fn lock(&self, project: &str) -> ProjectGuard<'_> {
        let mut held = lock(&self.held);
        while held.contains(project) {
            held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        held.insert(project.to_string());
        ProjectGuard {
            locks: self,
            project: project.to_string(),
        }
    }
}

impl Drop for ProjectGuard<'_> {
    fn drop(&mut self) {
        lock(&self.locks.held).remove(&self.project);
        self.locks.freed.notify_all();
    }
}

/// An open index.
pub struct Index {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Storage,
    pub(crate) projects: ProjectLocks,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) reader: Mutex<IndexDb>,
    /// Scaled out: more read handles (on the shared pool), so that reads run in parallel.
    pub(crate) readers: Vec<Mutex<IndexDb>>,
    /// Scaled out: handles uploads commit through side by side (queueing in the
    /// repository's queue in their own transactions); empty when embedded.
    pub(crate) committers: Vec<Mutex<IndexDb>>,
    pub(crate) publisher: Publisher,
    pub(crate) max_upload: u64,
    pub(crate) uploads: Arc<UploadLimiter>,
    /// Scaled out: the shared database and blob store.
    pub(crate) scale: Option<Arc<ScaleOut>>,
    /// Scaled out: the last answers of page and file lookups, served while the database
    /// cannot be reached.
    pub(crate) known: Option<crate::lastknown::LastKnown>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remove what interrupted uploads and removals left behind: the temp area, and (unless the
/// database is new: a lost `index.db` must not take every file with it) files under
/// `packages/` and `pages/` that no database row references. Logs each removed file; a
/// failure only costs disk space, so it is logged too, not fatal.
fn sweep(db: &mut IndexDb, storage: &Storage, db_existed: bool) {
    let tmp = storage.clean_tmp();
    for f in &tmp {
        tracing::info!(file = %f, "removed the temp file of an interrupted upload");
    }
    let swept = if db_existed {
        db.with_references(|refs| storage.sweep(refs))
            .unwrap_or_else(|e| {
                tracing::warn!("sweeping unreferenced files: {e}");
                Vec::new()
            })
    } else {
        Vec::new()
    };
    for f in &swept {
        tracing::info!(file = %f, "removed a file no database row references (interrupted before its commit)");
    }
    if !tmp.is_empty() || !swept.is_empty() {
        tracing::info!(
            temp = tmp.len(),
            unreferenced = swept.len(),
            "swept files left by an interrupted run"
        );
    }
}

pub(crate) fn role_json(st: Option<RoleState>) -> Value {
    match st {
        Some(s) => json!({
            "version": s.version,
            "expires": chrono::DateTime::from_timestamp(s.expires, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }),
        None => Value::Null,
    }
}

impl Index {
    /// Open the index in `dir`, creating it (a development-key repository in `dir/repo`) if
    /// `dir` holds none yet; returns it and whether it was created. Starts the publisher,
    /// which first finishes any interrupted publish. Refused at once, naming its PID, if
    /// another server runs on `dir`. Scaled out, see [`crate::deploy`].
    pub fn open(dir: &Path, opts: &IndexOptions) -> Result<(Index, bool), IndexError> {
        if opts.deployment.is_scaled_out() {
            return crate::deploy::open(dir, opts);
        }
        crate::publisher::ensure_not_served(dir)?;
        if let Some(alg) = opts.target_hashes.as_ref().and_then(|h| {
            h.algorithms()
                .iter()
                .find(|a| !crate::db::KEPT_HASHES.contains(a))
        }) {
            return Err(IndexError::bad(format!(
                "target hashes: the index keeps {} digests of its files and pages, not {alg}",
                crate::db::KEPT_HASHES.join(" and ")
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::io(format!("creating {}", dir.display()), e))?;
        let repo_dir = dir.join("repo");
        let created = !repo_dir.join("state.db").exists();
        let mut publishing = if created {
            let cfg = RepoConfig {
                bit_length: opts.bins_bit_length,
                target_hashes: opts.target_hashes.clone().unwrap_or_default(),
                ..RepoConfig::default()
            };
            Repository::init_dev(&repo_dir, cfg)?
        } else {
            Repository::open(&repo_dir)?
        };
        let db_path = dir.join("index.db");
        if let Some(new) = opts
            .target_hashes
            .as_ref()
            .filter(|h| **h != publishing.config().target_hashes)
        {
            // Before the writer's handle opens: it must queue with the new listing.
            let db = IndexDb::open(&db_path)?;
            let old = publishing.config().target_hashes.clone();
            let n = publishing.set_target_hashes(new.clone(), &|path, listed| {
                db.known_hashes(path, listed).ok().flatten()
            })?;
            tracing::info!(from = %old, to = %new, relisted = n, "target hashes changed");
        }
        let storage = Storage::open(dir)?;
        let db_existed = db_path.is_file();
        let mut writer = Writer {
            db: IndexDb::open(&db_path)?,
            repo: Repository::open(&repo_dir)?,
        };
        // Target changes of uploads committed just before a crash go to the queue first.
        let n = flush_outbox(&mut writer.db, &mut writer.repo)?;
        if n > 0 {
            tracing::info!(changes = n, "queued target changes left by the last run");
        }
        let reader = IndexDb::open(&db_path)?;
        let mut feed_db = IndexDb::open(&db_path)?;
        let feed: Feed = Box::new(move |repo| flush_outbox(&mut feed_db, repo));
        let publisher =
            Publisher::start(publishing, opts.publisher.clone(), feed).map_err(|e| match e {
                // Another server (or, after a wait, anything) holds the lock.
                IndexError::Repo(RepoError::Locked(_)) => crate::publisher::data_dir_in_use(
                    dir,
                    tufpi_repo::repo::lock_holder(&repo_dir).as_ref(),
                ),
                e => e,
            })?;
        // The publisher holds the repository lock now: no other server runs here, and no
        // upload is in flight until this returns.
        sweep(&mut writer.db, &storage, db_existed);
        let gz = crate::gzip::sweep(
            &dir.join("cache").join("metadata-gz"),
            &dir.join("repo").join("metadata"),
        );
        if gz > 0 {
            tracing::info!(
                removed = gz,
                "compressed copies of collected metadata removed"
            );
        }
        Ok((
            Index {
                dir: dir.to_path_buf(),
                storage,
                projects: ProjectLocks::default(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                readers: Vec::new(),
                committers: Vec::new(),
                known: None,
                publisher,
                max_upload: opts.max_upload,
                uploads: UploadLimiter::new(opts.uploads.clone()),
                scale: None,
            },
            created,
        ))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Scaled out: the shared dependencies; `None` when embedded.
    pub fn scale_out(&self) -> Option<&Arc<ScaleOut>> {
        self.scale.as_ref()
    }

    /// The publisher's status.
    pub fn publisher_status(&self) -> crate::publisher::PublisherStatus {
        self.publisher.status()
    }

    /// The published TUF metadata directory (embedded; scaled out, the metadata is in the
    /// blob store: [`ScaleOut::metadata`]).
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("repo").join("metadata")
    }

    /// The file areas.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Largest accepted distribution file, bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    /// The bound on concurrent uploads.
    pub fn upload_limiter(&self) -> &Arc<UploadLimiter> {
        &self.uploads
    }

    /// Run `f` with the read connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&IndexDb) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        // A free handle if there is one (SQLite: the one; PostgreSQL: any of several).
        for r in std::iter::once(&self.reader).chain(&self.readers) {
            match r.try_lock() {
                Ok(g) => return f(&g),
                Err(std::sync::TryLockError::Poisoned(p)) => return f(&p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        f(&lock(&self.reader))
    }

    /// Commit an accepted upload: durably store the file (and its core metadata), record it,
    /// render and store its project's pages, and queue the TUF target changes. Returns only
    /// once all of it is durable; the publisher then signs it. The very file this index has
    /// (same name, same bytes: a retry whose answer was lost, also one overlapping its
    /// original) is answered with its row, storing nothing new.
    pub fn commit(&self, up: Accepted) -> Result<FileRow, IndexError> {
        let _project = self.projects.lock(&up.project);
        if self.read(|db| db.filename_used(&up.filename))? {
            if let Some(row) = self.same_file(&up)? {
                return Ok(row);
            }
            return Err(IndexError::bad(format!(
                "File already exists: {:?} has been used before in this index; upload a new version instead",
                up.filename
            )));
        }
        let path = package_path(&up.digests.blake2b, &up.filename);
        let metadata = match &up.metadata {
            Some(m) => {
                self.storage.put_file(&metadata_path(&path), &m.bytes)?;
                Some(storage::digests(&m.bytes))
            }
            None => None,
        };
        self.storage.install(&up.tmp, &path)?;
        let row = FileRow {
            filename: up.filename.clone(),
            project: up.project.clone(),
            version: up.version.clone(),
            packagetype: up.kind.packagetype().to_string(),
            path,
            digests: up.digests.clone(),
            requires_python: up.requires_python.clone(),
            metadata,
            upload_time: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            yanked: None,
        };
        match self.commit_row(&row, &up.display_name) {
            Ok(()) => {}
            // Refused as existing: the same file committed meanwhile (by a retry overlapping
            // this upload, maybe on another replica) is that file's success too.
            Err(e @ IndexError::Refused { .. }) => match self.same_file(&up)? {
                Some(row) => return Ok(row),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
        self.publisher.kick();
        tracing::info!(file = %row.filename, project = %row.project, "upload accepted");
        Ok(row)
    }

    /// The file this index holds under exactly `up`'s name with `up`'s bytes, if any.
    fn same_file(&self, up: &Accepted) -> Result<Option<FileRow>, IndexError> {
        Ok(self
            .read(|db| db.file(&up.filename))?
            .filter(|row| row.filename == up.filename && row.digests.sha256 == up.digests.sha256))
    }

    /// Record `row` with its project's new pages and queue its target changes. The pages
    /// are rendered and stored before the transaction, outside any lock (a store that
    /// cannot be reached is waited out there, holding no other upload up); the transaction
    /// checks that they were rendered from the files it sees (another upload of the project
    /// on another replica, or `tufpi project yank`, may have changed it meanwhile) and if
    /// not, rolls back and the pages are rendered again. After [`RENDER_ATTEMPTS`] the
    /// pages are rendered inside the transaction.
    fn commit_row(&self, row: &FileRow, display_name: &str) -> Result<(), IndexError> {
        for attempt in 1.. {
            let last = attempt >= RENDER_ATTEMPTS;
            let mut expected = self.read(|db| db.files_of(&row.project))?;
            expected.push(row.clone());
            expected.sort_by(|a, b| a.filename.cmp(&b.filename));
            let rendered = self.store_pages(&row.project, &expected)?;
            let mut stale = false;
            let r = self.with_committer(|db| {
                db.commit_upload(row, display_name, &mut |files| {
                    // A page with these bytes may have been collected since it was stored
                    // (it was an old page of the project's): then it is written again.
                    let stored = rendered
                        .iter()
                        .all(|d| self.storage.has_page(&d.sha256).unwrap_or(false));
                    if files == expected.as_slice() && stored {
                        return Ok(rendered.clone());
                    }
                    if last {
                        return self.store_pages(&row.project, files);
                    }
                    stale = true;
                    Err(IndexError::Internal(
                        "the project changed while its pages were rendered".into(),
                    ))
                })
            });
            match r {
                Err(_) if stale => {
                    tracing::info!(project = %row.project, attempt, "the project changed while its pages were rendered: rendering again");
                }
                r => return r,
            }
        }
        unreachable!("the last attempt renders in the transaction")
    }

    /// Run `f` with a handle to commit with. Scaled out: any free one of several (PostgreSQL
    /// runs their transactions side by side; its row locks order what must be); their
    /// changes go straight into the repository queue. Embedded: the one writer (SQLite has
    /// one), whose outbox is then handed to the repository queue.
    fn with_committer(
        &self,
        f: impl FnOnce(&mut IndexDb) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        if !self.committers.is_empty() {
            for c in &self.committers {
                match c.try_lock() {
                    Ok(mut g) => return f(&mut g),
                    Err(std::sync::TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) => {}
                }
            }
            return f(&mut lock(&self.committers[0]));
        }
        let mut w = lock(&self.writer);
        f(&mut w.db)?;
        // Durable from here on (the outbox is in the same transaction): a failed hand-over
        // is retried by the publisher, so it must not turn the upload into an error.
        let Writer { db, repo } = &mut *w;
        if let Err(e) = flush_outbox(db, repo) {
            tracing::warn!("queueing target changes (the publisher retries): {e}");
        }
        Ok(())
    }

    /// Render `project`'s pages (HTML, JSON) from `files` and store them durably.
    fn store_pages(&self, project: &str, files: &[FileRow]) -> Result<[Digests; 2], IndexError> {
        Ok([
            self.storage
                .put_page(&pages::project_html(project, files))?,
            self.storage
                .put_page(&pages::project_json(project, files))?,
        ])
    }

    /// Yank, unyank or remove files or a project: commit the change with its re-rendered
    /// pages and target changes, queue them and wake the publisher; then delete the bytes of
    /// removed files.
    pub fn manage(&self, op: &Operation) -> Result<Outcome, IndexError> {
        let mut w = lock(&self.writer);
        let Writer { db, repo } = &mut *w;
        let out = manage::apply(db, &self.storage, op)?;
        if let Err(e) = flush_outbox(db, repo) {
            tracing::warn!(
                "queueing the {} of {} (the publisher retries): {e}",
                op.action.name(),
                out.project
            );
        }
        drop(w);
        self.publisher.kick();
        manage::delete_dead_files(&self.storage, &out);
        tracing::info!(project = %out.project, action = op.action.name(), files = out.changed.len(), "managed");
        Ok(out)
    }

    /// The health report: publisher state, pending changes, snapshot and timestamp versions
    /// and expiries, counts. The flag is false when the publisher is failing.
    pub fn health(&self) -> Result<(bool, Value), IndexError> {
        if let Some(so) = &self.scale {
            return Ok(self.health_scaled(so));
        }
        // Committed changes not yet handed to the repository queue are pending too.
        let pending = lock(&self.writer).repo.pending()? + self.read(|db| db.outbox_len())?;
        let (projects, files) = self.read(|db| db.counts())?;
        let st = self.publisher.status();
        let ok = st.state != "error";
        Ok((
            ok,
            json!({
                "status": if ok { "ok" } else { "degraded" },
                "mode": "embedded",
                "publisher": {
                    "state": st.state,
                    "leader": st.leader,
                    "last_error": st.last_error,
                    "last_publish": st.last_publish,
                    "published_changes": st.published_changes,
                },
                "pending_changes": pending,
                "snapshot": role_json(st.snapshot),
                "timestamp": role_json(st.timestamp),
                "projects": projects,
                "files": files,
            }),
        ))
    }

    /// Collect garbage: superseded metadata older than `retention` (as `tufpi repo gc`), then
    /// superseded pages that no bin version left on disk lists. Pages are only looked at when
    /// nothing waits to be signed (see [`crate::collect::unlisted`]). Scaled out, only the
    /// replica leading the publisher lease collects.
    pub fn collect(&self, retention: std::time::Duration) -> Result<Collected, IndexError> {
        if self.scale.is_some() {
            return self.collect_scaled(retention);
        }
        let metadata_dir = self.metadata_dir();
        let mut out = Collected {
            metadata: tufpi_repo::gc::gc(&metadata_dir, retention)?,
            ..Collected::default()
        };
        crate::gzip::sweep(&self.dir.join("cache").join("metadata-gz"), &metadata_dir);
        let candidates = self.read(|db| db.superseded_pages())?;
        let (cfg, quiet) = {
            let w = lock(&self.writer);
            let quiet = w.repo.pending()? == 0 && w.db.outbox_len()? == 0;
            (w.repo.config().clone(), quiet)
        };
        if !quiet {
            return Ok(out);
        }
        out.pages_checked = true;
        if candidates.is_empty() {
            return Ok(out);
        }
        let (gone, kept) = crate::collect::unlisted(&metadata_dir, &cfg, &candidates)?;
        out.pages_retained = kept;
        let storage = &self.storage;
        out.pages_deleted = lock(&self.writer)
            .db
            .delete_superseded_pages(&gone, &|sha| storage.remove_page(sha))?;
        Ok(out)
    }

    /// Stop the publisher after it has published what is pending.
    pub fn shutdown(&self) {
        self.publisher.stop();
    }
}
