//! Garbage collection of superseded consistent-snapshot files: mark what the current
//! timestamp reaches (its snapshot and every role version that snapshot lists), then sweep
//! versioned files that are unreachable and were superseded longer ago than the retention
//! window, so clients mid-update keep finding what they were told to fetch. Root versions and
//! `timestamp.json` are never deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use tufpi_core::metadata::Metadata;

use crate::error::RepoError;

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

/// Collect garbage in `metadata_dir` with the given retention window.
pub fn gc(metadata_dir: &Path, retention: Duration) -> Result<GcReport, RepoError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| RepoError::io(format!("reading {}", p.display()), e))
    };
    let ts = Metadata::from_bytes(&read(&metadata_dir.join("timestamp.json"))?)?;
    let snap_version = ts
        .as_timestamp()
        .map(|t| t.snapshot_meta.version)
        .ok_or_else(|| RepoError::WrongMetadataType {
            file: "timestamp.json".into(),
            expected: "timestamp",
        })?;
    let snap = Metadata::from_bytes(&read(
        &metadata_dir.join(format!("{snap_version}.snapshot.json")),
    )?)?;
    let mut reachable: BTreeSet<(u64, String)> =
        BTreeSet::from([(snap_version, "snapshot".to_string())]);
    for (name, meta) in snap.as_snapshot().map(|s| &s.meta).into_iter().flatten() {
        if let Some(role) = name.strip_suffix(".json") {
            reachable.insert((meta.version, role.to_string()));
        }
    }

    // role → version → modification time
    let mut files: BTreeMap<String, BTreeMap<u64, SystemTime>> = BTreeMap::new();
    let entries =
        std::fs::read_dir(metadata_dir).map_err(|e| RepoError::io("listing metadata", e))?;
    for e in entries {
        let e = e.map_err(|e| RepoError::io("listing metadata", e))?;
        let name = e.file_name();
        let mtime = match e.metadata().and_then(|m| m.modified()) {
            Ok(t) => t,
            // Renamed or removed since the listing (a publisher's temp file, another GC).
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(RepoError::io(format!("stat {}", e.path().display()), err));
            }
        };
        let name = name.to_string_lossy();
        if tufpi_fs::is_temp(&name) {
            // A temp file a crashed writer left behind.
            if SystemTime::now().duration_since(mtime).unwrap_or_default() >= retention {
                let _ = std::fs::remove_file(e.path());
            }
            continue;
        }
        let Some((v, role)) = versioned(&name) else {
            continue;
        };
        files.entry(role.to_string()).or_default().insert(v, mtime);
    }

    let now = SystemTime::now();
    let mut report = GcReport::default();
    for (role, versions) in &files {
        let list: Vec<(u64, SystemTime)> = versions.iter().map(|(v, t)| (*v, *t)).collect();
        for (i, (v, _)) in list.iter().enumerate() {
            let keep = role == "root" || reachable.contains(&(*v, role.clone()));
            // A version is superseded when the next one was written; the newest never is.
            let superseded_at = list.get(i + 1).map(|(_, t)| *t);
            match superseded_at {
                _ if keep => report.live += 1,
                None => report.live += 1,
                Some(t) if now.duration_since(t).unwrap_or_default() < retention => {
                    report.retained += 1
                }
                Some(_) => {
                    let path = metadata_dir.join(format!("{v}.{role}.json"));
                    match std::fs::remove_file(&path) {
                        Ok(()) => report.deleted += 1,
                        // Another GC got there first.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(RepoError::io(format!("removing {}", path.display()), e))
                        }
                    }
                }
            }
        }
    }
    Ok(report)
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
