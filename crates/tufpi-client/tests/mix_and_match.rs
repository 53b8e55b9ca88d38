//! Mix-and-match attacks (files that disagree with the hash, length or version their parent
//! lists) and arbitrary-package attacks (bad signatures, targets nobody is trusted for,
//! modified target content).

mod sim;

use sim::*;
use tufpi_client::ClientError;
use tufpi_core::hashes::HashError;
use tufpi_core::metadata::{MetaFile, Metadata};
use tufpi_core::verify::VerifyError;

/// A signed, valid-looking file of the same length but another hash: one hex digit of the
/// signature changed.
fn same_length_other_bytes(data: &[u8]) -> Vec<u8> {
    let mut md = Metadata::from_bytes(data).unwrap();
    let sig = &mut md.signatures[0].sig;
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    sig.replace_range(0..1, flipped);
    let out = md.to_bytes();
    assert_eq!(out.len(), data.len());
    out
}

fn expect_hash_mismatch(e: &ClientError, want_what: &str, want_expected: &str) {
    match e {
        ClientError::Hash {
            what,
            source:
                HashError::Mismatch {
                    algorithm,
                    expected,
                    actual,
                },
        } => {
            assert_eq!(what, want_what);
            assert_eq!(algorithm, "sha256");
            assert_eq!(expected, want_expected);
            assert_ne!(actual, expected);
        }
        other => panic!("expected a hash mismatch for {want_what}, got {other:?}"),
    }
    assert_msg(e, &[want_what, "sha256 hash mismatch", want_expected]);
}

fn expect_length(e: &ClientError, want_what: &str, want_expected: u64, want_actual: u64) {
    match e {
        ClientError::Hash {
            what,
            source: HashError::Length { expected, actual },
        } => {
            assert_eq!(what, want_what);
            assert_eq!((*expected, *actual), (want_expected, want_actual));
        }
        other => panic!("expected a length mismatch for {want_what}, got {other:?}"),
    }
    assert_msg(
        e,
        &[
            want_what,
            &format!("length {want_actual} does not match expected {want_expected}"),
        ],
    );
}

fn expect_bad_version(e: &ClientError, want_role: &str, want_expected: u64, want_got: u64) {
    match e {
        ClientError::BadVersion {
            role,
            expected,
            got,
        } => {
            assert_eq!(role, want_role);
            assert_eq!((*expected, *got), (want_expected, want_got));
        }
        other => panic!("expected BadVersion for {want_role}, got {other:?}"),
    }
    assert_msg(
        e,
        &[&format!(
            "{want_role}: expected version {want_expected}, got {want_got}"
        )],
    );
}

fn expect_threshold(e: &ClientError, want_role: &str, want_valid: u64, want_threshold: u64) {
    match e {
        ClientError::Signatures(VerifyError::Threshold {
            role,
            valid,
            threshold,
            ..
        }) => {
            assert_eq!(role, want_role);
            assert_eq!((*valid, *threshold), (want_valid, want_threshold));
        }
        other => panic!("expected a threshold failure for {want_role}, got {other:?}"),
    }
    assert_msg(
        e,
        &[&format!(
            "{want_role}: signature threshold not met: {want_valid}/{want_threshold}"
        )],
    );
}

fn with_lengths() -> (Sim, Client) {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.meta_lengths = true;
        r.delegate("targets", "a", &["a/*"], false);
        r.add_target("a", "a/f.txt", b"content");
        r.publish(&["targets", "a"]);
    }
    let c = Client::new(&sim);
    (sim, c)
}

// ----- mix-and-match: snapshot against timestamp -----

#[test]
fn snapshot_hash_disagrees_with_timestamp() {
    let (sim, c) = with_lengths();
    let expected = {
        let mut r = sim.repo();
        let v = r.published["snapshot"];
        let path = format!("metadata/{v}.snapshot.json");
        let bad = same_length_other_bytes(&r.file(&path));
        r.fault(&path, Fault::Replace(bad));
        r.timestamp_body().snapshot_meta.hashes.as_ref().unwrap()["sha256"].clone()
    };
    let e = err(c.refresh(&sim));
    expect_hash_mismatch(&e, "snapshot (against timestamp)", &expected);
    assert_eq!(c.read("snapshot.json"), None);
}

#[test]
fn snapshot_length_disagrees_with_timestamp() {
    let (sim, c) = with_lengths();
    let (len, compact_len) = {
        let mut r = sim.repo();
        let v = r.published["snapshot"];
        let path = format!("metadata/{v}.snapshot.json");
        let data = r.file(&path);
        // The same signed metadata, re-serialized compactly: still validly signed.
        let compact = Metadata::from_bytes(&data).unwrap().to_compact_bytes();
        let n = compact.len() as u64;
        r.fault(&path, Fault::Replace(compact));
        (data.len() as u64, n)
    };
    let e = err(c.refresh(&sim));
    expect_length(&e, "snapshot (against timestamp)", len, compact_len);
}

#[test]
fn snapshot_version_disagrees_with_timestamp() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        // Timestamp lists snapshot v2, but 2.snapshot.json is the (validly signed) v1.
        let mut r = sim.repo();
        r.publish_snapshot();
        let v1 = r.file("metadata/1.snapshot.json");
        r.fault("metadata/2.snapshot.json", Fault::Replace(v1));
    }
    let e = err(c.refresh(&sim));
    expect_bad_version(&e, "snapshot", 2, 1);
    assert_eq!(c.version("snapshot.json"), Some(1));
}

// ----- mix-and-match: targets and delegated roles against snapshot -----

#[test]
fn targets_hash_disagrees_with_snapshot() {
    let (sim, c) = with_lengths();
    let expected = {
        let mut r = sim.repo();
        let v = r.published["targets"];
        let path = format!("metadata/{v}.targets.json");
        let bad = same_length_other_bytes(&r.file(&path));
        r.fault(&path, Fault::Replace(bad));
        r.snapshot_body().meta["targets.json"]
            .hashes
            .as_ref()
            .unwrap()["sha256"]
            .clone()
    };
    let e = err(c.refresh(&sim));
    expect_hash_mismatch(&e, "targets (against snapshot)", &expected);
    assert_eq!(c.read("targets.json"), None);
}

#[test]
fn targets_length_disagrees_with_snapshot() {
    let (sim, c) = with_lengths();
    let len = {
        let mut r = sim.repo();
        let v = r.published["targets"];
        let path = format!("metadata/{v}.targets.json");
        let data = r.file(&path);
        let mut shorter = data.clone();
        shorter.truncate(data.len() - 1);
        r.fault(&path, Fault::Replace(shorter));
        data.len() as u64
    };
    let e = err(c.refresh(&sim));
    expect_length(&e, "targets (against snapshot)", len, len - 1);
}

#[test]
fn targets_version_disagrees_with_snapshot() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.publish(&["targets"]);
        let v1 = r.file("metadata/1.targets.json");
        r.fault("metadata/2.targets.json", Fault::Replace(v1));
    }
    let e = err(c.refresh(&sim));
    expect_bad_version(&e, "targets", 2, 1);
}

#[test]
fn delegated_hash_and_version_disagree_with_snapshot() {
    let (sim, c) = with_lengths();
    c.refresh(&sim).unwrap();
    let expected = {
        let mut r = sim.repo();
        let bad = same_length_other_bytes(&r.file("metadata/1.a.json"));
        r.fault("metadata/1.a.json", Fault::Replace(bad));
        r.snapshot_body().meta["a.json"].hashes.as_ref().unwrap()["sha256"].clone()
    };
    let e = err(c.targetinfo(&sim, "a/f.txt"));
    expect_hash_mismatch(&e, "a (against snapshot)", &expected);
    assert_eq!(c.read("a.json"), None);

    // Without hashes in snapshot: the version inside must be the one snapshot lists.
    {
        let mut r = sim.repo();
        r.faults.clear();
        r.meta_lengths = false;
        r.publish(&["a"]);
        let v1 = r.file("metadata/1.a.json");
        r.fault("metadata/2.a.json", Fault::Replace(v1));
    }
    let e = err(c.targetinfo(&sim, "a/f.txt"));
    expect_bad_version(&e, "a", 2, 1);
}

// ----- arbitrary package: signatures -----

#[test]
fn unsigned_metadata_refused() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.add_target("targets", "evil.whl", b"evil");
        r.publish(&["targets"]);
        let unsigned = r.sign_with("targets", &[]);
        r.fault("metadata/2.targets.json", Fault::Replace(unsigned));
    }
    let e = err(c.refresh(&sim));
    expect_threshold(&e, "targets", 0, 1);
    assert_eq!(c.read("targets.json"), None);

    // An unsigned timestamp too.
    sim.repo().faults.clear();
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.timestamp.version += 1;
        let unsigned = r.sign_with("timestamp", &[]);
        r.fault("metadata/timestamp.json", Fault::Replace(unsigned));
    }
    expect_threshold(&err(c.refresh(&sim)), "timestamp", 0, 1);
}

#[test]
fn below_threshold_refused() {
    let sim = Sim::new();
    let (k1, k2) = (Signer::ed25519(), Signer::ecdsa());
    {
        let mut r = sim.repo();
        r.set_role_keys("targets", &[k1.clone(), k2.clone()], 2);
        r.bump_root();
        r.signers
            .insert("targets".into(), vec![k1.clone(), k2.clone()]);
        r.publish(&["targets"]);
    }
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.signers.insert("targets".into(), vec![k1.clone()]);
        r.add_target("targets", "evil.whl", b"evil");
        r.publish(&["targets"]);
    }
    let e = err(c.refresh(&sim));
    expect_threshold(&e, "targets", 1, 2);
    assert_eq!(c.version("targets.json"), Some(2));

    // The same keyid signing twice is refused outright (as python-tuf and tuf-conformance).
    {
        let mut r = sim.repo();
        let data = r.sign_with("targets", std::slice::from_ref(&k1));
        let mut md = Metadata::from_bytes(&data).unwrap();
        md.signatures.push(md.signatures[0].clone());
        let v = r.published["targets"];
        r.fault(
            &format!("metadata/{v}.targets.json"),
            Fault::Replace(md.to_bytes()),
        );
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::DuplicateSignature { role, .. } if role == "targets"),
        "{e:?}"
    );
    assert_msg(&e, &["targets: keyid", "signs more than once"]);
    assert_eq!(c.version("targets.json"), Some(2));
}

#[test]
fn signature_by_unassigned_key_refused() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        // targets signed by the snapshot key (a key root knows, for another role).
        let mut r = sim.repo();
        let snapshot_key = r.signers["snapshot"].clone();
        r.signers.insert("targets".into(), snapshot_key);
        r.add_target("targets", "evil.whl", b"evil");
        r.publish(&["targets"]);
    }
    let e = err(c.refresh(&sim));
    expect_threshold(&e, "targets", 0, 1);
    assert_msg(&e, &["is not a key of role targets"]);
}

// ----- arbitrary package: targets nobody is trusted for -----

#[test]
fn bin_listing_path_outside_its_prefix_is_not_found() {
    let path = "pkg/evil-1.0.tar.gz";
    let digest = tufpi_core::hashes::digest_hex("sha256", path.as_bytes()).unwrap();
    let own = &digest[..1];
    let other = if own == "0" { "1" } else { "0" };
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate_role("targets", "bin-own", None, Some(&[own]), false);
        r.delegate_role("targets", "bin-other", None, Some(&[other]), false);
        // The other bin lists the path, but it is not trusted for it.
        r.add_target("bin-other", path, b"evil");
        r.add_target("bin-own", "pkg/fine.tar.gz", b"fine");
        r.publish(&["targets", "bin-own", "bin-other"]);
    }
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, path).unwrap(), None);
    let fetched = sim.fetched();
    assert!(
        fetched.contains(&format!("{META_URL}1.bin-own.json")),
        "{fetched:?}"
    );
    assert!(
        !fetched.iter().any(|u| u.contains("bin-other")),
        "{fetched:?}"
    );

    let e = err(c.download(&sim, path));
    assert!(
        matches!(&e, ClientError::TargetNotFound(p) if p == path),
        "{e:?}"
    );
    assert_msg(&e, &[path, "not found"]);
    assert!(!sim.fetched().iter().any(|u| u.starts_with(TARGETS_URL)));
    assert!(c.target_files().is_empty());
}

#[test]
fn succinct_bin_listing_foreign_path_is_not_found() {
    let sim = Sim::new();
    let path = (0..)
        .map(|i| format!("p{i}"))
        .find(|p| bin_of(p, 1) == 0)
        .unwrap();
    {
        let mut r = sim.repo();
        r.delegate_succinct("targets", 1, "bins");
        r.add_target("bins-1", &path, b"evil");
        r.add_target("bins-0", "unrelated", b"x");
        r.publish(&["targets", "bins-0", "bins-1"]);
    }
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, &path).unwrap(), None);
    assert!(!sim.fetched().iter().any(|u| u.contains("bins-1")));
}

#[test]
fn target_in_no_role_is_not_found_and_never_downloaded() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["a/*"], false);
        r.add_target("a", "a/f.txt", b"f");
        r.publish(&["targets", "a"]);
        // The file exists on the server, but no metadata lists it.
        r.files.insert("targets/b/x.txt".into(), b"x".to_vec());
    }
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, "b/x.txt").unwrap(), None);
    assert_eq!(c.targetinfo(&sim, "a/g.txt").unwrap(), None);
    let e = err(c.download(&sim, "b/x.txt"));
    assert!(
        matches!(&e, ClientError::TargetNotFound(p) if p == "b/x.txt"),
        "{e:?}"
    );
    assert!(!sim.fetched().iter().any(|u| u.starts_with(TARGETS_URL)));
    assert!(c.target_files().is_empty());
}

// ----- arbitrary package: modified content -----

#[test]
fn modified_target_content_refused_and_not_written() {
    let sim = Sim::new();
    let content = b"the real package";
    let info = {
        let mut r = sim.repo();
        let info = r.add_target("targets", "pkg.whl", content);
        r.publish(&["targets"]);
        info
    };
    let hash = info.hashes["sha256"].clone();
    let path = format!("targets/{hash}.pkg.whl");
    let c = Client::new(&sim);

    // Same length, other bytes.
    sim.repo()
        .fault(&path, Fault::Replace(b"the evil package".to_vec()));
    let e = err(c.download(&sim, "pkg.whl"));
    expect_hash_mismatch(&e, "target \"pkg.whl\"", &hash);
    assert!(c.target_files().is_empty(), "{:?}", c.target_files());

    // Shorter.
    sim.repo().fault(&path, Fault::Replace(b"evil".to_vec()));
    let e = err(c.download(&sim, "pkg.whl"));
    expect_length(&e, "target \"pkg.whl\"", content.len() as u64, 4);
    assert!(c.target_files().is_empty(), "{:?}", c.target_files());

    // The real bytes are accepted and written exactly.
    sim.repo().faults.clear();
    let file = c.download(&sim, "pkg.whl").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), content);
    assert_eq!(c.target_files(), ["pkg.whl"]);
    let cached = tufpi_client::Updater::find_cached_target(&info, &file);
    assert!(cached);
}

#[test]
fn snapshot_meta_without_version_match_is_not_enough() {
    // A snapshot entry pointing at a version that does not exist on the server: 404, not
    // a silent fallback to another version.
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.snapshot_body()
            .meta
            .insert("targets.json".into(), MetaFile::new(7));
        r.snapshot.version += 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::Fetch(tufpi_client::FetchError::NotFound { url, status }) => {
            assert_eq!(url, &format!("{META_URL}7.targets.json"));
            assert_eq!(*status, 404);
        }
        other => panic!("{other:?}"),
    }
    assert_msg(&e, &["7.targets.json", "not found"]);
}

#[test]
fn modified_cached_target_is_not_used() {
    let sim = Sim::new();
    let info = {
        let mut r = sim.repo();
        let info = r.add_target("targets", "pkg.whl", b"real");
        r.publish(&["targets"]);
        info
    };
    let c = Client::new(&sim);
    let file = c.download(&sim, "pkg.whl").unwrap();
    assert!(tufpi_client::Updater::find_cached_target(&info, &file));
    std::fs::write(&file, b"evil").unwrap();
    assert!(!tufpi_client::Updater::find_cached_target(&info, &file));
    std::fs::write(&file, b"real!").unwrap();
    assert!(!tufpi_client::Updater::find_cached_target(&info, &file));
    c.download(&sim, "pkg.whl").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"real");
}
