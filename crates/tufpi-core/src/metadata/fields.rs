//! Reading typed fields out of a JSON object while keeping whatever is left as unrecognized
//! fields (python-tuf's `unrecognized_fields`), so that parse → sign → write loses nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::MetadataError;
use crate::json::{Map, Value};

/// The only expiry format python-tuf reads and writes.
pub(crate) const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Where a value sits in the document, for error messages. Built lazily: formatting happens
/// only when an error is reported, so the hot parse path allocates nothing for it.
#[derive(Clone, Copy)]
pub(crate) enum Ctx<'a> {
    Root(&'static str),
    Field(&'a Ctx<'a>, &'a str),
    Index(&'a Ctx<'a>, usize),
}

impl std::fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ctx::Root(s) => f.write_str(s),
            Ctx::Field(p, k) => write!(f, "{p}.{k}"),
            Ctx::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// An object being taken apart.
pub(crate) struct Obj<'a> {
    pub ctx: Ctx<'a>,
    map: Map,
}

pub(crate) fn invalid(ctx: impl std::fmt::Display, message: impl Into<String>) -> MetadataError {
    MetadataError::Invalid {
        context: ctx.to_string(),
        message: message.into(),
    }
}

impl<'a> Obj<'a> {
    pub fn new(v: Value, ctx: Ctx<'a>) -> Result<Obj<'a>, MetadataError> {
        match v {
            Value::Object(map) => Ok(Obj { ctx, map }),
            other => Err(invalid(
                ctx,
                format!("expected an object, found {}", other.type_name()),
            )),
        }
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str) -> Result<Value, MetadataError> {
        self.take(key)
            .ok_or_else(|| invalid(self.ctx, format!("missing field \"{key}\"")))
    }

    pub fn str(&mut self, key: &str) -> Result<String, MetadataError> {
        let v = self.required(key)?;
        as_string(v, Ctx::Field(&self.ctx, key))
    }

    pub fn u64(&mut self, key: &str) -> Result<u64, MetadataError> {
        let v = self.required(key)?;
        as_u64(v, Ctx::Field(&self.ctx, key))
    }

    pub fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, MetadataError> {
        self.take(key)
            .map(|v| as_u64(v, Ctx::Field(&self.ctx, key)))
            .transpose()
    }

    pub fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, MetadataError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(invalid(
                Ctx::Field(&self.ctx, key),
                format!("expected a boolean, found {}", other.type_name()),
            )),
        }
    }

    /// Member `key` as an object; its context borrows ours.
    pub fn obj<'b>(&'b mut self, key: &'b str) -> Result<Obj<'b>, MetadataError> {
        let v = self.required(key)?;
        Obj::new(v, Ctx::Field(&self.ctx, key))
    }

    pub fn array(&mut self, key: &str) -> Result<Vec<Value>, MetadataError> {
        let v = self.required(key)?;
        as_array(v, Ctx::Field(&self.ctx, key))
    }

    pub fn str_list(&mut self, key: &str) -> Result<Vec<String>, MetadataError> {
        let v = self.required(key)?;
        str_list(v, Ctx::Field(&self.ctx, key))
    }

    pub fn opt_str_list(&mut self, key: &str) -> Result<Option<Vec<String>>, MetadataError> {
        self.take(key)
            .map(|v| str_list(v, Ctx::Field(&self.ctx, key)))
            .transpose()
    }

    /// A `hashes` object: algorithm → hex digest, non-empty (python-tuf refuses an empty one).
    pub fn hashes(&mut self, key: &str) -> Result<BTreeMap<String, String>, MetadataError> {
        let v = self.required(key)?;
        hashes(v, Ctx::Field(&self.ctx, key))
    }

    pub fn opt_hashes(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>, MetadataError> {
        self.take(key)
            .map(|v| hashes(v, Ctx::Field(&self.ctx, key)))
            .transpose()
    }

    pub fn expires(&mut self, key: &str) -> Result<DateTime<Utc>, MetadataError> {
        let s = self.str(key)?;
        parse_expires(&s).ok_or_else(|| {
            invalid(
                Ctx::Field(&self.ctx, key),
                format!("{s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"),
            )
        })
    }

    /// Convert every member with `f` (given the member's context), keeping key order.
    pub fn members<T>(
        self,
        mut f: impl FnMut(Value, Ctx<'_>) -> Result<T, MetadataError>,
    ) -> Result<Vec<(String, T)>, MetadataError> {
        let ctx = self.ctx;
        let mut out = Vec::with_capacity(self.map.len());
        for (k, v) in self.map {
            let t = f(v, Ctx::Field(&ctx, &k))?;
            out.push((k, t));
        }
        Ok(out)
    }

    /// What was not taken: the unrecognized fields.
    pub fn rest(self) -> Map {
        self.map
    }
}

/// Parse an expiry as python-tuf does (`%Y-%m-%dT%H:%M:%SZ`, UTC).
/// Only the exact zero-padded shape is accepted, and no leap second: python-tuf could not
/// load anything else, so we must neither sign nor trust it.
pub fn parse_expires(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let shaped = b.len() == shape.len()
        && b.iter().zip(shape).all(|(c, p)| {
            if *p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        });
    if !shaped {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(s, EXPIRES_FORMAT)
        .ok()?
        .and_utc();
    (t.timestamp_subsec_nanos() == 0).then_some(t)
}

/// Format an expiry as python-tuf writes it.
pub fn format_expires(t: &DateTime<Utc>) -> String {
    t.format(EXPIRES_FORMAT).to_string()
}

pub(crate) fn as_string(v: Value, ctx: Ctx<'_>) -> Result<String, MetadataError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(invalid(
            ctx,
            format!("expected a string, found {}", other.type_name()),
        )),
    }
}

pub(crate) fn as_u64(v: Value, ctx: Ctx<'_>) -> Result<u64, MetadataError> {
    match v {
        Value::Int(i) => i
            .as_u64()
            .ok_or_else(|| invalid(ctx, format!("{i} is out of range"))),
        other => Err(invalid(
            ctx,
            format!(
                "expected a non-negative integer, found {}",
                other.type_name()
            ),
        )),
    }
}

pub(crate) fn as_array(v: Value, ctx: Ctx<'_>) -> Result<Vec<Value>, MetadataError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(invalid(
            ctx,
            format!("expected an array, found {}", other.type_name()),
        )),
    }
}

fn str_list(v: Value, ctx: Ctx<'_>) -> Result<Vec<String>, MetadataError> {
    as_array(v, ctx)?
        .into_iter()
        .enumerate()
        .map(|(n, s)| as_string(s, Ctx::Index(&ctx, n)))
        .collect()
}

fn hashes(v: Value, ctx: Ctx<'_>) -> Result<BTreeMap<String, String>, MetadataError> {
    let out: BTreeMap<String, String> = Obj::new(v, ctx)?.members(as_string)?.into_iter().collect();
    if out.is_empty() {
        return Err(invalid(ctx, "hashes must not be empty"));
    }
    Ok(out)
}

/// Build an object from known fields plus the unrecognized ones.
pub(crate) fn object(
    unrecognized: &Map,
    known: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    let mut m = unrecognized.clone();
    for (k, v) in known {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

pub(crate) fn hashes_view(h: &BTreeMap<String, String>) -> super::view::View<'_> {
    super::view::View::entries(
        h.iter()
            .map(|(k, v)| (k.as_str(), super::view::View::Str(v)))
            .collect(),
    )
}
