use super::*;
use crate::crypto::Scheme;
use crate::verify::{role_keys, verify_role, VerifyError};

const ROOT: &str = r#"{
 "signatures": [],
 "signed": {
  "_type": "root",
  "spec_version": "1.0.31",
  "version": 1,
  "expires": "2030-01-01T00:00:00Z",
  "consistent_snapshot": true,
  "x-signed": {"nested": [1, {}]},
  "keys": {},
  "roles": {
   "root": {"keyids": [], "threshold": 1, "x-role": true},
   "targets": {"keyids": [], "threshold": 1},
   "snapshot": {"keyids": [], "threshold": 1},
   "timestamp": {"keyids": [], "threshold": 1}
  }
 },
 "x-envelope": "kept"
}"#;

fn root_with_key(threshold: u64) -> (Metadata, PrivateKey, String) {
    let mut md = Metadata::from_bytes(ROOT.as_bytes()).unwrap();
    let pk = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let key = Key::from_private(&pk);
    let keyid = key.compute_keyid();
    if let Body::Root(r) = &mut md.signed.body {
        r.keys.insert(keyid.clone(), key);
        for role in r.roles.values_mut() {
            role.keyids.push(keyid.clone());
            role.threshold = threshold;
        }
    }
    (md, pk, keyid)
}

#[test]
fn unknown_fields_survive_round_trip() {
    let md = Metadata::from_bytes(ROOT.as_bytes()).unwrap();
    assert_eq!(
        md.unrecognized.get("x-envelope").and_then(Value::as_str),
        Some("kept")
    );
    assert!(md.signed.unrecognized.contains_key("x-signed"));
    assert!(md.as_root().unwrap().roles["root"]
        .unrecognized
        .contains_key("x-role"));
    let again = Metadata::from_bytes(&md.to_bytes()).unwrap();
    assert_eq!(again, md);
    assert_eq!(Metadata::from_bytes(&md.to_compact_bytes()).unwrap(), md);
    // The typed model gives back exactly the parsed `signed` value.
    let parsed = json::parse(ROOT.as_bytes()).unwrap();
    assert_eq!(md.signed.to_value(), parsed.get("signed").cloned().unwrap());
}

#[test]
fn sign_then_verify_and_refusals() {
    let (mut md, pk, keyid) = root_with_key(1);
    md.sign(&pk, &keyid).unwrap();
    let trusted = md.clone();
    let ok = verify_role(&md, "root", role_keys(&trusted.signed, "root").unwrap()).unwrap();
    assert_eq!(ok.valid_keyids, vec![keyid.clone()]);

    // Modified signed field.
    let mut bad = md.clone();
    bad.signed.version = 2;
    let err = verify_role(&bad, "root", role_keys(&trusted.signed, "root").unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Threshold {
                valid: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );

    // The same keyid twice counts once.
    let (mut md2, pk2, keyid2) = root_with_key(2);
    md2.sign(&pk2, &keyid2).unwrap();
    let dup = md2.signatures[0].clone();
    md2.signatures.push(dup);
    let err = verify_role(&md2, "root", role_keys(&md2.signed, "root").unwrap()).unwrap_err();
    assert!(err.to_string().contains("1/2"), "{err}");
    assert!(err.to_string().contains("counted once"), "{err}");
}

#[test]
fn signature_by_unassigned_key_is_ignored() {
    let (mut md, _pk, _keyid) = root_with_key(1);
    let other = PrivateKey::generate(Scheme::EcdsaP256).unwrap();
    let okey = Key::from_private(&other);
    let oid = okey.compute_keyid();
    if let Body::Root(r) = &mut md.signed.body {
        r.keys.insert(oid.clone(), okey);
    }
    md.sign(&other, &oid).unwrap();
    let err = verify_role(&md, "root", role_keys(&md.signed, "root").unwrap()).unwrap_err();
    assert!(err.to_string().contains("not a key of role root"), "{err}");
}

#[test]
fn spec_version_and_type_checks() {
    for (from, to, want) in [
        ("\"1.0.31\"", "\"2.0\"", "unsupported spec_version"),
        ("\"1.0.31\"", "\"1.x\"", "not a version"),
        ("\"1.0.31\"", "\"1\"", "not a version"),
        ("\"version\": 1", "\"version\": 0", "version must be > 0"),
        ("\"version\": 1", "\"version\": 1.0", "float"),
        ("\"version\": 1", "\"version\": true", "integer"),
        (
            "\"threshold\": 1, \"x-role\"",
            "\"threshold\": 0, \"x-role\"",
            "at least 1",
        ),
        ("2030-01-01T00:00:00Z", "2030-01-01 00:00:00", "YYYY-MM-DD"),
        (
            "\"_type\": \"root\"",
            "\"_type\": \"mirrors\"",
            "unknown metadata type",
        ),
        (
            "\"timestamp\": {\"keyids\": [], \"threshold\": 1}",
            "\"mirror\": {\"keyids\": [], \"threshold\": 1}",
            "roles must be exactly",
        ),
        (
            "\"keyids\": [], \"threshold\": 1, \"x-role\"",
            "\"keyids\": [\"a\", \"a\"], \"threshold\": 1, \"x-role\"",
            "duplicate keyid",
        ),
    ] {
        let text = ROOT.replacen(from, to, 1);
        assert_ne!(text, ROOT, "{from}");
        let err = Metadata::from_bytes(text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{to}: {err}");
    }
    assert!(Metadata::from_bytes(ROOT.replacen("1.0.31", "1.99", 1).as_bytes()).is_ok());
}

const TARGETS: &str = r#"{"signatures": [], "signed": {
  "_type": "targets", "spec_version": "1.0", "version": 3, "expires": "2030-01-01T00:00:00Z",
  "targets": {"caf\u00e9.tgz": {"length": 5, "hashes": {"sha256": "00"}, "custom": {"q": "\"\\\u0001", "big": 123456789012345678901234567890}}},
  "delegations": {"keys": {}, "roles": [
    {"name": "a", "keyids": [], "threshold": 1, "terminating": false, "paths": ["files/*.tgz", "x/*/y"]},
    {"name": "b", "keyids": [], "threshold": 1, "terminating": true, "path_hash_prefixes": ["8", "3"]},
    {"name": "c", "keyids": [], "threshold": 1, "terminating": false, "paths": ["*"]}
  ]}}}"#;

#[test]
fn targets_and_delegation_matching() {
    let md = Metadata::from_bytes(TARGETS.as_bytes()).unwrap();
    let t = md.as_targets().unwrap();
    let entry = &t.targets["café.tgz"];
    assert_eq!(
        entry
            .custom()
            .and_then(|c| c.get("big"))
            .map(|b| b.type_name()),
        Some("integer")
    );
    let d = t.delegations.as_ref().unwrap();
    let names = |p: &str| {
        d.roles_for_target(p)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("files/a.tgz").first().map(String::as_str), Some("a"));
    assert!(!names("files/sub/a.tgz").contains(&"a".to_string()));
    assert!(names("x/anything/y").contains(&"a".to_string()));
    assert!(names("top").contains(&"c".to_string()));
    // sha256("files/a.tgz") starts with some hex digit; role b matches iff it is 8 or 3.
    let h = crate::pathmatch::path_hash_hex("files/a.tgz");
    assert_eq!(
        names("files/a.tgz").contains(&"b".to_string()),
        h.starts_with('8') || h.starts_with('3')
    );
    assert!(d.role_keys("b").is_some() && d.role_keys("zzz").is_none());
    assert_eq!(Metadata::from_bytes(&md.to_bytes()).unwrap(), md);
}

#[test]
fn delegation_validation() {
    let both = TARGETS.replacen(
        "\"paths\": [\"*\"]",
        "\"paths\": [\"*\"], \"path_hash_prefixes\": []",
        1,
    );
    assert!(Metadata::from_bytes(both.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("exactly one"));
    let top = TARGETS.replacen("\"name\": \"c\"", "\"name\": \"snapshot\"", 1);
    assert!(Metadata::from_bytes(top.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("top-level"));
    let dup = TARGETS.replacen("\"name\": \"c\"", "\"name\": \"a\"", 1);
    assert!(Metadata::from_bytes(dup.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("duplicate role"));
    let noterm = TARGETS.replacen("\"terminating\": true, ", "", 1);
    assert!(Metadata::from_bytes(noterm.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("terminating"));
}

fn succinct(bits: u32) -> SuccinctRoles {
    SuccinctRoles {
        keyids: vec![],
        threshold: 1,
        bit_length: bits,
        name_prefix: "bin".into(),
        unrecognized: Map::new(),
    }
}

#[test]
fn succinct_roles_like_python_tuf() {
    let s = succinct(14);
    assert_eq!(s.number_of_bins(), 16384);
    assert_eq!(s.suffix_len(), 4);
    assert_eq!(s.role_name(0), "bin-0000");
    assert_eq!(s.role_name(16383), "bin-3fff");
    assert_eq!(s.index_of("bin-3fff"), Some(16383));
    assert_eq!(s.index_of("bin-4000"), None);
    assert_eq!(s.index_of("bin-3ff"), None);
    assert_eq!(s.index_of("bins-0000"), None);
    // Values computed by python-tuf 7.0.1 SuccinctRoles.get_role_for_target.
    assert_eq!(s.role_for_target("packages/a/b.whl"), "bin-11cb");
    assert_eq!(succinct(1).role_for_target("packages/a/b.whl"), "bin-0");
    assert_eq!(succinct(5).role_name(3), "bin-03");
    assert_eq!(succinct(32).suffix_len(), 8);
    assert_eq!(
        succinct(8).role_for_target("simple/requests/vnd.pypi.simple.v1.html"),
        "bin-8e"
    );
    assert_eq!(s.role_names().count(), 16384);
}
