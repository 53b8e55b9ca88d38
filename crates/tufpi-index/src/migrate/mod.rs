//! `tufpi migrate`: move an embedded deployment (a data directory) up to a scaled-out one —
//! its index and repository state into PostgreSQL, its files, pages and TUF metadata into a
//! blob store — so that clients holding the old root keep verifying: the same root, the
//! same keys, versions continuing from where the data directory left them.
//!
//! The order, each step safe to interrupt:
//! 1. Refuse if a server runs on the data directory; take its repository lock (held to the
//!    end), queue the outbox and publish everything pending, so the repository's queue and
//!    plan are empty; hold the index database's write lock so nothing commits there while
//!    it is copied (a `tufpi token` or `tufpi project` meanwhile waits, then fails).
//! 2. Refuse if the bucket holds `metadata/timestamp.json` (a live repository, maybe this
//!    very migration done and served since) or the database holds other index or
//!    repository rows than these; take the publisher lease (refused while a replica holds
//!    it), renewed throughout, so no replica initialises a repository meanwhile.
//! 3. Put every file and page the index references (create-only), then every metadata file
//!    but `timestamp.json` (create-only), and check them: sizes by listing, metadata byte for
//!    byte. Nothing yet names them: a client polling the bucket sees no repository.
//! 4. In one transaction (checking the lease's term): the index's rows and the repository's
//!    settings, role versions and expiries, and bin counts.
//! 5. `timestamp.json` last, created only if absent: from then on it names a snapshot whose
//!    every file is there.
//!
//! Resuming. An interrupted run is run again with the same arguments: objects already put
//! are kept (create-only) and checked; rows already committed are accepted if they equal
//! the data directory's exactly (then nothing is loaded again). Once `timestamp.json` is
//! there the target is live and a run is refused.
//!
//! The keys stay where they are (`DIR/repo/keys`): give that directory to `tufpi serve
//! --keys-dir` on the replicas that publish. The data directory is left as it was; serving
//! it again (embedded) after the scaled-out deployment has published would fork the
//! repository's history.

mod copy;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tufpi_blob::{BlobError, BlobStore, Bytes, FsStore, Scoped, SharedStore};
use tufpi_pg::lease::{Held, Lease};
use tufpi_pg::Database;
use tufpi_repo::layout::TIMESTAMP_FILE;
use tufpi_repo::store::{postgres as repo_pg, PostgresStore, SqliteStore};
use tufpi_repo::{RepoError, Repository, StateStore, METADATA_PREFIX, PUBLISHER_LEASE};

use crate::datadir::{flush_outbox, is_index_dir};
use crate::db::{import_in, postgres_tables_with_rows, IndexDb, IndexRows};
use crate::error::IndexError;
use crate::storage::{blob_error, PACKAGES, PAGES};
pub use copy::{human_bytes, Copied};

/// Changes published per batch while settling the source.
const BATCH: usize = 10_000;

/// The publisher lease's time to live while migrating (renewed every third of it).
const LEASE_TTL: Duration = Duration::from_secs(30);

/// The repository lock's holder name while migrating.
const HOLDER: &str = "tufpi migrate";

/// How a migration runs.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Objects put (and checked) at once.
    pub threads: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions { threads: 8 }
    }
}

/// What a migration did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// Changes queued and published in the data directory before copying.
    pub published: u64,
    /// Projects, files, pages and tokens copied.
    pub projects: usize,
    /// Files (distributions).
    pub files: usize,
    /// Stored pages (current and past).
    pub pages: usize,
    /// Tokens (their hashes).
    pub tokens: usize,
    /// Every index row.
    pub rows: usize,
    /// Whether the rows were there already (an interrupted run resumed): not loaded again.
    pub rows_were_there: bool,
    /// Files and pages: objects put, kept, bytes.
    pub objects: Copied,
    /// TUF metadata files (with `timestamp.json`).
    pub metadata: Copied,
    /// Role versions as copied.
    pub snapshot_version: u64,
    /// The timestamp's version.
    pub timestamp_version: u64,
    /// The root's version.
    pub root_version: u64,
    /// Targets listed.
    pub targets: u64,
    /// Where the keys are (they stay there).
    pub keys_dir: PathBuf,
    /// How long it took.
    pub elapsed: Duration,
}

/// A refusal, said plainly (before anything is written, but for a timestamp that appears
/// while migrating).
fn refused(msg: impl Into<String>) -> IndexError {
    IndexError::bad(msg)
}

/// Migrate the data directory `dir` to database `db` and blob store `blobs` (the steps in
/// the module docs); `progress` hears each step.
pub fn migrate(
    dir: &Path,
    db: &Database,
    blobs: SharedStore,
    opts: &MigrateOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<MigrateReport, IndexError> {
    let t0 = Instant::now();
    if !is_index_dir(dir) {
        return Err(refused(format!(
            "{} holds no index (no index.db and repo/state.db): give the data directory of tufpi serve",
            dir.display()
        )));
    }
    crate::publisher::ensure_not_served(dir)?;
    let repo_dir = dir.join("repo");
    let mut repo = Repository::open(&repo_dir)?;
    repo.lock_as(HOLDER).map_err(|e| match e {
        RepoError::Locked(m) => refused(format!(
            "{}: the repository is in use ({m}); stop what holds it and run again",
            dir.display()
        )),
        e => e.into(),
    })?;
    refuse_same_place(dir, &*blobs)?;
    let metadata: SharedStore =
        std::sync::Arc::new(Scoped::new(blobs.clone(), METADATA_PREFIX).map_err(blob_error)?);
    refuse_live(&*metadata)?;

    // 1. Settle the source: nothing left to queue or publish.
    let mut report = MigrateReport {
        keys_dir: repo.keys_dir().to_path_buf(),
        ..MigrateReport::default()
    };
    let mut idb = IndexDb::open(&dir.join("index.db"))?;
    flush_outbox(&mut idb, &mut repo)?;
    report.published = repo.publish(BATCH)?.changes;
    let hold = hold_writes(&dir.join("index.db"))?;
    let rows = idb.export()?;
    let state = SqliteStore::open(&repo_dir.join("state.db"))?;
    let source = RepoState::read(&state)?;
    if state.pending()? > 0 || source.settings.contains_key("plan") {
        return Err(refused(
            "changes were queued in the repository while it was being published: run again",
        ));
    }
    progress(&format!(
        "{}: {} projects, {} files, {} pages, {} tokens; snapshot v{}, timestamp v{}",
        dir.display(),
        rows.projects.len(),
        rows.files.len(),
        rows.pages.len(),
        rows.tokens.len(),
        source.version("snapshot"),
        source.version("timestamp"),
    ));

    // 2. The target: empty, or holding exactly these rows (a resumed run).
    let rows_were_there = check_database(db, &rows, &source)?;
    let lease =
        Lease::acquire(db, PUBLISHER_LEASE, &lease_holder(), LEASE_TTL)?.ok_or_else(|| {
            refused(format!(
                "the publisher lease of {} is held: a replica of tufpi serve runs on it \
                 (migrate into a database no server uses), or a tufpi migrate cut short \
                 holds it for up to {} s more",
                db.url_redacted(),
                LEASE_TTL.as_secs()
            ))
        })?;
    let lost = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        s.spawn(|| renew(&lease, &done, &lost));
        let r = copy_and_commit(
            dir,
            db,
            &blobs,
            &*metadata,
            &rows,
            &source,
            rows_were_there,
            lease.term(),
            opts,
            &lost,
            progress,
            &mut report,
        );
        done.store(true, Ordering::Relaxed);
        r
    });
    let released = lease.release();
    drop(hold);
    result?;
    if let Err(e) = released {
        tracing::warn!("releasing the publisher lease (it lapses by itself): {e}");
    }
    report.projects = rows.projects.len();
    report.files = rows.files.len();
    report.pages = rows.pages.len();
    report.tokens = rows.tokens.len();
    report.rows = rows.len();
    report.rows_were_there = rows_were_there;
    report.snapshot_version = source.version("snapshot");
    report.timestamp_version = source.version("timestamp");
    report.root_version = source.version("root");
    report.targets = source.bin_counts.values().sum();
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// Steps 3 to 5 (see the module docs), under the lease.
#[allow(clippy::too_many_arguments)]
fn copy_and_commit(
    dir: &Path,
    db: &Database,
    blobs: &SharedStore,
    metadata: &dyn BlobStore,
    rows: &IndexRows,
    source: &RepoState,
    rows_were_there: bool,
    term: i64,
    opts: &MigrateOptions,
    lost: &AtomicBool,
    progress: &(dyn Fn(&str) + Sync),
    report: &mut MigrateReport,
) -> Result<(), IndexError> {
    let t = Instant::now();
    let objects = rows.objects();
    progress(&format!(
        "copying {} files and pages to {}",
        objects.len(),
        blobs.describe()
    ));
    report.objects = copy::copy_objects(
        dir,
        &**blobs,
        &objects,
        opts.threads,
        "files and pages",
        progress,
    )?;
    let copied_in = t.elapsed();
    copy::verify_sizes(&**blobs, &[PACKAGES, PAGES], &objects)?;
    progress(&format!(
        "  {} put ({}), {} there already ({:.1} s); sizes checked ({:.1} s)",
        report.objects.new,
        human_bytes(report.objects.new_bytes),
        report.objects.existed,
        copied_in.as_secs_f64(),
        (t.elapsed() - copied_in).as_secs_f64()
    ));

    let t = Instant::now();
    let meta_dir = dir.join("repo").join("metadata");
    let local = FsStore::open(&meta_dir).map_err(blob_error)?;
    let mut meta: Vec<(String, u64)> = local
        .list("")
        .map_err(blob_error)?
        .into_iter()
        .filter(|m| m.key != TIMESTAMP_FILE)
        .map(|m| (m.key, m.size))
        .collect();
    meta.sort();
    progress(&format!(
        "copying {} metadata files (all but {TIMESTAMP_FILE})",
        meta.len()
    ));
    let mut copied = copy::copy_objects(
        &meta_dir,
        metadata,
        &meta,
        opts.threads,
        "metadata",
        progress,
    )?;
    let copied_in = t.elapsed();
    let keys: Vec<String> = meta.iter().map(|(k, _)| k.clone()).collect();
    copy::verify_identical(&meta_dir, metadata, &keys, opts.threads)?;
    progress(&format!(
        "  {} put ({}), {} there already ({:.1} s); byte-identical ({:.1} s)",
        copied.new,
        human_bytes(copied.new_bytes),
        copied.existed,
        copied_in.as_secs_f64(),
        (t.elapsed() - copied_in).as_secs_f64()
    ));

    if rows_were_there {
        progress("the database holds these rows already (an interrupted run): kept");
    } else {
        let t = Instant::now();
        IndexDb::open_postgres(db)?;
        PostgresStore::prepare(db)?;
        let mut conn = db.get()?;
        let mut tx = conn.transaction()?;
        // Refused if a replica took the lease over (it may be initialising a repository).
        tufpi_pg::lease::check_term(&mut tx, PUBLISHER_LEASE, term)?;
        import_in(&mut tx, rows)?;
        let full = repo_pg::tables_with_rows(&mut tx)?;
        if !full.is_empty() {
            return Err(refused(format!(
                "the database holds a repository already (rows in {})",
                full.join(", ")
            )));
        }
        repo_pg::load_state(&mut tx, &source.settings, &source.roles, &source.bin_counts)?;
        if lost.load(Ordering::Relaxed) {
            return Err(IndexError::Unavailable(
                "the publisher lease was lost while copying: nothing committed; run again".into(),
            ));
        }
        tx.commit()?;
        progress(&format!(
            "committed {} index rows and the repository's state ({} settings, {} roles, {} bins) \
             ({:.1} s)",
            rows.len(),
            source.settings.len(),
            source.roles.len(),
            source.bin_counts.len(),
            t.elapsed().as_secs_f64()
        ));
    }

    // 5. The timestamp, last.
    if lost.load(Ordering::Relaxed) {
        return Err(IndexError::Unavailable(
            "the publisher lease was lost before the timestamp was written: run again".into(),
        ));
    }
    let path = meta_dir.join(TIMESTAMP_FILE);
    let ts = std::fs::read(&path)
        .map_err(|e| IndexError::io(format!("reading {}", path.display()), e))?;
    match metadata.put_swap(TIMESTAMP_FILE, Bytes::from(ts.clone()), None) {
        Ok(_) => {}
        Err(BlobError::Precondition { .. }) => {
            return Err(refused(format!(
                "{TIMESTAMP_FILE} appeared in {} while migrating: another publisher writes there",
                metadata.describe()
            )))
        }
        Err(e) => return Err(blob_error(e)),
    }
    copy::verify_read_back(&path, &ts, metadata, TIMESTAMP_FILE)?;
    copied.new += 1;
    copied.new_bytes += ts.len() as u64;
    copied.bytes += ts.len() as u64;
    report.metadata = copied;
    progress(&format!(
        "wrote {TIMESTAMP_FILE} (v{}) last",
        source.version("timestamp")
    ));
    Ok(())
}

/// Refuse a local store that is (or lies in) the data directory: the copy would write into
/// its own source.
fn refuse_same_place(dir: &Path, blobs: &dyn BlobStore) -> Result<(), IndexError> {
    let Some(root) = blobs
        .local_path(PAGES)
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Ok(());
    };
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(&root).starts_with(canon(dir)) {
        return Err(refused(format!(
            "the storage {} lies in the data directory {}: give another place",
            blobs.describe(),
            dir.display()
        )));
    }
    Ok(())
}

/// Refuse a target whose bucket serves a repository already.
fn refuse_live(metadata: &dyn BlobStore) -> Result<(), IndexError> {
    if metadata.head(TIMESTAMP_FILE).map_err(blob_error)?.is_some() {
        return Err(refused(format!(
            "{} holds {TIMESTAMP_FILE}: a repository is published there already (a finished \
             migration, or another deployment); refusing to write over it",
            metadata.describe()
        )));
    }
    Ok(())
}

/// Whether `db` holds these rows already (`true`: a resumed run), refused if it holds others.
fn check_database(db: &Database, rows: &IndexRows, source: &RepoState) -> Result<bool, IndexError> {
    let index_tables = postgres_tables_with_rows(db)?;
    let repo_tables = repo_pg::tables_with_rows(&mut *db.get()?)?;
    if index_tables.is_empty() && repo_tables.is_empty() {
        return Ok(false);
    }
    let there = IndexDb::open_postgres(db)?.export()?;
    let state = PostgresStore::open(db, None)?;
    if &there == rows && RepoState::read(&state)? == *source {
        return Ok(true);
    }
    let mut tables = index_tables;
    tables.extend(repo_tables);
    Err(refused(format!(
        "{} holds an index or repository already (rows in {}), not this one: migrate into an \
         empty database",
        db.url_redacted(),
        tables.join(", ")
    )))
}

/// Renew `lease` every third of its TTL until `done`; a failed renewal sets `lost`.
fn renew(lease: &Held, done: &AtomicBool, lost: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut next = Instant::now() + lease.ttl() / 3;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        if Instant::now() < next {
            continue;
        }
        if let Err(e) = lease.renew() {
            tracing::warn!("renewing the publisher lease: {e}");
            lost.store(true, Ordering::Relaxed);
            return;
        }
        next = Instant::now() + lease.ttl() / 3;
    }
}

fn lease_holder() -> String {
    format!("{HOLDER} {}", tufpi_pg::lease::holder_id())
}

/// Hold the index database's write lock (a transaction of its own, rolled back on drop) so
/// nothing commits while its rows are copied.
fn hold_writes(path: &Path) -> Result<rusqlite::Connection, IndexError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(conn)
}

/// A repository's state as a migration copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RepoState {
    settings: std::collections::BTreeMap<String, String>,
    roles: std::collections::BTreeMap<String, tufpi_repo::RoleState>,
    bin_counts: std::collections::BTreeMap<u64, u64>,
}

impl RepoState {
    fn read(store: &dyn StateStore) -> Result<RepoState, IndexError> {
        Ok(RepoState {
            settings: store.settings()?,
            roles: store.roles()?,
            bin_counts: store.bin_counts()?,
        })
    }

    fn version(&self, role: &str) -> u64 {
        self.roles.get(role).map_or(0, |r| r.version)
    }
}
