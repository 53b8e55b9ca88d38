//! The file row both backends read: its columns ([`FILE_COLUMNS`], one order for every
//! `SELECT` and `INSERT`) and how a [`FileRow`] is built from them ([`file_row`]); each
//! backend only says how its driver reads a column ([`Columns`]).

use crate::pages::{Digests, FileRow};

/// The columns a [`FileRow`] is read from and written to, in [`file_row`]'s order (the
/// table is `files` on SQLite, `index_files` on PostgreSQL).
pub(super) const FILE_COLUMNS: &str = "filename, project, version, packagetype, path, size, sha256, blake2b, requires_python, metadata_size, metadata_sha256, metadata_blake2b, upload_time, yanked";

/// A row's columns by position, as a backend's driver reads them.
pub(super) trait Columns {
    /// The driver's error.
    type Error;
    /// A `TEXT` column.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A 64-bit integer column.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    /// A nullable 64-bit integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
}

/// A file row read from [`FILE_COLUMNS`].
pub(super) fn file_row<R: Columns>(r: &R) -> Result<FileRow, R::Error> {
    let meta = (r.opt_int(9)?, r.opt_text(10)?, r.opt_text(11)?);
    Ok(FileRow {
        filename: r.text(0)?,
        project: r.text(1)?,
        version: r.text(2)?,
        packagetype: r.text(3)?,
        path: r.text(4)?,
        digests: Digests {
            size: r.int(5)? as u64,
            sha256: r.text(6)?,
            blake2b: r.text(7)?,
        },
        requires_python: r.opt_text(8)?,
        metadata: match meta {
            (Some(size), Some(sha256), Some(blake2b)) => Some(Digests {
                size: size as u64,
                sha256,
                blake2b,
            }),
            _ => None,
        },
        upload_time: r.text(12)?,
        yanked: r.opt_text(13)?,
    })
}
