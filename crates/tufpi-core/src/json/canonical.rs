//! Canonical JSON, byte for byte as securesystemslib's `encode_canonical`.

use super::value::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// securesystemslib refuses floats; so do we.
    #[error("float {0} is not allowed in canonical JSON")]
    Float(String),
}

/// The first float anywhere in `v`, if any (canonical JSON refuses floats).
pub fn find_float(v: &Value) -> Option<&str> {
    match v {
        Value::Float(f) => Some(f),
        Value::Array(items) => items.iter().find_map(find_float),
        Value::Object(m) => m.values().find_map(find_float),
        _ => None,
    }
}

/// The canonical JSON bytes of `v`, exactly as securesystemslib's `encode_canonical`:
/// keys sorted by code point, no whitespace, only `"` and `\` escaped, integers only.
pub fn canonical(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out)?;
    Ok(out)
}

/// Append the canonical form of `v` to `out`.
pub fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => i.write_to(out),
        Value::Float(f) => return Err(CanonicalError::Float(f.clone())),
        Value::String(s) => write_canonical_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (n, (k, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical_str(k, out);
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Append a string in canonical form (only `"` and `\` escaped).
pub fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for i in memchr::memchr2_iter(b'"', b'\\', bytes) {
        out.extend_from_slice(&bytes[run..i]);
        out.push(b'\\');
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn canon(s: &str) -> String {
        String::from_utf8(canonical(&parse(s.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn canonical_basics() {
        assert_eq!(
            canon(r#"{"b": 1, "a": [true, false, null, "x"]}"#),
            r#"{"a":[true,false,null,"x"],"b":1}"#
        );
        assert_eq!(
            canon(r#""q\"b\\s\n\u0001é\ud83d\ude00""#),
            "\"q\\\"b\\\\s\n\u{1}é😀\""
        );
        assert_eq!(canon("-0"), "0");
        assert_eq!(
            canon("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(canon(r#"{"":{},"a":[[]]}"#), r#"{"":{},"a":[[]]}"#);
    }

    #[test]
    fn keys_sort_by_code_point_not_escaped_form() {
        // '"' (0x22) sorts before '#' (0x23) although its escaped form starts with '\' (0x5c).
        assert_eq!(
            canon(r##"{"#":1,"\"":2,"\\":3,"\u00e9":4,"\ud83d\ude00":5,"\uffff":6}"##),
            "{\"\\\"\":2,\"#\":1,\"\\\\\":3,\"é\":4,\"\u{ffff}\":6,\"😀\":5}"
        );
    }

    #[test]
    fn floats_refused() {
        for f in ["1.0", "1e5", "-0.5", "1E-2"] {
            let v = parse(f.as_bytes()).unwrap();
            assert_eq!(canonical(&v), Err(CanonicalError::Float(f.to_string())));
        }
    }

    #[test]
    fn duplicate_keys_keep_last() {
        assert_eq!(canon(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }
}
