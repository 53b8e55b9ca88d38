//! Rows of the `files` and `used_dists` tables, read inside any transaction: the files of a
//! project, a distribution's identity, the release a version belongs to.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::IndexError;
use crate::names::{DistIdentity, DistKind};
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

pub(crate) fn files_of(conn: &Connection, project: &str) -> Result<Vec<FileRow>, IndexError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE project = ?1 ORDER BY filename"
    ))?;
    let rows = stmt.query_map(params![project], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The distribution identity of a stored file.
pub(super) fn identity_of(file: &FileRow) -> Result<DistIdentity, IndexError> {
    let kind = if file.packagetype == DistKind::Wheel.packagetype() {
        DistKind::Wheel
    } else {
        DistKind::Sdist
    };
    let version = crate::names::parse_version(&file.version).map_err(IndexError::Internal)?;
    DistIdentity::new(&file.filename, &file.project, &version, kind).map_err(IndexError::Internal)
}

pub(super) fn dist_used(
    conn: &Connection,
    id: &DistIdentity,
) -> Result<Option<String>, IndexError> {
    Ok(conn
        .query_row(
            "SELECT filename FROM used_dists WHERE key = ?1",
            params![id.key()],
            |r| r.get(0),
        )
        .optional()?)
}

/// The version string of `project`'s release that is PEP 440-equal to `version`, if it has
/// one (`4.0` for `4.0.0`).
pub(super) fn release_version(
    conn: &Connection,
    project: &str,
    version: &str,
) -> Result<Option<String>, IndexError> {
    let Ok(want) = crate::names::parse_version(version) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT DISTINCT version FROM files WHERE project = ?1")?;
    let versions = stmt.query_map(params![project], |r| r.get::<_, String>(0))?;
    for v in versions {
        let v = v?;
        if crate::names::parse_version(&v).is_ok_and(|p| p == want) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
