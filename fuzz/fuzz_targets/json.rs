//! The JSON parser, the canonical encoder, the python-style writer and the member scanner on
//! arbitrary bytes. Checks: nothing panics; whatever parses is written back (python form,
//! compact and indented) as text that parses to the same value; the canonical form exists iff
//! there is no float, re-parses to the same value (when no string holds a control character:
//! securesystemslib writes those raw, so such canonical text is not JSON) and is a fixed point;
//! `scan::find` agrees with the parser on every member path of duplicate-free text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufpi_core::json::{self, scan, Value};

/// Paths probed in arbitrary text (the ones the client and proxy look up).
const PATHS: &[&[&str]] = &[
    &["signed", "version"],
    &["signed", "_type"],
    &["signed", "meta", "snapshot.json", "version"],
    &["signed"],
];

fn has_control(v: &Value) -> bool {
    let ctl = |s: &str| s.bytes().any(|b| b < 0x20);
    match v {
        Value::String(s) => ctl(s),
        Value::Array(a) => a.iter().any(has_control),
        Value::Object(m) => m.iter().any(|(k, v)| ctl(k) || has_control(v)),
        _ => false,
    }
}

/// Object-key paths from the top whose keys are written unescaped in python form.
fn paths(v: &Value, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if out.len() >= 32 || cur.len() >= 8 {
        return;
    }
    if let Value::Object(m) = v {
        for (k, child) in m.iter() {
            if !k.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
                continue;
            }
            cur.push(k.clone());
            out.push(cur.clone());
            paths(child, cur, out);
            cur.pop();
        }
    }
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fuzz_target!(|data: &[u8]| {
    let _ = scan::find_many(data, PATHS);
    let Ok(v) = json::parse(data) else {
        return;
    };
    let mut ps = Vec::new();
    paths(&v, &mut Vec::new(), &mut ps);
    for indent in [None, Some(1)] {
        let text = json::to_python_json(&v, indent);
        let back = json::parse(&text).expect("python-form output parses");
        assert_eq!(back, v, "python form round trip (indent {indent:?})");
        for p in &ps {
            let path: Vec<&str> = p.iter().map(String::as_str).collect();
            assert_eq!(
                scan::find(&text, &path).as_ref(),
                lookup(&v, p),
                "scan disagrees with parse at {path:?}"
            );
        }
    }
    match json::canonical(&v) {
        Ok(c) => {
            assert!(json::find_float(&v).is_none(), "canonical form of a float");
            if !has_control(&v) {
                let back = json::parse(&c).expect("canonical form parses");
                assert_eq!(back, v, "canonical round trip");
                assert_eq!(json::canonical(&back).unwrap(), c, "canonical fixed point");
            }
        }
        Err(_) => assert!(json::find_float(&v).is_some(), "refused without a float"),
    }
});
