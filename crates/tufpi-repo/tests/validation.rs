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
                matches!(&err, RepoError::BadTargetPath { path } if path == p),
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
    assert!(matches!(
        repo.enqueue(&batch),
        Err(RepoError::BadTargetPath { path }) if path == "../x.whl"
    ));
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
        assert!(
            matches!(
                &err,
                RepoError::MissingTargetHash { alg: "sha256", .. }
                    | RepoError::BadTargetHash { alg: "sha256", .. }
            ),
            "{what}: {err:?}"
        );
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
    assert!(
        matches!(&err, RepoError::NotARepository { dir } if dir == tmp.path()),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a tufpi repository"), "{err}");
    drop(Repository::init_dev(tmp.path(), small()).unwrap());
    let err = Repository::init_dev(tmp.path(), small())
        .err()
        .expect("second init");
    assert!(
        matches!(&err, RepoError::AlreadyInitialised { dir } if dir == tmp.path()),
        "{err:?}"
    );
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
        assert!(
            matches!(err, RepoError::BadBitLength { got } if got == bits),
            "{err:?}"
        );
    }
}

#[test]
fn ceremony_refusals_name_the_failed_check() {
    use chrono::Duration;
    use tufpi_core::verify::VerifyError;
    use tufpi_repo::ceremony::{self, Edit};
    use tufpi_repo::keys;

    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), small()).unwrap();
    let root_key = keys::require(tmp.path(), "root").unwrap();
    let current = repo.current("root").unwrap();
    let next = ceremony::prepare(&current, &[], Duration::days(365)).unwrap();

    // Unsigned: the trusted root's threshold is not met; the check and the counts are named.
    let err = repo.publish_offline(vec![next.clone()], None).unwrap_err();
    assert!(
        matches!(
            &err,
            RepoError::Threshold {
                check,
                source: VerifyError::Threshold {
                    valid: 0,
                    threshold: 1,
                    ..
                },
            } if check == "root v1 (trusted) keys"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("0/1"), "{err}");

    // Signed, but not the next version.
    let mut skip = next.clone();
    skip.signed.version = 3;
    skip.sign(&root_key.private, &root_key.keyid).unwrap();
    let err = repo.publish_offline(vec![skip], None).unwrap_err();
    assert!(
        matches!(&err, RepoError::NotNextVersion { role, expected: 2, got: 3 } if role == "root"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("root: version 3 but the next version is 2"),
        "{err}"
    );

    // Two files for one role.
    let err = repo
        .publish_offline(vec![next.clone(), next.clone()], None)
        .unwrap_err();
    assert!(
        matches!(&err, RepoError::DuplicateRole { role } if role == "root"),
        "{err:?}"
    );
    assert_eq!(repo.role_states()["root"].version, 1);

    // Edits that cannot be made.
    let threshold = |role: &str, threshold| Edit::Threshold {
        role: role.into(),
        threshold,
    };
    let err = ceremony::prepare(&current, &[threshold("root", 2)], Duration::days(1)).unwrap_err();
    assert!(
        matches!(&err, RepoError::BadThreshold { role, threshold: 2, keys: 1 } if role == "root"),
        "{err:?}"
    );
    let err =
        ceremony::prepare(&current, &[threshold("mirror", 1)], Duration::days(1)).unwrap_err();
    assert!(
        matches!(&err, RepoError::NoRootRole { role } if role == "mirror"),
        "{err:?}"
    );
    let remove = Edit::RemoveKey {
        role: "root".into(),
        keyid: "00".into(),
    };
    let err = ceremony::prepare(&current, &[remove], Duration::days(1)).unwrap_err();
    assert!(
        matches!(&err, RepoError::NotAKey { role, keyid } if role == "root" && keyid == "00"),
        "{err:?}"
    );
    let timestamp = repo.read_metadata("timestamp", None).unwrap();
    let err =
        ceremony::prepare(&timestamp, &[threshold("timestamp", 1)], Duration::days(1)).unwrap_err();
    assert!(
        matches!(&err, RepoError::NotEditable { role_type } if role_type == "timestamp"),
        "{err:?}"
    );
    assert!(matches!(
        ceremony::combine(Vec::new()),
        Err(RepoError::NothingToCombine)
    ));
    assert!(matches!(
        ceremony::combine(vec![current.clone(), next]),
        Err(RepoError::CopiesDiffer)
    ));
}
