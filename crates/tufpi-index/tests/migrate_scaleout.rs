//! `tufpi migrate`'s library: an embedded index with uploads, a yank and tokens moved up to
//! PostgreSQL and the S3 test server (skipped without `TUFPI_TEST_S3_ENDPOINT`, unless
//! `TUFPI_REQUIRE_S3=1`): the same rows, role versions and metadata bytes, every file there;
//! the scaled-out repository publishes on from the same versions; a live target is refused
//! and left as it was; an interrupted run resumes.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use tufpi_blob::{BlobStore, Scoped, SharedStore};
use tufpi_index::db::{IndexDb, IndexRows};
use tufpi_index::migrate::{migrate, MigrateOptions, MigrateReport};
use tufpi_index::{Action, Operation, Selector};
use tufpi_pg::testing::TestDb;
use tufpi_pg::Database;
use tufpi_repo::{Backend, Change, Repository, TargetRecord, METADATA_PREFIX};

/// An embedded index with two projects, a yanked file, a scoped token and a change left in
/// the outbox (committed while no server ran: the migration queues and publishes it).
async fn embedded_index() -> tempfile::TempDir {
    let t = index();
    let mut files = demo_files();
    files.push((
        "Other-Pkg",
        "0.1",
        "other_pkg-0.1-py3-none-any.whl",
        wheel("other_pkg", "0.1"),
    ));
    t.upload_all(&files).await;
    let dir = t.close();
    let mut db = IndexDb::open(&dir.path().join("index.db")).unwrap();
    db.create_token(Some("demo"), Some("ci")).unwrap();
    // Committed to the index (its changes in the outbox), not queued: the migration's
    // settling step queues and publishes them.
    let op = Operation {
        project: "demo".into(),
        selector: Selector::Release("1.0".into()),
        action: Action::Yank {
            reason: "broken".into(),
        },
    };
    let storage = tufpi_index::storage::Storage::open(dir.path()).unwrap();
    tufpi_index::manage::apply(&mut db, &storage, &op).unwrap();
    assert!(db.outbox_len().unwrap() > 0);
    dir
}

/// [`embedded_index`], its server gone (the rest of a test blocks: no runtime around it).
fn embedded() -> tempfile::TempDir {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(embedded_index())
}

fn quiet(msg: &str) {
    eprintln!("{msg}");
}

fn run(dir: &Path, db: &Database, blobs: &SharedStore) -> Result<MigrateReport, String> {
    migrate(dir, db, blobs.clone(), &MigrateOptions::default(), &quiet).map_err(|e| e.to_string())
}

fn metadata_of(blobs: &SharedStore) -> Scoped {
    Scoped::new(blobs.clone(), METADATA_PREFIX).unwrap()
}

/// Every object key and its bytes under `prefix` (a snapshot of the bucket).
fn bucket(blobs: &SharedStore) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = blobs
        .list("")
        .unwrap()
        .into_iter()
        .map(|m| {
            let b = blobs.get(&m.key).unwrap().unwrap().to_vec();
            (m.key, b)
        })
        .collect();
    out.sort();
    out
}

fn pg_rows(db: &Database) -> IndexRows {
    IndexDb::open_postgres(db).unwrap().export().unwrap()
}

fn scale_out_repo(db: &Database, blobs: &SharedStore, dir: &Path) -> Repository {
    let backend = Backend::scale_out(db, None, blobs.clone(), &dir.join("repo").join("keys"));
    Repository::open_with(backend.unwrap()).unwrap()
}

#[test]
fn an_embedded_index_moves_up_and_publishes_on() {
    let Some(b) = tufpi_blob::testing::test_bucket("migrate-moves-up") else {
        return;
    };
    let dir = embedded();
    let pg = TestDb::create();
    let db = pg.database();
    let blobs: SharedStore = Arc::new(b.store(""));

    let t0 = Instant::now();
    let report = run(dir.path(), &db, &blobs).unwrap();
    eprintln!(
        "migrated in {:.2} s: {report:?}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        report.published > 0,
        "the outbox's yank was published first"
    );
    assert!(!report.rows_were_there);
    assert_eq!((report.projects, report.files), (2, 4));

    // The same rows (the source read after the migration settled it).
    let source = IndexDb::open(&dir.path().join("index.db"))
        .unwrap()
        .export()
        .unwrap();
    assert!(source.outbox.is_empty());
    assert_eq!(source.tokens.len(), 2);
    assert!(source
        .files
        .iter()
        .any(|f| f.yanked.as_deref() == Some("broken")));
    assert_eq!(pg_rows(&db), source);

    // The same role versions and metadata, byte for byte; every file and page there.
    let local = Repository::open(&dir.path().join("repo")).unwrap();
    let snapshot = local.role_states()["snapshot"].version;
    let repo = scale_out_repo(&db, &blobs, dir.path());
    assert_eq!(repo.role_states(), local.role_states());
    let meta = metadata_of(&blobs);
    let meta_dir = dir.path().join("repo").join("metadata");
    let mut n = 0;
    for e in std::fs::read_dir(&meta_dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() && !name.starts_with('.') {
            let there = meta
                .get(&name)
                .unwrap()
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(there.to_vec(), std::fs::read(e.path()).unwrap(), "{name}");
            n += 1;
        }
    }
    assert_eq!(report.metadata.new as usize, n);
    for (key, size) in source.objects() {
        let there = blobs
            .get(&key)
            .unwrap()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(there.len() as u64, size, "{key}");
        assert_eq!(
            there.to_vec(),
            std::fs::read(dir.path().join(&key)).unwrap()
        );
    }

    // A second run into the live target is refused and writes nothing.
    let before = bucket(&blobs);
    let err = run(dir.path(), &db, &blobs).unwrap_err();
    assert!(err.contains("timestamp.json"), "{err}");
    assert_eq!(bucket(&blobs), before);
    assert_eq!(pg_rows(&db), source);

    // The scaled-out repository publishes the next change with versions continuing.
    let mut repo = repo;
    repo.lock().unwrap();
    repo.enqueue(&[Change::Add(TargetRecord {
        path: "extra/hello.txt".into(),
        length: 5,
        hashes: [(
            "sha256".to_string(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_string(),
        )]
        .into(),
        custom: None,
    })])
    .unwrap();
    let rep = repo.publish(100).unwrap();
    assert_eq!(rep.snapshot_version, snapshot + 1);
    let ts = meta.get("timestamp.json").unwrap().unwrap();
    let ts: serde_json::Value = serde_json::from_slice(&ts).unwrap();
    assert_eq!(
        ts["signed"]["meta"]["snapshot.json"]["version"],
        snapshot + 1
    );
    assert!(meta
        .head(&format!("{}.snapshot.json", snapshot + 1))
        .unwrap()
        .is_some());
}

#[test]
fn an_interrupted_migration_resumes_and_another_index_is_refused() {
    let Some(b) = tufpi_blob::testing::test_bucket("migrate-resumes") else {
        return;
    };
    let dir = embedded();
    let pg = TestDb::create();
    let db = pg.database();
    let blobs: SharedStore = Arc::new(b.store(""));
    let first = run(dir.path(), &db, &blobs).unwrap();

    // Cut short after the database committed, before the timestamp: run again.
    let meta = metadata_of(&blobs);
    let ts = meta.get("timestamp.json").unwrap().unwrap();
    meta.delete("timestamp.json").unwrap();
    let again = run(dir.path(), &db, &blobs).unwrap();
    assert!(again.rows_were_there);
    assert_eq!(again.objects.new, 0);
    assert_eq!(again.objects.existed, first.objects.new);
    assert_eq!(meta.get("timestamp.json").unwrap().unwrap(), ts);

    // Another index into the same database (a fresh bucket): refused, nothing written.
    let Some(b2) = tufpi_blob::testing::test_bucket("migrate-refused") else {
        return;
    };
    let other = embedded();
    let blobs2: SharedStore = Arc::new(b2.store(""));
    let rows = pg_rows(&db);
    let err = run(other.path(), &db, &blobs2).unwrap_err();
    assert!(
        err.contains("holds an index or repository already"),
        "{err}"
    );
    assert!(blobs2.list("").unwrap().is_empty());
    assert_eq!(pg_rows(&db), rows);
}

#[test]
fn a_database_a_replica_serves_is_refused() {
    let Some(b) = tufpi_blob::testing::test_bucket("migrate-leased") else {
        return;
    };
    let dir = embedded();
    let pg = TestDb::create();
    let db = pg.database();
    let blobs: SharedStore = Arc::new(b.store(""));
    // A replica leads (and so would initialise a repository of its own).
    let held = tufpi_pg::lease::Lease::acquire(
        &db,
        tufpi_repo::PUBLISHER_LEASE,
        "a replica",
        std::time::Duration::from_secs(60),
    )
    .unwrap()
    .unwrap();
    let err = run(dir.path(), &db, &blobs).unwrap_err();
    assert!(err.contains("publisher lease"), "{err}");
    assert!(blobs.list("").unwrap().is_empty());
    assert!(tufpi_index::db::postgres_tables_with_rows(&db)
        .unwrap()
        .is_empty());
    held.release().unwrap();
    run(dir.path(), &db, &blobs).unwrap();
}
