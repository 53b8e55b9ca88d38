//! The SQLite database's tables, and the migration of databases made by earlier versions.

use rusqlite::{params, Connection, TransactionBehavior};

use super::rows::{file_row, FILE_COLUMNS};
use crate::db::files::identity_of;
use crate::error::IndexError;
use crate::names::DistIdentity;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created TEXT NOT NULL,
    html_sha256 TEXT,
    json_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS files (
    filename TEXT PRIMARY KEY COLLATE NOCASE,
    project TEXT NOT NULL,
    version TEXT NOT NULL,
    packagetype TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL,
    requires_python TEXT,
    metadata_size INTEGER,
    metadata_sha256 TEXT,
    metadata_blake2b TEXT,
    upload_time TEXT NOT NULL,
    yanked TEXT
);
CREATE INDEX IF NOT EXISTS files_project ON files(project);
CREATE TABLE IF NOT EXISTS used_filenames (filename TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS used_dists (key TEXT PRIMARY KEY, filename TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    sha256 TEXT PRIMARY KEY,
    blake2b TEXT NOT NULL,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_blake2b ON pages(blake2b);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    project TEXT,
    description TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL,
    op TEXT NOT NULL DEFAULT 'add'
);
";

/// Add columns that databases made by earlier versions lack (serialised against other
/// processes opening the same database).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), IndexError> {
    let has_op = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'op'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !has_op(conn)? {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !has_op(&tx)? {
            tx.execute_batch("ALTER TABLE outbox ADD COLUMN op TEXT NOT NULL DEFAULT 'add'")?;
        }
        tx.commit()?;
    }
    backfill_used_dists(conn)
}

/// Record the distribution identities of the files used before `used_dists` existed: those of
/// current files exactly, and every identity each filename ever used may stand for.
fn backfill_used_dists(conn: &mut Connection) -> Result<(), IndexError> {
    let needed = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM used_dists) AND EXISTS (SELECT 1 FROM used_filenames)",
            [],
            |r| r.get(0),
        )
    };
    if !needed(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if needed(&tx)? {
        let mut ids: Vec<(String, String)> = Vec::new();
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM files ORDER BY upload_time"
            ))?;
            for f in stmt.query_map([], file_row)? {
                let f = f?;
                if let Ok(id) = identity_of(&f) {
                    ids.push((id.key(), f.filename));
                }
            }
            let mut stmt = tx.prepare("SELECT filename FROM used_filenames")?;
            for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let name = name?;
                for id in DistIdentity::candidates(&name) {
                    ids.push((id.key(), name.clone()));
                }
            }
        }
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO used_dists(key, filename) VALUES (?1, ?2)")?;
        for (key, name) in &ids {
            insert.execute(params![key, name])?;
        }
        drop(insert);
        tracing::info!(
            identities = ids.len(),
            "recorded the distribution identities of earlier uploads"
        );
    }
    tx.commit()?;
    Ok(())
}
