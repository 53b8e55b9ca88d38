//! The client's trusted-metadata state machine (`TrustedSet`, spec §5) from the fixed fixture
//! root, fed a sequence of files. The input is chunks separated by `\n--8<--\n`, each a header
//! line then the file: `root`, `timestamp`, `snapshot [trusted]`, `targets` or
//! `delegated ROLE DELEGATOR`, and a trailing `sign` word re-signs the (mutated) file with the
//! fixture keys first, so that the checks after the signature check (versions, rollback,
//! hashes, expiry, order) are fuzzed too. After every accepted update the spec's invariants
//! must hold: root versions go up by one, timestamp and snapshot-in-timestamp versions never
//! go down, the snapshot has the version timestamp names, a targets role has the version
//! snapshot names, nothing accepted has expired.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufpi_client::{TimestampUpdate, TrustedSet};
use tufpi_core::metadata::{Body, Metadata};
use tufpi_fuzz::{now, resign, ROOT_V1};

const SEP: &[u8] = b"\n--8<--\n";

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

fn snapshot_version_in_timestamp(t: &TrustedSet) -> Option<u64> {
    match &t.timestamp()?.body {
        Body::Timestamp(ts) => Some(ts.snapshot_meta.version),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut t = TrustedSet::new(ROOT_V1, now()).expect("fixture root");
    for chunk in split(data, SEP).into_iter().take(16) {
        let (head, body) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], &chunk[i + 1..]),
            None => (chunk, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let words: Vec<&str> = head.split_whitespace().collect();
        let Some((&op, args)) = words.split_first() else {
            continue;
        };
        let sign = args.last() == Some(&"sign");
        let args = if sign { &args[..args.len() - 1] } else { args };
        let (role, delegator) = match (op, args) {
            ("delegated", [r, d, ..]) => (r.to_string(), d.to_string()),
            ("targets", _) => ("targets".to_string(), "root".to_string()),
            (other, _) => (other.to_string(), String::new()),
        };
        let resigned;
        let body: &[u8] = if sign {
            match Metadata::from_bytes(body) {
                Ok(mut md) => {
                    if resign(&mut md, &role) {
                        resigned = md.to_bytes();
                        &resigned
                    } else {
                        body
                    }
                }
                Err(_) => body,
            }
        } else {
            body
        };

        let root_before = t.root_signed().version;
        let ts_before = t.timestamp().map(|s| s.version);
        let snap_in_ts_before = snapshot_version_in_timestamp(&t);
        match op {
            "root" => {
                if t.update_root(body).is_ok() {
                    assert_eq!(t.root_signed().version, root_before + 1);
                }
            }
            "timestamp" => match t.update_timestamp(body) {
                Ok(TimestampUpdate::Updated) => {
                    let ts = t.timestamp().unwrap();
                    assert!(!ts.is_expired(now()), "expired timestamp accepted");
                    assert!(t.check_final_root().is_ok(), "timestamp over an expired root");
                    if let Some(before) = ts_before {
                        assert!(ts.version > before, "timestamp version went down");
                        assert!(snapshot_version_in_timestamp(&t) >= snap_in_ts_before);
                    }
                }
                Ok(TimestampUpdate::Unchanged) => {
                    assert_eq!(t.timestamp().map(|s| s.version), ts_before);
                }
                Err(_) => {}
            },
            "snapshot" => {
                let trusted = args.first() == Some(&"trusted");
                if t.update_snapshot(body, trusted).is_ok() {
                    let snap = t.snapshot().unwrap();
                    assert!(!snap.is_expired(now()), "expired snapshot accepted");
                    assert_eq!(Some(snap.version), snapshot_version_in_timestamp(&t));
                }
            }
            "targets" | "delegated" => {
                if t.update_delegated_targets(body, &role, &delegator).is_ok() {
                    let s = t.targets(&role).unwrap();
                    assert!(!s.is_expired(now()), "expired {role} accepted");
                    assert!(t.contains(&role, &delegator));
                    assert_eq!(s.version, t.snapshot_entry(&role).unwrap().version);
                    assert!(matches!(s.body, Body::Targets(_)));
                }
            }
            _ => {}
        }
    }
});
