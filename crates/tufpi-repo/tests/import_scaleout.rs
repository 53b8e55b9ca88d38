//! A bulk import on the scale-out backend (`Backend::scale_out`: the state in PostgreSQL, the
//! metadata in a remote blob store): each bin is written once into the metadata store, create-
//! only, with nothing staged in the store; an import cut short after recording its plan is
//! finished by the next leader without naming a missing bin, with target counts that match
//! what is published, and running it again converges.
//!
//! Over the file-system store (made to look remote) always, and over S3 when the test server
//! runs (`scripts/s3-server`); PostgreSQL on 127.0.0.1:5432 (`tufpi_pg::testing`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_targets, record, target, verify_published, Expect};
use tufpi_blob::{
    BlobError, BlobMeta, BlobStore, Bytes, Created, Etag, FsStore, Result as BlobResult,
};
use tufpi_pg::testing::TestDb;
use tufpi_pg::Lease;
use tufpi_repo::{Backend, RepoConfig, RepoError, Repository, PUBLISHER_LEASE};

/// A blob store that looks remote (no local paths), counts requests, and fails every
/// create-only write after `creates_left` of them (a crash cutting the writer short).
#[derive(Debug)]
struct Remote {
    inner: Arc<dyn BlobStore>,
    creates: AtomicU64,
    swaps: AtomicU64,
    reads: AtomicU64,
    deletes: AtomicU64,
    creates_left: AtomicU64,
}

impl Remote {
    fn new(inner: Arc<dyn BlobStore>, creates_left: u64) -> Arc<Remote> {
        Arc::new(Remote {
            inner,
            creates: AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            creates_left: AtomicU64::new(creates_left),
        })
    }

    /// Take one create-only write, or fail as a crash would.
    fn create(&self, key: &str) -> BlobResult<()> {
        let left = self
            .creates_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Err(BlobError::Unavailable {
                what: format!("creating {key}"),
                detail: "simulated crash".into(),
            });
        }
        self.creates.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn counts(&self) -> [u64; 4] {
        [&self.creates, &self.swaps, &self.reads, &self.deletes]
            .map(|c| c.swap(0, Ordering::SeqCst))
    }
}

impl BlobStore for Remote {
    fn put_new(&self, key: &str, bytes: Bytes) -> BlobResult<Created> {
        self.create(key)?;
        self.inner.put_new(key, bytes)
    }
    fn put_many_new(&self, items: Vec<(String, Bytes)>) -> BlobResult<()> {
        for (k, b) in items {
            self.put_new(&k, b)?;
        }
        Ok(())
    }
    fn put_new_file(&self, key: &str, file: &Path) -> BlobResult<Created> {
        self.create(key)?;
        self.inner.put_new_file(key, file)
    }
    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> BlobResult<Etag> {
        self.swaps.fetch_add(1, Ordering::SeqCst);
        self.inner.put_swap(key, bytes, expected)
    }
    fn get(&self, key: &str) -> BlobResult<Option<Bytes>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn get_tagged(&self, key: &str) -> BlobResult<Option<(Bytes, Etag)>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_tagged(key)
    }
    fn head(&self, key: &str) -> BlobResult<Option<BlobMeta>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(key)
    }
    fn delete(&self, key: &str) -> BlobResult<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> BlobResult<Vec<BlobMeta>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
    fn describe(&self) -> String {
        format!("remote-looking {}", self.inner.describe())
    }
}

fn cfg() -> RepoConfig {
    RepoConfig {
        bit_length: 4,
        ..RepoConfig::default()
    }
}

/// A scale-out backend over `db` and `bucket`, fenced by `lease`; its local scratch (the
/// import's spill and staged files: another machine's when `work` differs) in `work`.
fn backend(
    db: &tufpi_pg::Database,
    lease: &tufpi_pg::lease::Held,
    bucket: Arc<dyn BlobStore>,
    keys: &Path,
    work: Option<&Path>,
) -> Backend {
    let mut b = Backend::scale_out(db, Some(lease.fence()), bucket, keys).unwrap();
    assert!(b.staging.is_none(), "scale-out imports stage locally");
    if let Some(w) = work {
        std::fs::create_dir_all(w).unwrap();
        b.work_dir = Some(w.to_path_buf());
    }
    b
}

/// Copy the bucket's `metadata/` into a fresh directory and verify it as a client would
/// (every role the snapshot names is there and verifies).
fn verify(bucket: &dyn BlobStore, dir: &Path) -> common::Published {
    std::fs::create_dir_all(dir).unwrap();
    for m in bucket.list("metadata/").unwrap() {
        let name = m.key.strip_prefix("metadata/").unwrap();
        std::fs::write(dir.join(name), bucket.get(&m.key).unwrap().unwrap()).unwrap();
    }
    verify_published(dir).unwrap_or_else(|e| panic!("published metadata: {e}"))
}

fn import(
    repo: &mut Repository,
    range: std::ops::Range<u64>,
    generation: u64,
    model: &mut BTreeMap<String, Expect>,
) -> Result<tufpi_repo::ImportReport, RepoError> {
    let records: Vec<(String, Expect)> = range.map(|i| target(i, generation)).collect();
    for (p, e) in &records {
        model.insert(p.clone(), e.clone());
    }
    repo.import(
        records.into_iter().map(Ok),
        |(p, e)| Ok(record(&p, &e)),
        |_| {},
    )
}

/// Each import writes each re-signed bin once, plus the snapshot (create-only) and the
/// timestamp (one swap); nothing outside `metadata/`, nothing deleted.
fn each_bin_is_written_once(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let t = TestDb::create();
    let db = t.database();
    let lease = Lease::acquire(&db, PUBLISHER_LEASE, "a", Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let keys = scratch.join("keys");
    let remote = Remote::new(bucket.clone(), u64::MAX);
    drop(
        Repository::init_dev_with(backend(&db, &lease, remote.clone(), &keys, None), cfg())
            .unwrap(),
    );
    let mut repo =
        Repository::open_with(backend(&db, &lease, remote.clone(), &keys, None)).unwrap();
    remote.counts();
    let mut model = BTreeMap::new();
    // Into empty bins, then into bins that list targets (their previous files are read).
    for (range, generation) in [(0..300, 1), (200..500, 2)] {
        let r = import(&mut repo, range, generation, &mut model).unwrap();
        let [creates, swaps, reads, deletes] = remote.counts();
        assert_eq!(r.bins, 16, "{r:?}");
        assert_eq!(
            creates,
            r.bins as u64 + 1,
            "one PUT per bin and the snapshot: {r:?}"
        );
        assert_eq!((swaps, deletes), (1, 0), "one timestamp swap, no delete");
        // At most the previous version of each bin, and the timestamp's ETag.
        assert!(reads <= r.bins as u64 + 2, "{reads} reads for {r:?}");
        assert_eq!(r.targets, model.len() as u64);
    }
    for m in bucket.list("").unwrap() {
        assert!(
            m.key.starts_with("metadata/"),
            "{} written outside metadata/",
            m.key
        );
    }
    assert_targets(&verify(&*bucket, &scratch.join("verify")), &model);
}

/// An importer that dies after recording its plan, having written a few bins: the next
/// leader (another machine: it cannot read the staged files) finishes the plan, keeping the
/// bins written and re-signing the others; the snapshot names no missing bin, the counts
/// match what is published; the import run again converges.
fn cut_short_import_is_finished_by_the_next_leader(scratch: &Path, bucket: Arc<dyn BlobStore>) {
    let t = TestDb::create();
    let db = t.database();
    let keys = scratch.join("keys");
    let ttl = Duration::from_millis(300);
    let a_lease = Lease::acquire(&db, PUBLISHER_LEASE, "a", ttl)
        .unwrap()
        .unwrap();
    let first_work = scratch.join("first");
    drop(
        Repository::init_dev_with(
            backend(&db, &a_lease, bucket.clone(), &keys, Some(&first_work)),
            cfg(),
        )
        .unwrap(),
    );
    let mut model = BTreeMap::new();
    let mut first = Repository::open_with(backend(
        &db,
        &a_lease,
        bucket.clone(),
        &keys,
        Some(&first_work),
    ))
    .unwrap();
    import(&mut first, 0..40, 0, &mut model).unwrap();
    drop(first);
    let before = model.clone();

    // A: five bins land, then every write fails.
    let cut = Remote::new(bucket.clone(), 5);
    let mut a = Repository::open_with(backend(
        &db,
        &a_lease,
        cut.clone(),
        &keys,
        Some(&scratch.join("a")),
    ))
    .unwrap();
    let err = import(&mut a, 20..400, 1, &mut model).unwrap_err();
    assert!(matches!(err, RepoError::Blob(_)), "{err:?}");
    drop(a);

    // B, after A's lease lapsed, on another machine.
    std::thread::sleep(ttl + Duration::from_millis(200));
    let b_lease = Lease::acquire(&db, PUBLISHER_LEASE, "b", ttl * 100)
        .unwrap()
        .unwrap();
    let mut b = Repository::open_with(backend(
        &db,
        &b_lease,
        bucket.clone(),
        &keys,
        Some(&scratch.join("b")),
    ))
    .unwrap();
    b.publish(100).unwrap();
    let p = verify(&*bucket, &scratch.join("verify-1"));
    // Every target listed is the old or the new version of an acknowledged one; the old ones
    // are all still there (in the new version where their bin was written); counts agree.
    for (path, (_, tf)) in &p.targets {
        let known = [before.get(path), model.get(path)];
        assert!(
            known.iter().flatten().any(|e| e.length == tf.length),
            "{path} listed with an unknown length"
        );
    }
    assert!(
        before.keys().all(|k| p.targets.contains_key(k)),
        "an old target vanished"
    );
    assert!(
        p.targets.len() < model.len(),
        "only the bins written before the cut carry the import"
    );
    assert_eq!(
        b.target_count().unwrap(),
        p.targets.len() as u64,
        "counts match what is published"
    );

    // Run again: everything.
    let r = import(&mut b, 20..400, 1, &mut model).unwrap();
    assert_eq!(r.targets, model.len() as u64);
    assert_targets(&verify(&*bucket, &scratch.join("verify-2")), &model);
}

fn fs_bucket(dir: &Path) -> Arc<dyn BlobStore> {
    Arc::new(FsStore::open(&dir.join("bucket")).unwrap())
}

fn s3_bucket(name: &str) -> Option<Arc<dyn BlobStore>> {
    tufpi_blob::testing::s3_store_for_test(name).map(|s| Arc::new(s) as Arc<dyn BlobStore>)
}

/// One test for both stores: imports without a work directory stage in this process's temp
/// directory, which two imports at once in one process would share.
#[test]
fn import_writes_each_bin_once() {
    let tmp = common::TestDir::new(module_path!());
    each_bin_is_written_once(&tmp.path().join("fs"), fs_bucket(tmp.path()));
    if let Some(bucket) = s3_bucket("import-once") {
        each_bin_is_written_once(&tmp.path().join("s3"), bucket);
    }
}

#[test]
fn fs_cut_short_import_is_finished_by_the_next_leader() {
    let tmp = common::TestDir::new(module_path!());
    cut_short_import_is_finished_by_the_next_leader(tmp.path(), fs_bucket(tmp.path()));
}

#[test]
fn s3_cut_short_import_is_finished_by_the_next_leader() {
    let Some(bucket) = s3_bucket("import-cut") else {
        return;
    };
    let tmp = common::TestDir::new(module_path!());
    cut_short_import_is_finished_by_the_next_leader(tmp.path(), bucket);
}
