//! The TUF target records the index hands the repository (with every digest it keeps), and
//! the outbox of target changes committed but not yet queued in the repository.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tufpi_repo::{Change, TargetRecord};
use tufpi_simple::targets::{basename, is_page_path, split_metadata};

use super::conn::IndexDb;
use crate::error::IndexError;
use crate::pages::Digests;

/// The TUF target record of a stored file or page, with every digest the index keeps (the
/// repository lists those its target hashes name).
pub(crate) fn target(path: &str, d: &Digests) -> TargetRecord {
    TargetRecord {
        path: path.to_string(),
        length: d.size,
        hashes: digest_map(d),
        custom: None,
    }
}

/// The digests the index keeps of every file and page, as TUF names them.
pub(crate) const KEPT_HASHES: [&str; 2] = ["sha256", "blake2b-256"];

fn digest_map(d: &Digests) -> BTreeMap<String, String> {
    KEPT_HASHES
        .into_iter()
        .map(String::from)
        .zip([d.sha256.clone(), d.blake2b.clone()])
        .collect()
}

/// Append target changes to the outbox (inside the caller's transaction).
pub(crate) fn push_outbox(conn: &Connection, changes: &[Change]) -> Result<(), IndexError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO outbox(op, path, size, sha256, blake2b) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for c in changes {
        match c {
            Change::Add(t) => stmt.execute(params![
                "add",
                t.path,
                t.length as i64,
                t.hashes.get("sha256").map(String::as_str).unwrap_or(""),
                t.hashes
                    .get("blake2b-256")
                    .map(String::as_str)
                    .unwrap_or("")
            ])?,
            Change::Remove(path) => stmt.execute(params!["remove", path, 0i64, "", ""])?,
        };
    }
    Ok(())
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
        .map(|(_, op, path, size, sha256, blake2b)| {
            if op == "remove" {
                Change::Remove(path)
            } else {
                Change::Add(target(
                    &path,
                    &Digests {
                        size: size as u64,
                        sha256,
                        blake2b,
                    },
                ))
            }
        })
        .collect();
    Ok((last, changes))
}

impl IndexDb {
    /// Every digest the index keeps of the file or page that target `path` lists with the
    /// SHA-256 in `listed` (`None` if it keeps no such content: it lists only its own).
    pub fn known_hashes(
        &self,
        path: &str,
        listed: &BTreeMap<String, String>,
    ) -> Result<Option<BTreeMap<String, String>>, IndexError> {
        let Some(sha) = listed.get("sha256") else {
            return Ok(None);
        };
        let found = if is_page_path(path) {
            self.conn
                .query_row(
                    "SELECT size, sha256, blake2b FROM pages WHERE sha256 = ?1",
                    params![sha],
                    |r| {
                        Ok(Digests {
                            size: r.get::<_, i64>(0)? as u64,
                            sha256: r.get(1)?,
                            blake2b: r.get(2)?,
                        })
                    },
                )
                .optional()?
        } else {
            let (file, is_meta) = split_metadata(path);
            self.file(basename(file))?
                .filter(|row| row.path == file)
                .and_then(|row| {
                    if is_meta {
                        row.metadata
                    } else {
                        Some(row.digests)
                    }
                })
        };
        Ok(found.filter(|d| &d.sha256 == sha).map(|d| digest_map(&d)))
    }

    /// Target changes recorded but not yet queued in the repository, in order.
    pub fn outbox(&self) -> Result<Vec<Change>, IndexError> {
        read_outbox(&self.conn).map(|(_, changes)| changes)
    }

    /// Number of changes in the outbox.
    pub fn outbox_len(&self) -> Result<u64, IndexError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Hand the outbox to `queue` (which durably queues the changes in the repository) and
    /// forget it, inside one write transaction: flushes from several connections or
    /// processes (server, publisher, `tufpi project`) are serialised, so changes reach the
    /// repository queue in the order they were committed. If this dies after `queue` but
    /// before the commit, the next flush queues the same changes again, still ahead of any
    /// later ones: harmless. Returns how many changes were handed over.
    pub fn drain_outbox(
        &mut self,
        queue: &mut dyn FnMut(&[Change]) -> Result<(), IndexError>,
    ) -> Result<usize, IndexError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_outboxes_are_migrated_and_drained_in_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("index.db");
        // A database made before removals existed: no `op` column, one pending add.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL,
                 size INTEGER NOT NULL, sha256 TEXT NOT NULL, blake2b TEXT NOT NULL);
                 INSERT INTO outbox(path, size, sha256, blake2b) VALUES ('a', 1, 'x', 'y');",
            )
            .unwrap();
        let mut db = IndexDb::open(&path).unwrap();
        let _again = IndexDb::open(&path).unwrap();
        push_outbox(&db.conn, &[Change::Remove("a".into())]).unwrap();
        assert_eq!(db.outbox_len().unwrap(), 2);
        let mut seen = Vec::new();
        let n = db
            .drain_outbox(&mut |c| {
                seen.extend(
                    c.iter()
                        .map(|c| (matches!(c, Change::Add(_)), c.path().to_string())),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, [(true, "a".to_string()), (false, "a".to_string())]);
        // A failed hand-over keeps the outbox for the next try.
        push_outbox(&db.conn, &[Change::Remove("b".into())]).unwrap();
        let err = db.drain_outbox(&mut |_| Err(IndexError::Internal("queue down".into())));
        assert!(err.is_err());
        assert_eq!(db.outbox().unwrap(), vec![Change::Remove("b".into())]);
        assert_eq!(db.drain_outbox(&mut |_| Ok(())).unwrap(), 1);
        assert_eq!(db.drain_outbox(&mut |_| Ok(())).unwrap(), 0);
    }
}
