//! Reading typed fields out of a JSON object while keeping whatever is left as unrecognized
//! fields (python-tuf's `unrecognized_fields`), so that parse → sign → write loses nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::MetadataError;
use crate::json::{Int, Map, Value};

/// The only expiry format python-tuf reads and writes.
pub(crate) const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// An object being taken apart; `ctx` names where it sits, for error messages.
pub(crate) struct Obj {
    pub ctx: String,
    map: Map,
}

pub(crate) fn invalid(ctx: &str, message: impl Into<String>) -> MetadataError {
    MetadataError::Invalid {
        context: ctx.to_string(),
        message: message.into(),
    }
}

impl Obj {
    pub fn new(v: Value, ctx: impl Into<String>) -> Result<Obj, MetadataError> {
        let ctx = ctx.into();
        match v {
            Value::Object(map) => Ok(Obj { ctx, map }),
            other => Err(invalid(
                &ctx,
                format!("expected an object, found {}", other.type_name()),
            )),
        }
    }

    fn field_ctx(&self, key: &str) -> String {
        format!("{}.{}", self.ctx, key)
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str) -> Result<Value, MetadataError> {
        self.take(key)
            .ok_or_else(|| invalid(&self.ctx, format!("missing field \"{key}\"")))
    }

    pub fn str(&mut self, key: &str) -> Result<String, MetadataError> {
        let ctx = self.field_ctx(key);
        as_string(self.required(key)?, &ctx)
    }

    pub fn u64(&mut self, key: &str) -> Result<u64, MetadataError> {
        let ctx = self.field_ctx(key);
        as_u64(self.required(key)?, &ctx)
    }

    pub fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, MetadataError> {
        let ctx = self.field_ctx(key);
        self.take(key).map(|v| as_u64(v, &ctx)).transpose()
    }

    pub fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, MetadataError> {
        let ctx = self.field_ctx(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(invalid(
                &ctx,
                format!("expected a boolean, found {}", other.type_name()),
            )),
        }
    }

    pub fn obj(&mut self, key: &str) -> Result<Obj, MetadataError> {
        let ctx = self.field_ctx(key);
        Obj::new(self.required(key)?, ctx)
    }

    pub fn array(&mut self, key: &str) -> Result<Vec<Value>, MetadataError> {
        let ctx = self.field_ctx(key);
        as_array(self.required(key)?, &ctx)
    }

    pub fn str_list(&mut self, key: &str) -> Result<Vec<String>, MetadataError> {
        let ctx = self.field_ctx(key);
        str_list(self.required(key)?, &ctx)
    }

    pub fn opt_str_list(&mut self, key: &str) -> Result<Option<Vec<String>>, MetadataError> {
        let ctx = self.field_ctx(key);
        self.take(key).map(|v| str_list(v, &ctx)).transpose()
    }

    /// A `hashes` object: algorithm → hex digest, non-empty (python-tuf refuses an empty one).
    pub fn hashes(&mut self, key: &str) -> Result<BTreeMap<String, String>, MetadataError> {
        let ctx = self.field_ctx(key);
        hashes(self.required(key)?, &ctx)
    }

    pub fn opt_hashes(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>, MetadataError> {
        let ctx = self.field_ctx(key);
        self.take(key).map(|v| hashes(v, &ctx)).transpose()
    }

    pub fn expires(&mut self, key: &str) -> Result<DateTime<Utc>, MetadataError> {
        let ctx = self.field_ctx(key);
        let s = self.str(key)?;
        parse_expires(&s).ok_or_else(|| {
            invalid(
                &ctx,
                format!("{s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"),
            )
        })
    }

    /// Iterate members, leaving nothing behind.
    pub fn into_members(self) -> impl Iterator<Item = (String, Value, String)> {
        let ctx = self.ctx;
        self.map.into_iter().map(move |(k, v)| {
            let c = format!("{ctx}.{k}");
            (k, v, c)
        })
    }

    /// What was not taken: the unrecognized fields.
    pub fn rest(self) -> Map {
        self.map
    }
}

/// Parse an expiry as python-tuf does (`%Y-%m-%dT%H:%M:%SZ`, UTC).
pub fn parse_expires(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, EXPIRES_FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

/// Format an expiry as python-tuf writes it.
pub fn format_expires(t: &DateTime<Utc>) -> String {
    t.format(EXPIRES_FORMAT).to_string()
}

pub(crate) fn as_string(v: Value, ctx: &str) -> Result<String, MetadataError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(invalid(
            ctx,
            format!("expected a string, found {}", other.type_name()),
        )),
    }
}

pub(crate) fn as_u64(v: Value, ctx: &str) -> Result<u64, MetadataError> {
    match v {
        Value::Int(i) => i
            .as_u64()
            .ok_or_else(|| invalid(ctx, format!("{} is out of range", i.as_str()))),
        other => Err(invalid(
            ctx,
            format!(
                "expected a non-negative integer, found {}",
                other.type_name()
            ),
        )),
    }
}

pub(crate) fn as_array(v: Value, ctx: &str) -> Result<Vec<Value>, MetadataError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(invalid(
            ctx,
            format!("expected an array, found {}", other.type_name()),
        )),
    }
}

fn str_list(v: Value, ctx: &str) -> Result<Vec<String>, MetadataError> {
    as_array(v, ctx)?
        .into_iter()
        .enumerate()
        .map(|(n, s)| as_string(s, &format!("{ctx}[{n}]")))
        .collect()
}

fn hashes(v: Value, ctx: &str) -> Result<BTreeMap<String, String>, MetadataError> {
    let obj = Obj::new(v, ctx)?;
    let out: BTreeMap<String, String> = obj
        .into_members()
        .map(|(k, v, c)| Ok((k, as_string(v, &c)?)))
        .collect::<Result<_, MetadataError>>()?;
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

pub(crate) fn str_array(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

pub(crate) fn hashes_value(h: &BTreeMap<String, String>) -> Value {
    Value::Object(
        h.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub(crate) fn int(v: u64) -> Value {
    Value::Int(Int::from(v))
}
