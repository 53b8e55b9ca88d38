//! Root rotation chains (spec §5.3) and fast-forward attack recovery (§5.3.11).

mod sim;

use sim::*;
use tufpi_client::ClientError;
use tufpi_core::verify::VerifyError;

fn expect_threshold(e: &ClientError, want_valid: u64, want_threshold: u64) {
    match e {
        ClientError::Signatures(VerifyError::Threshold {
            role,
            valid,
            threshold,
            ..
        }) => {
            assert_eq!(role, "root");
            assert_eq!((*valid, *threshold), (want_valid, want_threshold), "{e}");
        }
        other => panic!("expected a root threshold failure, got {other:?}"),
    }
    assert_msg(
        e,
        &[&format!(
            "root: signature threshold not met: {want_valid}/{want_threshold}"
        )],
    );
}

fn root_version(c: &Client) -> u64 {
    c.version("root.json").unwrap()
}

// ----- thresholds and keys -----

#[test]
fn new_root_needs_threshold_of_old_and_new() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let a = sim.repo().signers["root"][0].clone();
    let (b, d) = (Signer::ed25519(), Signer::ecdsa());
    {
        // v2: root keys {a, b, d}, threshold 2; signed by a alone. Old threshold (1 of {a})
        // is met, the new one is not.
        let mut r = sim.repo();
        r.set_role_keys("root", &[a.clone(), b.clone(), d.clone()], 2);
        r.root.version = 2;
        let data = r.sign_with("root", std::slice::from_ref(&a));
        r.store("root", 2, data);
    }
    expect_threshold(&err(c.refresh(&sim)), 1, 2);
    assert_eq!(root_version(&c), 1);

    // Signed by a and b: both thresholds met.
    {
        let mut r = sim.repo();
        let data = r.sign_with("root", &[a.clone(), b.clone()]);
        r.store("root", 2, data);
    }
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 2);

    // v3 signed by b alone: 1 of the trusted threshold 2.
    {
        let mut r = sim.repo();
        r.root.version = 3;
        let data = r.sign_with("root", std::slice::from_ref(&b));
        r.store("root", 3, data);
    }
    expect_threshold(&err(c.refresh(&sim)), 1, 2);
    // v3 signed by b and d (not a): fine.
    {
        let mut r = sim.repo();
        let data = r.sign_with("root", &[b.clone(), d.clone()]);
        r.store("root", 3, data);
    }
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 3);
}

#[test]
fn new_root_signed_only_by_new_keys_refused() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let b = Signer::ed25519();
    {
        let mut r = sim.repo();
        r.set_role_keys("root", std::slice::from_ref(&b), 1);
        r.root.version = 2;
        let data = r.sign_with("root", std::slice::from_ref(&b));
        r.store("root", 2, data);
    }
    let e = err(c.refresh(&sim));
    expect_threshold(&e, 0, 1);
    assert_msg(&e, &["is not a key of role root"]);
    assert_eq!(root_version(&c), 1);
}

#[test]
fn removed_key_cannot_sign_later_roots() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let a = sim.repo().signers["root"][0].clone();
    let b = Signer::ed25519();
    {
        let mut r = sim.repo();
        r.set_role_keys("root", std::slice::from_ref(&b), 1);
        r.root.version = 2;
        let data = r.sign_with("root", &[a.clone(), b.clone()]);
        r.store("root", 2, data);
        // v3, signed only by the removed key a.
        r.root.version = 3;
        let data = r.sign_with("root", std::slice::from_ref(&a));
        r.store("root", 3, data);
    }
    let e = err(c.refresh(&sim));
    expect_threshold(&e, 0, 1);
    assert_eq!(root_version(&c), 2);
    assert_eq!(
        c.read("root.json").unwrap(),
        sim.repo().file("metadata/2.root.json")
    );
}

// ----- versions -----

#[test]
fn skipped_root_version_refused() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        // v2 published; then v4 served as 3.root.json.
        let mut r = sim.repo();
        r.bump_root();
        r.root.version = 4;
        let v4 = r.sign("root");
        r.fault("metadata/3.root.json", Fault::Replace(v4));
    }
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::BadVersion {
            role,
            expected,
            got,
        } => assert_eq!((role.as_str(), *expected, *got), ("root", 3, 4)),
        other => panic!("expected BadVersion, got {other:?}"),
    }
    assert_msg(&e, &["root: expected version 3, got 4"]);
    assert_eq!(root_version(&c), 2);
}

#[test]
fn root_chain_stops_at_first_missing_version() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        // 2 and 4 exist, 3 does not: the client ends at 2 and never asks for 4.
        let mut r = sim.repo();
        r.bump_root();
        r.root.version = 4;
        r.publish_root();
    }
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 2);
    assert!(!sim.fetched().contains(&format!("{META_URL}4.root.json")));
}

#[test]
fn root_rotations_capped_per_update() {
    let sim = Sim::new();
    let mut c = Client::new(&sim);
    c.config.max_root_rotations = 3;
    {
        let mut r = sim.repo();
        for _ in 2..=6 {
            r.rotate_keys("root");
            r.bump_root();
        }
    }
    // Stops at 1 + 3 and finishes the update with that root, as python-tuf does.
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 4);
    let fetched = sim.fetched();
    for v in 2..=4 {
        assert!(fetched.contains(&format!("{META_URL}{v}.root.json")));
    }
    assert!(!fetched.contains(&format!("{META_URL}5.root.json")));
    assert_eq!(
        c.read("root.json").unwrap(),
        sim.repo().file("metadata/4.root.json")
    );
    // The next update continues the chain.
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 6);
    assert_eq!(
        c.read("root.json").unwrap(),
        sim.repo().file("metadata/6.root.json")
    );
}

#[test]
fn expired_intermediate_root_is_fine_expired_final_root_is_not() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.root.expires = days(-30);
        r.bump_root(); // v2, expired
        r.root.expires = days(30);
        r.bump_root(); // v3, valid
    }
    c.refresh(&sim).unwrap();
    assert_eq!(root_version(&c), 3);
    {
        let mut r = sim.repo();
        r.bump_root(); // v4, valid
        r.root.expires = days(-1);
        r.bump_root(); // v5, expired
    }
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::Expired { role, version, .. } => {
            assert_eq!((role.as_str(), *version), ("root", 5))
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    assert_msg(&e, &["root v5 expired at 2030-05-31", "freeze"]);
    assert_eq!(root_version(&c), 5);
}

#[test]
fn new_root_rotating_targets_key_reloads_targets() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.rotate_keys("targets");
        r.bump_root();
        r.add_target("targets", "new.whl", b"new");
        r.publish(&["targets"]);
    }
    assert!(c.targetinfo(&sim, "new.whl").unwrap().is_some());
    assert_eq!(c.version("targets.json"), Some(2));
    // A targets file signed by the old key is refused under the new root.
    {
        let mut r = sim.repo();
        r.md("targets").version = 3;
        let old = Signer::ed25519();
        let data = r.sign_with("targets", &[old]);
        r.store("targets", 3, data);
        r.publish_snapshot();
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(e, ClientError::Signatures(VerifyError::Threshold { ref role, .. }) if role == "targets"),
        "{e:?}"
    );
}

// ----- fast-forward recovery -----

#[test]
fn fast_forward_timestamp_recovery() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        // An attacker holding the online timestamp key publishes a huge version.
        let mut r = sim.repo();
        r.timestamp.version = 99_999;
        r.store_role("timestamp");
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("timestamp.json"), Some(99_999));

    // Without a key rotation the repository cannot go back.
    {
        let mut r = sim.repo();
        r.timestamp.version = 1;
        r.publish_timestamp(); // stored as v1 again
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::Rollback { role, got: 1, trusted: 99_999 } if role == "timestamp"),
        "{e:?}"
    );

    // Root rotates the timestamp key: the client drops its timestamp and snapshot.
    {
        let mut r = sim.repo();
        r.rotate_keys("timestamp");
        r.bump_root();
        r.timestamp.version = 1;
        r.store_role("timestamp");
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("root.json"), Some(2));
    assert_eq!(c.version("timestamp.json"), Some(1));
    assert_eq!(
        c.read("timestamp.json").unwrap(),
        sim.repo().latest("timestamp")
    );
    assert_eq!(c.version("snapshot.json"), Some(1));
    assert_eq!(
        c.files(),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
}

#[test]
fn fast_forward_snapshot_recovery() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        // The attacker holds the online snapshot and timestamp keys.
        let mut r = sim.repo();
        r.snapshot.version = 99_999;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("snapshot.json"), Some(99_999));
    let ts = c.version("timestamp.json").unwrap();

    // Without a key rotation, a timestamp pointing at a lower snapshot is a rollback.
    {
        let mut r = sim.repo();
        r.snapshot.version = 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::Rollback { role, got: 1, trusted: 99_999 }
            if role == &format!("timestamp v{}: snapshot", ts + 1)),
        "{e:?}"
    );

    // Root rotates the snapshot key: local timestamp and snapshot are deleted and the
    // lower snapshot version is accepted.
    {
        let mut r = sim.repo();
        r.rotate_keys("snapshot");
        r.bump_root();
        r.snapshot.version = 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("root.json"), Some(2));
    assert_eq!(c.version("snapshot.json"), Some(1));
    assert_eq!(
        c.read("snapshot.json").unwrap(),
        sim.repo().latest("snapshot")
    );
    assert_eq!(
        c.read("timestamp.json").unwrap(),
        sim.repo().latest("timestamp")
    );
}

#[test]
fn fast_forward_files_deleted_even_if_update_then_fails() {
    // After the key rotation the client must not keep the fast-forwarded files around, even
    // if the rest of this update fails.
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.timestamp.version = 99_999;
        r.store_role("timestamp");
    }
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.rotate_keys("timestamp");
        r.bump_root();
        r.fault("metadata/timestamp.json", Fault::NotFound);
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::Fetch(f) if f.is_not_found()),
        "{e:?}"
    );
    assert_eq!(c.files(), ["root.json", "targets.json"]);
}

#[test]
fn fast_forward_recovery_survives_an_interrupted_update() {
    // The root that rotates the snapshot key is accepted and stored, then the update fails
    // (here: the next root is endless data). The next update must still recover.
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.snapshot.version = 99_999;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.rotate_keys("snapshot");
        r.bump_root();
        r.snapshot.version = 1;
        r.store_role("snapshot");
        r.publish_timestamp();
        r.fault_times("metadata/3.root.json", Fault::Endless, 1);
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(
            &e,
            ClientError::Fetch(tufpi_client::FetchError::TooLong { .. })
        ),
        "{e:?}"
    );
    assert_eq!(c.version("root.json"), Some(2));
    assert_eq!(c.files(), ["root.json", "targets.json"]);
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("snapshot.json"), Some(1));
}

#[test]
fn fast_forward_targets_recovery() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.md("targets").version = 99_999;
        r.publish(&["targets"]);
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("targets.json"), Some(99_999));
    {
        // Recovery: new snapshot key (so the trusted snapshot goes), targets back at 1.
        let mut r = sim.repo();
        r.rotate_keys("snapshot");
        r.rotate_keys("timestamp");
        r.bump_root();
        r.md("targets").version = 1;
        r.store_role("targets");
        r.snapshot.version = 1;
        r.snapshot_meta_refresh();
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("targets.json"), Some(1));
    assert_eq!(
        c.read("targets.json").unwrap(),
        sim.repo().latest("targets")
    );
    assert_eq!(c.version("snapshot.json"), Some(1));
}

#[test]
fn same_root_version_served_as_next_refused() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let v1 = sim.repo().file("metadata/1.root.json");
    sim.repo().fault("metadata/2.root.json", Fault::Replace(v1));
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::BadVersion { role, expected: 2, got: 1 } if role == "root"),
        "{e:?}"
    );
    assert_msg(&e, &["root: expected version 2, got 1"]);
}
