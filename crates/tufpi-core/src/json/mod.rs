//! JSON values, a strict parser, securesystemslib-compatible canonical JSON, and a writer
//! producing the same bytes as Python's `json.dumps(..., sort_keys=True)` (python-tuf's wire form).
//!
//! We do not use serde_json here: TUF needs arbitrary-size integers kept exactly, floats detected
//! (and refused when canonicalizing), and key order by code point — all of which are easiest to
//! guarantee with a small value type of our own.

use std::fmt::Write as _;

mod map;
pub mod scan;

pub use map::{Int, Map};

/// Deepest nesting the parser accepts (Python's recursion limit refuses far less deep input too).
pub const MAX_DEPTH: usize = 256;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer of any size, kept as its normalized decimal text.
    Int(Int),
    /// A number with a fraction or exponent, kept as written; canonical JSON refuses it.
    Float(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(Int::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value::Object(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}

impl Value {
    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The object, if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// The object mutably, if this is an object.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|m| m.get(key))
    }
}

/// Why JSON text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JSON at byte {offset}: {reason}")]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// securesystemslib refuses floats; so do we.
    #[error("float {0} is not allowed in canonical JSON")]
    Float(String),
}

/// Parse JSON text strictly (RFC 8259, UTF-8, no BOM, no NaN/Infinity, no lone surrogates).
/// Duplicate object keys keep the last value, as Python's `json.loads` does.
pub fn parse(input: &[u8]) -> Result<Value, ParseError> {
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.i,
            reason,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }
    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.i += 1;
        let mut entries: Vec<(String, Value)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(Map::new()));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            entries.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(Map::from_entries(entries)));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.i;
        let mut float = false;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            float = true;
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number: digit expected after '.'"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            float = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number: digit expected in exponent"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        // The slice holds only ASCII digits and signs, so it is valid UTF-8.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        if float {
            Ok(Value::Float(text.to_string()))
        } else {
            Int::parse(text).map(Value::Int).ok_or(ParseError {
                offset: start,
                reason: "invalid number",
            })
        }
    }
    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or(self.err("truncated \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or(self.err("invalid \\u escape"))?;
            v = v * 16 + n;
        }
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1; // opening quote
        let start = self.i;
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy a run of plain bytes at once: up to the next quote or backslash, and no
            // control characters inside (JSON forbids them raw).
            let run_start = self.i;
            let rest = &self.s[run_start..];
            let end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
            if let Some(ctl) = rest[..end].iter().position(|&b| b < 0x20) {
                self.i = run_start + ctl;
                return Err(self.err("control character in string"));
            }
            self.i = run_start + end;
            if out.is_empty() && self.peek() == Some(b'"') {
                // The common case: no escapes at all; one allocation of the exact size.
                self.i += 1;
                return std::str::from_utf8(&self.s[start..run_start + end])
                    .map(str::to_owned)
                    .map_err(|e| ParseError {
                        offset: start + e.valid_up_to(),
                        reason: "invalid UTF-8 in string",
                    });
            }
            out.extend_from_slice(&self.s[run_start..self.i]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|e| ParseError {
                        offset: start + e.utf8_error().valid_up_to(),
                        reason: "invalid UTF-8 in string",
                    });
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or(self.err("unterminated escape"))?;
                    self.i += 1;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("lone surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or(self.err("invalid \\u escape"))?
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
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
    fn malformed_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "01",
            "1.",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\u{feff}{}",
            "NaN",
            "\"a\u{1}\"",
            "[1] x",
            "{'a':1}",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
        assert!(parse(b"\"\xff\"").is_err());
        assert!(parse(&[b'['; 10_000]).is_err());
    }

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

    #[test]
    fn duplicate_keys_keep_last() {
        assert_eq!(canon(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }
}
