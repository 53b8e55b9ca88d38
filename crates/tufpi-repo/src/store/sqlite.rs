//! The SQLite state store (bundled, WAL): the embedded default.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::codec::{custom_text, hashes_text, parse_custom, parse_hashes};
use super::state::{PlanFn, RoleState, StateStore};
use crate::change::{Change, TargetRecord};
use crate::error::RepoError;

/// SQLite-backed state store.
pub struct SqliteStore {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bin INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    path TEXT NOT NULL,
    length INTEGER,
    hashes TEXT,
    custom TEXT
);
CREATE INDEX IF NOT EXISTS queue_bin ON queue(bin, seq);
CREATE TABLE IF NOT EXISTS bin_counts (
    bin INTEGER PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

fn db_err(e: rusqlite::Error) -> RepoError {
    RepoError::store(e)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Repositories made before the published bins became the record of targets kept a row per
/// target: turn those rows into per-bin counts and give the queue its bin column (filled in
/// by `fill_missing_bins`, which knows the layout). An interrupted publish of that format
/// cannot be finished from the new one, so it is refused with a way out.
fn migrate_row_per_target(conn: &Connection) -> Result<(), RepoError> {
    let old: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'targets'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
        > 0;
    if !old {
        return Ok(());
    }
    let plan: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = 'plan'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    if plan.is_some() {
        return Err(RepoError::LeftMidPublish);
    }
    let has_bin: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('queue') WHERE name = 'bin'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
        > 0;
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    if !has_bin {
        sql.push_str("ALTER TABLE queue ADD COLUMN bin INTEGER NOT NULL DEFAULT -1;\n");
    }
    sql.push_str(
        "CREATE TABLE IF NOT EXISTS bin_counts (bin INTEGER PRIMARY KEY, count INTEGER NOT NULL);
         INSERT OR REPLACE INTO bin_counts(bin, count) SELECT bin, COUNT(*) FROM targets GROUP BY bin;
         DROP TABLE targets;
         COMMIT;",
    );
    conn.execute_batch(&sql).map_err(db_err)
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, RepoError> {
        let conn = Connection::open(path).map_err(db_err)?;
        // WAL + synchronous=FULL: a committed enqueue survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_err)?;
        migrate_row_per_target(&conn)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteStore { conn })
    }

    /// Give queued changes recorded without a bin (by an older tufpi) their bin.
    pub fn fill_missing_bins(&mut self, bin_of: &dyn Fn(&str) -> u64) -> Result<(), RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx
                .prepare("SELECT seq, path FROM queue WHERE bin < 0")
                .map_err(db_err)?;
            let it = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db_err)?;
            it.collect::<Result<_, _>>().map_err(db_err)?
        };
        for (seq, path) in rows {
            tx.execute(
                "UPDATE queue SET bin = ?1 WHERE seq = ?2",
                params![to_i64(bin_of(&path)), seq],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn put_roles(
        tx: &rusqlite::Transaction<'_>,
        roles: &[(String, RoleState)],
    ) -> Result<(), RepoError> {
        let mut stmt = tx
            .prepare_cached("INSERT INTO roles(name, version, expires) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET version = excluded.version, expires = excluded.expires")
            .map_err(db_err)?;
        for (name, st) in roles {
            stmt.execute(params![name, to_i64(st.version), st.expires])
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn put_plan(tx: &rusqlite::Transaction<'_>, plan: &str) -> Result<(), RepoError> {
        tx.execute(
            "INSERT INTO settings(key, value) VALUES ('plan', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![plan],
        )
        .map_err(db_err)?;
        Ok(())
    }
}

const INSERT_CHANGE: &str =
    "INSERT INTO queue(bin, op, path, length, hashes, custom) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const SET_SETTING: &str = "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// Queue one change with `stmt` (`INSERT_CHANGE`); returns its sequence number.
fn insert_change(
    stmt: &mut rusqlite::CachedStatement<'_>,
    bin: u64,
    c: Change,
) -> Result<u64, RepoError> {
    let seq = match c {
        Change::Add(t) => stmt.insert(params![
            to_i64(bin),
            "add",
            t.path,
            to_i64(t.length),
            hashes_text(&t.hashes),
            custom_text(&t.path, &t.custom)?
        ]),
        Change::Remove(p) => stmt.insert(params![
            to_i64(bin),
            "remove",
            p,
            None::<i64>,
            None::<String>,
            None::<String>
        ]),
    }
    .map_err(db_err)?;
    Ok(seq as u64)
}

impl StateStore for SqliteStore {
    fn enqueue_all(
        &mut self,
        changes: &mut dyn Iterator<Item = Result<(u64, Change), RepoError>>,
    ) -> Result<u64, RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let mut last = 0;
        {
            let mut stmt = tx.prepare_cached(INSERT_CHANGE).map_err(db_err)?;
            for c in changes {
                let (bin, c) = c?;
                last = insert_change(&mut stmt, bin, c)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(last)
    }

    fn enqueue_unqueued_and_set(
        &mut self,
        changes: Vec<(u64, Change)>,
        key: &str,
        value: &str,
    ) -> Result<u64, RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let mut n = 0;
        {
            let mut queued = tx
                .prepare_cached("SELECT 1 FROM queue WHERE path = ?1 LIMIT 1")
                .map_err(db_err)?;
            let mut stmt = tx.prepare_cached(INSERT_CHANGE).map_err(db_err)?;
            for (bin, c) in changes {
                if queued.exists(params![c.path()]).map_err(db_err)? {
                    continue;
                }
                insert_change(&mut stmt, bin, c)?;
                n += 1;
            }
            tx.execute(SET_SETTING, params![key, value])
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    fn pending(&self) -> Result<u64, RepoError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(db_err)
    }

    fn plan_batch(&mut self, limit: usize, plan: &mut PlanFn<'_>) -> Result<(u64, u64), RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        // The batch is the first `limit` queued changes: up to the limit-th sequence number.
        let last: Option<i64> = tx
            .query_row(
                "SELECT seq FROM queue ORDER BY seq LIMIT 1 OFFSET ?1",
                params![to_i64(limit.saturating_sub(1) as u64)],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        let last = match last {
            Some(l) => l,
            None => tx
                .query_row("SELECT MAX(seq) FROM queue", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(db_err)?
                .unwrap_or(0),
        };
        if last == 0 {
            return Ok((0, 0));
        }
        let (taken, touched) = {
            let mut stmt = tx
                .prepare_cached("SELECT bin FROM queue WHERE seq <= ?1")
                .map_err(db_err)?;
            let mut bins = std::collections::BTreeSet::new();
            let mut n = 0u64;
            let mut rows = stmt.query(params![last]).map_err(db_err)?;
            while let Some(r) = rows.next().map_err(db_err)? {
                bins.insert(r.get::<_, i64>(0).map_err(db_err)? as u64);
                n += 1;
            }
            (n, bins.into_iter().collect::<Vec<u64>>())
        };
        let (roles, plan_text) = plan(&touched, last as u64)?;
        Self::put_roles(&tx, &roles)?;
        Self::put_plan(&tx, &plan_text)?;
        tx.commit().map_err(db_err)?;
        Ok((last as u64, taken))
    }

    fn changes_in_bin(&self, bin: u64, upto: u64) -> Result<Vec<Change>, RepoError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT op, path, length, hashes, custom FROM queue WHERE bin = ?1 AND seq <= ?2 ORDER BY seq",
            )
            .map_err(db_err)?;
        type Row = (String, String, Option<i64>, Option<String>, Option<String>);
        let rows: Vec<Row> = stmt
            .query_map(params![to_i64(bin), to_i64(upto)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(op, path, length, hashes, custom)| {
                if op == "remove" {
                    return Ok(Change::Remove(path));
                }
                Ok(Change::Add(TargetRecord {
                    path,
                    length: length.unwrap_or(0).max(0) as u64,
                    hashes: parse_hashes(hashes.as_deref().unwrap_or("{}"))?,
                    custom: parse_custom(custom)?,
                }))
            })
            .collect()
    }

    fn record_plan(&mut self, roles: &[(String, RoleState)], plan: &str) -> Result<(), RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        Self::put_roles(&tx, roles)?;
        Self::put_plan(&tx, plan)?;
        tx.commit().map_err(db_err)
    }

    fn plan(&self) -> Result<Option<String>, RepoError> {
        self.get_setting("plan")
    }

    fn clear_plan(&mut self, upto: u64, counts: &[(u64, u64)]) -> Result<(), RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        if upto > 0 {
            tx.execute("DELETE FROM queue WHERE seq <= ?1", params![to_i64(upto)])
                .map_err(db_err)?;
        }
        {
            let mut put = tx
                .prepare_cached("INSERT INTO bin_counts(bin, count) VALUES (?1, ?2) ON CONFLICT(bin) DO UPDATE SET count = excluded.count")
                .map_err(db_err)?;
            let mut del = tx
                .prepare_cached("DELETE FROM bin_counts WHERE bin = ?1")
                .map_err(db_err)?;
            for &(bin, count) in counts {
                if count == 0 {
                    del.execute(params![to_i64(bin)]).map_err(db_err)?;
                } else {
                    put.execute(params![to_i64(bin), to_i64(count)])
                        .map_err(db_err)?;
                }
            }
        }
        tx.execute("DELETE FROM settings WHERE key = 'plan'", [])
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    fn roles(&self) -> Result<BTreeMap<String, RoleState>, RepoError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, version, expires FROM roles")
            .map_err(db_err)?;
        let it = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    RoleState {
                        version: r.get::<_, i64>(1)? as u64,
                        expires: r.get(2)?,
                    },
                ))
            })
            .map_err(db_err)?;
        it.collect::<Result<_, _>>().map_err(db_err)
    }

    fn bin_counts(&self) -> Result<BTreeMap<u64, u64>, RepoError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bin, count FROM bin_counts")
            .map_err(db_err)?;
        let it = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .map_err(db_err)?;
        it.collect::<Result<_, _>>().map_err(db_err)
    }

    fn target_count(&self) -> Result<u64, RepoError> {
        self.conn
            .query_row("SELECT COALESCE(SUM(count), 0) FROM bin_counts", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(db_err)
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError> {
        self.conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), RepoError> {
        self.conn
            .execute(SET_SETTING, params![key, value])
            .map_err(db_err)?;
        Ok(())
    }

    fn settings(&self) -> Result<BTreeMap<String, String>, RepoError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM settings")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }
}
