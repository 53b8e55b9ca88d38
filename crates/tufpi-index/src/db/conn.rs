//! The database handle: opening (creating and migrating) it, and the projects it lists.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{migrate, SCHEMA};
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

/// The index database.
pub struct IndexDb {
    pub(crate) conn: Connection,
}

impl IndexDb {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<IndexDb, IndexError> {
        let mut conn = Connection::open(path)?;
        // WAL + synchronous=FULL: an acknowledged upload survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        Ok(IndexDb { conn })
    }

    /// A project by normalised name.
    pub fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
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

    /// Every project: (normalised, display) names, by normalised name.
    pub fn projects(&self) -> Result<Vec<(String, String)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, display_name FROM projects ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Numbers of projects and files.
    pub fn counts(&self) -> Result<(u64, u64), IndexError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM projects), (SELECT COUNT(*) FROM files)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }
}
