//! The pure state machine on its own: bytes in, checks, no I/O. Out-of-order calls and
//! wrong inputs are errors, never panics.

mod sim;

use sim::*;
use tufpi_client::{ClientError, TimestampUpdate, TrustedSet};

fn bytes(sim: &Sim, role: &str) -> Vec<u8> {
    sim.repo().latest(role)
}

fn expect_order(e: ClientError, want: &str) {
    match &e {
        ClientError::Order(m) => assert_eq!(*m, want),
        other => panic!("expected Order({want:?}), got {other:?}"),
    }
    assert_msg(&e, &["client state", want]);
}

#[test]
fn full_walk_from_bytes() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.publish(&["targets", "a"]);
        r.bump_root();
    }
    let mut t = TrustedSet::new(&sim.repo().file("metadata/1.root.json"), now()).unwrap();
    assert_eq!(t.reference_time(), now());
    t.update_root(&bytes(&sim, "root")).unwrap();
    t.check_final_root().unwrap();
    assert_eq!(
        t.update_timestamp(&bytes(&sim, "timestamp")).unwrap(),
        TimestampUpdate::Updated
    );
    t.update_snapshot(&bytes(&sim, "snapshot"), false).unwrap();
    t.update_targets(&bytes(&sim, "targets")).unwrap();
    t.update_delegated_targets(&bytes(&sim, "a"), "a", "targets")
        .unwrap();
    assert!(t.contains("a", "targets"));
    assert!(!t.contains("a", "root"));
    assert_eq!(t.targets("a").unwrap().version, 1);
}

#[test]
fn out_of_order_calls_are_errors() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.publish(&["targets", "a"]);
    }
    let root = sim.repo().file("metadata/1.root.json");
    let mut t = TrustedSet::new(&root, now()).unwrap();
    expect_order(
        err(t
            .update_snapshot(&bytes(&sim, "snapshot"), false)
            .map(|_| ())),
        "cannot update snapshot before timestamp",
    );
    expect_order(
        err(t.update_targets(&bytes(&sim, "targets")).map(|_| ())),
        "cannot load targets before snapshot",
    );
    t.update_timestamp(&bytes(&sim, "timestamp")).unwrap();
    expect_order(
        err(t.update_root(&root).map(|_| ())),
        "cannot update root after timestamp",
    );
    t.update_snapshot(&bytes(&sim, "snapshot"), false).unwrap();
    expect_order(
        err(t.update_timestamp(&bytes(&sim, "timestamp"))),
        "cannot update timestamp after snapshot",
    );
    expect_order(
        err(t
            .update_delegated_targets(&bytes(&sim, "a"), "a", "targets")
            .map(|_| ())),
        "cannot load targets before its delegator",
    );
    t.update_targets(&bytes(&sim, "targets")).unwrap();
    expect_order(
        err(t
            .update_snapshot(&bytes(&sim, "snapshot"), false)
            .map(|_| ())),
        "cannot update snapshot after targets",
    );
    // A role its delegator does not delegate.
    let e = err(t
        .update_delegated_targets(&bytes(&sim, "a"), "a", "root")
        .map(|_| ()));
    assert!(
        matches!(&e, ClientError::Signatures(tufpi_core::verify::VerifyError::NotDelegated { role, delegator })
            if role == "a" && delegator == "root"),
        "{e:?}"
    );
    assert_msg(&e, &["a: not delegated by root"]);
    // A role snapshot does not list.
    let e = err(t
        .update_delegated_targets(&bytes(&sim, "a"), "zzz", "targets")
        .map(|_| ()));
    assert!(
        matches!(&e, ClientError::NotListed { role, parent: "snapshot" } if role == "zzz"),
        "{e:?}"
    );
}

#[test]
fn wrong_types_and_garbage() {
    let sim = Sim::new();
    let e = err(TrustedSet::new(b"\xff garbage", now()));
    assert!(
        matches!(&e, ClientError::Invalid { role, .. } if role == "root"),
        "{e:?}"
    );
    assert_msg(&e, &["root: "]);

    let e = err(TrustedSet::new(&bytes(&sim, "timestamp"), now()));
    match &e {
        ClientError::WrongType {
            role,
            expected,
            got,
        } => assert_eq!(
            (role.as_str(), *expected, *got),
            ("root", "root", "timestamp")
        ),
        other => panic!("{other:?}"),
    }
    assert_msg(&e, &["root: expected _type \"root\", got \"timestamp\""]);

    let mut t = TrustedSet::new(&sim.repo().file("metadata/1.root.json"), now()).unwrap();
    let e = err(t.update_timestamp(&bytes(&sim, "snapshot")));
    assert!(
        matches!(&e, ClientError::WrongType { role, expected: "timestamp", got: "snapshot" } if role == "timestamp"),
        "{e:?}"
    );
    t.update_timestamp(&bytes(&sim, "timestamp")).unwrap();
    // Equal version: unchanged, quietly.
    assert_eq!(
        t.update_timestamp(&bytes(&sim, "timestamp")).unwrap(),
        TimestampUpdate::Unchanged
    );
    let e = err(t
        .update_snapshot(&bytes(&sim, "targets"), false)
        .map(|_| ()));
    assert!(
        matches!(
            &e,
            ClientError::WrongType {
                expected: "snapshot",
                got: "targets",
                ..
            }
        ),
        "{e:?}"
    );
    t.update_snapshot(&bytes(&sim, "snapshot"), false).unwrap();
    let e = err(t.update_targets(&bytes(&sim, "snapshot")).map(|_| ()));
    assert!(
        matches!(
            &e,
            ClientError::WrongType {
                expected: "targets",
                got: "snapshot",
                ..
            }
        ),
        "{e:?}"
    );
    let e = err(t
        .update_delegated_targets(b"{}", "nobody", "targets")
        .map(|_| ()));
    assert!(
        matches!(&e, ClientError::Order(_) | ClientError::NotListed { .. }),
        "{e:?}"
    );
}

#[test]
fn local_snapshot_trusted_flag_skips_only_the_hash_check() {
    let sim = Sim::new();
    sim.repo().meta_lengths = true;
    sim.repo().publish_snapshot();
    let root = sim.repo().file("metadata/1.root.json");
    // The same signed snapshot, re-serialized: other bytes, same signature.
    let reserialized = tufpi_core::metadata::Metadata::from_bytes(&bytes(&sim, "snapshot"))
        .unwrap()
        .to_compact_bytes();

    let mut t = TrustedSet::new(&root, now()).unwrap();
    t.update_timestamp(&bytes(&sim, "timestamp")).unwrap();
    let e = err(t.update_snapshot(&reserialized, false).map(|_| ()));
    assert!(
        matches!(&e, ClientError::Hash { what, .. } if what == "snapshot (against timestamp)"),
        "{e:?}"
    );

    let mut t = TrustedSet::new(&root, now()).unwrap();
    t.update_timestamp(&bytes(&sim, "timestamp")).unwrap();
    t.update_snapshot(&reserialized, true).unwrap();
}
