//! Every row of the SQLite database, read in one transaction (a migration's source).

use rusqlite::Connection;

use super::read_outbox;
use super::rows::{file_row, FILE_COLUMNS};
use super::SqliteIndex;
use crate::db::export::{IndexRows, PageRow, ProjectRow, StoredToken};
use crate::error::IndexError;

/// The tables, as `tables_with_rows` names them.
const TABLES: [&str; 7] = [
    "projects",
    "files",
    "used_filenames",
    "used_dists",
    "pages",
    "tokens",
    "outbox",
];

fn all<T>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, IndexError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl SqliteIndex {
    pub(in crate::db) fn export(&mut self) -> Result<IndexRows, IndexError> {
        // A read transaction: every table as of one moment.
        let tx = self.conn.transaction()?;
        let c: &Connection = &tx;
        let rows = IndexRows {
            projects: all(
                c,
                "SELECT name, display_name, created, html_sha256, json_sha256 FROM projects",
                |r| {
                    Ok(ProjectRow {
                        name: r.get(0)?,
                        display_name: r.get(1)?,
                        created: r.get(2)?,
                        html_sha256: r.get(3)?,
                        json_sha256: r.get(4)?,
                    })
                },
            )?,
            files: all(c, &format!("SELECT {FILE_COLUMNS} FROM files"), file_row)?,
            used_filenames: all(c, "SELECT filename FROM used_filenames", |r| r.get(0))?,
            used_dists: all(c, "SELECT key, filename FROM used_dists", |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?,
            pages: all(
                c,
                "SELECT sha256, blake2b, project, kind, size FROM pages",
                |r| {
                    Ok(PageRow {
                        sha256: r.get(0)?,
                        blake2b: r.get(1)?,
                        project: r.get(2)?,
                        kind: r.get(3)?,
                        size: r.get::<_, i64>(4)? as u64,
                    })
                },
            )?,
            tokens: all(
                c,
                "SELECT hash, project, description, created FROM tokens",
                |r| {
                    Ok(StoredToken {
                        hash: r.get(0)?,
                        project: r.get(1)?,
                        description: r.get(2)?,
                        created: r.get(3)?,
                    })
                },
            )?,
            outbox: read_outbox(c)?.1,
        };
        tx.rollback()?;
        Ok(rows)
    }

    pub(in crate::db) fn tables_with_rows(&mut self) -> Result<Vec<&'static str>, IndexError> {
        let mut out = Vec::new();
        for t in TABLES {
            let any: bool =
                self.conn
                    .query_row(&format!("SELECT EXISTS (SELECT 1 FROM {t})"), [], |r| {
                        r.get(0)
                    })?;
            if any {
                out.push(t);
            }
        }
        Ok(out)
    }
}
