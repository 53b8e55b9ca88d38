//! JSON values, a strict parser, securesystemslib-compatible canonical JSON, and a writer
//! producing the same bytes as Python's `json.dumps(..., sort_keys=True)` (python-tuf's wire form).
//!
//! We do not use serde_json here: TUF needs arbitrary-size integers kept exactly, floats detected
//! (and refused when canonicalizing), and key order by code point — all of which are easiest to
//! guarantee with a small value type of our own.
//!
//! `value` holds the value type, `parse` the parser, `canonical` the canonical form and
//! `python` the Python writer; `scan` reads a few members without parsing a whole document.

mod canonical;
mod parse;
mod python;
pub mod scan;
mod value;

pub use canonical::{canonical, find_float, write_canonical, write_canonical_str, CanonicalError};
pub use parse::{parse, ParseError, MAX_DEPTH};
pub use python::to_python_json;
pub use value::{Int, Map, Value};
