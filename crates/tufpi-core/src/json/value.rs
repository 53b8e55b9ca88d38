//! The JSON value type: `Value`, `Map` (a JSON object) and `Int` (an integer of any size).
//!
//! `Map` is a vector kept sorted by key: TUF metadata is mostly many tiny objects, for which a
//! B-tree's node allocation dominates parse time. Sorting by `String` orders by UTF-8 bytes,
//! which is code-point order — exactly securesystemslib's `sort_keys`.

use std::fmt;

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

/// A JSON object with keys in code-point order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty map.
    pub const fn new() -> Map {
        Map {
            entries: Vec::new(),
        }
    }

    /// Build from entries in any order; for duplicate keys the last wins (as Python's `dict`).
    pub fn from_entries(mut entries: Vec<(String, Value)>) -> Map {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable sort keeps duplicates in input order; then keep the last of each run.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
            for e in entries {
                match out.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => out.push(e),
                }
            }
            entries = out;
        }
        Map { entries }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Insert or replace; returns the old value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        // Appending in order is the common case when building.
        if self.entries.last().is_none_or(|(k, _)| *k < key) {
            self.entries.push((key, value));
            return None;
        }
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Members in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Value)> + DoubleEndedIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        Map::from_entries(iter.into_iter().collect())
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<const N: usize> From<[(String, Value); N]> for Map {
    fn from(a: [(String, Value); N]) -> Map {
        Map::from_entries(a.into())
    }
}

/// An integer of arbitrary size: inline when it fits `i64`, else its normalized decimal text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Int(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Small(i64),
    /// Outside `i64`; no leading zeros, no `-0`.
    Big(Box<str>),
}

impl Int {
    /// The value as `u64`, if it fits.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Small(n) => u64::try_from(*n).ok(),
            Repr::Big(s) => s.parse().ok(),
        }
    }

    /// The value as `i64`, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Small(n) => Some(*n),
            Repr::Big(_) => None,
        }
    }

    /// Parse decimal integer text (optionally `-`); `None` if it is not an integer.
    pub fn parse(text: &str) -> Option<Int> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(Int(Repr::Small(n)));
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return Some(Int(Repr::Small(0)));
        }
        let neg = text.starts_with('-');
        let norm = if neg {
            format!("-{trimmed}")
        } else {
            trimmed.to_string()
        };
        // Leading zeros may have made a small number look big.
        match norm.parse::<i64>() {
            Ok(n) => Some(Int(Repr::Small(n))),
            Err(_) => Some(Int(Repr::Big(norm.into()))),
        }
    }

    /// Append the decimal text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Small(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Repr::Big(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(n) => write!(f, "{n}"),
            Repr::Big(s) => f.write_str(s),
        }
    }
}

impl From<u64> for Int {
    fn from(v: u64) -> Int {
        match i64::try_from(v) {
            Ok(n) => Int(Repr::Small(n)),
            Err(_) => Int(Repr::Big(v.to_string().into())),
        }
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Int {
        Int(Repr::Small(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_normalize() {
        assert_eq!(Int::parse("-0"), Some(Int::from(0u64)));
        assert_eq!(Int::parse(&u64::MAX.to_string()), Some(Int::from(u64::MAX)));
        assert_eq!(Int::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Int::parse("-1").and_then(|i| i.as_u64()), None);
        assert_eq!(
            Int::parse("123456789012345678901234567890")
                .unwrap()
                .to_string(),
            "123456789012345678901234567890"
        );
        assert_eq!(Int::parse("1x"), None);
    }

    #[test]
    fn map_order_and_duplicates() {
        let m = Map::from_entries(vec![
            ("b".into(), Value::Null),
            ("a".into(), Value::Bool(false)),
            ("b".into(), Value::Bool(true)),
        ]);
        assert_eq!(m.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.get("b"), Some(&Value::Bool(true)));
        let mut m2 = Map::new();
        m2.insert("z".into(), Value::Null);
        m2.insert("a".into(), Value::Null);
        m2.insert("m".into(), Value::Null);
        assert_eq!(m2.insert("a".into(), Value::Bool(true)), Some(Value::Null));
        assert_eq!(
            m2.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "m", "z"]
        );
        assert_eq!(m2.remove("m"), Some(Value::Null));
        assert!(!m2.contains_key("m"));
    }
}
