//! Garbage collection of superseded consistent-snapshot files: mark what the current
//! timestamp reaches (its snapshot and every role version that snapshot lists), then sweep
//! versioned files that are unreachable and were superseded longer ago than the retention
//! window, so clients mid-update keep finding what they were told to fetch. Root versions and
//! `timestamp.json` are never deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tufpi_blob::{BlobStore, FsStore};
use tufpi_core::metadata::Metadata;

use crate::backend::local_dir;
use crate::error::RepoError;
use crate::layout::TIMESTAMP_FILE;

/// What a GC run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Files deleted.
    pub deleted: usize,
    /// Unreachable files kept because they were superseded within the retention window.
    pub retained: usize,
    /// Files reachable from the current timestamp (plus roots and the newest of each role).
    pub live: usize,
}

/// `N.role.json` → (N, role).
fn versioned(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(".json")?;
    let (v, role) = stem.split_once('.')?;
    Some((v.parse().ok()?, role))
}

/// Collect garbage in the metadata directory `metadata_dir` with the given retention window.
pub fn gc(metadata_dir: &Path, retention: Duration) -> Result<GcReport, RepoError> {
    gc_store(&FsStore::open(metadata_dir)?, retention)
}

/// Collect garbage in a metadata store with the given retention window.
pub fn gc_store(store: &dyn BlobStore, retention: Duration) -> Result<GcReport, RepoError> {
    let read = |key: &str| -> Result<Metadata, RepoError> {
        let bytes = store.get(key)?.ok_or_else(|| RepoError::NotPublished {
            key: key.to_string(),
            store: store.describe(),
        })?;
        Ok(Metadata::from_bytes(&bytes)?)
    };
    let ts = read(TIMESTAMP_FILE)?;
    let snap_version = ts
        .as_timestamp()
        .map(|t| t.snapshot_meta.version)
        .ok_or_else(|| RepoError::WrongMetadataType {
            file: TIMESTAMP_FILE.into(),
            expected: "timestamp",
        })?;
    let snap = read(&format!("{snap_version}.snapshot.json"))?;
    let mut reachable: BTreeSet<(u64, String)> =
        BTreeSet::from([(snap_version, "snapshot".to_string())]);
    for (name, meta) in snap.as_snapshot().map(|s| &s.meta).into_iter().flatten() {
        if let Some(role) = name.strip_suffix(".json") {
            reachable.insert((meta.version, role.to_string()));
        }
    }
    if let Some(dir) = local_dir(store) {
        remove_old_temps(&dir, retention);
    }

    // role → version → time written
    let mut files: BTreeMap<String, BTreeMap<u64, DateTime<Utc>>> = BTreeMap::new();
    for m in store.list("")? {
        // Only the top level holds metadata.
        if m.key.contains('/') {
            continue;
        }
        let Some((v, role)) = versioned(&m.key) else {
            continue;
        };
        files
            .entry(role.to_string())
            .or_default()
            .insert(v, m.modified);
    }

    let now = Utc::now();
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut report = GcReport::default();
    for (role, versions) in &files {
        let list: Vec<(u64, DateTime<Utc>)> = versions.iter().map(|(v, t)| (*v, *t)).collect();
        for (i, (v, _)) in list.iter().enumerate() {
            let keep = role == "root" || reachable.contains(&(*v, role.clone()));
            // A version is superseded when the next one was written; the newest never is.
            let superseded_at = list.get(i + 1).map(|(_, t)| *t);
            match superseded_at {
                _ if keep => report.live += 1,
                None => report.live += 1,
                Some(t) if now.signed_duration_since(t) < retention => report.retained += 1,
                Some(_) => {
                    // Absent already is fine: another GC got there first.
                    store.delete(&format!("{v}.{role}.json"))?;
                    report.deleted += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Remove temp files a crashed writer left in a local metadata directory, once older than
/// the retention (the store's listing never shows them).
fn remove_old_temps(dir: &Path, retention: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !tufpi_fs::is_temp(&e.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(mtime) = e.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if SystemTime::now().duration_since(mtime).unwrap_or_default() >= retention {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::versioned;

    #[test]
    fn names() {
        assert_eq!(versioned("12.bin-00ff.json"), Some((12, "bin-00ff")));
        assert_eq!(versioned("timestamp.json"), None);
        assert_eq!(versioned(".3.snapshot.json.9.tmp"), None);
    }
}
