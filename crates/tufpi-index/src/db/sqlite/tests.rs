//! What only the SQLite backend has: databases made by earlier versions.

use rusqlite::Connection;
use tufpi_repo::Change;

use crate::db::IndexDb;
use crate::error::IndexError;

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
    db.write(|tx| tx.push_outbox(&[Change::Remove("a".into())]))
        .unwrap();
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
    // A failed hand-over keeps the outbox for the next try (the matrix tests check more).
    db.write(|tx| tx.push_outbox(&[Change::Remove("b".into())]))
        .unwrap();
    let err = db.drain_outbox(&mut |_| Err(IndexError::Internal("queue down".into())));
    assert!(err.is_err());
    assert_eq!(db.outbox().unwrap(), vec![Change::Remove("b".into())]);
}
