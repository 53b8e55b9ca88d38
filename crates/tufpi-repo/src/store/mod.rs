//! The repository's state store: role versions and expiries, the durable queue of pending
//! changes, the in-flight publish plan and per-bin target counts (the published bins are the
//! record of which targets each lists). The trait (`state`) is what the repository uses;
//! SQLite (`sqlite`) is the embedded default, PostgreSQL (`postgres`) the scale-out one.

pub mod postgres;
mod sqlite;
mod state;

pub use self::postgres::{enqueue_in, PostgresStore, QUEUE_CHANNEL};
pub use sqlite::SqliteStore;
pub use state::{PlanFn, RoleState, StateStore};

/// How both stores keep a target's hashes and `custom` value: canonical JSON text.
mod codec {
    use std::collections::BTreeMap;

    use tufpi_core::json::{self, Value};

    use crate::error::RepoError;

    fn corrupt(what: &'static str, detail: impl ToString) -> RepoError {
        RepoError::CorruptStore {
            what,
            detail: detail.to_string(),
        }
    }

    /// The hashes as canonical JSON text.
    pub(super) fn hashes_text(h: &BTreeMap<String, String>) -> String {
        let v = Value::Object(
            h.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
        String::from_utf8(json::canonical(&v).unwrap_or_default()).unwrap_or_default()
    }

    /// Stored hashes back (non-string values dropped).
    pub(super) fn parse_hashes(text: &str) -> Result<BTreeMap<String, String>, RepoError> {
        let v = json::parse(text.as_bytes()).map_err(|e| corrupt("hashes", e))?;
        let m = v
            .as_object()
            .ok_or_else(|| corrupt("hashes", "not an object"))?;
        Ok(m.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect())
    }

    /// A target's `custom` value as canonical JSON text, if any.
    pub(super) fn custom_text(path: &str, c: &Option<Value>) -> Result<Option<String>, RepoError> {
        c.as_ref()
            .map(|v| {
                json::canonical(v)
                    .map(|b| String::from_utf8(b).unwrap_or_default())
                    .map_err(|source| RepoError::BadCustom {
                        path: path.to_string(),
                        source,
                    })
            })
            .transpose()
    }

    /// A stored `custom` value back.
    pub(super) fn parse_custom(text: Option<String>) -> Result<Option<Value>, RepoError> {
        text.map(|t| json::parse(t.as_bytes()).map_err(|e| corrupt("custom", e)))
            .transpose()
    }
}
