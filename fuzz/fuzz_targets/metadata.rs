//! Metadata parsing and signature/threshold verification on arbitrary bytes, whatever role
//! `_type` names. Checks: nothing panics; `from_bytes` and `from_bytes_with_canonical` agree;
//! the canonical bytes rebuilt from the typed model equal those computed from the raw JSON
//! (signatures are made over one and checked over the other); written files (indented and
//! compact) parse back to the same metadata. Then verifies the file as the fixed fixture root
//! (or the fixture targets roles) would, verifies the file against itself when it is a root,
//! verifies the fixture delegated roles against it when it delegates, and resolves a few
//! target paths through its delegations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufpi_core::metadata::{Body, Metadata, TOP_LEVEL_ROLES};
use tufpi_core::verify::{role_keys, verify_bytes};
use tufpi_fuzz::{delegators, root_signed, BINS, LEGACY};

const PATHS: [&str; 4] = [
    "simple/demo/vnd.pypi.simple.v1.json",
    "packages/ab/cd/ef/demo-1.0.tar.gz",
    "legacy/old-1.0.tar.gz",
    "",
];

fuzz_target!(|data: &[u8]| {
    let plain = Metadata::from_bytes(data);
    let Ok((md, canonical)) = Metadata::from_bytes_with_canonical(data) else {
        assert!(plain.is_err(), "only from_bytes accepted it");
        return;
    };
    assert_eq!(plain.expect("from_bytes refused it"), md);
    assert_eq!(
        md.signed.canonical().expect("typed canonical"),
        canonical,
        "typed and raw canonical forms differ"
    );
    for bytes in [md.to_bytes(), md.to_compact_bytes()] {
        let back = Metadata::from_bytes(&bytes).expect("written metadata parses");
        assert_eq!(back, md, "write/parse round trip");
    }

    // As the fixed trusted root (top-level roles) or a fixture delegator would verify it.
    let role = md.signed.role_type();
    if let Ok(rk) = role_keys(root_signed(), role) {
        let _ = verify_bytes(&canonical, &md.signatures, role, rk);
    }
    for (name, delegator) in delegators() {
        for r in ["bins", "legacy", "bin-0", "bin-7", name] {
            if let Ok(rk) = role_keys(delegator, r) {
                let _ = verify_bytes(&canonical, &md.signatures, r, rk);
            }
        }
    }
    match &md.signed.body {
        // A root verifies itself (the trust anchor) and names the keys of every top-level role.
        Body::Root(_) => {
            for r in TOP_LEVEL_ROLES {
                if let Ok(rk) = role_keys(&md.signed, r) {
                    let _ = verify_bytes(&canonical, &md.signatures, r, rk);
                }
            }
        }
        Body::Targets(t) => {
            if let Some(d) = &t.delegations {
                for (fixture, name) in [(BINS, "bins"), (LEGACY, "legacy")] {
                    let (f, fc) = Metadata::from_bytes_with_canonical(fixture).unwrap();
                    if let Some(rk) = d.role_keys(name) {
                        let _ = verify_bytes(&fc, &f.signatures, name, rk);
                    }
                }
                for p in PATHS {
                    for (r, _) in d.roles_for_target(p).into_iter().take(8) {
                        if let Some(rk) = d.role_keys(&r) {
                            let _ = verify_bytes(&canonical, &md.signatures, &r, rk);
                        }
                    }
                }
                if let Some(s) = &d.succinct_roles {
                    for p in PATHS {
                        let name = s.role_for_target(p);
                        assert_eq!(s.index_of(&name), Some(s.bin_for_target(p)));
                        assert!(s.bin_for_target(p) < s.number_of_bins());
                    }
                    let _ = s.role_names().take(4).count();
                }
            }
            for (path, tf) in t.targets.iter().take(4) {
                let _ = tf.custom();
                let _ = tufpi_core::hashes::verify_length_and_hashes(
                    path.as_bytes(),
                    Some(tf.length),
                    Some(&tf.hashes),
                );
            }
        }
        Body::Snapshot(_) | Body::Timestamp(_) => {}
    }
    let _ = md.signed.is_expired(tufpi_fuzz::now());
});
