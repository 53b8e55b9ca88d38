//! The local metadata directory: the exact bytes of the trusted metadata, one file per role
//! (`ROLE.json`, the name quoted), and nothing else. Each file is replaced atomically
//! (`tufpi_fs`); root is made durable at once, the other top-level roles are written on a
//! background thread with their data synced (the fsync overlaps the next download) and the
//! directory is synced once per update cycle (`sync`); delegated roles are only replaced
//! atomically. `close` finishes everything; dropping a directory without it still waits for
//! the background writes, so none can land after a newer one.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tufpi_fs::WriteOptions;

use crate::error::ClientError;
use crate::quote::quote;

/// Root: data and directory synced at once (the chain's progress must survive a crash).
const ROOT: WriteOptions = WriteOptions::new();
/// Timestamp, snapshot, targets: data synced, the directory later (`MetadataDir::sync`).
const TOP_LEVEL: WriteOptions = WriteOptions::new().sync_dir(false);
/// Delegated roles: pinned by the snapshot (version and hash), so a copy lost or torn in a
/// crash is only fetched again; an fsync per bin would be most of the cost of a lookup.
const DELEGATED: WriteOptions = WriteOptions::new().sync_data(false).sync_dir(false);

/// Replace `path` with `data` as `opts` says.
fn write(opts: WriteOptions, path: &Path, data: &[u8]) -> Result<(), ClientError> {
    Ok(opts.write(path, data)?)
}

/// An open metadata directory.
pub struct MetadataDir {
    dir: PathBuf,
    /// Files were renamed into the directory since its last sync.
    unsynced: bool,
    /// Background writes not yet joined.
    writes: Vec<(PathBuf, JoinHandle<Result<(), ClientError>>)>,
}

fn join(h: JoinHandle<Result<(), ClientError>>) -> Result<(), ClientError> {
    h.join()
        .map_err(|_| ClientError::Order("a metadata write thread panicked"))?
}

impl MetadataDir {
    /// Create `dir` if needed and store `root_data` as its trust anchor (durably). The
    /// caller has checked it.
    pub fn init(dir: &Path, root_data: &[u8]) -> Result<(), ClientError> {
        fs::create_dir_all(dir)
            .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
        write(ROOT, &local_path(dir, "root"), root_data)
    }

    /// Open `dir`, removing the temp files an interrupted write left there (best effort: a
    /// leftover is harmless, only untidy).
    pub fn open(dir: &Path) -> MetadataDir {
        let _ = tufpi_fs::remove_stale_temps(dir);
        MetadataDir {
            dir: dir.to_path_buf(),
            unsynced: false,
            writes: Vec::new(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file `role` is kept in.
    fn file(&self, role: &str) -> PathBuf {
        local_path(&self.dir, role)
    }

    /// The stored bytes of `role`; a missing file is `None`.
    pub fn read(&self, role: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let path = self.file(role);
        match fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Remove the stored `role` (if any).
    pub fn remove(&self, role: &str) -> Result<(), ClientError> {
        let path = self.file(role);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClientError::io(format!("removing {}", path.display()), e)),
        }
    }

    /// Wait for a background write of `path`, if one is in flight: a later write of the same
    /// file must land after it.
    fn wait_for(&mut self, path: &Path) -> Result<(), ClientError> {
        if let Some(i) = self.writes.iter().position(|(p, _)| p == path) {
            let (_, h) = self.writes.swap_remove(i);
            join(h)?;
        }
        Ok(())
    }

    /// Persist the exact bytes received for `role`: root at once and durably, the other
    /// top-level roles on a background thread (durable after `sync`), delegated roles
    /// replaced atomically only.
    pub fn persist(&mut self, role: &str, data: &[u8]) -> Result<(), ClientError> {
        let path = self.file(role);
        if role == "root" {
            self.unsynced = true;
            return write(ROOT, &path, data);
        }
        let top_level = matches!(role, "timestamp" | "snapshot" | "targets");
        if top_level {
            self.unsynced = true;
        }
        self.wait_for(&path)?;
        if !top_level {
            return write(DELEGATED, &path, data);
        }
        let (p, bytes) = (path.clone(), data.to_vec());
        self.writes.push((
            path,
            std::thread::spawn(move || write(TOP_LEVEL, &p, &bytes)),
        ));
        Ok(())
    }

    /// Finish the background writes, then sync the directory if anything was written since
    /// the last sync: the end of an update cycle.
    pub fn sync(&mut self) -> Result<(), ClientError> {
        let mut first_err = None;
        for (_, h) in self.writes.drain(..) {
            if let Err(e) = join(h) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        if std::mem::take(&mut self.unsynced) {
            tufpi_fs::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Finish every write and make it durable (`sync`), reporting any failure.
    pub fn close(mut self) -> Result<(), ClientError> {
        self.sync()
    }
}

impl Drop for MetadataDir {
    /// Not closed: the background writes are still finished and the directory synced (their
    /// errors are lost), so a write of an earlier update can never land over a later one and
    /// what was written stays durable. `close` is the way to finish and hear of failures;
    /// this is only the guard against forgetting it.
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// The file `role` is kept in under `dir`.
pub fn local_path(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{}.json", quote(role)))
}
