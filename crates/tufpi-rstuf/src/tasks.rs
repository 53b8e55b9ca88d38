//! Tasks and service settings, kept in `DIR/rstuf.db` (SQLite): a task is recorded with its
//! payload before its id is returned, so it is readable at once, answers after a restart,
//! and one accepted but not finished when the process stopped is run again at the next start.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::error::RstufError;

/// Task states as RSTUF (Celery plus its custom ones) names them.
pub mod state {
    /// Accepted, not started (also Celery's answer for an unknown id).
    pub const PENDING: &str = "PENDING";
    /// Being worked on.
    pub const RUNNING: &str = "RUNNING";
    /// Done; the result's `status` is true.
    pub const SUCCESS: &str = "SUCCESS";
    /// Done; the task refused (the result's `error` says why).
    pub const ERRORED: &str = "ERRORED";
    /// Failed unexpectedly.
    pub const FAILURE: &str = "FAILURE";
}

/// How long a finished task's result stays readable (Celery keeps results one day).
pub const KEEP_RESULTS: chrono::Duration = chrono::Duration::days(30);

fn finished(state: &str) -> bool {
    matches!(state, state::SUCCESS | state::ERRORED | state::FAILURE)
}

/// A task not finished when the process stopped: (id, name, payload).
pub type Unfinished = (String, String, String);

/// The task and settings database.
pub struct TaskStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// A new task id: a random UUID (version 4) in hex, as RSTUF's API makes them.
pub fn new_task_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    hex::encode(b)
}

/// Now, as the `last_update` of a task result.
pub fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A task result in RSTUF's shape; `status` is true unless there is an `error`.
pub fn result(task: &str, message: &str, error: Option<&str>, details: Option<Value>) -> Value {
    json!({
        "task": task,
        "status": error.is_none(),
        "last_update": now_iso(),
        "message": message,
        "error": error,
        "details": details,
    })
}

impl TaskStore {
    /// Open (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<TaskStore, RstufError> {
        let err = |source| RstufError::TaskDb {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS tasks(
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL,
                 state TEXT NOT NULL,
                 payload TEXT NOT NULL,
                 result TEXT,
                 seq INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks(state, seq);
             CREATE TABLE IF NOT EXISTS task_done(id TEXT PRIMARY KEY, at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS task_done_at ON task_done(at);
             CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(TaskStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> RstufError {
        RstufError::TaskDb {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a new task (PENDING) with its payload.
    pub fn insert(&self, id: &str, name: &str, payload: &str) -> Result<(), RstufError> {
        self.conn()
            .execute(
                "INSERT INTO tasks(id, name, state, payload, seq)
                 VALUES (?1, ?2, 'PENDING', ?3, COALESCE((SELECT MAX(seq) FROM tasks), 0) + 1)",
                params![id, name, payload],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Set the state (and result) of tasks, in one transaction.
    pub fn set_many(&self, updates: &[(String, &str, Option<Value>)]) -> Result<(), RstufError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE tasks SET state = ?2, result = ?3,
                     payload = CASE WHEN ?2 IN ('SUCCESS', 'ERRORED', 'FAILURE') THEN '' ELSE payload END
                     WHERE id = ?1",
                )
                .map_err(|e| self.err(e))?;
            let mut done = tx
                .prepare_cached("INSERT OR REPLACE INTO task_done(id, at) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            let now = Utc::now().timestamp();
            for (id, state, result) in updates {
                let r = result.as_ref().map(Value::to_string);
                st.execute(params![id, state, r]).map_err(|e| self.err(e))?;
                if finished(state) {
                    done.execute(params![id, now]).map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Set one task's state and result.
    pub fn set(&self, id: &str, state: &str, result: Option<Value>) -> Result<(), RstufError> {
        self.set_many(&[(id.to_string(), state, result)])
    }

    /// Forget tasks finished more than `keep` ago; returns how many.
    pub fn prune(&self, keep: chrono::Duration) -> Result<usize, RstufError> {
        let cutoff = (Utc::now() - keep).timestamp();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let n = tx
            .execute(
                "DELETE FROM tasks WHERE id IN (SELECT id FROM task_done WHERE at < ?1)",
                params![cutoff],
            )
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM task_done WHERE at < ?1", params![cutoff])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// A task's state and result, if the id is known.
    pub fn get(&self, id: &str) -> Result<Option<(String, Option<Value>)>, RstufError> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT state, result FROM tasks WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(state, result)| {
            let result = result.and_then(|r| serde_json::from_str(&r).ok());
            (state, result)
        }))
    }

    /// Tasks accepted but not finished, oldest first.
    pub fn unfinished(&self) -> Result<Vec<Unfinished>, RstufError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, name, payload FROM tasks
                 WHERE state IN ('PENDING', 'RUNNING') ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A service setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, RstufError> {
        self.conn()
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Set (`Some`) or remove (`None`) a service setting.
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), RstufError> {
        let conn = self.conn();
        match value {
            Some(v) => conn.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            ),
            None => conn.execute("DELETE FROM settings WHERE key = ?1", params![key]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_uuid4_hex() {
        let id = new_task_id();
        assert_eq!(id.len(), 32);
        assert_eq!(&id[12..13], "4");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_task_id());
    }

    #[test]
    fn tasks_survive_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rstuf.db");
        let s = TaskStore::open(&p).unwrap();
        s.insert("a", "add_artifacts", "{}").unwrap();
        s.insert("b", "add_artifacts", "{}").unwrap();
        s.set("a", state::SUCCESS, Some(json!({"status": true})))
            .unwrap();
        drop(s);
        let s = TaskStore::open(&p).unwrap();
        let (st, r) = s.get("a").unwrap().unwrap();
        assert_eq!(st, "SUCCESS");
        assert_eq!(r.unwrap()["status"], true);
        let left = s.unfinished().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, "b");
        assert!(s.get("zzz").unwrap().is_none());
        // Finished results are pruned once old; unfinished tasks never.
        assert_eq!(s.prune(chrono::Duration::days(1)).unwrap(), 0);
        assert_eq!(s.prune(chrono::Duration::seconds(-5)).unwrap(), 1);
        assert!(s.get("a").unwrap().is_none());
        assert!(s.get("b").unwrap().is_some());
    }
}
