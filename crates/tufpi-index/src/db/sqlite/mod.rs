//! The SQLite backend (`DIR/index.db`): one connection, write transactions `IMMEDIATE` (the
//! database's one write lock serialises every writer of every process), WAL with
//! `synchronous=FULL` (an acknowledged upload survives power loss).

mod export;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tufpi_repo::Change;
use tufpi_simple::PageKind;

use super::conn::{now_text, Project};
use super::files::{reference_file, References};
use super::outbox::{change_of, outbox_row, QueueFn};
use super::pages::RemovePageFn;
use super::tokens::TokenRow;
use super::tx::WriteTx;
use crate::error::IndexError;
use crate::pages::{Digests, FileRow};
use rows::{dist_used, file_row, files_of, FILE_COLUMNS};
use schema::{migrate, SCHEMA};

/// The index's rows in SQLite.
pub(crate) struct SqliteIndex {
    pub(super) conn: Connection,
}

impl SqliteIndex {
    /// Open (creating if needed) the database at `path`.
    pub(super) fn open(path: &Path) -> Result<SqliteIndex, IndexError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        Ok(SqliteIndex { conn })
    }

    pub(super) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut tx = SqliteTx(
            self.conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        );
        let out = f(&mut tx)?;
        tx.0.commit()?;
        Ok(out)
    }

    pub(super) fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, display_name, html_sha256, json_sha256 FROM projects WHERE name = ?1",
                params![name],
                |r| {
                    Ok(Project {
                        name: r.get(0)?,
                        display_name: r.get(1)?,
                        html_sha256: r.get(2)?,
                        json_sha256: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub(super) fn projects(&self) -> Result<Vec<(String, String)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, display_name FROM projects ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn counts(&self) -> Result<(u64, u64), IndexError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM projects), (SELECT COUNT(*) FROM files)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    pub(super) fn filename_recorded(&self, filename: &str) -> Result<bool, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM used_filenames WHERE filename = ?1",
                params![filename],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub(super) fn dist_used(&self, key: &str) -> Result<Option<String>, IndexError> {
        dist_used(&self.conn, key)
    }

    pub(super) fn files_of(&self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&self.conn, project)
    }

    pub(super) fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {FILE_COLUMNS} FROM files WHERE filename = ?1"),
                params![filename],
                file_row,
            )
            .optional()?)
    }

    pub(super) fn with_references(
        &mut self,
        f: &mut dyn FnMut(&References),
    ) -> Result<(), IndexError> {
        // A write transaction only for its lock: rolled back.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refs = References::default();
        {
            let mut stmt = tx.prepare("SELECT path, metadata_sha256 IS NOT NULL FROM files")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                reference_file(&mut refs, r.get(0)?, r.get(1)?);
            }
            let mut stmt = tx.prepare("SELECT sha256 FROM pages")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                refs.pages.insert(r.get(0)?);
            }
        }
        f(&refs);
        tx.rollback()?;
        Ok(())
    }

    pub(super) fn page_digests(&self, sha256: &str) -> Result<Option<Digests>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT size, sha256, blake2b FROM pages WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(Digests {
                        size: r.get::<_, i64>(0)? as u64,
                        sha256: r.get(1)?,
                        blake2b: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub(super) fn outbox(&self) -> Result<Vec<Change>, IndexError> {
        read_outbox(&self.conn).map(|(_, changes)| changes)
    }

    pub(super) fn outbox_len(&self) -> Result<u64, IndexError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    pub(super) fn drain_outbox(&mut self, queue: &mut QueueFn<'_>) -> Result<usize, IndexError> {
        // Most calls find nothing: check without taking the write lock.
        let empty: bool =
            self.conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM outbox)", [], |r| r.get(0))?;
        if empty {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (last, changes) = read_outbox(&tx)?;
        if changes.is_empty() {
            return Ok(0);
        }
        queue(&changes)?;
        tx.execute("DELETE FROM outbox WHERE seq <= ?1", params![last])?;
        tx.commit()?;
        Ok(changes.len())
    }

    pub(super) fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM pages WHERE (sha256 = ?1 OR blake2b = ?1) AND project = ?2 AND kind = ?3",
                params![digest, project, kind.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(super) fn superseded_pages(&self) -> Result<Vec<(String, String, String)>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT sha256, project, kind FROM pages WHERE sha256 NOT IN \
             (SELECT html_sha256 FROM projects WHERE html_sha256 IS NOT NULL \
              UNION SELECT json_sha256 FROM projects WHERE json_sha256 IS NOT NULL)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn delete_superseded_pages(
        &mut self,
        pages: &[String],
        remove: &RemovePageFn<'_>,
    ) -> Result<usize, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        for sha in pages {
            let current: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM projects WHERE html_sha256 = ?1 OR json_sha256 = ?1)",
                params![sha],
                |r| r.get(0),
            )?;
            if current {
                continue;
            }
            remove(sha)?;
            deleted += tx.execute("DELETE FROM pages WHERE sha256 = ?1", params![sha])?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    pub(super) fn insert_token(
        &mut self,
        hash: &str,
        project: Option<&str>,
        description: Option<&str>,
        created: &str,
    ) -> Result<(), IndexError> {
        self.conn.execute(
            "INSERT INTO tokens(hash, project, description, created) VALUES (?1, ?2, ?3, ?4)",
            params![hash, project, description, created],
        )?;
        Ok(())
    }

    pub(super) fn token_project(&self, hash: &str) -> Result<Option<Option<String>>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT project FROM tokens WHERE hash = ?1",
                params![hash],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    pub(super) fn tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, project, description, created FROM tokens ORDER BY created")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The hashes starting with `id`, by hash; the token deleted if it is the only one.
    pub(super) fn revoke_matching(&mut self, id: &str) -> Result<Vec<String>, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let matches: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT hash FROM tokens WHERE substr(hash, 1, ?1) = ?2 ORDER BY hash")?;
            let rows = stmt.query_map(params![id.len() as i64, id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if let [hash] = matches.as_slice() {
            tx.execute("DELETE FROM tokens WHERE hash = ?1", params![hash])?;
            tx.commit()?;
        }
        Ok(matches)
    }
}

/// The outbox in order, with the sequence number of its last entry.
fn read_outbox(conn: &Connection) -> Result<(i64, Vec<Change>), IndexError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, op, path, size, sha256, blake2b FROM outbox ORDER BY seq")?;
    let rows: Vec<(i64, String, String, i64, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let last = rows.last().map(|r| r.0).unwrap_or(0);
    let changes = rows
        .into_iter()
        .map(|(_, op, path, size, sha256, blake2b)| change_of(&op, path, size, sha256, blake2b))
        .collect();
    Ok((last, changes))
}

/// A write transaction on the SQLite database (`IMMEDIATE`: it holds the write lock).
struct SqliteTx<'a>(Transaction<'a>);

impl WriteTx for SqliteTx<'_> {
    fn lock_project(&mut self, name: &str, create_as: Option<&str>) -> Result<bool, IndexError> {
        if let Some(display_name) = create_as {
            self.0.execute(
                "INSERT OR IGNORE INTO projects(name, display_name, created) VALUES (?1, ?2, ?3)",
                params![name, display_name, now_text()],
            )?;
            return Ok(true);
        }
        Ok(self
            .0
            .query_row(
                "SELECT 1 FROM projects WHERE name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn claim_filename(&mut self, filename: &str) -> Result<bool, IndexError> {
        Ok(self.0.execute(
            "INSERT OR IGNORE INTO used_filenames(filename) VALUES (?1)",
            params![filename],
        )? > 0)
    }

    fn claim_dist(&mut self, key: &str, filename: &str) -> Result<Option<String>, IndexError> {
        if let Some(previous) = dist_used(&self.0, key)? {
            return Ok(Some(previous));
        }
        self.0.execute(
            "INSERT INTO used_dists(key, filename) VALUES (?1, ?2)",
            params![key, filename],
        )?;
        Ok(None)
    }

    fn files_of(&mut self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&self.0, project)
    }

    fn versions_of(&mut self, project: &str) -> Result<Vec<String>, IndexError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT DISTINCT version FROM files WHERE project = ?1")?;
        let versions = stmt.query_map(params![project], |r| r.get::<_, String>(0))?;
        Ok(versions.collect::<Result<_, _>>()?)
    }

    fn insert_file(&mut self, file: &FileRow) -> Result<(), IndexError> {
        let m = file.metadata.as_ref();
        self.0.execute(
            &format!("INSERT INTO files({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                file.filename,
                file.project,
                file.version,
                file.packagetype,
                file.path,
                file.digests.size as i64,
                file.digests.sha256,
                file.digests.blake2b,
                file.requires_python,
                m.map(|d| d.size as i64),
                m.map(|d| d.sha256.clone()),
                m.map(|d| d.blake2b.clone()),
                file.upload_time,
                file.yanked,
            ],
        )?;
        Ok(())
    }

    fn set_yanked(&mut self, filename: &str, reason: Option<&str>) -> Result<bool, IndexError> {
        Ok(self.0.execute(
            "UPDATE files SET yanked = ?1 WHERE filename = ?2",
            params![reason, filename],
        )? > 0)
    }

    fn delete_file(&mut self, filename: &str) -> Result<(), IndexError> {
        self.0
            .execute("DELETE FROM files WHERE filename = ?1", params![filename])?;
        Ok(())
    }

    fn delete_project(&mut self, name: &str) -> Result<(), IndexError> {
        self.0
            .execute("DELETE FROM projects WHERE name = ?1", params![name])?;
        Ok(())
    }

    fn insert_page(
        &mut self,
        project: &str,
        kind: PageKind,
        d: &Digests,
    ) -> Result<(), IndexError> {
        self.0.execute(
            "INSERT OR IGNORE INTO pages(sha256, blake2b, project, kind, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.sha256, d.blake2b, project, kind.as_str(), d.size as i64],
        )?;
        Ok(())
    }

    fn set_current_pages(
        &mut self,
        project: &str,
        html: &str,
        json: &str,
    ) -> Result<(), IndexError> {
        self.0.execute(
            "UPDATE projects SET html_sha256 = ?1, json_sha256 = ?2 WHERE name = ?3",
            params![html, json, project],
        )?;
        Ok(())
    }

    fn push_outbox(&mut self, changes: &[Change]) -> Result<(), IndexError> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO outbox(op, path, size, sha256, blake2b) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for c in changes {
            let (op, path, size, sha256, blake2b) = outbox_row(c);
            stmt.execute(params![op, path, size, sha256, blake2b])?;
        }
        Ok(())
    }
}
