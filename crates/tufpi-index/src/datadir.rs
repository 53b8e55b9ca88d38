//! A data directory without a server (the CLI's `tufpi project`): whether a directory
//! holds an index, the hand-over of the outbox to the repository queue, a management
//! operation committed and published here, and waiting for a running server to sign.

use std::path::Path;

use tufpi_repo::{RepoError, Repository};

use crate::db::IndexDb;
use crate::error::IndexError;
use crate::manage::{self, Operation, Outcome};
use crate::storage::Storage;

/// Queue the outbox's target changes in the repository (durable there), then forget them.
pub(crate) fn flush_outbox(db: &mut IndexDb, repo: &mut Repository) -> Result<usize, IndexError> {
    db.drain_outbox(&mut |changes| {
        repo.enqueue(changes)?;
        Ok(())
    })
}

/// Whether `dir` holds an index (its database and repository), as `Index::open` leaves it.
pub fn is_index_dir(dir: &Path) -> bool {
    dir.join("index.db").is_file() && dir.join("repo").join("state.db").is_file()
}

/// How the changes of a [`manage_data_dir`] operation get signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Nothing changed: nothing to sign.
    Nothing,
    /// Published by this call; the new snapshot version.
    Published(u64),
    /// Queued; another process holds the repository lock (a running `tufpi serve`, whose
    /// publisher signs them within a round).
    Queued,
    /// Committed, but handing the changes to the repository queue failed (the reason): a
    /// running server's publisher, or the next start, queues and signs them.
    Deferred(String),
}

/// Apply a management operation to the index in `dir` whether or not a server runs on it:
/// commit it (serialised with the server through SQLite), queue its target changes in the
/// repository, and publish them here unless another process holds the repository lock.
pub fn manage_data_dir(
    dir: &Path,
    op: &Operation,
    batch: usize,
) -> Result<(Outcome, Publication), IndexError> {
    if !is_index_dir(dir) {
        return Err(IndexError::bad(format!(
            "{} holds no index (no index.db and repo/state.db): give the data directory of tufpi serve",
            dir.display()
        )));
    }
    let storage = Storage::open(dir)?;
    let mut db = IndexDb::open(&dir.join("index.db"))?;
    let mut repo = Repository::open(&dir.join("repo"))?;
    let out = manage::apply(&mut db, &storage, op)?;
    // Committed from here on: a failure below must not read as "nothing happened".
    let flushed = flush_outbox(&mut db, &mut repo);
    manage::delete_dead_files(&storage, &out);
    if out.changed.is_empty() && !out.project_removed {
        return Ok((out, Publication::Nothing));
    }
    if let Err(e) = flushed {
        return Ok((out, Publication::Deferred(e.to_string())));
    }
    match repo.lock() {
        Ok(()) => {
            let rep = repo.publish(batch)?;
            Ok((out, Publication::Published(rep.snapshot_version)))
        }
        Err(RepoError::Locked(_)) => Ok((out, Publication::Queued)),
        Err(e) => Err(e.into()),
    }
}

/// Wait up to `timeout` until the repository in `dir` has nothing queued (the running
/// server's publisher signed it); returns the snapshot version then, `None` on timeout.
pub fn wait_signed(dir: &Path, timeout: std::time::Duration) -> Result<Option<u64>, IndexError> {
    let t0 = std::time::Instant::now();
    loop {
        let repo = Repository::open(&dir.join("repo"))?;
        if repo.pending()? == 0 {
            return Ok(repo.role_states().get("snapshot").map(|s| s.version));
        }
        if t0.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
