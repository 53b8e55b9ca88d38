//! The index database: projects, files, every filename and every distribution identity
//! ([`crate::names::DistIdentity`]: project, release, wheel tags) ever used, rendered pages,
//! upload tokens (only their SHA-256 is stored) and an outbox of TUF target changes not yet
//! handed to the repository queue.
//!
//! Two backends, chosen at open and invisible to callers: SQLite (`DIR/index.db`,
//! [`IndexDb::open`]) and PostgreSQL ([`IndexDb::open_postgres`]: tables `index_*` next to
//! the repository's `repo_*` in one database, schema component `index`, so several replicas
//! share one index). The rules an upload or a management operation keeps are written once,
//! over the write transaction both offer (`tx`); each backend supplies its rows and its
//! locking (see `sqlite` and `pg`).
//!
//! One module per job: `conn` (the handle, the backend choice, the projects), `tx` (the write
//! transaction), `files` (uploads and the files they record), `pages` (rendered pages),
//! `tokens`, `outbox` (target records and the changes not yet queued), then the backends.

mod conn;
pub mod export;
pub(crate) mod files;
mod outbox;
mod pages;
mod pg;
mod rows;
mod sqlite;
#[cfg(test)]
mod tests;
mod tokens;
mod tx;

pub use conn::{IndexDb, Project};
pub use export::{
    import_in, postgres_tables_with_rows, IndexRows, PageRow, ProjectRow, StoredToken,
};
pub use files::{already_exists, References, RenderFn};
pub use outbox::QueueFn;
pub(crate) use outbox::KEPT_HASHES;
pub use pages::RemovePageFn;
pub use tokens::{hash_token, new_token, TokenScope};
pub(crate) use tx::{record_pages, WriteTx};
