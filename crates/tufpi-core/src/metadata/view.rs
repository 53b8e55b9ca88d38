//! A borrowed JSON view of the typed model: each type describes its fields once (`view`), and
//! that one description yields both the JSON `Value` and the canonical bytes — the latter
//! written straight from the model, without copying a string.

use crate::json::{self, CanonicalError, Int, Map, Value};

/// Metadata seen as JSON, borrowing from the model.
pub(crate) enum View<'a> {
    /// A string.
    Str(&'a str),
    /// A string made for the view (e.g. a formatted expiry).
    Owned(String),
    /// A non-negative integer.
    Int(u64),
    /// A boolean.
    Bool(bool),
    /// An array.
    Arr(Vec<View<'a>>),
    /// An object: known fields, sorted by key, merged with the unrecognized ones (a known
    /// field wins over an unrecognized one of the same name).
    Obj(Vec<(&'a str, View<'a>)>, Option<&'a Map>),
}

impl<'a> View<'a> {
    /// An object from known fields (any order) and unrecognized fields.
    pub fn obj(mut fields: Vec<(&'a str, View<'a>)>, unrecognized: &'a Map) -> View<'a> {
        fields.sort_by(|a, b| a.0.cmp(b.0));
        View::Obj(fields, Some(unrecognized))
    }

    /// An object from entries already in key order (a `BTreeMap` of the model).
    pub fn entries(entries: Vec<(&'a str, View<'a>)>) -> View<'a> {
        View::Obj(entries, None)
    }

    /// An array of strings.
    pub fn strs(items: &'a [String]) -> View<'a> {
        View::Arr(items.iter().map(|s| View::Str(s)).collect())
    }

    /// The JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            View::Str(s) => Value::String((*s).to_string()),
            View::Owned(s) => Value::String(s.clone()),
            View::Int(n) => Value::Int(Int::from(*n)),
            View::Bool(b) => Value::Bool(*b),
            View::Arr(items) => Value::Array(items.iter().map(View::to_value).collect()),
            View::Obj(fields, unrecognized) => {
                let mut m = unrecognized.cloned().unwrap_or_default();
                for (k, v) in fields {
                    m.insert((*k).to_string(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }

    /// Append the canonical JSON bytes.
    pub fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        match self {
            View::Str(s) => json::write_canonical_str(s, out),
            View::Owned(s) => json::write_canonical_str(s, out),
            View::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            View::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            View::Arr(items) => {
                out.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    item.write_canonical(out)?;
                }
                out.push(b']');
            }
            View::Obj(fields, unrecognized) => {
                out.push(b'{');
                let mut extra = unrecognized
                    .map(|m| m.iter())
                    .into_iter()
                    .flatten()
                    .peekable();
                let mut known = fields.iter().peekable();
                let mut first = true;
                let mut sep = |out: &mut Vec<u8>| {
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                };
                loop {
                    let take_known = match (known.peek(), extra.peek()) {
                        (None, None) => break,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (Some((k, _)), Some((e, _))) => {
                            if *k == e.as_str() {
                                extra.next(); // the known field replaces it
                                continue;
                            }
                            *k < e.as_str()
                        }
                    };
                    sep(out);
                    if take_known {
                        if let Some((k, v)) = known.next() {
                            json::write_canonical_str(k, out);
                            out.push(b':');
                            v.write_canonical(out)?;
                        }
                    } else if let Some((k, v)) = extra.next() {
                        json::write_canonical_str(k, out);
                        out.push(b':');
                        json::write_canonical(v, out)?;
                    }
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// The canonical JSON bytes.
    pub fn canonical(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut out = Vec::with_capacity(1024);
        self.write_canonical(&mut out)?;
        Ok(out)
    }
}
