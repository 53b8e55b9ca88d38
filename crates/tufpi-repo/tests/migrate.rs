//! A repository made by an older tufpi (a row per target in the state store, queued changes
//! without a bin) opens, keeps every target and publishes what was queued.

mod common;

use std::collections::BTreeMap;

use common::{assert_targets, record, target, verify_published, Expect};
use rusqlite::{params, Connection};
use tufpi_repo::layout::succinct_index;
use tufpi_repo::{Change, RepoConfig, Repository};

/// Turn a current state store into the older format: targets as rows, no counts, no bins
/// in the queue.
fn make_old(repo: &Repository, db: &std::path::Path) {
    let p = verify_published(&repo.metadata_dir()).unwrap();
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(
        "CREATE TABLE targets (bin INTEGER NOT NULL, path TEXT NOT NULL, length INTEGER NOT NULL,
             hashes TEXT NOT NULL, custom TEXT, PRIMARY KEY (bin, path)) WITHOUT ROWID;
         DROP TABLE bin_counts;
         DROP INDEX queue_bin;
         ALTER TABLE queue DROP COLUMN bin;",
    )
    .unwrap();
    for (path, (bin, t)) in &p.targets {
        let idx = succinct_index(repo.config(), bin).unwrap();
        let hashes = format!(r#"{{"sha256":"{}"}}"#, t.hashes["sha256"]);
        conn.execute(
            "INSERT INTO targets(bin, path, length, hashes) VALUES (?1, ?2, ?3, ?4)",
            params![idx as i64, path, t.length as i64, hashes],
        )
        .unwrap();
    }
}

#[test]
fn older_state_store_is_migrated() {
    let tmp = common::TestDir::new(module_path!());
    let config = RepoConfig {
        bit_length: 4,
        ..RepoConfig::default()
    };
    let mut repo = Repository::init_dev(tmp.path(), config).unwrap();
    let mut model: BTreeMap<String, Expect> = BTreeMap::new();
    let changes: Vec<Change> = (0..60)
        .map(|i| {
            let (p, e) = target(i, 0);
            model.insert(p.clone(), e.clone());
            Change::Add(record(&p, &e))
        })
        .collect();
    repo.enqueue(&changes).unwrap();
    repo.publish(1000).unwrap();
    let db = tmp.path().join("state.db");
    make_old(&repo, &db);
    drop(repo);
    // A change queued by the older version: no bin.
    let (p, e) = target(1000, 0);
    model.insert(p.clone(), e.clone());
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO queue(op, path, length, hashes) VALUES ('add', ?1, ?2, ?3)",
            params![
                p,
                e.length as i64,
                format!(r#"{{"sha256":"{}"}}"#, e.sha256)
            ],
        )
        .unwrap();

    let mut repo = Repository::open(tmp.path()).unwrap();
    assert_eq!(repo.target_count().unwrap(), 60);
    assert_eq!(repo.pending().unwrap(), 1);
    // Replace one old target too: its bin is rebuilt from the published file.
    let (p0, _) = target(0, 0);
    let (_, e0) = target(0, 1);
    model.insert(p0.clone(), e0.clone());
    repo.enqueue(&[Change::Add(record(&p0, &e0))]).unwrap();
    let rep = repo.publish(1000).unwrap();
    assert_eq!(rep.changes, 2);
    assert_targets(&verify_published(&repo.metadata_dir()).unwrap(), &model);
    assert_eq!(repo.target_count().unwrap(), 61);
}

#[test]
fn older_interrupted_publish_is_refused_with_a_way_out() {
    let tmp = common::TestDir::new(module_path!());
    let config = RepoConfig {
        bit_length: 3,
        ..RepoConfig::default()
    };
    let repo = Repository::init_dev(tmp.path(), config).unwrap();
    let db = tmp.path().join("state.db");
    make_old(&repo, &db);
    drop(repo);
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO settings(key, value) VALUES ('plan', '[\"snapshot\",\"timestamp\"]')",
            [],
        )
        .unwrap();
    let err = Repository::open(tmp.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("mid-publish") && err.contains("tufpi repo publish"),
        "{err}"
    );
}
