//! Request validation with FastAPI's error shape: a 422 whose `detail` lists one entry per
//! problem, each with `type`, `loc` (`["body", field, index, …]`), `msg` and `input`, as
//! pydantic v2 reports them. Nothing is queued for a payload that fails here.

use serde_json::{json, Map, Value};

/// Longest expiration accepted, in days (100 years): beyond it dates stop being sane.
pub const MAX_DAYS: i64 = 36_500;

/// One location step: a field name or a list index.
#[derive(Debug, Clone)]
pub enum Step {
    /// Object field.
    Key(String),
    /// List index.
    Index(usize),
}

/// Collects validation errors while a payload is read.
#[derive(Debug, Default)]
pub struct Check {
    errors: Vec<Value>,
}

/// A location in the request body.
#[derive(Debug, Clone)]
pub struct Loc(Vec<Step>);

impl Loc {
    /// The body itself.
    pub fn body() -> Loc {
        Loc(Vec::new())
    }

    /// A field of this location.
    pub fn key(&self, k: &str) -> Loc {
        let mut v = self.0.clone();
        v.push(Step::Key(k.to_string()));
        Loc(v)
    }

    /// An index of this location.
    pub fn index(&self, i: usize) -> Loc {
        let mut v = self.0.clone();
        v.push(Step::Index(i));
        Loc(v)
    }

    fn to_value(&self) -> Value {
        let mut out = vec![json!("body")];
        out.extend(self.0.iter().map(|s| match s {
            Step::Key(k) => json!(k),
            Step::Index(i) => json!(i),
        }));
        Value::Array(out)
    }

    /// Dotted form for messages: `artifacts.0.info.length`.
    pub fn dotted(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl Check {
    /// A new, empty check.
    pub fn new() -> Check {
        Check::default()
    }

    /// Record an error of `kind` at `loc`.
    pub fn error(&mut self, kind: &str, loc: &Loc, msg: impl Into<String>, input: &Value) {
        self.errors.push(json!({
            "type": kind,
            "loc": loc.to_value(),
            "msg": msg.into(),
            "input": input,
        }));
    }

    /// Whether nothing was refused.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// FastAPI's 422 body.
    pub fn into_detail(self) -> Value {
        json!({ "detail": self.errors })
    }

    /// The object at `v`, or an error.
    pub fn object<'a>(&mut self, v: &'a Value, loc: &Loc) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                let kind = if loc.0.is_empty() {
                    "model_attributes_type"
                } else {
                    "dict_type"
                };
                self.error(
                    kind,
                    loc,
                    "Input should be a valid dictionary or object to extract fields from",
                    v,
                );
                None
            }
        }
    }

    /// Required field `key` of `obj`.
    pub fn required<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        loc: &Loc,
        key: &str,
    ) -> Option<&'a Value> {
        match obj.get(key) {
            Some(v) => Some(v),
            None => {
                self.error(
                    "missing",
                    &loc.key(key),
                    "Field required",
                    &Value::Object(obj.clone()),
                );
                None
            }
        }
    }

    /// A string.
    pub fn string<'a>(&mut self, v: &'a Value, loc: &Loc) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.error("string_type", loc, "Input should be a valid string", v);
                None
            }
        }
    }

    /// An integer (pydantic's lax mode also takes an integral string; we do not).
    pub fn int(&mut self, v: &Value, loc: &Loc) -> Option<i64> {
        match v.as_i64() {
            Some(n) => Some(n),
            None => {
                self.error("int_type", loc, "Input should be a valid integer", v);
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, v: &Value, loc: &Loc) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error("bool_type", loc, "Input should be a valid boolean", v);
                None
            }
        }
    }

    /// A list.
    pub fn list<'a>(&mut self, v: &'a Value, loc: &Loc) -> Option<&'a Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.error("list_type", loc, "Input should be a valid list", v);
                None
            }
        }
    }

    /// Required list field `key` of `obj`.
    pub fn required_list<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        loc: &Loc,
        key: &str,
    ) -> Option<&'a Vec<Value>> {
        let v = self.required(obj, loc, key)?;
        self.list(v, &loc.key(key))
    }

    /// Optional boolean field with a default.
    pub fn opt_bool(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
        default: bool,
    ) -> bool {
        match obj.get(key) {
            None | Some(Value::Null) => default,
            Some(v) => self.boolean(v, &loc.key(key)).unwrap_or(default),
        }
    }

    /// An expiration in days: 1 to [`MAX_DAYS`].
    pub fn days(&mut self, v: &Value, loc: &Loc) -> Option<i64> {
        let n = self.int_gt(v, loc, 0)?;
        if n > MAX_DAYS {
            self.error(
                "less_than_equal",
                loc,
                format!("Input should be less than or equal to {MAX_DAYS}"),
                v,
            );
            return None;
        }
        Some(n)
    }

    /// An integer above `gt`.
    pub fn int_gt(&mut self, v: &Value, loc: &Loc, gt: i64) -> Option<i64> {
        let n = self.int(v, loc)?;
        if n <= gt {
            self.error(
                "greater_than",
                loc,
                format!("Input should be greater than {gt}"),
                v,
            );
            return None;
        }
        Some(n)
    }
}

/// Parse a request body as JSON, or FastAPI's `json_invalid` error.
pub fn parse_body(bytes: &[u8]) -> Result<Value, Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        json!({"detail": [{
            "type": "json_invalid",
            "loc": ["body", e.column()],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": e.to_string()},
        }]})
    })
}
