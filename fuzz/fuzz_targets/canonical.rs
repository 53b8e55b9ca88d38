//! The canonical encoder and the python-style writer on structured values built from the
//! input (any strings, huge integers, duplicate keys, deep nesting). Checks against an
//! independent reference encoder of securesystemslib's `encode_canonical` (keys in code-point
//! order, only `"` and `\` escaped, floats refused), and that every written form parses back.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tufpi_core::json::{self, Int, Map, Value};

fn int(u: &mut Unstructured) -> Result<Int> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Int::from(u.arbitrary::<u64>()?),
        1 => Int::from(u.arbitrary::<i64>()?),
        _ => {
            let neg = u.arbitrary::<bool>()?;
            let n = u.int_in_range(1..=80)?;
            let mut s = String::from(if neg { "-" } else { "" });
            for i in 0..n {
                let d = u.int_in_range(if i == 0 { 1 } else { 0 }..=9u8)?;
                s.push(char::from(b'0' + d));
            }
            Int::parse(&s).expect("a decimal integer parses")
        }
    })
}

fn value(u: &mut Unstructured, depth: usize) -> Result<Value> {
    let top = if depth >= 12 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(int(u)?),
        3 => Value::String(u.arbitrary()?),
        4 => {
            if u.ratio(1, 8)? {
                let (a, b, e) = (u.arbitrary::<u16>()?, u.arbitrary::<u8>()?, u.arbitrary::<i8>()?);
                Value::Float(format!("{a}.{b}e{e}"))
            } else {
                Value::String(u.arbitrary()?)
            }
        }
        5 => {
            let n = u.int_in_range(0..=6)?;
            Value::Array((0..n).map(|_| value(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=6)?;
            let entries = (0..n)
                .map(|_| Ok((u.arbitrary::<String>()?, value(u, depth + 1)?)))
                .collect::<Result<Vec<_>>>()?;
            Value::Object(Map::from_entries(entries))
        }
    })
}

/// securesystemslib's encode_canonical, written independently.
fn reference(v: &Value, out: &mut String) -> bool {
    fn s(x: &str, out: &mut String) {
        out.push('"');
        for c in x.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(_) => return false,
        Value::String(x) => s(x, out),
        Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                if !reference(x, out) {
                    return false;
                }
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut items: Vec<(&String, &Value)> = m.iter().collect();
            items.sort_by(|a, b| a.0.chars().cmp(b.0.chars()));
            out.push('{');
            for (n, (k, x)) in items.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                s(k, out);
                out.push(':');
                if !reference(x, out) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    true
}

fn has_control(v: &Value) -> bool {
    let ctl = |s: &str| s.bytes().any(|b| b < 0x20);
    match v {
        Value::String(s) => ctl(s),
        Value::Array(a) => a.iter().any(has_control),
        Value::Object(m) => m.iter().any(|(k, v)| ctl(k) || has_control(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(v) = value(&mut u, 0) else {
        return;
    };
    let mut want = String::new();
    let ok = reference(&v, &mut want);
    match json::canonical(&v) {
        Ok(c) => {
            assert!(ok, "canonical form of a value with a float");
            assert_eq!(String::from_utf8(c.clone()).unwrap(), want, "differs from the reference");
            if !has_control(&v) {
                assert_eq!(json::parse(&c).expect("canonical parses"), v);
            }
        }
        Err(_) => assert!(!ok, "refused a float-free value"),
    }
    for indent in [None, Some(1), Some(4)] {
        let text = json::to_python_json(&v, indent);
        assert!(text.is_ascii(), "python form is ASCII (ensure_ascii)");
        assert_eq!(json::parse(&text).expect("python form parses"), v);
    }
});
