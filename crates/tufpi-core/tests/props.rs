//! Property tests: parse → re-sign → serialize keeps unknown fields and valid signatures;
//! arbitrary or mutated bytes never panic the parser or the verifier.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::json::{self, Int, Map, Value};
use tufpi_core::metadata::{Key, Metadata};
use tufpi_core::verify::{verify_role, RoleKeys};

fn signer() -> &'static (PrivateKey, Key, String) {
    static S: OnceLock<(PrivateKey, Key, String)> = OnceLock::new();
    S.get_or_init(|| {
        let pk = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let key = Key::from_private(&pk);
        let id = key.compute_keyid();
        (pk, key, id)
    })
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        "\\PC{0,12}",
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\u{0}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('\n'),
                Just('é'),
                Just('\u{301}'),
                Just('\u{ffff}'),
                Just('😀'),
                any::<char>()
            ],
            0..10
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn int_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|i| Value::Int(Int::parse(&i.to_string()).unwrap())),
        "-?[1-9][0-9]{19,40}".prop_map(|s| Value::Int(Int::parse(&s).unwrap())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        int_value(),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((nasty_string(), inner), 0..4)
                .prop_map(|v| Value::Object(Map::from_entries(v))),
        ]
    })
}

/// Unknown fields: names that cannot collide with a known field.
fn unknown_fields() -> impl Strategy<Value = Map> {
    prop::collection::vec(
        (nasty_string().prop_map(|s| format!("x-{s}")), json_value()),
        0..3,
    )
    .prop_map(Map::from_entries)
}

fn with(map: &Map, extra: &[(&str, Value)]) -> Value {
    let mut m = map.clone();
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

prop_compose! {
    fn targets_doc()(
        env in unknown_fields(),
        signed_x in unknown_fields(),
        sig_x in unknown_fields(),
        targets in prop::collection::btree_map(nasty_string(), (any::<u32>(), unknown_fields(), prop::option::of(json_value())), 0..5),
        version in 1u64..u64::MAX,
    ) -> Value {
        let mut tmap = Map::new();
        for (path, (len, tx, custom)) in targets {
            let mut hashes = Map::new();
            hashes.insert("sha256".into(), Value::String("ab".repeat(32)));
            let mut fields = vec![("length", Value::from(u64::from(len))), ("hashes", Value::Object(hashes))];
            if let Some(c) = custom {
                fields.push(("custom", c));
            }
            tmap.insert(path, with(&tx, &fields));
        }
        let signed = with(&signed_x, &[
            ("_type", "targets".into()),
            ("spec_version", "1.0.31".into()),
            ("version", version.into()),
            ("expires", "2031-02-03T04:05:06Z".into()),
            ("targets", Value::Object(tmap)),
        ]);
        let sig = with(&sig_x, &[("keyid", "unknown-key".into()), ("sig", "00".into())]);
        with(&env, &[("signed", signed), ("signatures", Value::Array(vec![sig]))])
    }
}

fn verify(md: &Metadata) -> Result<(), String> {
    let (_, key, id) = signer();
    let keys: BTreeMap<String, Key> = [(id.clone(), key.clone())].into();
    let ids = [id.clone()];
    verify_role(
        md,
        "targets",
        RoleKeys {
            keyids: &ids,
            threshold: 1,
            keys: &keys,
        },
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn resign_keeps_unknown_fields_and_verifies(doc in targets_doc(), indent in prop::bool::ANY) {
        let bytes = json::to_python_json(&doc, if indent { Some(1) } else { None });
        let mut md = Metadata::from_bytes(&bytes).unwrap();
        // Nothing lost by parsing: the model gives back the document.
        prop_assert_eq!(&md.to_value(), &doc);
        let (pk, _, id) = signer();
        md.sign(pk, id).unwrap();
        let written = md.to_bytes();
        let back = Metadata::from_bytes(&written).unwrap();
        // The compact form always equals python's compact serialization.
        prop_assert_eq!(md.to_compact_bytes(), json::to_python_json(&md.to_value(), None));
        prop_assert_eq!(&back, &md);
        prop_assert!(verify(&back).is_ok());
        // The unknown signature survives next to ours.
        prop_assert!(back.signatures.iter().any(|s| s.keyid == "unknown-key"));
        // Canonical bytes are those of the document as parsed.
        let parsed = json::parse(&written).unwrap();
        prop_assert_eq!(json::canonical(parsed.get("signed").unwrap()).unwrap(), back.signed.canonical().unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metadata::from_bytes(&bytes);
        let _ = json::parse(&bytes);
    }

    #[test]
    fn mutated_metadata_never_panics(doc in targets_doc(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut md = Metadata::from_value(doc).unwrap();
        let (pk, _, id) = signer();
        md.sign(pk, id).unwrap();
        let mut bytes = md.to_bytes();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(m) = Metadata::from_bytes(&bytes) {
            let _ = verify(&m);
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = Metadata::from_bytes(&bytes);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(json::parse(deep.as_bytes()).is_err());
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    assert!(Metadata::from_bytes(deep_obj.as_bytes()).is_err());
}
