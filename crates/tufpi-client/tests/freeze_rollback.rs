//! Freeze attacks (expired metadata relative to the fixed reference time) and rollback attacks
//! (versions going down), spec §5.3–5.6.

mod sim;

use sim::*;
use tufpi_client::ClientError;
use tufpi_core::metadata::MetaFile;

fn expect_expired(e: &ClientError, want_role: &str, want_version: u64) {
    match e {
        ClientError::Expired {
            role,
            version,
            now: n,
            ..
        } => {
            assert_eq!(role, want_role, "{e}");
            assert_eq!(*version, want_version, "{e}");
            assert_eq!(*n, now(), "{e}");
        }
        other => panic!("expected Expired for {want_role}, got {other:?}"),
    }
    assert_msg(
        e,
        &[
            &format!("{want_role} v{want_version} expired at 2030-05-31"),
            "update started 2030-06-01",
            "freeze",
        ],
    );
}

fn expect_rollback(e: &ClientError, want_role: &str, want_got: u64, want_trusted: u64) {
    match e {
        ClientError::Rollback { role, got, trusted } => {
            assert_eq!(role, want_role, "{e}");
            assert_eq!((*got, *trusted), (want_got, want_trusted), "{e}");
        }
        other => panic!("expected Rollback for {want_role}, got {other:?}"),
    }
    assert_msg(
        e,
        &[
            &format!("{want_role} version {want_got} < trusted {want_trusted}"),
            "rollback",
        ],
    );
}

// ----- freeze -----

#[test]
fn freeze_final_root_expired() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let v2 = {
        let mut r = sim.repo();
        r.root.expires = days(-1);
        r.bump_root()
    };
    let e = err(c.refresh(&sim));
    expect_expired(&e, "root", 2);
    // The intermediate root was verified and kept; nothing past root was fetched.
    assert_eq!(c.read("root.json").unwrap(), v2);
    assert!(!sim.fetched().iter().any(|u| u.ends_with("timestamp.json")));
    assert_eq!(c.files(), ["root.json"]);
}

#[test]
fn freeze_trusted_root_expired_without_new_root() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.root.expires = days(-1);
        r.publish_root(); // re-sign version 1
    }
    let c = Client::new(&sim);
    let e = err(c.refresh(&sim));
    expect_expired(&e, "root", 1);
    assert_eq!(sim.fetched(), [format!("{META_URL}2.root.json")]);
}

#[test]
fn freeze_timestamp_expired() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.timestamp.expires = days(-1);
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    expect_expired(&e, "timestamp", 2);
    // The expired timestamp is not persisted.
    assert_eq!(c.version("timestamp.json"), Some(1));
}

#[test]
fn freeze_same_timestamp_replayed_after_expiry() {
    let sim = Sim::new();
    let mut c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    // The repository (or an attacker) keeps serving the same timestamp; time passes.
    c.now = days(8);
    sim.clear_fetched();
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::Expired { role, version, .. } => {
            assert_eq!((role.as_str(), *version), ("timestamp", 1))
        }
        other => panic!("{other:?}"),
    }
    assert_msg(
        &e,
        &[
            "timestamp v1 expired at 2030-06-08",
            "update started 2030-06-09",
        ],
    );
}

#[test]
fn freeze_snapshot_expired() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        r.snapshot.expires = days(-1);
        r.publish_snapshot();
    }
    let e = err(c.refresh(&sim));
    expect_expired(&e, "snapshot", 2);
    assert_eq!(c.version("snapshot.json"), Some(1));
    assert_eq!(c.version("timestamp.json"), Some(2));
}

#[test]
fn freeze_targets_expired() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.md("targets").expires = days(-1);
        r.publish(&["targets"]);
    }
    let e = err(c.refresh(&sim));
    expect_expired(&e, "targets", 2);
    assert_eq!(c.read("targets.json"), None);
}

#[test]
fn freeze_delegated_role_expired() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["a/*"], false);
        r.add_target("a", "a/f.txt", b"hello");
        r.publish(&["targets", "a"]);
    }
    assert!(c.targetinfo(&sim, "a/f.txt").unwrap().is_some());
    {
        let mut r = sim.repo();
        r.md("a").expires = days(-1);
        r.publish(&["a"]);
    }
    // The top-level refresh does not touch delegated roles...
    c.refresh(&sim).unwrap();
    // ...looking the target up does.
    let e = err(c.targetinfo(&sim, "a/f.txt"));
    expect_expired(&e, "a", 2);
    assert_eq!(c.version("a.json"), Some(1));
}

// ----- rollback -----

#[test]
fn rollback_timestamp_version() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo().publish_timestamp();
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("timestamp.json"), Some(2));
    {
        let mut r = sim.repo();
        let old = r.file("metadata/1.timestamp.json");
        r.fault("metadata/timestamp.json", Fault::Replace(old));
    }
    let e = err(c.refresh(&sim));
    expect_rollback(&e, "timestamp", 1, 2);
    assert_eq!(c.version("timestamp.json"), Some(2));
}

#[test]
fn rollback_snapshot_version_in_timestamp() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo().publish_snapshot();
    c.refresh(&sim).unwrap();
    {
        // A validly signed timestamp v3 pointing back at snapshot v1.
        let mut r = sim.repo();
        r.timestamp_body().snapshot_meta = MetaFile::new(1);
        r.timestamp.version = 3;
        r.store_role("timestamp");
    }
    let e = err(c.refresh(&sim));
    expect_rollback(&e, "timestamp v3: snapshot", 1, 2);
    assert_eq!(c.version("timestamp.json"), Some(2));
}

#[test]
fn rollback_targets_version_in_snapshot() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo().publish(&["targets"]);
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("targets.json"), Some(2));
    {
        let mut r = sim.repo();
        r.snapshot_body()
            .meta
            .insert("targets.json".into(), MetaFile::new(1));
        r.snapshot.version += 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    expect_rollback(&e, "snapshot v3: targets.json", 1, 2);
    assert_eq!(c.version("snapshot.json"), Some(2));
}

fn with_delegated_v2() -> (Sim, Client) {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["a/*"], false);
        r.add_target("a", "a/f.txt", b"v1");
        r.publish(&["targets", "a"]);
        r.add_target("a", "a/f.txt", b"v2");
        r.publish(&["a"]);
    }
    c.refresh(&sim).unwrap();
    (sim, c)
}

#[test]
fn rollback_delegated_version_in_snapshot() {
    let (sim, c) = with_delegated_v2();
    let snap = c.version("snapshot.json").unwrap();
    {
        let mut r = sim.repo();
        r.snapshot_body()
            .meta
            .insert("a.json".into(), MetaFile::new(1));
        r.snapshot.version += 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    expect_rollback(&e, &format!("snapshot v{}: a.json", snap + 1), 1, 2);
}

#[test]
fn rollback_snapshot_entry_vanishes() {
    let (sim, c) = with_delegated_v2();
    let snap = c.version("snapshot.json").unwrap();
    {
        let mut r = sim.repo();
        r.snapshot_body().meta.remove("a.json");
        r.snapshot.version += 1;
        r.store_role("snapshot");
        r.publish_timestamp();
    }
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::MissingMeta {
            version,
            entry,
            trusted,
        } => {
            assert_eq!(
                (*version, entry.as_str(), *trusted),
                (snap + 1, "a.json", 2)
            );
        }
        other => panic!("expected MissingMeta, got {other:?}"),
    }
    assert_msg(
        &e,
        &[
            &format!("snapshot v{}", snap + 1),
            "a.json",
            "version 2",
            "missing",
        ],
    );
    assert_eq!(c.version("snapshot.json"), Some(snap));
}

#[test]
fn equal_timestamp_version_is_no_update() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    let before: Vec<_> = c.files().iter().map(|f| (f.clone(), c.read(f))).collect();
    sim.clear_fetched();
    c.refresh(&sim).unwrap();
    // Only the next root and the timestamp are asked for; snapshot and targets come from
    // the local cache.
    assert_eq!(
        sim.fetched(),
        [
            format!("{META_URL}2.root.json"),
            format!("{META_URL}timestamp.json")
        ]
    );
    let after: Vec<_> = c.files().iter().map(|f| (f.clone(), c.read(f))).collect();
    assert_eq!(before, after);
}

#[test]
fn rollback_refused_even_after_equal_versions() {
    // timestamp v2 trusted; the repository goes back to v1 and later forward to v2 again.
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo().publish_timestamp();
    c.refresh(&sim).unwrap();
    let v1 = sim.repo().file("metadata/1.timestamp.json");
    sim.repo()
        .fault_times("metadata/timestamp.json", Fault::Replace(v1), 1);
    expect_rollback(&err(c.refresh(&sim)), "timestamp", 1, 2);
    c.refresh(&sim).unwrap();
    assert_eq!(c.version("timestamp.json"), Some(2));
}

#[test]
fn refresh_twice_on_one_updater() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    let mut u = c.updater(&sim);
    u.refresh().unwrap();
    sim.repo().publish(&["targets"]);
    u.refresh().unwrap();
    assert_eq!(u.trusted().targets("targets").unwrap().version, 2);
    assert_eq!(c.version("timestamp.json"), Some(2));
}

#[test]
fn expiry_is_inclusive_at_the_reference_time() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    {
        let mut r = sim.repo();
        r.snapshot.expires = now();
        r.publish_snapshot();
    }
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::Expired { role, version: 2, expires, .. } if role == "snapshot" && *expires == now()),
        "{e:?}"
    );
    assert_msg(&e, &["snapshot v2 expired at 2030-06-01 00:00:00"]);
}

#[test]
fn expired_local_timestamp_still_guards_against_rollback() {
    let sim = Sim::new();
    let mut c = Client::new(&sim);
    sim.repo().publish_timestamp();
    c.refresh(&sim).unwrap();
    // Later: the trusted timestamp v2 has expired; the server offers v1 (rolled back).
    c.now = days(8);
    {
        let mut r = sim.repo();
        r.timestamp.version = 1;
        r.timestamp.expires = days(30);
        r.store_role("timestamp");
    }
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::Rollback { role, got, trusted } => {
            assert_eq!((role.as_str(), *got, *trusted), ("timestamp", 1, 2))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_local_timestamp_still_guards_snapshot_version() {
    let sim = Sim::new();
    let mut c = Client::new(&sim);
    sim.repo().publish_snapshot(); // snapshot v2, timestamp v2
    c.refresh(&sim).unwrap();
    c.now = days(8);
    {
        let mut r = sim.repo();
        r.timestamp_body().snapshot_meta = MetaFile::new(1);
        r.timestamp.version = 3;
        r.timestamp.expires = days(30);
        r.store_role("timestamp");
    }
    let e = err(c.refresh(&sim));
    expect_rollback_any_date(&e, "timestamp v3: snapshot", 1, 2);
}

fn expect_rollback_any_date(e: &ClientError, want_role: &str, want_got: u64, want_trusted: u64) {
    match e {
        ClientError::Rollback { role, got, trusted } => {
            assert_eq!(
                (role.as_str(), *got, *trusted),
                (want_role, want_got, want_trusted)
            )
        }
        other => panic!("{other:?}"),
    }
    assert_msg(
        e,
        &[
            want_role,
            &format!("version {want_got} < trusted {want_trusted}"),
        ],
    );
}
