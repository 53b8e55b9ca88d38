//! Bad input is refused with a clear error and nothing is queued.

mod common;

use std::collections::BTreeMap;

use common::{record, target};
use tufpi_repo::{Change, RepoConfig, RepoError, Repository, TargetRecord};

fn small() -> RepoConfig {
    RepoConfig {
        bit_length: 4,
        ..RepoConfig::default()
    }
}

fn add(path: &str) -> Change {
    let (_, e) = target(1, 0);
    Change::Add(record(path, &e))
}

#[test]
fn bad_paths_are_refused_and_nothing_is_queued() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), small()).unwrap();
    let bad = [
        "",
        "/abs/file.whl",
        "/",
        "../escape.whl",
        "a/../../escape.whl",
        "a/..",
        "..",
        "./a.whl",
        "a/./b.whl",
        "a//b.whl",
        "a/",
    ];
    for p in bad {
        for change in [add(p), Change::Remove(p.to_string())] {
            let err = repo.enqueue(&[change]).expect_err(p);
            assert!(
                matches!(err, RepoError::Invalid(_)),
                "{p:?}: wrong error kind {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("invalid input") && msg.contains(&format!("{p:?}")),
                "{p:?}: unclear message {msg:?}"
            );
        }
    }
    assert_eq!(repo.pending().unwrap(), 0);
}

#[test]
fn one_bad_change_refuses_the_whole_batch() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), small()).unwrap();
    let (p1, e1) = target(1, 0);
    let (p2, e2) = target(2, 0);
    let batch = vec![
        Change::Add(record(&p1, &e1)),
        Change::Add(record("../x.whl", &e2)),
        Change::Add(record(&p2, &e2)),
    ];
    assert!(matches!(repo.enqueue(&batch), Err(RepoError::Invalid(_))));
    assert_eq!(repo.pending().unwrap(), 0);
    let rep = repo.publish(100).unwrap();
    assert_eq!(rep.changes, 0);
    assert_eq!(repo.target_count().unwrap(), 0);
}

#[test]
fn missing_or_malformed_sha256_is_refused() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), small()).unwrap();
    let good = "a".repeat(64);
    let cases: Vec<(&str, BTreeMap<String, String>)> = vec![
        ("no hashes", BTreeMap::new()),
        (
            "blake2b only",
            BTreeMap::from([("blake2b-256".to_string(), good.clone())]),
        ),
        (
            "short",
            BTreeMap::from([("sha256".to_string(), "abcd".into())]),
        ),
        (
            "not hex",
            BTreeMap::from([("sha256".to_string(), "g".repeat(64))]),
        ),
        (
            "too long",
            BTreeMap::from([("sha256".to_string(), "a".repeat(65))]),
        ),
        (
            "empty",
            BTreeMap::from([("sha256".to_string(), String::new())]),
        ),
    ];
    for (what, hashes) in cases {
        let c = Change::Add(TargetRecord {
            path: "packages/x.whl".into(),
            length: 1,
            hashes,
            custom: None,
        });
        let err = repo.enqueue(&[c]).expect_err(what);
        assert!(matches!(err, RepoError::Invalid(_)), "{what}: {err:?}");
        assert!(err.to_string().contains("sha256"), "{what}: {err}");
    }
    assert_eq!(repo.pending().unwrap(), 0);
    // The good one goes through.
    let c = Change::Add(TargetRecord {
        path: "packages/x.whl".into(),
        length: 1,
        hashes: BTreeMap::from([("sha256".to_string(), good)]),
        custom: None,
    });
    repo.enqueue(&[c]).unwrap();
    assert_eq!(repo.pending().unwrap(), 1);
}

#[test]
fn open_refuses_a_directory_without_a_repository_and_init_refuses_twice() {
    let tmp = common::TestDir::new(module_path!());
    let err = Repository::open(tmp.path())
        .err()
        .expect("open of empty dir");
    assert!(err.to_string().contains("not a tufpi repository"), "{err}");
    drop(Repository::init_dev(tmp.path(), small()).unwrap());
    let err = Repository::init_dev(tmp.path(), small())
        .err()
        .expect("second init");
    assert!(
        err.to_string().contains("already holds a repository"),
        "{err}"
    );
    for bits in [0, 33] {
        let t2 = common::TestDir::new(module_path!());
        let cfg = RepoConfig {
            bit_length: bits,
            ..RepoConfig::default()
        };
        let err = Repository::init_dev(t2.path(), cfg)
            .err()
            .expect("bad bit length");
        assert!(matches!(err, RepoError::Invalid(_)), "{err:?}");
    }
}
