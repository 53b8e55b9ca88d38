//! The repository's state store: role versions and expiries, the durable queue of pending
//! changes, the in-flight publish plan and per-bin target counts (the published bins are the
//! record of which targets each lists). The trait (`state`) is what the repository uses, so
//! PostgreSQL can follow; SQLite (`sqlite`) is the embedded default.

mod sqlite;
mod state;

pub use sqlite::SqliteStore;
pub use state::{PlanFn, RoleState, StateStore};
