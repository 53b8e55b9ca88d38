//! The PostgreSQL backend: tables `index_*` (see `schema`) in the database the repository's
//! `repo_*` tables share, reached through `tufpi_pg`'s pool, so every replica of the index
//! serves and takes uploads.
//!
//! What SQLite gets from its one write lock, this backend gets from row and table locks,
//! under PostgreSQL's default READ COMMITTED isolation (each statement sees what committed
//! before it, so a writer that waited on a lock then sees the winner's rows):
//! - a project's writers (uploads, yank/unyank/remove) lock its row first (`INSERT … ON
//!   CONFLICT DO UPDATE` for an upload, which also creates it; `SELECT … FOR UPDATE` for an
//!   operation) and run one after the other: its files, pages and outbox entries are those of
//!   one writer at a time, and a project's outbox entries are numbered in commit order;
//! - filenames and distribution identities are claimed by `INSERT … ON CONFLICT DO NOTHING`
//!   on unique keys: of two transactions claiming one, the second waits for the first and
//!   claims nothing if it committed, so a name is used once ever and the loser gets the same
//!   "File already exists" refusal as on SQLite;
//! - the outbox drain takes a transaction-scoped advisory lock (drains run one at a time,
//!   uploads never wait on it) and deletes exactly the entries it handed over, so an upload
//!   committing meanwhile keeps its entries for the next drain;
//! - page collection and the reference listing lock `index_projects` in EXCLUSIVE mode,
//!   which waits for every project writer in flight and holds new ones off, as SQLite's write
//!   lock does.
//!
//! The outbox hands target changes to the repository queue after commit, as on SQLite;
//! after [`super::IndexDb::queue_in_repository`] they go into the repository's queue
//! (`repo_queue`, same database) in the writer's own transaction instead, and the outbox stays
//! empty.
//!
//! A connection that fails (refused, closed, timed out, a server shutting down) or a lock
//! that cannot be had in time becomes [`IndexError::Unavailable`]: 503 with Retry-After.

mod export;
mod maint;
mod schema;
mod tx;

use tufpi_pg::postgres::Row;
use tufpi_pg::{Database, PgError};
use tufpi_repo::{Change, RepoConfig};
use tufpi_simple::PageKind;

use super::conn::Project;
use super::outbox::change_of;
use crate::error::IndexError;
use crate::pages::{Digests, FileRow};
pub(super) use export::{import_in, tables_with_rows};
use schema::{filename_key, MIGRATIONS};

/// The schema component the index's migrations are recorded under.
const COMPONENT: &str = "index";

/// The index's rows in PostgreSQL.
pub(crate) struct PgIndex {
    db: Database,
    /// With the repository's configuration, target changes go straight into its queue
    /// (`repo_queue`) in the writer's own transaction instead of the outbox.
    queue: Option<RepoConfig>,
}

impl From<PgError> for IndexError {
    fn from(e: PgError) -> IndexError {
        if e.is_unavailable() {
            IndexError::Unavailable(e.to_string())
        } else {
            IndexError::Internal(format!("index database: {e}"))
        }
    }
}

impl From<tufpi_pg::postgres::Error> for IndexError {
    fn from(e: tufpi_pg::postgres::Error) -> IndexError {
        // A deadlock or a lock not had in time passes too: worth a retry, not a 500.
        if tufpi_pg::is_unavailable_error(&e) {
            return IndexError::Unavailable(tufpi_pg::describe(&e));
        }
        IndexError::from(PgError::from(e))
    }
}

use super::rows::{self, Columns, FILE_COLUMNS};

/// A PostgreSQL row's columns, read by `postgres`.
impl Columns for Row {
    type Error = tufpi_pg::postgres::Error;
    fn text(&self, i: usize) -> Result<String, Self::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, Self::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error> {
        self.try_get(i)
    }
}

/// A file row read from [`FILE_COLUMNS`].
fn file_row(r: &Row) -> Result<FileRow, IndexError> {
    Ok(rows::file_row(r)?)
}

use tufpi_pg::postgres::GenericClient;

/// The files of `project`, by filename as SQLite's NOCASE orders them.
fn files_of(c: &mut impl GenericClient, project: &str) -> Result<Vec<FileRow>, IndexError> {
    c.query(
        &format!("SELECT {FILE_COLUMNS} FROM index_files WHERE project = $1 ORDER BY filename_key"),
        &[&project],
    )?
    .iter()
    .map(file_row)
    .collect()
}

fn dist_used(c: &mut impl GenericClient, key: &str) -> Result<Option<String>, IndexError> {
    match c.query_opt(
        "SELECT filename FROM index_used_dists WHERE key = $1",
        &[&key],
    )? {
        Some(r) => Ok(Some(r.try_get(0)?)),
        None => Ok(None),
    }
}

/// The outbox in order: (sequence number, change).
fn read_outbox(c: &mut impl GenericClient) -> Result<Vec<(i64, Change)>, IndexError> {
    c.query(
        "SELECT seq, op, path, size, sha256, blake2b FROM index_outbox ORDER BY seq",
        &[],
    )?
    .iter()
    .map(|r| {
        let op: String = r.try_get(1)?;
        Ok((
            r.try_get(0)?,
            change_of(
                &op,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ),
        ))
    })
    .collect()
}

impl PgIndex {
    /// Apply the index's migrations `db` lacks (refused if its schema is newer).
    pub(super) fn open(db: &Database) -> Result<PgIndex, IndexError> {
        tufpi_pg::migrate(db, COMPONENT, MIGRATIONS)?;
        Ok(PgIndex {
            db: db.clone(),
            queue: None,
        })
    }

    /// Queue target changes in the repository's queue, validated and binned by `cfg`,
    /// inside each writer's transaction (the repository's tables must exist).
    pub(super) fn queue_in_repository(&mut self, cfg: RepoConfig) {
        self.queue = Some(cfg);
    }

    pub(super) fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
        let row = self.db.get()?.query_opt(
            "SELECT name, display_name, html_sha256, json_sha256 FROM index_projects WHERE name = $1",
            &[&name],
        )?;
        row.map(|r| {
            Ok(Project {
                name: r.try_get(0)?,
                display_name: r.try_get(1)?,
                html_sha256: r.try_get(2)?,
                json_sha256: r.try_get(3)?,
            })
        })
        .transpose()
    }

    pub(super) fn projects(&self) -> Result<Vec<(String, String)>, IndexError> {
        self.db
            .get()?
            .query(
                "SELECT name, display_name FROM index_projects ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub(super) fn counts(&self) -> Result<(u64, u64), IndexError> {
        let r = self.db.get()?.query_one(
            "SELECT (SELECT COUNT(*) FROM index_projects), (SELECT COUNT(*) FROM index_files)",
            &[],
        )?;
        Ok((
            r.try_get::<_, i64>(0)? as u64,
            r.try_get::<_, i64>(1)? as u64,
        ))
    }

    pub(super) fn filename_recorded(&self, filename: &str) -> Result<bool, IndexError> {
        Ok(self
            .db
            .get()?
            .query_opt(
                "SELECT 1 FROM index_used_filenames WHERE filename_key = $1",
                &[&filename_key(filename)],
            )?
            .is_some())
    }

    pub(super) fn dist_used(&self, key: &str) -> Result<Option<String>, IndexError> {
        dist_used(&mut *self.db.get()?, key)
    }

    pub(super) fn files_of(&self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&mut *self.db.get()?, project)
    }

    pub(super) fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        self.db
            .get()?
            .query_opt(
                &format!("SELECT {FILE_COLUMNS} FROM index_files WHERE filename_key = $1"),
                &[&filename_key(filename)],
            )?
            .as_ref()
            .map(file_row)
            .transpose()
    }

    pub(super) fn page_digests(&self, sha256: &str) -> Result<Option<Digests>, IndexError> {
        let row = self.db.get()?.query_opt(
            "SELECT size, sha256, blake2b FROM index_pages WHERE sha256 = $1",
            &[&sha256],
        )?;
        row.map(|r| {
            Ok(Digests {
                size: r.try_get::<_, i64>(0)? as u64,
                sha256: r.try_get(1)?,
                blake2b: r.try_get(2)?,
            })
        })
        .transpose()
    }

    pub(super) fn outbox(&self) -> Result<Vec<Change>, IndexError> {
        Ok(read_outbox(&mut *self.db.get()?)?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    pub(super) fn outbox_len(&self) -> Result<u64, IndexError> {
        let r = self
            .db
            .get()?
            .query_one("SELECT COUNT(*) FROM index_outbox", &[])?;
        Ok(r.try_get::<_, i64>(0)? as u64)
    }

    pub(super) fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        let row = self.db.get()?.query_opt(
            "SELECT sha256 FROM index_pages WHERE (sha256 = $1 OR blake2b = $1) AND project = $2 AND kind = $3",
            &[&digest, &project, &kind.as_str()],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub(super) fn superseded_pages(&self) -> Result<Vec<(String, String, String)>, IndexError> {
        self.db
            .get()?
            .query(
                "SELECT sha256, project, kind FROM index_pages WHERE sha256 NOT IN \
                 (SELECT html_sha256 FROM index_projects WHERE html_sha256 IS NOT NULL \
                  UNION SELECT json_sha256 FROM index_projects WHERE json_sha256 IS NOT NULL) \
                 ORDER BY sha256",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    pub(super) fn token_project(&self, hash: &str) -> Result<Option<Option<String>>, IndexError> {
        let row = self
            .db
            .get()?
            .query_opt("SELECT project FROM index_tokens WHERE hash = $1", &[&hash])?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub(super) fn tokens(&self) -> Result<Vec<super::tokens::TokenRow>, IndexError> {
        self.db
            .get()?
            .query(
                "SELECT hash, project, description, created FROM index_tokens ORDER BY created, hash",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }
}
