//! Sweeping what interrupted uploads and removals left: stored files and pages no database
//! row references. A local store is walked as a directory tree (temp files of interrupted
//! writes and emptied directories go too); any store can be swept through `list` and
//! `delete`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::{blob_error, Storage, PACKAGES, PAGES};
use crate::db::References;
use crate::error::IndexError;

/// How old an unreferenced object of a remote store must be before it is swept: other
/// replicas store an upload's file and pages before committing their rows, and must not
/// lose them to a sweep in between.
pub const SWEEP_GRACE: Duration = Duration::from_secs(3600);

/// Whether `key` is a file or page `refs` names.
fn referenced(refs: &References, key: &str) -> bool {
    match key.strip_prefix("pages/") {
        Some(sha) => refs.pages.contains(sha),
        None => refs.files.contains(key),
    }
}

impl Storage {
    /// Remove every file under `packages/` and `pages/` that `refs` does not name (files of
    /// uploads or removals interrupted by a crash, temp files of interrupted writes) and the
    /// directories under `packages/` left empty; returns the removed files' paths relative to
    /// the data directory (their keys). Only with no upload in flight (see
    /// [`crate::db::IndexDb::with_references`]); on a remote store, which other replicas
    /// write meanwhile, only objects older than [`SWEEP_GRACE`] go. Failures are logged.
    pub fn sweep(&self, refs: &References) -> Vec<String> {
        let Some(root) = self.local_root.clone() else {
            return self
                .sweep_older_than(refs, SWEEP_GRACE)
                .unwrap_or_else(|e| {
                    tracing::warn!("sweeping unreferenced files: {e}");
                    Vec::new()
                });
        };
        let mut removed = Vec::new();
        let keep = |rel: &str| referenced(refs, rel);
        for area in [PACKAGES, PAGES] {
            sweep_dir(&root.join(area), area, &keep, &mut removed);
        }
        removed
    }

    /// Remove every object under `packages/` and `pages/` that `refs` does not name and that
    /// was last written more than `grace` ago, through the store's `list` and `delete` (any
    /// store); returns their keys. Stops at the first store failure.
    pub fn sweep_older_than(
        &self,
        refs: &References,
        grace: Duration,
    ) -> Result<Vec<String>, IndexError> {
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut removed = Vec::new();
        for area in [PACKAGES, PAGES] {
            for m in self.store.list(&format!("{area}/")).map_err(blob_error)? {
                if m.modified > cutoff || referenced(refs, &m.key) {
                    continue;
                }
                self.store.delete(&m.key).map_err(blob_error)?;
                self.cache.remove(&m.key);
                removed.push(m.key);
            }
        }
        Ok(removed)
    }
}

/// Sweep `dir` (target path `rel`) recursively; returns whether it is now empty.
fn sweep_dir(
    dir: &Path,
    rel: &str,
    keep: &dyn Fn(&str) -> bool,
    removed: &mut Vec<String>,
) -> bool {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("sweeping {}: {e}", dir.display());
            return false;
        }
    };
    let mut empty = true;
    for entry in entries {
        let Ok(entry) = entry else {
            empty = false;
            continue;
        };
        let path = entry.path();
        // Names the index writes are ASCII; anything else is nobody's file.
        let name = entry.file_name();
        let child = format!("{rel}/{}", name.to_string_lossy());
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if sweep_dir(&path, &child, keep, removed) && fs::remove_dir(&path).is_ok() {
                continue;
            }
            empty = false;
        } else if name.to_str().is_some() && keep(&child) {
            empty = false;
        } else {
            match fs::remove_file(&path) {
                Ok(()) => removed.push(child),
                Err(e) => {
                    tracing::warn!("removing {}: {e}", path.display());
                    empty = false;
                }
            }
        }
    }
    empty
}
