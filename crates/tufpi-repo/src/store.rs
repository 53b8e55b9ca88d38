//! The repository's state store: target records, role versions and expiries, the durable
//! queue of pending changes, and the in-flight publish plan. A trait so PostgreSQL can follow;
//! SQLite (bundled, WAL) is the embedded default.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tufpi_core::json::{self, Value};

use crate::error::RepoError;

/// A target as the repository records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// Target path (relative to the target base URL).
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// Algorithm → hex digest (sha256 required; blake2b-256 optional).
    pub hashes: BTreeMap<String, String>,
    /// Opaque `custom` value, if any.
    pub custom: Option<Value>,
}

/// A queued change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add or replace a target.
    Add(TargetRecord),
    /// Remove a target by path.
    Remove(String),
}

impl Change {
    /// The target path the change concerns.
    pub fn path(&self) -> &str {
        match self {
            Change::Add(t) => &t.path,
            Change::Remove(p) => p,
        }
    }
}

/// Version and expiry of a role as last planned or published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleState {
    /// Metadata version.
    pub version: u64,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// Given the touched bins, the role states to record and the plan text to store.
pub type PlanFn<'a> =
    dyn FnMut(&[u64]) -> Result<(Vec<(String, RoleState)>, String), RepoError> + 'a;

/// A queued change as stored.
struct QueueRow {
    seq: i64,
    add: bool,
    path: String,
    length: Option<i64>,
    hashes: Option<String>,
    custom: Option<String>,
    bin: u64,
}

/// Persistent state of a repository.
pub trait StateStore {
    /// Durably queue changes; returns the sequence number of the last one. Once this returns,
    /// the changes are acknowledged and will be published.
    fn enqueue(&mut self, changes: &[Change]) -> Result<u64, RepoError> {
        self.enqueue_all(&mut changes.iter().cloned().map(Ok))
    }
    /// Durably queue a stream of changes in one transaction: all of them or, on the first
    /// error, none. Returns the last sequence number.
    fn enqueue_all(
        &mut self,
        changes: &mut dyn Iterator<Item = Result<Change, RepoError>>,
    ) -> Result<u64, RepoError>;
    /// Number of queued changes not yet applied.
    fn pending(&self) -> Result<u64, RepoError>;
    /// In one transaction: take up to `limit` queued changes in order, apply them to the
    /// target records (computing each path's bin with `bin_of`), then call `plan` with the set
    /// of touched bins to obtain the role states to record and the plan text to store.
    /// Returns the applied changes' last sequence number (0 if none).
    fn apply_batch(
        &mut self,
        limit: usize,
        bin_of: &dyn Fn(&str) -> u64,
        plan: &mut PlanFn<'_>,
    ) -> Result<u64, RepoError>;
    /// Record role states and a plan without applying queue items (expiry refresh, rotation).
    fn record_plan(&mut self, roles: &[(String, RoleState)], plan: &str) -> Result<(), RepoError>;
    /// The stored in-flight plan, if a publish has not completed.
    fn plan(&self) -> Result<Option<String>, RepoError>;
    /// Mark the in-flight plan as fully published.
    fn clear_plan(&mut self) -> Result<(), RepoError>;
    /// Every role's state.
    fn roles(&self) -> Result<BTreeMap<String, RoleState>, RepoError>;
    /// Target records in bin `bin`, ordered by path.
    fn targets_in_bin(&self, bin: u64) -> Result<Vec<TargetRecord>, RepoError>;
    /// Total number of target records.
    fn target_count(&self) -> Result<u64, RepoError>;
    /// A stored setting.
    fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError>;
    /// Store a setting.
    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), RepoError>;
}

/// SQLite-backed state store.
pub struct SqliteStore {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS targets (
    bin INTEGER NOT NULL,
    path TEXT NOT NULL,
    length INTEGER NOT NULL,
    hashes TEXT NOT NULL,
    custom TEXT,
    PRIMARY KEY (bin, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    path TEXT NOT NULL,
    length INTEGER,
    hashes TEXT,
    custom TEXT
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
    RepoError::Store(e.to_string())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn hashes_text(h: &BTreeMap<String, String>) -> String {
    let v = Value::Object(
        h.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    );
    String::from_utf8(json::canonical(&v).unwrap_or_default()).unwrap_or_default()
}

fn parse_hashes(text: &str) -> Result<BTreeMap<String, String>, RepoError> {
    let v = json::parse(text.as_bytes())
        .map_err(|e| RepoError::Store(format!("stored hashes: {e}")))?;
    let m = v
        .as_object()
        .ok_or_else(|| RepoError::Store("stored hashes are not an object".into()))?;
    Ok(m.iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect())
}

fn custom_text(c: &Option<Value>) -> Result<Option<String>, RepoError> {
    c.as_ref()
        .map(|v| {
            json::canonical(v)
                .map(|b| String::from_utf8(b).unwrap_or_default())
                .map_err(|e| RepoError::Invalid(format!("custom: {e}")))
        })
        .transpose()
}

fn parse_custom(text: Option<String>) -> Result<Option<Value>, RepoError> {
    text.map(|t| {
        json::parse(t.as_bytes()).map_err(|e| RepoError::Store(format!("stored custom: {e}")))
    })
    .transpose()
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
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteStore { conn })
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

impl StateStore for SqliteStore {
    fn enqueue_all(
        &mut self,
        changes: &mut dyn Iterator<Item = Result<Change, RepoError>>,
    ) -> Result<u64, RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let mut last = 0;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO queue(op, path, length, hashes, custom) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(db_err)?;
            for c in changes {
                match c? {
                    Change::Add(t) => stmt
                        .execute(params![
                            "add",
                            t.path,
                            to_i64(t.length),
                            hashes_text(&t.hashes),
                            custom_text(&t.custom)?
                        ])
                        .map_err(db_err)?,
                    Change::Remove(p) => stmt
                        .execute(params![
                            "remove",
                            p,
                            None::<i64>,
                            None::<String>,
                            None::<String>
                        ])
                        .map_err(db_err)?,
                };
                last = tx.last_insert_rowid() as u64;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(last)
    }

    fn pending(&self) -> Result<u64, RepoError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(db_err)
    }

    fn apply_batch(
        &mut self,
        limit: usize,
        bin_of: &dyn Fn(&str) -> u64,
        plan: &mut PlanFn<'_>,
    ) -> Result<u64, RepoError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        // Apply in chunks, each sorted by (bin, path) so inserts walk the table in key order;
        // the stable sort keeps several changes to one path in queue order.
        const CHUNK: usize = 20_000;
        let mut last: i64 = 0;
        let mut taken = 0usize;
        let mut touched = std::collections::BTreeSet::new();
        loop {
            let n = CHUNK.min(limit - taken);
            if n == 0 {
                break;
            }
            let mut rows: Vec<QueueRow> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT seq, op, path, length, hashes, custom FROM queue WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )
                    .map_err(db_err)?;
                let it = stmt
                    .query_map(params![last, to_i64(n as u64)], |r| {
                        Ok(QueueRow {
                            seq: r.get(0)?,
                            add: r.get::<_, String>(1)? == "add",
                            path: r.get(2)?,
                            length: r.get(3)?,
                            hashes: r.get(4)?,
                            custom: r.get(5)?,
                            bin: 0,
                        })
                    })
                    .map_err(db_err)?;
                it.collect::<Result<_, _>>().map_err(db_err)?
            };
            let Some(chunk_last) = rows.last().map(|r| r.seq) else {
                break;
            };
            last = chunk_last;
            taken += rows.len();
            for r in &mut rows {
                r.bin = bin_of(&r.path);
                touched.insert(r.bin);
            }
            rows.sort_by(|a, b| (a.bin, &a.path).cmp(&(b.bin, &b.path)));
            let mut upsert = tx
                .prepare_cached("INSERT INTO targets(bin, path, length, hashes, custom) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(bin, path) DO UPDATE SET length = excluded.length, hashes = excluded.hashes, custom = excluded.custom")
                .map_err(db_err)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM targets WHERE bin = ?1 AND path = ?2")
                .map_err(db_err)?;
            for r in &rows {
                if r.add {
                    upsert
                        .execute(params![
                            to_i64(r.bin),
                            r.path,
                            r.length.unwrap_or(0),
                            r.hashes.as_deref().unwrap_or("{}"),
                            r.custom
                        ])
                        .map_err(db_err)?;
                } else {
                    delete
                        .execute(params![to_i64(r.bin), r.path])
                        .map_err(db_err)?;
                }
            }
            if rows.len() < n {
                break;
            }
        }
        if last == 0 {
            return Ok(0);
        }
        tx.execute("DELETE FROM queue WHERE seq <= ?1", params![last])
            .map_err(db_err)?;
        let touched: Vec<u64> = touched.into_iter().collect();
        let (roles, plan_text) = plan(&touched)?;
        Self::put_roles(&tx, &roles)?;
        Self::put_plan(&tx, &plan_text)?;
        tx.commit().map_err(db_err)?;
        Ok(last as u64)
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

    fn clear_plan(&mut self) -> Result<(), RepoError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = 'plan'", [])
            .map_err(db_err)?;
        Ok(())
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

    fn targets_in_bin(&self, bin: u64) -> Result<Vec<TargetRecord>, RepoError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path, length, hashes, custom FROM targets WHERE bin = ?1 ORDER BY path",
            )
            .map_err(db_err)?;
        let rows: Vec<(String, i64, String, Option<String>)> = stmt
            .query_map(params![to_i64(bin)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(path, length, hashes, custom)| {
                Ok(TargetRecord {
                    path,
                    length: length as u64,
                    hashes: parse_hashes(&hashes)?,
                    custom: parse_custom(custom)?,
                })
            })
            .collect()
    }

    fn target_count(&self) -> Result<u64, RepoError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM targets", [], |r| r.get::<_, i64>(0))
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
            .execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db_err)?;
        Ok(())
    }
}
