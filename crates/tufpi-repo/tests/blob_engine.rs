//! The engine over the blob-store seam, as in scale-out mode (no local lock, metadata and
//! staging in a store shared by every replica, state shared through the state store): a
//! timestamp replaced by another writer refuses the publish and keeps the plan; a plan
//! interrupted anywhere between bins and timestamp is finished by the next publisher with
//! what was already stored; a bulk import staged by one replica is finished by another; GC.
//!
//! Every scenario takes the store (a "bucket") as a parameter: the file-system store now,
//! S3 through `tufpi_blob::testing` later.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{assert_targets, record, target, verify_published, Expect};
use tufpi_blob::{
    BlobError, BlobMeta, BlobStore, Bytes, Created, Etag, FsStore, Result as BlobResult, Scoped,
};
use tufpi_core::metadata::MetaFile;
use tufpi_repo::store::SqliteStore;
use tufpi_repo::{keys, layout, Backend, Change, RepoConfig, RepoError, Repository, StateStore};

fn cfg(bits: u32) -> RepoConfig {
    RepoConfig {
        bit_length: bits,
        ..RepoConfig::default()
    }
}

/// One replica's view: the shared state (SQLite standing in for PostgreSQL), the bucket's
/// `metadata/` and `staging/` prefixes, a keys directory of its own (a copy of the keys).
struct Site {
    scratch: PathBuf,
    bucket: Arc<dyn BlobStore>,
}

impl Site {
    fn new(scratch: &Path, bucket: Arc<dyn BlobStore>) -> Site {
        Site {
            scratch: scratch.to_path_buf(),
            bucket,
        }
    }

    fn scoped(&self, prefix: &str) -> Arc<dyn BlobStore> {
        Arc::new(Scoped::new(self.bucket.clone(), prefix).unwrap())
    }

    fn metadata(&self) -> Arc<dyn BlobStore> {
        self.scoped("metadata")
    }

    fn state(&self) -> Box<dyn StateStore + Send> {
        Box::new(SqliteStore::open(&self.scratch.join("state.db")).unwrap())
    }

    fn keys_dir(&self) -> PathBuf {
        self.scratch.join("keys")
    }

    /// A replica's backend over `metadata` (and `staging`, if given).
    fn backend(
        &self,
        metadata: Arc<dyn BlobStore>,
        staging: Option<Arc<dyn BlobStore>>,
    ) -> Backend {
        Backend {
            state: self.state(),
            metadata,
            staging,
            keys_dir: self.keys_dir(),
            work_dir: None,
        }
    }

    /// A replica with plain access to the bucket.
    fn open(&self) -> Repository {
        Repository::open_with(self.backend(self.metadata(), Some(self.scoped("staging")))).unwrap()
    }

    /// Copy the published metadata into a fresh directory and verify it as a client would.
    fn verify(&self) -> common::Published {
        let dir = self
            .scratch
            .join(format!("verify-{}", COPIES.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).unwrap();
        let meta = self.metadata();
        for m in meta.list("").unwrap() {
            std::fs::write(dir.join(&m.key), meta.get(&m.key).unwrap().unwrap()).unwrap();
        }
        verify_published(&dir).unwrap_or_else(|e| panic!("published metadata: {e}"))
    }

    /// Every object under `prefix` with its bytes.
    fn objects(&self, prefix: &str) -> BTreeMap<String, Bytes> {
        let store = self.scoped(prefix);
        store
            .list("")
            .unwrap()
            .into_iter()
            .map(|m| {
                let b = store.get(&m.key).unwrap().unwrap();
                (m.key, b)
            })
            .collect()
    }
}

static COPIES: AtomicU64 = AtomicU64::new(0);

fn adds(range: std::ops::Range<u64>, model: &mut BTreeMap<String, Expect>) -> Vec<Change> {
    range
        .map(|i| {
            let (p, e) = target(i, 0);
            model.insert(p.clone(), e.clone());
            Change::Add(record(&p, &e))
        })
        .collect()
}

/// A store that fails like a crash would cut a publisher short: after `puts` create-only
/// objects (a batch is written up to that many), and at the timestamp's swap. It may also
/// hide that it is local, so the engine takes its remote paths (copies, not renames).
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn BlobStore>,
    puts: AtomicU64,
    fail_swap: AtomicBool,
    local: bool,
}

impl Faulty {
    fn new(inner: Arc<dyn BlobStore>, puts: u64, fail_swap: bool, local: bool) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            puts: AtomicU64::new(puts),
            fail_swap: AtomicBool::new(fail_swap),
            local,
        })
    }

    fn crash(what: &str) -> BlobError {
        BlobError::Unavailable {
            what: what.to_string(),
            detail: "simulated crash".to_string(),
        }
    }

    /// Take up to `n` puts; returns how many are allowed.
    fn take(&self, n: u64) -> u64 {
        let mut left = self.puts.load(Ordering::SeqCst);
        loop {
            let k = left.min(n);
            match self
                .puts
                .compare_exchange(left, left - k, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return k,
                Err(now) => left = now,
            }
        }
    }
}

impl BlobStore for Faulty {
    fn put_new(&self, key: &str, bytes: Bytes) -> BlobResult<Created> {
        if self.take(1) == 0 {
            return Err(Faulty::crash(key));
        }
        self.inner.put_new(key, bytes)
    }
    fn put_many_new(&self, mut items: Vec<(String, Bytes)>) -> BlobResult<()> {
        let k = self.take(items.len() as u64) as usize;
        let cut = k < items.len();
        items.truncate(k);
        self.inner.put_many_new(items)?;
        if cut {
            return Err(Faulty::crash("batch"));
        }
        Ok(())
    }
    fn put_new_file(&self, key: &str, file: &Path) -> BlobResult<Created> {
        if self.take(1) == 0 {
            return Err(Faulty::crash(key));
        }
        self.inner.put_new_file(key, file)
    }
    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> BlobResult<Etag> {
        if self.fail_swap.load(Ordering::SeqCst) {
            return Err(Faulty::crash(key));
        }
        self.inner.put_swap(key, bytes, expected)
    }
    fn get(&self, key: &str) -> BlobResult<Option<Bytes>> {
        self.inner.get(key)
    }
    fn get_tagged(&self, key: &str) -> BlobResult<Option<(Bytes, Etag)>> {
        self.inner.get_tagged(key)
    }
    fn head(&self, key: &str) -> BlobResult<Option<BlobMeta>> {
        self.inner.head(key)
    }
    fn delete(&self, key: &str) -> BlobResult<()> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> BlobResult<Vec<BlobMeta>> {
        self.inner.list(prefix)
    }
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.local.then(|| self.inner.local_path(key)).flatten()
    }
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
}

// ---- Scenarios, over any bucket.

fn swapped_timestamp_is_refused_and_the_plan_stays(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let site = Site::new(scratch, bucket);
    let mut a = Repository::init_dev_with(site.backend(site.metadata(), None), cfg(3)).unwrap();
    let mut model = BTreeMap::new();
    a.enqueue(&adds(0..20, &mut model)).unwrap();

    // Another writer replaces timestamp.json (as a publisher holding the lease would).
    let meta = site.metadata();
    let (bytes, tag) = meta.get_tagged("timestamp.json").unwrap().unwrap();
    let mut theirs = bytes.to_vec();
    theirs.push(b'\n');
    meta.put_swap("timestamp.json", Bytes::from(theirs.clone()), Some(&tag))
        .unwrap();

    let err = a.publish(100).unwrap_err();
    assert!(
        matches!(err, RepoError::TimestampReplaced { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("timestamp.json was replaced by another writer"),
        "{err}"
    );
    // Refused at the swap: bins and snapshot are in place, the other writer's timestamp
    // stays, and so do the plan and its queued changes.
    assert_eq!(
        &meta.get("timestamp.json").unwrap().unwrap()[..],
        &theirs[..]
    );
    assert!(meta.get("2.snapshot.json").unwrap().is_some());
    let state = site.state();
    assert!(
        state.plan().unwrap().is_some(),
        "the plan must stay recorded"
    );
    assert_eq!(state.pending().unwrap(), 20);
    // This handle stays fenced.
    assert!(matches!(
        a.publish(100).unwrap_err(),
        RepoError::TimestampReplaced { .. }
    ));

    // The next publisher finishes the plan.
    let mut b = site.open();
    let rep = b.publish(100).unwrap();
    assert_eq!((rep.snapshot_version, rep.timestamp_version), (2, 2));
    assert!(site.state().plan().unwrap().is_none());
    let p = site.verify();
    assert_eq!((p.snapshot_version, p.timestamp_version), (2, 2));
    assert_targets(&p, &model);

    // The fenced handle publishes again once it lets go and locks afresh (a replica that
    // regains the lease): it reads the versions and the ETag the other one left.
    a.unlock();
    a.enqueue(&adds(20..25, &mut model)).unwrap();
    let rep = a.publish(100).unwrap();
    assert_eq!((rep.snapshot_version, rep.timestamp_version), (3, 3));
    assert_targets(&site.verify(), &model);
}

fn init_refuses_a_store_holding_a_repository(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let site = Site::new(scratch, bucket);
    drop(Repository::init_dev_with(site.backend(site.metadata(), None), cfg(2)).unwrap());
    // The same state store, or another one over the same metadata: refused, nothing written.
    let err = Repository::init_dev_with(site.backend(site.metadata(), None), cfg(2))
        .err()
        .expect("second init");
    assert!(
        matches!(err, RepoError::AlreadyInitialised { .. }),
        "{err:?}"
    );
    let before = site.objects("metadata");
    let fresh = Backend {
        state: Box::new(SqliteStore::open(&site.scratch.join("other.db")).unwrap()),
        metadata: site.metadata(),
        staging: None,
        keys_dir: site.scratch.join("other-keys"),
        work_dir: None,
    };
    let err = Repository::init_dev_with(fresh, cfg(2))
        .err()
        .expect("init over another repository's metadata");
    assert!(
        matches!(err, RepoError::AlreadyInitialised { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("already holds a repository"),
        "{err}"
    );
    assert_eq!(site.objects("metadata"), before);
}

fn timestamp_ahead_of_the_state_store_is_refused(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let site = Site::new(scratch, bucket);
    drop(Repository::init_dev_with(site.backend(site.metadata(), None), cfg(2)).unwrap());
    // A timestamp of a version the state store never recorded: another writer is ahead.
    let online = keys::require_in(&site.keys_dir(), "online").unwrap();
    let ts = layout::build_timestamp(
        MetaFile::new(1),
        99,
        chrono::Utc::now() + chrono::Duration::days(1),
    );
    let bytes = online.sign(ts).unwrap().to_compact_bytes();
    let meta = site.metadata();
    let (_, tag) = meta.get_tagged("timestamp.json").unwrap().unwrap();
    meta.put_swap("timestamp.json", Bytes::from(bytes), Some(&tag))
        .unwrap();

    let mut b = site.open();
    let mut model = BTreeMap::new();
    // Queueing needs no publisher.
    b.enqueue(&adds(0..3, &mut model)).unwrap();
    let err = b.publish(10).unwrap_err();
    assert!(
        matches!(err, RepoError::TimestampReplaced { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ahead"), "{err}");
    assert_eq!(b.pending().unwrap(), 3);
}

/// Where the first publisher is cut short.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// After this many create-only objects.
    Puts(u64),
    /// At the timestamp's swap (everything else written).
    Swap,
}

fn replayed_plan_converges(scratch: &Path, bucket: Arc<dyn BlobStore>, crash: Crash) {
    let site = Site::new(scratch, bucket);
    drop(Repository::init_dev_with(site.backend(site.metadata(), None), cfg(4)).unwrap());
    let (puts, swap) = match crash {
        Crash::Puts(n) => (n, false),
        Crash::Swap => (u64::MAX, true),
    };
    let faulty = Faulty::new(site.metadata(), puts, swap, true);
    let mut a = Repository::open_with(site.backend(faulty, None)).unwrap();
    let mut model = BTreeMap::new();
    a.enqueue(&adds(0..200, &mut model)).unwrap();
    let err = a.publish(1000).unwrap_err();
    assert!(matches!(err, RepoError::Blob(_)), "{crash:?}: {err:?}");
    drop(a);
    assert!(site.state().plan().unwrap().is_some(), "{crash:?}");
    let before = site.objects("metadata");
    // The crash struck where intended: 200 targets touch all 16 bins.
    let bins_written = before.keys().filter(|k| k.starts_with("2.bin-")).count() as u64;
    let snapshot_written = before.contains_key("2.snapshot.json");
    match crash {
        Crash::Puts(n) => assert_eq!((bins_written, snapshot_written), (n.min(16), false)),
        Crash::Swap => assert_eq!((bins_written, snapshot_written), (16, true)),
    }

    let mut b = site.open();
    let rep = b.publish(1000).unwrap();
    assert_eq!(
        rep.changes, 0,
        "{crash:?}: the plan's changes were taken already"
    );
    assert_eq!((rep.snapshot_version, rep.timestamp_version), (2, 2));
    let p = site.verify();
    assert_eq!(
        (p.snapshot_version, p.timestamp_version),
        (2, 2),
        "{crash:?}"
    );
    assert_targets(&p, &model);
    // Create-only: nothing the first publisher wrote was replaced.
    let after = site.objects("metadata");
    for (key, bytes) in &before {
        if key != "timestamp.json" {
            assert_eq!(after.get(key), Some(bytes), "{crash:?}: {key} changed");
        }
    }
    assert_eq!(site.state().pending().unwrap(), 0);
}

fn staged_import_is_finished_by_another_replica(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let site = Site::new(scratch, bucket);
    drop(Repository::init_dev_with(site.backend(site.metadata(), None), cfg(3)).unwrap());
    let mut model = BTreeMap::new();
    let mut first = site.open();
    first.enqueue(&adds(0..10, &mut model)).unwrap();
    first.publish(100).unwrap();
    drop(first);

    // Replica A stages every bin, records the plan, and dies before placing any (its
    // metadata writes fail). Both stores look remote: staging by put, placing by copy.
    let staging = Faulty::new(site.scoped("staging"), u64::MAX, false, false);
    let meta = Faulty::new(site.metadata(), 0, false, false);
    let mut a = Repository::open_with(site.backend(meta, Some(staging))).unwrap();
    let records: Vec<(String, Expect)> = (5..300).map(|i| target(i, 1)).collect();
    for (p, e) in &records {
        model.insert(p.clone(), e.clone());
    }
    let err = a
        .import(
            records.into_iter().map(Ok),
            |(p, e)| Ok(record(&p, &e)),
            |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, RepoError::Blob(_)), "{err:?}");
    drop(a);
    assert!(site.state().plan().unwrap().is_some());
    let staged = site.objects("staging");
    assert!(!staged.is_empty());
    // Under this import's own prefix: another replica clearing leftovers never takes them.
    assert!(
        staged
            .keys()
            .all(|k| k.starts_with("import-") && k.contains('/')),
        "{:?}",
        staged.keys().collect::<Vec<_>>()
    );

    // Replica B finishes it from the shared staging store.
    let remote_staging = Faulty::new(site.scoped("staging"), u64::MAX, false, false);
    let mut b = Repository::open_with(site.backend(site.metadata(), Some(remote_staging))).unwrap();
    b.publish(100).unwrap();
    let p = site.verify();
    assert_targets(&p, &model);
    assert_eq!(b.target_count().unwrap(), model.len() as u64);
    assert!(site.objects("staging").is_empty(), "staging cleared");
}

fn gc_over_the_store(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let site = Site::new(scratch, bucket);
    let mut repo = Repository::init_dev_with(site.backend(site.metadata(), None), cfg(2)).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..5 {
        repo.enqueue(&adds(i..i + 1, &mut model)).unwrap();
        repo.publish(10).unwrap();
    }
    let meta = site.metadata();
    let count = |role: &str| {
        meta.list("")
            .unwrap()
            .iter()
            .filter(|m| m.key.ends_with(&format!(".{role}.json")))
            .count()
    };
    assert_eq!(count("snapshot"), 6);
    let kept = tufpi_repo::gc::gc_store(&*meta, std::time::Duration::from_secs(3600)).unwrap();
    assert_eq!(kept.deleted, 0);
    assert!(kept.retained >= 5, "{kept:?}");
    let rep = repo.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!(rep.retained, 0);
    assert_eq!(rep.deleted, kept.retained, "{rep:?}");
    assert_eq!(count("snapshot"), 1);
    assert_eq!(count("root"), 1);
    assert!(meta.get("timestamp.json").unwrap().is_some());
    assert_targets(&site.verify(), &model);
    // Publishing goes on after a GC.
    repo.enqueue(&adds(10..12, &mut model)).unwrap();
    repo.publish(10).unwrap();
    assert_targets(&site.verify(), &model);
}

// ---- Over the file-system store.

fn fs_bucket(tmp: &common::TestDir) -> Arc<dyn BlobStore> {
    Arc::new(FsStore::open(&tmp.path().join("bucket")).unwrap())
}

#[test]
fn fs_swapped_timestamp_is_refused_and_the_plan_stays() {
    let tmp = common::TestDir::new(module_path!());
    swapped_timestamp_is_refused_and_the_plan_stays(tmp.path(), fs_bucket(&tmp));
}

#[test]
fn fs_init_refuses_a_store_holding_a_repository() {
    let tmp = common::TestDir::new(module_path!());
    init_refuses_a_store_holding_a_repository(tmp.path(), fs_bucket(&tmp));
}

#[test]
fn fs_timestamp_ahead_of_the_state_store_is_refused() {
    let tmp = common::TestDir::new(module_path!());
    timestamp_ahead_of_the_state_store_is_refused(tmp.path(), fs_bucket(&tmp));
}

#[test]
fn fs_replayed_plan_converges() {
    for crash in [
        Crash::Puts(0),
        Crash::Puts(3),
        Crash::Puts(15),
        Crash::Puts(16),
        Crash::Swap,
    ] {
        let tmp = common::TestDir::new(module_path!());
        replayed_plan_converges(tmp.path(), fs_bucket(&tmp), crash);
    }
}

#[test]
fn fs_staged_import_is_finished_by_another_replica() {
    let tmp = common::TestDir::new(module_path!());
    staged_import_is_finished_by_another_replica(tmp.path(), fs_bucket(&tmp));
}

#[test]
fn fs_gc_over_the_store() {
    let tmp = common::TestDir::new(module_path!());
    gc_over_the_store(tmp.path(), fs_bucket(&tmp));
}

// ---- Over S3 (the test server `scripts/s3-server` starts; skipped without one).

fn s3_bucket(name: &str) -> Option<Arc<dyn BlobStore>> {
    tufpi_blob::testing::s3_store_for_test(name).map(|s| Arc::new(s) as Arc<dyn BlobStore>)
}

#[test]
fn s3_swapped_timestamp_is_refused_and_the_plan_stays() {
    let Some(bucket) = s3_bucket("engine-swapped") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    swapped_timestamp_is_refused_and_the_plan_stays(tmp.path(), bucket);
}

#[test]
fn s3_init_refuses_a_store_holding_a_repository() {
    let Some(bucket) = s3_bucket("engine-init") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    init_refuses_a_store_holding_a_repository(tmp.path(), bucket);
}

#[test]
fn s3_timestamp_ahead_of_the_state_store_is_refused() {
    let Some(bucket) = s3_bucket("engine-ahead") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    timestamp_ahead_of_the_state_store_is_refused(tmp.path(), bucket);
}

#[test]
fn s3_replayed_plan_converges() {
    for crash in [Crash::Puts(0), Crash::Puts(5), Crash::Puts(16), Crash::Swap] {
        let Some(bucket) = s3_bucket("engine-replay") else {
            return;
        };
        let tmp = common::TestDir::new(module_path!());
        replayed_plan_converges(tmp.path(), bucket, crash);
    }
}

#[test]
fn s3_staged_import_is_finished_by_another_replica() {
    let Some(bucket) = s3_bucket("engine-import") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    staged_import_is_finished_by_another_replica(tmp.path(), bucket);
}

#[test]
fn s3_gc_over_the_store() {
    let Some(bucket) = s3_bucket("engine-gc") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    gc_over_the_store(tmp.path(), bucket);
}
