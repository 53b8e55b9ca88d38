//! The hash algorithms targets list (`--target-hashes`): sha256 alone by default, others on
//! request, older repositories keep both, and a switch re-lists every target.

mod common;

use std::collections::BTreeMap;

use tufpi_core::hashes::digest_hex;
use tufpi_repo::{Change, RepoConfig, Repository, TargetHashes, TargetRecord};

fn config(hashes: TargetHashes) -> RepoConfig {
    RepoConfig {
        bit_length: 4,
        target_hashes: hashes,
        ..RepoConfig::default()
    }
}

/// A target with every digest the caller knows (sha256, sha512, blake2b-256).
fn full(i: u32) -> TargetRecord {
    let data = format!("target {i}");
    TargetRecord {
        path: format!("packages/{i:02}/t{i}.whl"),
        length: data.len() as u64,
        hashes: ["sha256", "sha512", "blake2b-256"]
            .map(|a| (a.to_string(), digest_hex(a, data.as_bytes()).unwrap()))
            .into(),
        custom: None,
    }
}

/// path → the algorithms its published entry lists.
fn listed(repo: &Repository) -> BTreeMap<String, Vec<String>> {
    let p = common::verify_published(&repo.metadata_dir()).unwrap();
    p.targets
        .iter()
        .map(|(path, (_, tf))| (path.clone(), tf.hashes.keys().cloned().collect()))
        .collect()
}

#[test]
fn default_lists_sha256_alone_and_drops_other_digests() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), config(TargetHashes::default())).unwrap();
    repo.enqueue(&(0..5).map(|i| Change::Add(full(i))).collect::<Vec<_>>())
        .unwrap();
    repo.publish(100).unwrap();
    let l = listed(&repo);
    assert_eq!(l.len(), 5);
    assert!(l.values().all(|a| a == &["sha256"]), "{l:?}");
    // Recorded: a reopened repository keeps the choice.
    drop(repo);
    let repo = Repository::open(tmp.path()).unwrap();
    assert_eq!(repo.config().target_hashes, TargetHashes::default());
}

#[test]
fn chosen_algorithms_are_listed_and_required() {
    let tmp = common::TestDir::new(module_path!());
    let both = TargetHashes::parse("sha256,blake2b-256").unwrap();
    let mut repo = Repository::init_dev(tmp.path(), config(both.clone())).unwrap();
    let mut sha_only = full(1);
    sha_only.hashes.retain(|a, _| a == "sha256");
    let err = repo.enqueue(&[Change::Add(sha_only)]).unwrap_err();
    assert!(err.to_string().contains("hashes lack blake2b-256"), "{err}");
    assert_eq!(repo.pending().unwrap(), 0);
    repo.enqueue(&[Change::Add(full(2))]).unwrap();
    repo.publish(100).unwrap();
    let l = listed(&repo);
    assert_eq!(l.values().next().unwrap(), &["blake2b-256", "sha256"]);
    drop(repo);
    assert_eq!(
        Repository::open(tmp.path()).unwrap().config().target_hashes,
        both
    );
}

#[test]
fn a_repository_without_the_setting_keeps_listing_both() {
    let cfg = RepoConfig::from_settings(|k| {
        RepoConfig::default()
            .to_settings()
            .into_iter()
            .find(|(key, _)| *key == k && k != "target_hashes")
            .map(|(_, v)| v)
    })
    .unwrap();
    assert_eq!(cfg.target_hashes, TargetHashes::legacy());
}

#[test]
fn switching_re_lists_every_target() {
    let tmp = common::TestDir::new(module_path!());
    let mut repo = Repository::init_dev(tmp.path(), config(TargetHashes::legacy())).unwrap();
    let all: Vec<TargetRecord> = (0..40).map(full).collect();
    repo.enqueue(&all.iter().cloned().map(Change::Add).collect::<Vec<_>>())
        .unwrap();
    repo.publish(100).unwrap();
    // Queued but unpublished changes are published first, with the old listing.
    repo.enqueue(&[Change::Add(full(40))]).unwrap();

    let n = repo
        .set_target_hashes(TargetHashes::default(), &|_, _| None)
        .unwrap();
    assert_eq!(n, 41);
    repo.publish(100).unwrap();
    let l = listed(&repo);
    assert_eq!(l.len(), 41);
    assert!(l.values().all(|a| a == &["sha256"]), "{l:?}");
    // Again: nothing to re-list.
    assert_eq!(
        repo.set_target_hashes(TargetHashes::default(), &|_, _| None)
            .unwrap(),
        0
    );

    // Adding an algorithm the bins no longer list is refused, naming a target, and changes
    // nothing ...
    let sha512 = TargetHashes::parse("sha256,sha512").unwrap();
    let err = repo
        .set_target_hashes(sha512.clone(), &|_, _| None)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            tufpi_repo::RepoError::TargetsLackDigest { count: 41, first, .. }
                if matches!(**first, tufpi_repo::RepoError::MissingTargetHash { alg: "sha512", .. })
        ),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("41 targets lack a digest") && err.contains("lack sha512"),
        "{err}"
    );
    assert_eq!(repo.pending().unwrap(), 0);
    assert_eq!(repo.config().target_hashes, TargetHashes::default());
    // ... unless the caller knows the digests.
    let by_path: BTreeMap<String, BTreeMap<String, String>> =
        (0..41).map(full).map(|t| (t.path, t.hashes)).collect();
    let n = repo
        .set_target_hashes(sha512.clone(), &|p, _| by_path.get(p).cloned())
        .unwrap();
    assert_eq!(n, 41);
    repo.publish(100).unwrap();
    assert!(listed(&repo).values().all(|a| a == &["sha256", "sha512"]));
    drop(repo);
    assert_eq!(
        Repository::open(tmp.path()).unwrap().config().target_hashes,
        sha512
    );
}
