//! The index database (`DIR/index.db`, SQLite): projects, files, every filename and every
//! distribution identity ([`crate::names::DistIdentity`]: project, release, wheel tags) ever
//! used, rendered pages, upload tokens (only their SHA-256 is stored) and an outbox of TUF
//! target changes not yet handed to the repository queue.
//!
//! One module per job: `schema` (tables and migrations), `conn` (the handle and the
//! projects), `files` (uploads and the files they record), `pages` (rendered pages),
//! `tokens`, `outbox` (target records and the changes not yet queued), `rows` (row readers
//! the others share).

mod conn;
mod files;
mod outbox;
mod pages;
mod rows;
mod schema;
mod tokens;

pub use conn::{IndexDb, Project};
pub use files::{already_exists, References, RenderFn};
pub(crate) use outbox::{push_outbox, KEPT_HASHES};
pub(crate) use pages::record_pages;
pub(crate) use rows::files_of;
pub use tokens::{hash_token, new_token, TokenScope};
