//! Every row of an index, read from either backend and loaded into an empty PostgreSQL one:
//! what `tufpi migrate` moves from a data directory's SQLite database to a scaled-out
//! deployment. Tokens travel as their hashes (the only form stored).

use tufpi_pg::postgres::Transaction;
use tufpi_repo::Change;

use super::conn::{dispatch, Backend, IndexDb};
use crate::error::IndexError;
use crate::pages::FileRow;

/// A project row with every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    /// Normalised name.
    pub name: String,
    /// Name as first uploaded.
    pub display_name: String,
    /// When it was created.
    pub created: String,
    /// SHA-256 of the current HTML page.
    pub html_sha256: Option<String>,
    /// SHA-256 of the current JSON page.
    pub json_sha256: Option<String>,
}

/// A stored page's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRow {
    /// SHA-256 (the page's key, `pages/<sha256>`).
    pub sha256: String,
    /// BLAKE2b-256.
    pub blake2b: String,
    /// The project it lists.
    pub project: String,
    /// `html` or `json`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
}

/// A stored token's row (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// SHA-256 of the token.
    pub hash: String,
    /// The only project it may upload to, if scoped.
    pub project: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// When it was made.
    pub created: String,
}

/// Every row of an index, each table in key order (so two exports compare equal when the
/// indexes hold the same rows, whatever their backends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRows {
    /// Projects, by name.
    pub projects: Vec<ProjectRow>,
    /// Files, by filename (ASCII case folded, as the key compares).
    pub files: Vec<FileRow>,
    /// Every filename ever used, by name (case folded).
    pub used_filenames: Vec<String>,
    /// Every distribution identity ever used: (key, the filename that took it), by key.
    pub used_dists: Vec<(String, String)>,
    /// Stored pages, by SHA-256.
    pub pages: Vec<PageRow>,
    /// Tokens, by hash.
    pub tokens: Vec<StoredToken>,
    /// Target changes not yet queued in the repository, in order.
    pub outbox: Vec<Change>,
}

impl IndexRows {
    /// Sort every table by its key (the outbox keeps its order).
    pub(super) fn sort(&mut self) {
        let fold = |s: &str| s.to_ascii_lowercase();
        self.projects.sort_by(|a, b| a.name.cmp(&b.name));
        self.files.sort_by_key(|f| fold(&f.filename));
        self.used_filenames.sort_by_key(|f| fold(f));
        self.used_dists.sort();
        self.pages.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        self.tokens.sort_by(|a, b| a.hash.cmp(&b.hash));
    }

    /// Total number of rows.
    pub fn len(&self) -> usize {
        self.projects.len()
            + self.files.len()
            + self.used_filenames.len()
            + self.used_dists.len()
            + self.pages.len()
            + self.tokens.len()
            + self.outbox.len()
    }

    /// Whether there are no rows at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored objects the rows reference, with their sizes: each file (`packages/…`),
    /// its core metadata (`….metadata`) and each page (`pages/<sha256>`).
    pub fn objects(&self) -> Vec<(String, u64)> {
        let mut out = Vec::with_capacity(self.files.len() * 2 + self.pages.len());
        for f in &self.files {
            out.push((f.path.clone(), f.digests.size));
            if let Some(m) = &f.metadata {
                out.push((format!("{}.metadata", f.path), m.size));
            }
        }
        for p in &self.pages {
            out.push((format!("{}/{}", crate::storage::PAGES, p.sha256), p.size));
        }
        out
    }
}

impl IndexDb {
    /// Every row, each table in key order (a consistent view: one read transaction).
    pub fn export(&mut self) -> Result<IndexRows, IndexError> {
        let mut rows = dispatch!(&mut self.backend, b => b.export())?;
        rows.sort();
        Ok(rows)
    }

    /// The tables that hold rows (an empty list: an empty index).
    pub fn tables_with_rows(&mut self) -> Result<Vec<&'static str>, IndexError> {
        dispatch!(&mut self.backend, b => b.tables_with_rows())
    }

    /// Load `rows` into this index, which must be empty, in one transaction (PostgreSQL
    /// only: a migration's target).
    pub fn import(&mut self, rows: &IndexRows) -> Result<(), IndexError> {
        match &mut self.backend {
            Backend::Postgres(b) => b.import(rows),
            Backend::Sqlite(_) => Err(IndexError::Internal(
                "rows are imported into an index in PostgreSQL only".into(),
            )),
        }
    }
}

/// Load `rows` into the index's PostgreSQL tables inside the caller's transaction `tx` (so
/// a migration commits them with the repository's state); refused unless every table is
/// empty. The schema must exist ([`IndexDb::open_postgres`]).
pub fn import_in(tx: &mut Transaction<'_>, rows: &IndexRows) -> Result<(), IndexError> {
    super::pg::import_in(tx, rows)
}

/// The index tables of PostgreSQL database `db` that exist and hold rows, without creating
/// any (a migration checks its target before writing to it).
pub fn postgres_tables_with_rows(db: &tufpi_pg::Database) -> Result<Vec<&'static str>, IndexError> {
    super::pg::tables_with_rows(&mut *db.get()?)
}
