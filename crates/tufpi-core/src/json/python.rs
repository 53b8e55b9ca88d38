//! The bytes Python's `json.dumps(..., sort_keys=True)` writes: python-tuf's wire form.

use std::fmt::Write as _;

use super::value::Value;

/// Serialize like Python's `json.dumps(v, sort_keys=True, indent=indent, separators=…)` with
/// `ensure_ascii=True`: `indent = Some(1)` gives python-tuf's default on-disk form,
/// `None` its compact form. Floats are written as read.
pub fn to_python_json(v: &Value, indent: Option<usize>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    write_py(v, indent, 0, &mut out);
    out.into_bytes()
}

fn newline(indent: Option<usize>, level: usize, out: &mut String) {
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * level));
    }
}

fn write_py(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let (item_sep, key_sep) = if indent.is_some() {
        (",", ": ")
    } else {
        (",", ":")
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(f),
        Value::String(s) => py_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(item_sep);
                }
                newline(indent, level + 1, out);
                write_py(item, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (n, (k, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(item_sep);
                }
                newline(indent, level + 1, out);
                py_string(k, out);
                out.push_str(key_sep);
                write_py(item, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push('}');
        }
    }
}

/// Python's `ensure_ascii` string escaping.
fn py_string(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn python_style_output() {
        let v = parse(r#"{"b":[],"a":{"x":[1,{}],"é":"\u0000\u007f\"😀"}}"#.as_bytes()).unwrap();
        let pretty = String::from_utf8(to_python_json(&v, Some(1))).unwrap();
        assert_eq!(
            pretty,
            "{\n \"a\": {\n  \"x\": [\n   1,\n   {}\n  ],\n  \"\\u00e9\": \"\\u0000\\u007f\\\"\\ud83d\\ude00\"\n },\n \"b\": []\n}"
        );
        assert_eq!(parse(&to_python_json(&v, Some(1))).unwrap(), v);
        assert_eq!(parse(&to_python_json(&v, None)).unwrap(), v);
    }
}
