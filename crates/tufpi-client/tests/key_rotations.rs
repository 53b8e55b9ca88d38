//! Key rotation matrices in the style of python-tuf's `test_updater_key_rotations.py`:
//! a root chain where each version names its root keys, threshold and signers, and
//! rotations of the timestamp, snapshot and targets keys.

mod sim;

use sim::*;
use tufpi_client::ClientError;
use tufpi_core::verify::VerifyError;

/// One root version: root keys (pool indexes), threshold, and who signs it.
struct V(&'static [usize], u64, &'static [usize]);

/// What the update ends with: the final trusted root version, and the threshold failure of
/// the next version if the chain breaks there (valid signatures, threshold).
fn root_chain(name: &str, chain: &[V], broken: Option<(u64, u64)>) {
    let pool: Vec<Signer> = (0..10)
        .map(|i| {
            if i % 3 == 2 {
                Signer::ecdsa()
            } else {
                Signer::ed25519()
            }
        })
        .collect();
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        for (i, V(keys, threshold, sigs)) in chain.iter().enumerate() {
            let keys: Vec<Signer> = keys.iter().map(|k| pool[*k].clone()).collect();
            r.set_role_keys("root", &keys, *threshold);
            r.root.version = i as u64 + 1;
            let signers: Vec<Signer> = sigs.iter().map(|k| pool[*k].clone()).collect();
            let data = r.sign_with("root", &signers);
            r.store("root", i as u64 + 1, data);
        }
    }
    let c = Client::new(&sim);
    let result = c.refresh(&sim);
    let last_good = match broken {
        None => {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            chain.len() as u64
        }
        Some((want_valid, want_threshold)) => {
            let e = err(result);
            match &e {
                ClientError::Signatures(VerifyError::Threshold {
                    role,
                    valid,
                    threshold,
                    ..
                }) => {
                    assert_eq!(role, "root", "{name}");
                    assert_eq!(
                        (*valid, *threshold),
                        (want_valid, want_threshold),
                        "{name}: {e}"
                    );
                }
                other => panic!("{name}: expected a root threshold failure, got {other:?}"),
            }
            assert_msg(
                &e,
                &[&format!(
                    "root: signature threshold not met: {want_valid}/{want_threshold}"
                )],
            );
            chain.len() as u64 - 1
        }
    };
    assert_eq!(c.version("root.json"), Some(last_good), "{name}");
    assert_eq!(
        c.read("root.json").unwrap(),
        sim.repo().file(&format!("metadata/{last_good}.root.json")),
        "{name}"
    );
}

#[test]
fn one_of_one_rotations() {
    root_chain(
        "1-of-1 key rotation",
        &[V(&[1], 1, &[1]), V(&[2], 1, &[2, 1]), V(&[2], 1, &[2])],
        None,
    );
    root_chain(
        "1-of-1 key rotation, unused signatures",
        &[
            V(&[1], 1, &[3, 1, 4]),
            V(&[2], 1, &[3, 2, 1, 4]),
            V(&[2], 1, &[2]),
        ],
        None,
    );
    root_chain(
        "1-of-1 rotation fails: not signed with old key",
        &[V(&[1], 1, &[1]), V(&[2], 1, &[2, 3, 4])],
        Some((0, 1)),
    );
    root_chain(
        "1-of-1 rotation fails: not signed with new key",
        &[V(&[1], 1, &[1]), V(&[2], 1, &[1, 3, 4])],
        Some((0, 1)),
    );
}

#[test]
fn three_of_five_rotations() {
    const FIVE: &[usize] = &[0, 1, 2, 3, 4];
    const ROTATED: &[usize] = &[0, 1, 3, 4, 5];
    root_chain(
        "3-of-5, different key combinations",
        &[
            V(FIVE, 3, &[0, 2, 4]),
            V(FIVE, 3, &[0, 4, 1]),
            V(FIVE, 3, &[0, 1, 3]),
            V(FIVE, 3, &[0, 1, 3]),
        ],
        None,
    );
    root_chain(
        "3-of-5, one key rotated",
        &[V(FIVE, 3, &[0, 2, 4]), V(ROTATED, 3, &[0, 4, 1])],
        None,
    );
    root_chain(
        "3-of-5, one key rotated: not signed by 3 new keys",
        &[V(FIVE, 3, &[0, 2, 4]), V(ROTATED, 3, &[0, 2, 4])],
        Some((2, 3)),
    );
    root_chain(
        "3-of-5, one key rotated: not signed by 3 old keys",
        &[V(FIVE, 3, &[0, 2, 4]), V(ROTATED, 3, &[0, 4, 5])],
        Some((2, 3)),
    );
    root_chain(
        "3-of-5, one key rotated, intermediate step",
        &[
            V(FIVE, 3, &[0, 2, 4]),
            V(ROTATED, 3, &[0, 2, 4, 5]),
            V(ROTATED, 3, &[0, 4, 5]),
        ],
        None,
    );
    root_chain(
        "3-of-5, all keys rotated, intermediate step",
        &[
            V(FIVE, 3, &[0, 2, 4]),
            V(&[5, 6, 7, 8, 9], 3, &[0, 2, 4, 5, 6, 7]),
            V(&[5, 6, 7, 8, 9], 3, &[5, 6, 7]),
        ],
        None,
    );
}

#[test]
fn threshold_changes() {
    root_chain(
        "1-of-3 to 2-of-3",
        &[V(&[1, 2, 3], 1, &[1]), V(&[1, 2, 3], 2, &[1, 2])],
        None,
    );
    root_chain(
        "1-of-3 to 2-of-3 fails: new threshold not reached",
        &[V(&[1, 2, 3], 1, &[1]), V(&[1, 2, 3], 2, &[2])],
        Some((1, 2)),
    );
    root_chain(
        "2-of-3 to 1-of-3",
        &[
            V(&[1, 2, 3], 2, &[1, 2]),
            V(&[1, 2, 3], 1, &[1, 2]),
            V(&[1, 2, 3], 1, &[1]),
        ],
        None,
    );
    root_chain(
        "2-of-3 to 1-of-3 fails: old threshold not reached",
        &[V(&[1, 2, 3], 2, &[1, 2]), V(&[1, 2, 3], 1, &[1])],
        Some((1, 2)),
    );
    root_chain(
        "1-of-2 to 2-of-2",
        &[V(&[1], 1, &[1]), V(&[1, 2], 2, &[1, 2])],
        None,
    );
    root_chain(
        "removed key no longer counts",
        &[
            V(&[1, 2], 2, &[1, 2]),
            V(&[2, 3], 2, &[1, 2, 3]),
            V(&[3, 4], 1, &[1, 2, 3]),
        ],
        None,
    );
    root_chain(
        "removed key no longer counts: fails",
        &[
            V(&[1, 2], 2, &[1, 2]),
            V(&[2, 3], 2, &[1, 2, 3]),
            V(&[2, 4], 1, &[1, 4]),
        ],
        Some((0, 2)),
    );
}

/// Root v2 gives `role` the keys `keys` (pool indexes) and `threshold`; the role's new
/// version is signed by `sigs`.
fn role_rotation(role: &str, keys: &[usize], threshold: u64, sigs: &[usize], ok: bool) {
    let pool: Vec<Signer> = (0..5).map(|_| Signer::ed25519()).collect();
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    {
        let mut r = sim.repo();
        let k: Vec<Signer> = keys.iter().map(|i| pool[*i].clone()).collect();
        r.set_role_keys(role, &k, threshold);
        r.bump_root();
        r.signers
            .insert(role.into(), sigs.iter().map(|i| pool[*i].clone()).collect());
        r.publish(&["targets"]);
    }
    let result = c.refresh(&sim);
    let case = format!("{role}: keys {keys:?} threshold {threshold} signed by {sigs:?}");
    if ok {
        result.unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = sim.repo().latest(role);
        assert_eq!(c.read(&format!("{role}.json")).unwrap(), want, "{case}");
    } else {
        let e = err(result);
        let valid = sigs.iter().filter(|s| keys.contains(s)).count() as u64;
        match &e {
            ClientError::Signatures(VerifyError::Threshold {
                role: r,
                valid: v,
                threshold: t,
                ..
            }) => assert_eq!((r.as_str(), *v, *t), (role, valid, threshold), "{case}"),
            other => panic!("{case}: expected a threshold failure, got {other:?}"),
        }
        assert_msg(
            &e,
            &[&format!(
                "{role}: signature threshold not met: {valid}/{threshold}"
            )],
        );
    }
}

#[test]
fn non_root_rotations() {
    for role in ["timestamp", "snapshot", "targets"] {
        role_rotation(role, &[0], 1, &[0], true);
        role_rotation(role, &[0], 1, &[1, 0, 2], true);
        role_rotation(role, &[0], 1, &[1, 2], false);
        role_rotation(role, &[0, 1, 2], 2, &[2, 0], true);
        role_rotation(role, &[0, 1, 2], 2, &[1, 3, 4], false);
        role_rotation(role, &[0, 1, 2, 3, 4], 3, &[0, 2, 4], true);
        role_rotation(role, &[0, 1, 2, 3, 4], 3, &[0, 4], false);
    }
}
