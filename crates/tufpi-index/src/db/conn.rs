//! The database handle: opening it on one backend or the other, the write transaction
//! every writer goes through, and the projects it lists.

use std::path::Path;

use tufpi_repo::RepoConfig;

use super::pg::PgIndex;
use super::sqlite::SqliteIndex;
use super::tx::WriteTx;
use crate::error::IndexError;

/// A project's names and current pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Normalised name.
    pub name: String,
    /// Name as first uploaded.
    pub display_name: String,
    /// SHA-256 of the current HTML page.
    pub html_sha256: Option<String>,
    /// SHA-256 of the current JSON page.
    pub json_sha256: Option<String>,
}

pub(super) fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Where the rows live: chosen at open, invisible to callers.
pub(super) enum Backend {
    /// `DIR/index.db`, one connection.
    Sqlite(SqliteIndex),
    /// Tables `index_*` in a shared PostgreSQL database, through a pool.
    Postgres(PgIndex),
}

/// Call the same-named method of whichever backend `$db` has.
macro_rules! dispatch {
    ($db:expr, $b:ident => $call:expr) => {
        match $db {
            $crate::db::conn::Backend::Sqlite($b) => $call,
            $crate::db::conn::Backend::Postgres($b) => $call,
        }
    };
}
pub(super) use dispatch;

/// The index database.
pub struct IndexDb {
    pub(super) backend: Backend,
}

impl IndexDb {
    /// Open (creating if needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<IndexDb, IndexError> {
        Ok(IndexDb {
            backend: Backend::Sqlite(SqliteIndex::open(path)?),
        })
    }

    /// Open the index's tables in PostgreSQL database `db`, applying the schema migrations
    /// it lacks (component `index`, tables `index_*`); refused if the database holds a newer
    /// schema than this build knows.
    pub fn open_postgres(db: &tufpi_pg::Database) -> Result<IndexDb, IndexError> {
        Ok(IndexDb {
            backend: Backend::Postgres(PgIndex::open(db)?),
        })
    }

    /// Queue target changes straight in the repository's queue (`repo_queue`, in the same
    /// PostgreSQL database, validated and binned by `cfg` as `Repository::enqueue` does),
    /// inside each upload's or operation's own transaction, instead of the outbox. Give the
    /// repository's current configuration (again after its target hashes change); its
    /// tables must exist (`PostgresStore::open`). Refused on SQLite, whose repository is
    /// another database.
    pub fn queue_in_repository(&mut self, cfg: RepoConfig) -> Result<(), IndexError> {
        match &mut self.backend {
            Backend::Postgres(b) => {
                b.queue_in_repository(cfg);
                Ok(())
            }
            Backend::Sqlite(_) => Err(IndexError::Internal(
                "only an index in PostgreSQL queues in the repository's transaction".into(),
            )),
        }
    }

    /// Run `f` in one write transaction, committed if it returns `Ok`, rolled back
    /// otherwise.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        dispatch!(&mut self.backend, b => b.write(f))
    }

    /// A project by normalised name.
    pub fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
        dispatch!(&self.backend, b => b.project(name))
    }

    /// Every project: (normalised, display) names, by normalised name.
    pub fn projects(&self) -> Result<Vec<(String, String)>, IndexError> {
        dispatch!(&self.backend, b => b.projects())
    }

    /// Numbers of projects and files.
    pub fn counts(&self) -> Result<(u64, u64), IndexError> {
        dispatch!(&self.backend, b => b.counts())
    }
}
