//! Garbage collection of a running index: superseded TUF metadata (the repository's GC, with
//! its retention window) and then superseded pages — a page no project shows any more and no
//! bin version still on disk lists, so no client can be sent to it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use tufpi_core::metadata::Metadata;
use tufpi_repo::{layout, GcReport, RepoConfig};
use tufpi_simple::PageKind;

use crate::error::IndexError;

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The metadata GC.
    pub metadata: GcReport,
    /// Superseded pages deleted.
    pub pages_deleted: usize,
    /// Superseded pages kept: a retained bin version still lists them.
    pub pages_retained: usize,
    /// Whether pages were looked at (they are not while changes wait to be signed).
    pub pages_checked: bool,
}

/// A superseded page: its SHA-256, project and rendering.
pub type Superseded = (String, String, PageKind);

/// The superseded pages (of `candidates`) that no bin version in `metadata_dir` lists.
/// Call only when nothing waits to be signed, so every candidate's own addition is either on
/// disk or was replaced before it was ever signed.
pub fn unlisted(
    metadata_dir: &Path,
    cfg: &RepoConfig,
    candidates: &[Superseded],
) -> Result<(Vec<String>, usize), IndexError> {
    // Bin role → versions on disk.
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    let entries = std::fs::read_dir(metadata_dir)
        .map_err(|e| IndexError::io(format!("listing {}", metadata_dir.display()), e))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((v, role)) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.split_once('.'))
        else {
            continue;
        };
        if let Ok(v) = v.parse::<u64>() {
            versions.entry(role.to_string()).or_default().push(v);
        }
    }
    // (role, version) → target path → sha256, read once per collection.
    let mut listed: BTreeMap<(String, u64), BTreeMap<String, String>> = BTreeMap::new();
    let mut gone = Vec::new();
    let mut kept = 0;
    for (sha, project, kind) in candidates {
        let path = kind.target_path(project);
        let role = layout::bin_name(cfg, layout::bin_of(cfg, &path));
        let mut found = false;
        for &v in versions.get(&role).map(Vec::as_slice).unwrap_or_default() {
            let key = (role.clone(), v);
            if !listed.contains_key(&key) {
                let file = metadata_dir.join(format!("{v}.{role}.json"));
                let targets = match std::fs::read(&file) {
                    Ok(bytes) => sha256s(&bytes).map_err(|e| {
                        IndexError::Internal(format!("reading {}: {e}", file.display()))
                    })?,
                    // Collected meanwhile: it lists nothing any more.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                    Err(e) => return Err(IndexError::io(format!("reading {}", file.display()), e)),
                };
                listed.insert(key.clone(), targets);
            }
            if listed[&key].get(&path) == Some(sha) {
                found = true;
                break;
            }
        }
        if found {
            kept += 1;
        } else {
            gone.push(sha.clone());
        }
    }
    Ok((gone, kept))
}

/// Target path → sha256 of a bin's bytes. A bin that does not parse is an error: pages it
/// might list must not be deleted.
fn sha256s(bytes: &[u8]) -> Result<BTreeMap<String, String>, tufpi_core::metadata::MetadataError> {
    let m = Metadata::from_bytes(bytes)?;
    Ok(m.as_targets()
        .map(|t| {
            t.targets
                .iter()
                .filter_map(|(p, f)| Some((p.clone(), f.hashes.get("sha256")?.clone())))
                .collect()
        })
        .unwrap_or_default())
}

/// How often a running index collects garbage, and what it keeps.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// Time between collections.
    pub every: Duration,
    /// Superseded metadata is kept this long (clients mid-update still find it).
    pub retention: Duration,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            every: Duration::from_secs(600),
            retention: Duration::from_secs(3600),
        }
    }
}
