//! Publishing through the library: every layout verifies as a client would see it; batches,
//! replacements and removals; the publisher lock; handles opened before another publish.

mod common;

use std::collections::BTreeMap;

use common::{assert_targets, record, target, verify_published, Expect};
use tufpi_core::json::{self, Value};
use tufpi_repo::{BinsMode, Change, RepoConfig, RepoError, Repository};

fn cfg(bits: u32, mode: BinsMode, targets_online: bool) -> RepoConfig {
    RepoConfig {
        bit_length: bits,
        bins_mode: mode,
        targets_online,
        ..RepoConfig::default()
    }
}

fn adds(
    range: std::ops::Range<u64>,
    generation: u64,
    model: &mut BTreeMap<String, Expect>,
) -> Vec<Change> {
    range
        .map(|i| {
            let (p, e) = target(i, generation);
            model.insert(p.clone(), e.clone());
            Change::Add(record(&p, &e))
        })
        .collect()
}

fn layout_roundtrip(config: RepoConfig) {
    let tmp = common::TestDir::new(module_path!());
    let bits = config.bit_length;
    let mut repo = Repository::init_dev(tmp.path(), config.clone()).unwrap();
    let p = verify_published(&repo.metadata_dir()).unwrap();
    assert_eq!((p.snapshot_version, p.timestamp_version), (1, 1));
    assert_eq!(p.bin_versions.len(), 1 << bits);
    assert_eq!(p.succinct, config.bins_mode == BinsMode::Succinct);
    assert_eq!(p.bins_version.is_none(), config.targets_online);
    assert!(p.targets.is_empty());

    let mut model = BTreeMap::new();
    repo.enqueue(&adds(0..300, 0, &mut model)).unwrap();
    let rep = repo.publish(1000).unwrap();
    assert_eq!(rep.changes, 300);
    assert_eq!((rep.snapshot_version, rep.timestamp_version), (2, 2));
    let p = verify_published(&repo.metadata_dir()).unwrap();
    assert_eq!(p.bit_length, bits);
    assert_targets(&p, &model);
    // Only touched bins moved to v2.
    let touched: std::collections::BTreeSet<&String> = p.targets.values().map(|(b, _)| b).collect();
    for (bin, v) in &p.bin_versions {
        assert_eq!(*v, if touched.contains(bin) { 2 } else { 1 }, "{bin}");
    }

    // Replace some, remove some (including a path never added), publish in batches of 7.
    let mut changes = adds(0..50, 1, &mut model);
    for i in 100..130 {
        let (p, _) = target(i, 0);
        model.remove(&p);
        changes.push(Change::Remove(p));
    }
    changes.push(Change::Remove("never/added.whl".into()));
    let n = changes.len() as u64;
    repo.enqueue(&changes).unwrap();
    let rep = repo.publish(7).unwrap();
    assert_eq!(rep.changes, n);
    let batches = n.div_ceil(7);
    assert_eq!(rep.snapshot_version, 2 + batches);
    assert_eq!(rep.timestamp_version, 2 + batches);
    let p = verify_published(&repo.metadata_dir()).unwrap();
    assert_targets(&p, &model);

    // Nothing queued: nothing new.
    let rep = repo.publish(7).unwrap();
    assert_eq!(rep.changes, 0);
    assert_eq!(rep.snapshot_version, 2 + batches);
    drop(repo);

    // Reopen: state survives.
    let repo = Repository::open(tmp.path()).unwrap();
    assert_eq!(repo.target_count().unwrap(), model.len() as u64);
    assert_eq!(repo.role_states()["snapshot"].version, 2 + batches);
}

#[test]
fn succinct_bins() {
    layout_roundtrip(cfg(4, BinsMode::Succinct, false));
}

#[test]
fn hash_prefix_bins_one_prefix_per_bin() {
    layout_roundtrip(cfg(4, BinsMode::HashPrefix, false));
}

#[test]
fn hash_prefix_bins_several_prefixes_per_bin() {
    // 2^6 bins over 16^2 prefixes: 4 prefixes each.
    layout_roundtrip(cfg(6, BinsMode::HashPrefix, false));
}

#[test]
fn targets_online() {
    layout_roundtrip(cfg(5, BinsMode::Succinct, true));
}

#[test]
fn targets_online_hash_prefix() {
    layout_roundtrip(cfg(3, BinsMode::HashPrefix, true));
}

#[test]
fn custom_is_published() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), cfg(4, BinsMode::Succinct, false)).unwrap();
    let (p, e) = target(7, 0);
    let mut r = record(&p, &e);
    let custom =
        json::parse(br#"{"requires_python": ">=3.8", "yanked": false, "n": [1, 2]}"#).unwrap();
    r.custom = Some(custom.clone());
    repo.enqueue(&[Change::Add(r)]).unwrap();
    repo.publish(10).unwrap();
    let pub_ = verify_published(&repo.metadata_dir()).unwrap();
    let (_, tf) = &pub_.targets[&p];
    assert_eq!(tf.custom(), Some(&custom));
    assert!(matches!(tf.custom(), Some(Value::Object(_))));
}

#[test]
fn second_publisher_is_refused_while_the_first_holds_the_lock() {
    let tmp = common::TestDir::new(module_path!());
    let mut first = Repository::init_dev(tmp.path(), cfg(4, BinsMode::Succinct, false)).unwrap();
    // init_dev returns holding the lock.
    let mut second = Repository::open(tmp.path()).unwrap();
    let (p, e) = target(1, 0);
    // Queueing needs no lock.
    second.enqueue(&[Change::Add(record(&p, &e))]).unwrap();
    let err = second
        .publish(10)
        .expect_err("second publisher must be refused");
    assert!(matches!(err, RepoError::Locked(_)), "{err:?}");
    assert!(err.to_string().contains("another publisher holds"), "{err}");
    assert!(second.refresh(chrono::Duration::hours(48)).is_err());
    assert_eq!(second.pending().unwrap(), 1);
    // The holder publishes the change queued through the other handle.
    first.publish(10).unwrap();
    drop(first);
    // Once released, the other handle may publish.
    second.publish(10).unwrap();
    let pub_ = verify_published(&second.metadata_dir()).unwrap();
    assert_targets(&pub_, &BTreeMap::from([(p, e)]));
}

/// A handle opened before another process published must not publish with stale role
/// versions (which would collide with existing version names: `write_once` keeps the other
/// publisher's file and this handle's changes would silently never reach the metadata).
#[test]
fn handle_opened_before_another_publish_does_not_lose_changes() {
    let tmp = common::TestDir::new(module_path!());
    drop(Repository::init_dev(tmp.path(), cfg(2, BinsMode::Succinct, false)).unwrap());
    let mut model = BTreeMap::new();
    let mut a = Repository::open(tmp.path()).unwrap();
    {
        let mut b = Repository::open(tmp.path()).unwrap();
        b.enqueue(&adds(0..20, 0, &mut model)).unwrap();
        b.publish(100).unwrap();
    }
    a.enqueue(&adds(20..40, 0, &mut model)).unwrap();
    let rep = a.publish(100).unwrap();
    assert_eq!(rep.changes, 20);
    assert_eq!(
        rep.snapshot_version, 3,
        "second publish must get a new snapshot version"
    );
    let p = verify_published(&a.metadata_dir()).unwrap();
    assert_targets(&p, &model);
    assert_eq!(p.snapshot_version, 3);
}

/// Same for the online key: a handle opened before a rotation must sign with the new key.
#[test]
fn handle_opened_before_an_online_key_rotation_signs_with_the_new_key() {
    for targets_online in [false, true] {
        let tmp = common::TestDir::new(module_path!());
        drop(Repository::init_dev(tmp.path(), cfg(2, BinsMode::Succinct, targets_online)).unwrap());
        let mut model = BTreeMap::new();
        let mut a = Repository::open(tmp.path()).unwrap();
        {
            let mut b = Repository::open(tmp.path()).unwrap();
            b.enqueue(&adds(0..5, 0, &mut model)).unwrap();
            b.publish(100).unwrap();
            b.dev_rotate_online().unwrap();
        }
        let p = verify_published(&a.metadata_dir()).unwrap();
        assert_eq!(p.root_version, 2);
        assert_targets(&p, &model);
        a.enqueue(&adds(5..10, 0, &mut model)).unwrap();
        a.publish(100).unwrap();
        let p = verify_published(&a.metadata_dir())
            .unwrap_or_else(|e| panic!("targets_online={targets_online}: {e}"));
        assert_targets(&p, &model);
    }
}

/// Temp files a killed publisher left behind are removed by the next lock holder, and are
/// never mistaken for metadata.
#[test]
fn stale_temp_files_are_cleaned_up_by_the_next_publisher() {
    let tmp = common::TestDir::new(module_path!());
    drop(Repository::init_dev(tmp.path(), cfg(2, BinsMode::Succinct, false)).unwrap());
    let meta = tmp.path().join("metadata");
    for name in [
        ".2.bin-1.json.4242.tmp",
        ".timestamp.json.4243.tmp",
        ".2.snapshot.json.1.tmp",
    ] {
        std::fs::write(meta.join(name), b"{partial").unwrap();
    }
    std::fs::write(meta.join(".keep"), b"").unwrap();
    let mut repo = Repository::open(tmp.path()).unwrap();
    let (p, e) = target(1, 0);
    repo.enqueue(&[Change::Add(record(&p, &e))]).unwrap();
    repo.publish(10).unwrap();
    let (_, temps, other) = common::scan_metadata_dir(&meta);
    assert!(temps.is_empty(), "{temps:?}");
    assert_eq!(other, vec![".keep".to_string()]);
    assert_targets(&verify_published(&meta).unwrap(), &BTreeMap::from([(p, e)]));
}
