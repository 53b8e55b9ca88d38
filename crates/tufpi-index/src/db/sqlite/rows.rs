//! Rows of the SQLite `files` and `used_dists` tables, read inside any transaction: a file
//! row, the files of a project, the file holding a distribution identity.

use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) use crate::db::rows::FILE_COLUMNS;
use crate::db::rows::{self, Columns};
use crate::error::IndexError;
use crate::pages::FileRow;

/// A SQLite row's columns, read by `rusqlite`.
impl Columns for Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
}

/// A file row read from [`FILE_COLUMNS`] (as `query_map` takes it).
pub(super) fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    rows::file_row(r)
}

pub(super) fn files_of(conn: &Connection, project: &str) -> Result<Vec<FileRow>, IndexError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE project = ?1 ORDER BY filename"
    ))?;
    let rows = stmt.query_map(params![project], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn dist_used(conn: &Connection, key: &str) -> Result<Option<String>, IndexError> {
    Ok(conn
        .query_row(
            "SELECT filename FROM used_dists WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?)
}
