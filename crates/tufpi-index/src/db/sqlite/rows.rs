//! Rows of the SQLite `files` and `used_dists` tables, read inside any transaction: a file
//! row, the files of a project, the file holding a distribution identity.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::IndexError;
use crate::pages::{Digests, FileRow};

pub(super) fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    let meta: (Option<i64>, Option<String>, Option<String>) = (r.get(9)?, r.get(10)?, r.get(11)?);
    Ok(FileRow {
        filename: r.get(0)?,
        project: r.get(1)?,
        version: r.get(2)?,
        packagetype: r.get(3)?,
        path: r.get(4)?,
        digests: Digests {
            size: r.get::<_, i64>(5)? as u64,
            sha256: r.get(6)?,
            blake2b: r.get(7)?,
        },
        requires_python: r.get(8)?,
        metadata: match meta {
            (Some(size), Some(sha256), Some(blake2b)) => Some(Digests {
                size: size as u64,
                sha256,
                blake2b,
            }),
            _ => None,
        },
        upload_time: r.get(12)?,
        yanked: r.get(13)?,
    })
}

pub(super) const FILE_COLUMNS: &str = "filename, project, version, packagetype, path, size, sha256, blake2b, requires_python, metadata_size, metadata_sha256, metadata_blake2b, upload_time, yanked";

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
